"""Issue 18's corpus: bad or awkward input to the CLI, each answered by one line naming what is
wrong, exit status 2, no traceback and no output folder, whole or partial, left behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from napari_entrust.benchmark.report import report_files
from napari_entrust.cli import main
from napari_entrust.model.checkpoint import bundled_model_path, save_checkpoint
from tests.helpers import ROOT, small_volume, write_brats_folder, write_nifti

MODS = ("t1", "t1ce", "t2", "flair")


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny):
    """A good case, a good tiny model, and the bad files the corpus points at."""
    root = tmp_path_factory.mktemp("corpus")
    case = root / "case"
    paths = write_brats_folder(case, labels=np.zeros((12, 14, 10), np.uint8))
    model = root / "tiny.pt"
    save_checkpoint(model, tiny.net, tiny.calibration)
    bad = root / "bad"
    bad.mkdir()
    eye = np.eye(4)
    write_nifti(bad / "flat.nii.gz", small_volume((12, 14, 10))[:, :, 5:6], eye)
    write_nifti(bad / "four_d.nii.gz", np.stack([small_volume()] * 2, -1), eye)
    for name, value in (("nan", np.nan), ("inf", np.inf)):
        data = small_volume()
        data[5, 5, 5] = value
        write_nifti(bad / f"{name}.nii.gz", data, eye)
    write_nifti(bad / "constant.nii.gz", np.full((12, 14, 10), 7.0, np.float32), eye)
    rgb = np.zeros((12, 14, 10), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    nib.save(nib.Nifti1Image(rgb, eye), str(bad / "rgb.nii.gz"))
    nib.save(nib.Nifti1Image(small_volume().astype(np.complex64) * (1 + 1j), eye), str(bad / "complex.nii.gz"))
    (bad / "text.nii.gz").write_text("not an image")
    write_nifti(bad / "huge.nii.gz", small_volume().astype(np.float64) * 1e300, eye)
    write_nifti(bad / "slab.nii.gz", small_volume((12, 14, 10))[:, :, 4:6], eye)
    shutil.copy(paths["t1"], bad / "gzipped.nii")  # gzip bytes under a plain name
    nib.save(nib.load(str(paths["t1"])), str(bad / "plain.nii"))
    shutil.copy(bad / "plain.nii", bad / "plain.nii.gz")
    (bad / "truncated.nii.gz").write_bytes(paths["t1"].read_bytes()[:200])
    write_nifti(
        bad / "far.nii.gz", small_volume(), np.diag([1.0, 1, 1, 1]) + np.array([[0, 0, 0, 500]] + [[0] * 4] * 3)
    )
    singular = nib.Nifti1Image(small_volume(), None)
    singular.set_sform(np.diag([0.0, 0.0, 0.0, 1.0]), code=1)
    nib.save(singular, str(bad / "singular.nii.gz"))
    write_nifti(bad / "labels7.nii.gz", np.full((12, 14, 10), 7, np.uint8), eye)
    os.symlink(bad / "loop_b.nii.gz", bad / "loop_a.nii.gz")
    os.symlink(bad / "loop_a.nii.gz", bad / "loop_b.nii.gz")
    for name, shape, value in (("tiny_case", (3, 3, 3), None), ("zero_case", (12, 14, 10), 0.0)):
        folder = root / name
        for i, m in enumerate(MODS):
            data = np.random.default_rng(i).uniform(100, 1000, shape).astype(np.float32) if value is None else None
            write_nifti(folder / f"c_{m}.nii.gz", data if data is not None else np.zeros(shape, np.float32), eye)
    two = root / "two_cases"
    write_brats_folder(two)
    for m in MODS:
        shutil.copy(paths[m], two / f"other_{m}.nii.gz")
    (root / "empty").mkdir()
    (root / "a_file").write_text("x")
    taken = root / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("mine")
    state = torch.load(model, weights_only=True)
    key = next(iter(state["net"]))
    state["net"][key] = state["net"][key] + 1e-3
    torch.save(state, root / "altered.pt")
    torch.save({"config": {}, "payload": print}, root / "pickled.pt")
    (root / "truncated.pt").write_bytes(model.read_bytes()[:500])
    shutil.copy(bundled_model_path(), root / "bundled_copy.pt")
    return {"root": root, "case": case, "paths": paths, "model": model, "bad": bad}


def with_modality(world, modality: str, path: Path) -> list[str]:
    """``-m`` options for the good case with one modality's file replaced."""
    files = {m: world["paths"][m] for m in MODS} | {modality: path}
    return [a for m in MODS for a in ("-m", f"{m}={files[m]}")]


def case_args(world, name: str) -> list[str]:
    """The arguments (without --out) for corpus entry ``name``; {root}, {bad} and {case} filled in."""
    bad, root, case, model = world["bad"], world["root"], str(world["case"]), str(world["model"])
    m = ["--model", model]
    table = {
        "missing case": [str(root / "nowhere"), *m],
        "empty folder": [str(root / "empty"), *m],
        "two cases in one folder": [str(root / "two_cases"), *m],
        "a text file as the case": [str(root / "a_file"), *m],
        "2-D volume": [*with_modality(world, "t1", bad / "flat.nii.gz"), *m],
        "4-D volume as a modality": [*with_modality(world, "t2", bad / "four_d.nii.gz"), *m],
        "NaN voxels": [*with_modality(world, "t1", bad / "nan.nii.gz"), *m],
        "Inf voxels": [*with_modality(world, "t1ce", bad / "inf.nii.gz"), *m],
        "constant volume": [*with_modality(world, "flair", bad / "constant.nii.gz"), *m],
        "RGB voxels": [*with_modality(world, "t1", bad / "rgb.nii.gz"), *m],
        "complex voxels": [*with_modality(world, "t1", bad / "complex.nii.gz"), *m],
        "not NIfTI": [*with_modality(world, "t2", bad / "text.nii.gz"), *m],
        "values beyond float32": [*with_modality(world, "t2", bad / "huge.nii.gz"), *m],
        "a slab covering a fifth of the grid": [*with_modality(world, "flair", bad / "slab.nii.gz"), *m],
        "gzip data named .nii": [*with_modality(world, "t1", bad / "gzipped.nii"), *m],
        "plain data named .nii.gz": [*with_modality(world, "t1", bad / "plain.nii.gz"), *m],
        "truncated file": [*with_modality(world, "t1", bad / "truncated.nii.gz"), *m],
        "grid that does not overlap": [*with_modality(world, "flair", bad / "far.nii.gz"), *m],
        "symlink loop": [*with_modality(world, "t1", bad / "loop_a.nii.gz"), *m],
        "singular affine": [*with_modality(world, "t2", bad / "singular.nii.gz"), *m],
        "folder as a modality": [*with_modality(world, "t1", root / "empty"), *m],
        "3×3×3 case": [str(root / "tiny_case"), *m],
        "all-zero case": [str(root / "zero_case"), *m],
        "duplicated -m": [*with_modality(world, "t1", world["paths"]["t1"]), "-m", f"t1={bad / 'nan.nii.gz'}", *m],
        "-m without =": [case, "-m", "t1", *m],
        "-m of an unknown modality": [*with_modality(world, "t1", world["paths"]["t1"]), "-m", "t9=x.nii.gz", *m],
        "CASE and -m together": [case, "-m", f"t1={world['paths']['t1']}", *m],
        "a modality missing from -m": [a for mod in MODS[:3] for a in ("-m", f"{mod}={world['paths'][mod]}")] + m,
        "--reference t7": [case, "--reference", "t7", *m],
        "--reference seg": [case, "--reference", "seg", *m],
        "--labels missing": [case, "--labels", str(root / "nolabels.nii.gz"), *m],
        "--labels with value 7": [case, "--labels", str(bad / "labels7.nii.gz"), *m],
        "--model missing": [case, "--model", str(root / "none.pt")],
        "--model a folder": [case, "--model", str(root / "empty")],
        "--model truncated": [case, "--model", str(root / "truncated.pt")],
        "--model a text file": [case, "--model", str(root / "a_file")],
        "--model a NIfTI image": [case, "--model", str(world["paths"]["t1"])],
        "--model with an altered weight": [case, "--model", str(root / "altered.pt")],
        "--model holding code": [case, "--model", str(root / "pickled.pt")],
        "--model a bundled file away from its SHA256SUMS": [case, "--model", str(root / "bundled_copy.pt")],
    }
    return table[name]


#: corpus entry -> words the one-line message must hold, and the file it must name ("" for none)
PREDICT_CORPUS = {
    "missing case": ("does not exist", "nowhere"),
    "empty folder": ("no", "empty"),
    "two cases in one folder": ("", "two_cases"),
    "a text file as the case": ("", "a_file"),
    "2-D volume": ("2-D", "flat.nii.gz"),
    "4-D volume as a modality": ("expected a 3-D volume", "four_d.nii.gz"),
    "NaN voxels": ("NaN", "nan.nii.gz"),
    "Inf voxels": ("Inf", "inf.nii.gz"),
    "constant volume": ("constant", "constant.nii.gz"),
    "RGB voxels": ("colour", "rgb.nii.gz"),
    "complex voxels": ("complex", "complex.nii.gz"),
    "not NIfTI": ("NIfTI", "text.nii.gz"),
    "values beyond float32": ("beyond what float32 can hold", "huge.nii.gz"),
    "a slab covering a fifth of the grid": ("covers only 20%", "slab.nii.gz"),
    "gzip data named .nii": ("rename it to end in .nii.gz", "gzipped.nii"),
    "plain data named .nii.gz": ("rename it to end in .nii", "plain.nii.gz"),
    "truncated file": ("", "truncated.nii.gz"),
    "grid that does not overlap": ("overlap", "far.nii.gz"),
    "symlink loop": ("", "loop_a.nii.gz"),
    "singular affine": ("", "singular.nii.gz"),
    "folder as a modality": ("folder", "empty"),
    "3×3×3 case": ("needs at least", "tiny_case"),
    "all-zero case": ("every voxel is 0", "zero_case"),
    "duplicated -m": ("twice", "nan.nii.gz"),
    "-m without =": ("NAME=PATH", ""),
    "-m of an unknown modality": ("t9", ""),
    "CASE and -m together": ("not both", ""),
    "a modality missing from -m": ("flair", ""),
    "--reference t7": ("t7", ""),
    "--reference seg": ("seg", ""),
    "--labels missing": ("does not exist", "nolabels.nii.gz"),
    "--labels with value 7": ("7", "labels7.nii.gz"),
    "--model missing": ("does not exist", "none.pt"),
    "--model a folder": ("folder", "empty"),
    "--model truncated": ("checkpoint", "truncated.pt"),
    "--model a text file": ("checkpoint", "a_file"),
    "--model a NIfTI image": ("not a file PyTorch saved", "t1"),
    "--model with an altered weight": ("digest", "altered.pt"),
    "--model holding code": ("safely", "pickled.pt"),
    "--model a bundled file away from its SHA256SUMS": ("cannot be checked", "bundled_copy.pt"),
}


def refused_in_one_line(argv: list[str], capsys, named: str, words: str, status: int = 2) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == status, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("entrust")]
    assert lines, err
    assert named in err and words in err, err
    return err


def no_output_left(out: Path) -> None:
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.*")), "a hidden partial folder was left"


@pytest.mark.parametrize("name", sorted(PREDICT_CORPUS))
def test_predict_refuses_bad_input_in_one_line_and_writes_nothing(world, name, tmp_path, capsys):
    words, named = PREDICT_CORPUS[name]
    out = tmp_path / "out"
    refused_in_one_line(["predict", *case_args(world, name), "--out", str(out)], capsys, named, words)
    no_output_left(out)


@pytest.mark.parametrize(
    ("name", "args", "words"),
    [
        ("seed beyond 2^32", ["--seed", str(2**64)], "must be <"),
        ("negative seed", ["--seed", "-1"], "must be >= 0"),
        ("no hypotheses", ["--samples", "0"], "must be >= 1"),
        ("probe strength ≥ 1", ["--probe-strength", "1.5"], "must be in [0, 1)"),
    ],
)
def test_predict_refuses_out_of_range_options_before_any_work(world, name, args, words, tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        main(["predict", str(world["case"]), "--out", str(out), *args])
    assert exc.value.code == 2 and words in capsys.readouterr().err
    no_output_left(out)


@pytest.mark.parametrize(
    ("name", "out", "words"),
    [
        ("--out is a file", "a_file", "is a file"),
        ("--out is the case folder", "case", "input folder"),
        ("--out holds someone's files", "taken", "not empty"),
        ("--out inside a file", "a_file/out", "is a file"),
    ],
)
def test_predict_checks_the_output_folder_before_any_work(world, name, out, words, capsys):
    target = world["root"] / out
    before = sorted(p.name for p in target.parent.iterdir()) if target.parent.is_dir() else None
    refused_in_one_line(
        ["predict", str(world["case"]), "--model", str(world["model"]), "--out", str(target)], capsys, "", words
    )
    if before is not None:
        assert sorted(p.name for p in target.parent.iterdir()) == before  # nothing added, nothing removed


def test_overwrite_never_loses_files_it_did_not_write(world, capsys):
    target = world["root"] / "taken"
    argv = ["predict", str(world["case"]), "--model", str(world["model"]), "--out", str(target), "--overwrite"]
    refused_in_one_line(argv, capsys, "notes.txt", "did not write")
    assert (target / "notes.txt").read_text() == "mine"


def test_overwrite_replaces_a_finished_prediction_only_when_the_new_one_is_complete(world, tmp_path, capsys):
    out = tmp_path / "pred"
    base = ["predict", str(world["case"]), "--model", str(world["model"]), "--out", str(out), "-k", "2", "-s", "2"]
    assert main(base) == 0
    first = sorted(p.name for p in out.iterdir())
    refused_in_one_line(base, capsys, str(out), "not empty")  # no --overwrite: refused, untouched
    assert sorted(p.name for p in out.iterdir()) == first
    assert main([*base, "--overwrite", "--seed", "3"]) == 0
    assert sorted(p.name for p in out.iterdir()) == first
    assert not list(tmp_path.glob(".pred.*"))


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["train", "--out", "{root}/m.pt", "--config", "encoder_channels=-3", "--phantoms", "1"], "cannot build"),
        (["train", "--out", "{root}/m.pt", "--config", "encoder_channels=abc", "--phantoms", "1"], "expects a value"),
        (["train", "--out", "{root}/m.pt", "--config", "colour=blue", "--phantoms", "1"], "KEY=VALUE"),
        (["sample", "{root}/taken"], "not empty"),
        (["train", "--out", "{root}/empty", "--phantoms", "1"], "is a folder"),
        (["evaluate", "{root}/nowhere", "{root}/case"], "nowhere"),
    ],
)
def test_other_commands_refuse_bad_options_in_one_line(world, argv, words, capsys):
    argv = [a.format(root=world["root"]) for a in argv]
    refused_in_one_line(argv, capsys, "", words)
    assert not (world["root"] / "m.pt").exists()


def test_an_unexpected_error_is_one_line_with_its_traceback_in_a_log(world, tmp_path, capsys, monkeypatch):
    """Anything the checks did not foresee: one line naming the stage, the traceback in a log file."""
    monkeypatch.setenv("ENTRUST_LOG_DIR", str(tmp_path / "logs"))

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("napari_entrust.inference.engine.assemble", broken)
    out = tmp_path / "out"
    err = refused_in_one_line(
        ["predict", str(world["case"]), "--model", str(world["model"]), "--out", str(out)], capsys, "", "a bug"
    )
    assert "assembling outputs" in err and "ZeroDivisionError" in err
    logs = list((tmp_path / "logs").glob("*.log"))
    assert len(logs) == 1 and "Traceback" in logs[0].read_text() and str(logs[0]) in err
    no_output_left(out)


INTERRUPT = """
import os, signal, sys
# Ctrl+C as in a terminal, even when the test runs in the background (nohup, CI runners), where
# SIGINT is inherited ignored and Python would not turn it into KeyboardInterrupt
signal.signal(signal.SIGINT, signal.default_int_handler)
real, count, nth = os.replace, [0], int(sys.argv[2])
def replace(src, dst, *args, **kwargs):
    if ".partial-" in str(src) + str(dst):  # a file written into the staging folder, or moved out
        count[0] += 1
        if count[0] == nth:
            os.kill(os.getpid(), getattr(signal, sys.argv[1]))
    return real(src, dst, *args, **kwargs)
os.replace = replace
from napari_entrust.cli import main
sys.exit(main(sys.argv[3:]))
"""


def interrupted(sig: str, nth: int, argv: list[str]) -> subprocess.CompletedProcess:
    """Run ``entrust argv`` in a fresh process that sends itself ``sig`` at its ``nth`` rename of an
    output: into the staging folder as each file is written, then out of it into place."""
    return subprocess.run(
        [sys.executable, "-c", INTERRUPT, sig, str(nth), *argv], capture_output=True, text=True, cwd=ROOT
    )


@pytest.fixture(scope="module")
def prediction(world, tmp_path_factory):
    """A finished prediction of the good case, in a folder of predictions, and its ground truth."""
    root = tmp_path_factory.mktemp("evaluated")
    pred = root / "preds" / "case"
    assert main(["predict", str(world["case"]), "--out", str(pred), "--model", str(world["model"]), "-k", "2"]) == 0
    shutil.copytree(world["case"], root / "truth" / "case")
    return root


def command_writing(command: str, world, prediction: Path, out: Path) -> tuple[list[str], int]:
    """argv of ``command`` writing into ``out``, and which of its output files to interrupt at."""
    quick = ["--model", str(world["model"]), "-k", "2", "-s", "2"]
    return {
        "predict": (["predict", str(world["case"]), "--out", str(out), *quick], 4),
        "sample": (["sample", str(out), "--spacing", "4"], 4),
        "explain": (["explain", str(world["case"]), "--out", str(out), *quick], 2),
        "evaluate": (["evaluate", str(prediction / "preds"), str(prediction / "truth"), "--out", str(out)], 2),
    }[command]


@pytest.mark.parametrize(
    ("command", "sig", "status"),
    [
        *[(c, sig, status) for c in ("predict", "sample") for sig, status in (("SIGINT", 130), ("SIGTERM", 143))],
        ("explain", "SIGTERM", 143),
        ("evaluate", "SIGINT", 130),
    ],
)
def test_a_signal_while_writing_leaves_no_partial_folder_and_the_rerun_works(
    world, prediction, tmp_path, command, sig, status
):
    out = tmp_path / "out"
    argv, nth = command_writing(command, world, prediction, out)
    run = interrupted(sig, nth, argv)
    assert run.returncode == status, run.stderr
    assert "Traceback" not in run.stderr
    no_output_left(out)
    assert main(argv) == 0 and len(list(out.iterdir())) > nth


def test_a_signal_while_the_benchmark_table_is_swapped_in_keeps_the_old_table(tmp_path):
    """The results folder is shared with other reports. A signal after the new table's first file
    has replaced the old one leaves the previous report whole (all its files, none of the new),
    the other reports untouched and no hidden leftovers."""
    out, work = tmp_path / "results", tmp_path / "work"
    argv = ["benchmark", "--cases", "1", "--methods", "entrust", "-k", "2", "-s", "2", "--work", str(work)]
    argv += ["--out", str(out), "--overwrite"]
    out.mkdir()
    names = sorted(p.name for p in report_files(out).values())
    for name in [*names, "other_report.md"]:
        (out / name).write_text(f"the previous {name}")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    run = interrupted("SIGTERM", len(names) + 2, argv)  # every file written, the second one moving in
    assert run.returncode == 143, run.stderr
    assert "Traceback" not in run.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not list(tmp_path.glob(".results.*")), "a hidden partial folder was left"


def test_a_full_disk_leaves_no_partial_folder(world, tmp_path):
    import resource

    out = tmp_path / "out"
    argv = ["predict", str(world["case"]), "--model", str(world["model"]), "--out", str(out), "-k", "2", "-s", "2"]

    def small_files():  # every file the process writes is limited to 2 kB: the bigger outputs fail
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))

    run = subprocess.run(
        [sys.executable, "-m", "napari_entrust.cli", *argv],
        capture_output=True,
        text=True,
        cwd=ROOT,
        preexec_fn=small_files,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr and "cannot be written" in run.stderr
    no_output_left(out)


def test_a_stale_partial_folder_of_a_killed_run_is_removed_by_the_next(world, tmp_path):
    out = tmp_path / "out"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".out.partial-{dead.stdout.strip()}-deadbeef"
    stale.mkdir()
    (stale / "mask.nii.gz").write_bytes(b"half")
    argv = ["predict", str(world["case"]), "--model", str(world["model"]), "--out", str(out), "-k", "2", "-s", "2"]
    assert main(argv) == 0
    assert not stale.exists() and (out / "summary.json").exists()


def test_explain_refuses_a_prediction_made_from_other_inputs(world, tmp_path, capsys):
    pred = tmp_path / "pred"
    quick = ["--model", str(world["model"]), "-k", "2", "-s", "2"]
    assert main(["predict", str(world["case"]), "--out", str(pred), *quick]) == 0
    other = tmp_path / "other"
    shutil.copytree(world["case"], other)  # the same grid, other files
    err = refused_in_one_line(
        ["explain", str(other), "--prediction", str(pred), "--out", str(tmp_path / "ex"), *quick],
        capsys,
        "summary.json",
        "was made from",
    )
    assert str(world["case"]) in err
    no_output_left(tmp_path / "ex")


def test_evaluate_warns_when_an_output_it_uses_is_missing(world, tmp_path, capsys):
    pred = tmp_path / "preds" / "case"
    assert main(["predict", str(world["case"]), "--out", str(pred), "--model", str(world["model"]), "-k", "2"]) == 0
    (pred / "prob.nii.gz").unlink()
    truth = tmp_path / "truth"
    shutil.copytree(world["case"], truth / "case")
    assert main(["evaluate", str(tmp_path / "preds"), str(truth)]) == 0
    err = capsys.readouterr().err
    assert "WARNING" in err and "prob.nii.gz is missing" in err and "calibration" in err


def test_info_names_each_problem_once(world, capsys):
    main(["info", "-m", f"t1={world['bad'] / 'text.nii.gz'}", *with_modality(world, "t1", world["paths"]["t1"])[2:]])
    failed = [ln for ln in capsys.readouterr().out.splitlines() if "[FAIL]" in ln]
    assert len(failed) == 1 and "text.nii.gz" in failed[0], failed


def test_a_warning_is_one_line_naming_the_file(world, tmp_path, capsys):
    """A modality on another grid is resampled and said so in one line, not as Python's warning
    with its source file and code line."""
    coarse = tmp_path / "coarse_flair.nii.gz"
    write_nifti(coarse, small_volume((6, 7, 5)), np.diag([2.0, 2.0, 2.0, 1.0]))
    argv = ["predict", *with_modality(world, "flair", coarse), "--model", str(world["model"]), "-k", "2", "-s", "2"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 0
    warned = [ln for ln in capsys.readouterr().err.splitlines() if "resampled" in ln]
    assert len(warned) == 1 and warned[0].startswith("entrust predict: warning: flair: coarse_flair.nii.gz")
    assert ".py:" not in warned[0]
