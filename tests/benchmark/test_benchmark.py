"""`entrust benchmark`, the UNet baselines and how they are trained and loaded."""

import json

import numpy as np
import pytest

from napari_entrust.benchmark.baselines import load_baseline, run_baseline
from napari_entrust.benchmark.method_training import train_models
from napari_entrust.benchmark.methods import TRAINED_MODELS, baselines_dir
from napari_entrust.cli import main
from napari_entrust.errors import EntrustError
from napari_entrust.model.checkpoint_file import recorded_sha256
from napari_entrust.progress import run_to_end


def test_benchmark_runs_each_method_in_its_own_process_and_writes_one_table(tmp_path, capsys):
    work, out = tmp_path / "work", tmp_path / "results"
    assert (
        main(
            [
                "benchmark",
                "--cases",
                "1",
                "--methods",
                "entrust,unet,ensemble_sequential",
                "-k",
                "2",
                "-s",
                "2",
                "--work",
                str(work),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    results = json.loads((out / "benchmark.json").read_text())
    assert list(results["methods"]) == ["entrust", "unet", "ensemble_sequential"]
    pids = {r["pid"] for r in results["runs"].values()}
    assert len(pids) == 3 and __import__("os").getpid() not in pids  # three fresh processes
    for key, row in results["methods"].items():
        assert row["peak_rss_mb"] > 50 and row["mean_seconds"] > 0 and row["parameters"] > 0
        assert 0.0 <= row["dice_WT"] <= 1.0 and row["ece_roi"] is not None
        assert (work / "predictions" / key / "phantom-09000" / "trustmap.nii.gz").exists()
    assert results["methods"]["ensemble_sequential"]["parameters"] == 5 * results["methods"]["unet"]["parameters"]
    assert "time / ensemble one at a time" in results["ratios"]
    assert "entrust" in results["dependence"] and "F_c~F_cf HSIC" in results["dependence"]["entrust"]
    table = (out / "benchmark.md").read_text()
    assert "| EnTrust |" in table and "| UNet (sigmoid confidence) |" in table and table in printed
    assert (out / "reliability.png").stat().st_size > 1000


def test_benchmark_names_missing_baseline_models(tmp_path, capsys):
    empty = tmp_path / "models"
    empty.mkdir()
    assert main(["benchmark", "--methods", "unet", "--models", str(empty), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "unet_seed0.pt" in err and "--train-baselines" in err
    assert main(["benchmark", "--methods", "unet,nonsense", "--out", str(tmp_path / "r")]) == 2
    assert "nonsense" in capsys.readouterr().err


def test_a_trained_baseline_records_its_sha256_and_a_changed_file_is_refused(tmp_path):
    spec = next(t for t in TRAINED_MODELS if t.file == "unet_mcdropout.pt")
    (path,) = run_to_end(train_models([spec], tmp_path, phantoms=1, iterations=3))
    assert recorded_sha256(path.name, tmp_path) is not None
    model = load_baseline(path)
    assert model.config.dropout == spec.dropout and model.training["train_config"]["iterations"] == 3
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(EntrustError, match="sha256"):
        load_baseline(path)


def test_ensemble_one_at_a_time_equals_held_at_once_and_mc_dropout_varies(phantom2):
    case = phantom2.to_case()
    paths = [baselines_dir() / f"unet_seed{i}.pt" for i in range(2)]
    held = [load_baseline(p) for p in paths]
    at_once = run_to_end(run_baseline(case, held))
    one_by_one = run_to_end(run_baseline(case, lambda i: load_baseline(paths[i]), n_members=2))
    np.testing.assert_array_equal(at_once.prob, one_by_one.prob)
    assert at_once.samples.shape[0] == 2 and (at_once.mutual_info >= 0).all()
    single = run_to_end(run_baseline(case, held[:1], passes=3))  # no dropout layers active: passes agree
    assert (single.samples == single.samples[0]).all()
    mc = run_to_end(run_baseline(case, [load_baseline(baselines_dir() / "unet_mcdropout.pt")], passes=3))
    assert (mc.samples != mc.samples[0]).any() and mc.mutual_info.max() > 0
