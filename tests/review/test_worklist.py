"""A folder of cases predicted into a worklist, riskiest first; under torchrun too."""

from __future__ import annotations

import csv
import os
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_entrust.cli import main
from napari_entrust.errors import InputError
from napari_entrust.phantom.writing import save_phantom
from napari_entrust.review import worklist
from tests.helpers import torchrun

QUICK = ["--samples", "2", "--steps", "2"]


@pytest.fixture(scope="module")
def cases(tmp_path_factory, phantom2) -> Path:
    """Three readable cases (one without contrast: flagged), one corrupt case, and clutter that is no case."""
    folder = tmp_path_factory.mktemp("cases")
    save_phantom(phantom2, folder / "alpha")
    save_phantom(phantom2, folder / "beta")
    files = save_phantom(phantom2, folder / "no_contrast")
    t1 = nib.load(str(files["t1"]))
    nib.save(nib.Nifti1Image(np.asarray(t1.dataobj), t1.affine, t1.header), str(files["t1ce"]))
    broken = save_phantom(phantom2, folder / "broken")
    broken["flair"].write_bytes(b"this is not a NIfTI file")
    (folder / "notes.txt").write_text("not a case")
    (folder / "empty").mkdir()
    return folder


def _read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_find_cases_lists_case_folders_and_refuses_a_single_case(cases):
    assert [p.name for p in worklist.find_cases(cases)] == ["alpha", "beta", "broken", "no_contrast"]
    with pytest.raises(InputError, match="is one case, not a folder of cases"):
        worklist.find_cases(cases / "alpha")
    with pytest.raises(InputError, match="holds no case"):
        worklist.find_cases(cases / "empty")


def test_predict_over_a_folder_writes_every_case_and_a_worklist_riskiest_first(cases, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["predict", str(cases), "--out", str(out), *QUICK])
    assert code == 1  # one case failed: the batch finishes, but says so
    printed = capsys.readouterr().out
    assert "3 of 4 cases done" in printed and "broken: FAILED" in printed
    rows = _read_csv(out / worklist.WORKLIST_FILE)
    assert [r["case"] for r in rows][:2] == ["broken", "no_contrast"]  # failed, then flagged input
    assert rows[0]["status"] == "error" and "flair" in rows[0]["error"]
    assert rows[1]["flagged"] == "True" and "contrast missing" in rows[1]["reasons"]
    assert [r["priority"] for r in rows] == ["1", "2", "3", "4"]
    for row in rows[1:]:
        assert (Path(row["output"]) / "mask.nii.gz").exists() and (Path(row["output"]) / "summary.json").exists()
        assert 0.0 < float(row["dice_WT"]) <= 1.0  # the phantoms carry labels
    ok = [r for r in rows[2:]]
    assert float(ok[0]["case_score"]) >= float(ok[1]["case_score"])
    # a second run refuses before touching anything; the first worklist is kept
    before = (out / worklist.WORKLIST_FILE).read_bytes()
    assert main(["predict", str(cases), "--out", str(out), *QUICK]) == 2
    assert "already exists" in capsys.readouterr().err
    assert (out / worklist.WORKLIST_FILE).read_bytes() == before


def test_sorting_reading_and_next_case(tmp_path):
    def row(name, status="ok", score=0.1, flagged=False, validity=1.0):
        return {
            **{c: "" for c in worklist.COLUMNS},
            "case": name,
            "status": status,
            "case_score": score,
            "flagged": flagged,
            "validity": validity,
            "source": f"/data/{name}",
            "output": f"/out/{name}",
        }

    rows = worklist.sort_rows(
        [
            row("calm", score=0.1),
            row("odd", flagged=True, validity=0.4),
            row("odder", flagged=True, validity=0.1),
            row("unsure", score=0.3),
            row("bad", status="error"),
        ]
    )
    assert [r["case"] for r in rows] == ["bad", "odder", "odd", "unsure", "calm"]
    path = worklist.write_worklist(rows, tmp_path / "w.csv")
    back = worklist.read_worklist(path)
    assert [r["case"] for r in back] == ["bad", "odder", "odd", "unsure", "calm"]
    assert worklist.next_case(back, None)["case"] == "odder"  # failed cases have nothing to open
    assert worklist.next_case(back, "odd")["case"] == "unsure"
    assert worklist.next_case(back, "calm") is None
    (tmp_path / "other.csv").write_text("name,score\na,1\n")
    with pytest.raises(InputError, match="other.csv: is not an EnTrust worklist"):
        worklist.read_worklist(tmp_path / "other.csv")


def test_score_error_correlation_by_hand():
    rows = [
        {"status": "ok", "case_score": s, "dice_WT": d, "dice_TC": d, "dice_ET": d}
        for s, d in ((0.1, 0.95), (0.2, 0.90), (0.3, 0.80), (0.4, 0.85))
    ]
    result = worklist.score_error_correlation(rows)
    assert result["cases"] == 4 and result["spearman_WT"] == pytest.approx(0.8)  # one swapped pair of 4
    assert worklist.score_error_correlation(rows[:2]) is None


def test_torchrun_shards_cases_and_matches_one_process(cases, tmp_path):
    """Two ranks split the cases; the gathered worklist equals a one-process run's (same seeds)."""
    subset = tmp_path / "subset"
    subset.mkdir()
    for name in ("alpha", "no_contrast"):
        os.symlink(cases / name, subset / name)
    cmd = torchrun(
        2, 29533, "-m", "napari_entrust.cli", "predict", str(subset), "--out", str(tmp_path / "ranks"), *QUICK
    )
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert main(["predict", str(subset), "--out", str(tmp_path / "one"), *QUICK]) == 0
    ranks, one = _read_csv(tmp_path / "ranks" / "worklist.csv"), _read_csv(tmp_path / "one" / "worklist.csv")
    assert [r["case"] for r in ranks] == [r["case"] for r in one] == ["no_contrast", "alpha"]
    for a, b in zip(ranks, one):
        assert a["case_score"] == b["case_score"] and a["dice_WT"] == b["dice_WT"]


def test_an_unexpected_failure_in_one_case_does_not_stop_the_folder(cases, tmp_path, capsys, monkeypatch):
    """Issue 18: an error that is no input check (here a library's ValueError) fails that case only."""
    from napari_entrust.inference import engine

    real, real_load, current = engine.draw_hypotheses, worklist.load_case, {"case": ""}

    def fails_on_beta(*args, **kwargs):
        if current["case"] == "beta":
            raise ValueError("Expected more than 1 spatial element")
        return (yield from real(*args, **kwargs))

    def load(source, **kwargs):
        current["case"] = Path(source).name
        return real_load(source, **kwargs)

    monkeypatch.setattr(engine, "draw_hypotheses", fails_on_beta)
    monkeypatch.setattr(worklist, "load_case", load)
    monkeypatch.setenv("ENTRUST_LOG_DIR", str(tmp_path / "logs"))
    out = tmp_path / "out"
    assert main(["predict", str(cases), "--out", str(out), *QUICK]) == 1
    rows = {r["case"]: r for r in _read_csv(out / worklist.WORKLIST_FILE)}
    assert rows["beta"]["status"] == "error" and "ValueError" in rows["beta"]["error"]
    assert "predicting" in rows["beta"]["error"] and str(tmp_path / "logs") in rows["beta"]["error"]
    assert rows["alpha"]["status"] == "ok" and (out / "alpha" / "summary.json").exists()
    assert not (out / "beta").exists() and not list(out.glob(".beta.*"))  # no half-written case folder
    assert "Traceback" not in capsys.readouterr().err
