"""Input-validity warnings: unlike-training inputs are flagged with reasons; unseen phantoms are not."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_entrust.inference.engine import predict_case
from napari_entrust.inference.slices import case_volume
from napari_entrust.inference.validity import describe, geometry_checks, histogram, noise_checks, total_variation
from napari_entrust.io.case import Case
from napari_entrust.io.modalities import MODALITIES
from napari_entrust.model.checkpoint import load_checkpoint
from napari_entrust.model.config import SamplingConfig
from napari_entrust.phantom.phantom import make_phantom
from tests.helpers import ROOT, write_nifti

QUICK = SamplingConfig(samples=2, steps=2, probe_steps=1)


@pytest.fixture(scope="module")
def bundle():
    return load_checkpoint()


@pytest.fixture(scope="module")
def unseen():
    return make_phantom(seed=9003, spacing=2)  # a benchmark seed: never in training or calibration


def _validity(case, bundle):
    return predict_case(case, bundle, QUICK).validity


def test_the_bundled_model_carries_its_training_statistics(bundle):
    v = bundle.validity
    fitted = v["fit_cases"]["train"] + v["fit_cases"]["reference"]
    card = (ROOT / "resources" / "MODEL_CARD.md").read_text()
    assert f"the largest over the {fitted} training and calibration phantoms" in card  # says what it ships
    assert set(v["histogram_limit"]) == {"t1", "t1ce", "t2", "flair"} and v["feature_limit"] > 0
    n = len(v["feature_mean"])
    assert np.asarray(v["feature_precision"]).shape == (n, n)


@pytest.mark.parametrize("seed", [9003, 9007])
def test_unseen_phantoms_pass(bundle, seed):
    report = _validity(make_phantom(seed=seed, spacing=2).to_case(), bundle)
    assert not report.flagged and report.reasons == [] and report.score > 0.5


def test_swapped_modalities_are_flagged(bundle, unseen):
    im = unseen.to_case().images
    swapped = Case.from_arrays({**im, "t2": im["flair"], "flair": im["t2"]}, unseen.affine, name="swapped")
    report = _validity(swapped, bundle)
    assert report.flagged and report.score < 0.5
    # the T2 histogram names it, or, where a model's limits are wide, the features far from training
    named = ("T2 intensities unlike", "FLAIR intensities unlike", "the model's features")
    assert any(r.startswith(named) for r in report.reasons)


def test_missing_contrast_is_flagged_in_plain_language(bundle, unseen):
    im = unseen.to_case().images
    report = _validity(Case.from_arrays({**im, "t1ce": im["t1"].copy()}, unseen.affine, name="no-gd"), bundle)
    assert report.flagged and any(r.startswith("T1ce looks like T1: contrast missing?") for r in report.reasons)


def test_a_flipped_modality_is_named_first_not_blamed_on_the_others(bundle, unseen):
    im = unseen.to_case().images
    flipped = Case.from_arrays({**im, "flair": im["flair"][::-1].copy()}, unseen.affine, name="flipped")
    report = _validity(flipped, bundle)
    assert report.flagged and report.reasons[0].startswith("FLAIR's head outline matches the other modalities'")
    assert not any("head outline" in r for r in report.reasons[1:])
    assert report.checks["outline_flair"]["excess"] > 0.25
    assert all(report.checks[f"outline_{m}"]["excess"] == 0 for m in ("t1", "t1ce", "t2"))


def test_registered_modalities_of_another_generator_share_their_outline():
    from napari_entrust.heldout.case import make_heldout_case
    from napari_entrust.inference.validity import outline_check

    case = make_heldout_case(4)  # 1 mm, LPS, other anatomy: the least tidy outlines of seeds 1-4
    checks, reasons = outline_check(case.images, (1.0, 1.0, 1.0))
    assert reasons == [] and all(c["excess"] == 0 for c in checks.values())
    flipped = {**case.images, "t1ce": case.images["t1ce"][::-1]}
    checks, reasons = outline_check(flipped, (1.0, 1.0, 1.0))
    assert len(reasons) == 1 and reasons[0].startswith("T1ce's head outline")


def test_a_heavily_corrupted_case_is_flagged(bundle, unseen):
    rng = np.random.default_rng(0)
    noisy = {
        m: a + (rng.normal(0, 0.6 * a[a > 0].mean(), a.shape) * (a > 0)).astype(np.float32)
        for m, a in unseen.to_case().images.items()
    }
    report = _validity(Case.from_arrays(noisy, unseen.affine, name="noisy"), bundle)
    assert report.flagged and report.score < 0.5
    assert sum(" is very noisy (" in r for r in report.reasons) == 4  # the one check no model's fit can widen


def test_a_non_brain_volume_is_flagged(bundle, tmp_path, capsys):
    from napari_entrust.cli import main

    rng = np.random.default_rng(1)
    x = np.linspace(-1, 1, 120)
    body = np.exp(
        -2 * ((x[:, None, None] / 0.6) ** 2 + (x[None, :, None] / 0.4) ** 2 + (x[None, None, :60] / 0.5) ** 2)
    )
    affine = np.diag([4.0, 4.0, 5.0, 1.0])  # 480 × 480 × 300 mm: a trunk, not a head
    folder = tmp_path / "abdomen"
    folder.mkdir()
    for i, m in enumerate(("t1", "t1ce", "t2", "flair")):
        write_nifti(
            folder / f"abdomen_{m}.nii.gz",
            (1000 * body * (1 + 0.2 * i) + rng.normal(0, 20, body.shape)).clip(0).astype(np.float32),
            affine,
        )
    out = tmp_path / "pred"
    assert main(["predict", str(folder), "--out", str(out), "--samples", "2", "--steps", "2"]) == 0
    summary = json.loads((out / "summary.json").read_text())["validity"]
    assert summary["flagged"] and summary["score"] < 0.1
    assert summary["checks"]["field_of_view"]["value"] == 480.0
    assert any("field of view" in r for r in summary["reasons"])
    assert "WARNING: input unlike the training data" in capsys.readouterr().err  # printed, never silent


def test_geometry_and_histogram_helpers():
    checks, reasons = geometry_checks((240, 240, 155), (1.0, 1.0, 1.0))  # BraTS
    assert reasons == [] and checks["field_of_view"]["value"] == 240.0
    checks, reasons = geometry_checks((64, 64, 3), (0.1, 0.1, 12.0))  # a microscope stack, thick slices
    assert checks["voxel_size"]["excess"] > 1 and any("voxel size" in r for r in reasons)
    a = histogram(np.array([0.1, 0.1, 0.9, 0.9]))
    b = histogram(np.array([0.1, 0.1, 0.1, 0.9]))
    assert total_variation(a, a) == 0 and total_variation(a, b) == pytest.approx(0.25)
    assert describe({"flagged": False, "score": 0.93, "reasons": []}) == "input check passed (validity 0.93)"


def _noise_reasons(case) -> tuple[dict, list[str]]:
    volume, _ = case_volume(case, MODALITIES, 2.0)
    return noise_checks(volume.numpy(), MODALITIES)


@pytest.mark.parametrize("domain", ["standard", "randomised"])
def test_training_like_noise_passes_the_noise_check(domain):
    for seed in (9003, 9004, 9005):
        checks, reasons = _noise_reasons(make_phantom(seed=seed, spacing=2, domain=domain).to_case())
        assert reasons == [] and set(checks) == {f"noise_{m}" for m in MODALITIES}


def test_one_very_noisy_series_is_named_whatever_the_model(unseen):
    """The fitted limits of a model trained on varied scans can let a corrupted series through; the
    noise check does not depend on them."""
    im = unseen.to_case().images
    t2 = im["t2"]
    noisy = t2 + (np.random.default_rng(1).normal(0, 0.6 * t2[t2 > 0].mean(), t2.shape) * (t2 > 0))
    checks, reasons = _noise_reasons(Case.from_arrays({**im, "t2": noisy.astype(np.float32)}, unseen.affine))
    assert len(reasons) == 1 and reasons[0].startswith("T2 is very noisy")
    assert checks["noise_t2"]["excess"] > 0.25 and all(checks[f"noise_{m}"]["excess"] == 0 for m in ("t1", "flair"))
