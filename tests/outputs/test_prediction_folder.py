"""A prediction folder reads back as the prediction that was written."""

from __future__ import annotations

import numpy as np
import pytest

from napari_entrust.errors import InputError
from napari_entrust.inference.engine import predict_case
from napari_entrust.io.loader import load_case
from napari_entrust.model.checkpoint import load_checkpoint
from napari_entrust.model.config import SamplingConfig
from napari_entrust.outputs.prediction_folder import read_prediction, write_prediction


def test_a_saved_prediction_reads_back_for_review(brats_case_dir, tmp_path):
    case = load_case(brats_case_dir)
    pred = predict_case(case, load_checkpoint(), SamplingConfig(samples=2, steps=2, probe_steps=1))
    write_prediction(case, pred, tmp_path / "p")
    back = read_prediction(tmp_path / "p", case)
    assert np.array_equal(back.mask, pred.mask) and np.array_equal(back.samples, pred.samples)
    np.testing.assert_allclose(back.trustmap, pred.trustmap, atol=1e-6)
    # maps stored as integers with a slope: within one step of their range, and exactly 0 where
    # they are 0 (outside the head), so they stay clear there in any viewer
    for written, read, levels in (
        (pred.consensus, back.consensus, 255),
        (pred.conflict, back.conflict, 65535),
        (pred.prob, back.prob, 65535),
        (pred.weights["flair"], back.weights["flair"], 255),
    ):
        np.testing.assert_allclose(read, written, atol=written.max() / levels + 1e-6)
        assert (read[written == 0] == 0).all()
    assert back.summary["case_score"] == pred.summary["case_score"]
    assert back.validity.flagged == pred.validity.flagged
    (tmp_path / "p" / "conflict.nii.gz").unlink()
    with pytest.raises(InputError, match="conflict.nii.gz: is missing"):
        read_prediction(tmp_path / "p", case)
