"""The engine end to end on a tiny model: complete, deterministic, chunking-independent, cancellable."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from napari_entrust.errors import Cancelled, EntrustError
from napari_entrust.inference import engine
from napari_entrust.inference.normalize import head_mask
from napari_entrust.io.labels import REGIONS, from_regions, in_region
from napari_entrust.model.checkpoint import load_checkpoint
from napari_entrust.model.config import SamplingConfig
from napari_entrust.outputs.prediction_folder import write_prediction
from napari_entrust.progress import run_to_end


@pytest.fixture()
def fixed_roi(monkeypatch, phantom2):
    roi = np.zeros(phantom2.labels.shape, bool)
    roi[40:60, 50:70, 40:46] = True
    monkeypatch.setattr(engine, "region_of_interest", lambda fused, head, conflict=None: roi & head)
    return roi


def test_engine_outputs_are_complete_deterministic_and_chunking_independent(tiny, phantom2, fixed_roi, tmp_path):
    case = phantom2.to_case()
    opts = SamplingConfig(samples=3, steps=4, probe_steps=1, seed=5)
    progress = []
    a = run_to_end(engine.run_prediction(case, tiny, opts, memory_mb=4096), lambda f, m: progress.append(f))
    b = engine.predict_case(case, tiny, opts, memory_mb=64)  # many small chunks
    assert progress[0] == 0.0 and progress[-1] == 1.0 and progress == sorted(progress)
    for name in ("mask", "samples"):  # label maps: identical
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in ("prob", "trustmap", "entropy", "mutual_info", "probe", "conflict"):  # floats: batch-size rounding only
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=1e-5, err_msg=name)
    assert a.samples.shape == (3, *case.shape) and a.prob.shape == (3, *case.shape)
    majority = from_regions(np.stack([in_region(a.samples, r).mean(0) > 0.5 for r in REGIONS]))
    np.testing.assert_array_equal(a.mask, majority)  # the mask is the hypotheses' majority vote per region
    assert np.all(a.trustmap[~fixed_roi] == 0) and 0 <= a.trustmap.min() and a.trustmap.max() <= 1
    total, head = sum(a.weights.values()), head_mask(case.images)
    np.testing.assert_allclose(total[head], 1.0, atol=1e-5)  # a distribution over modalities in the head ...
    assert not total[~head].any() and not a.consensus[~head].any()  # ... and no feature maps off it
    files = write_prediction(case, a, tmp_path / "out")
    assert len(files) == 18
    mask = nib.load(files["mask"])
    np.testing.assert_allclose(mask.affine, phantom2.affine)
    assert nib.load(files["samples"]).shape == (*case.shape, 3)
    summary = json.loads(files["summary"].read_text())
    assert summary["parameters"]["samples"] == 3 and summary["model"]["sha256"] == "0" * 64
    assert set(summary["timings_s"]) >= {"encode_s", "sample_s", "total_s"}
    with pytest.raises(EntrustError, match="already exists"):
        write_prediction(case, a, tmp_path / "out")


def test_engine_can_be_cancelled(tiny, phantom2, fixed_roi):
    calls = []
    with pytest.raises(Cancelled):
        engine.predict_case(
            phantom2.to_case(),
            tiny,
            SamplingConfig(samples=2, steps=3),
            should_stop=lambda: calls.append(1) or len(calls) > 3,
        )


def test_a_1mm_volume_is_resampled_to_the_model_grid_and_back_in_chunks(phantom1):
    from napari_entrust.inference.engine import predict_case
    from napari_entrust.model.config import SamplingConfig

    case = phantom1.to_case()
    pred = predict_case(case, load_checkpoint(), SamplingConfig(samples=2, steps=3, probe_steps=1), memory_mb=96)
    assert pred.mask.shape == pred.trustmap.shape == case.shape == (197, 233, 189)
    assert pred.summary["model_grid"]["shape"] == [98, 116, 94]
    wt_true, wt_pred = phantom1.labels > 0, pred.mask > 0
    assert 2 * (wt_true & wt_pred).sum() / (wt_true.sum() + wt_pred.sum()) > 0.75


@pytest.mark.parametrize("stop_at", [2, 5])
def test_cancel_leaves_no_inference_mode_behind(tiny, phantom2, fixed_roi, stop_at):
    """Cancelled while encoding (2) or sampling (5): the thread is back to normal autograd at once, so a
    Grad-CAM explanation later on the same worker thread can still take gradients."""
    calls = []
    with pytest.raises(Cancelled) as stopped:
        run_to_end(
            engine.run_prediction(
                phantom2.to_case(),
                tiny,
                SamplingConfig(samples=2, steps=3),
                should_stop=lambda: calls.append(1) or len(calls) >= stop_at,
            )
        )
    assert stopped.value is not None  # the traceback (and any suspended generator) is still alive here
    assert not torch.is_inference_mode_enabled() and torch.is_grad_enabled()


def test_fixed_voxels_grow_the_region_only_where_they_lie_outside_it():
    from napari_entrust.inference.roi import ROI_MARGIN, with_fixed_voxels

    head = np.ones((30, 30, 30), bool)
    roi = np.zeros_like(head)
    roi[5:15, 5:15, 5:15] = True
    inside = np.zeros_like(head)
    inside[5:8, 5:8, 5:8] = True  # at the region's edge: its margin already holds their neighbourhood
    np.testing.assert_array_equal(with_fixed_voxels(roi, inside, head), roi)
    outside = inside.copy()
    outside[22, 22, 22] = True  # painted in healthy tissue: it and its neighbourhood join the region
    grown = with_fixed_voxels(roi, outside, head)
    assert grown[roi].all() and grown[22, 22, 22] and grown[22, 22, 22 + ROI_MARGIN]
    assert not grown[22, 22, 22 + ROI_MARGIN + 1] and grown.sum() == roi.sum() + int(
        (np.abs(np.indices(head.shape) - 22).sum(0) <= ROI_MARGIN).sum()
    )
    head[22, 22, 24:] = False  # never beyond the head
    assert not with_fixed_voxels(roi, outside, head)[22, 22, 24:].any()
