"""DICOM-SEG out: the mask and the TrustMap of a DICOM study read back voxel for voxel, in world
space, and reference the source series."""

from __future__ import annotations

import warnings

import highdicom as hd
import numpy as np
import pydicom
import pytest

from napari_entrust.errors import InputError
from napari_entrust.io.loader import load_case
from napari_entrust.outputs.dicom_seg import SEGMENTS, write_dicom_segs
from napari_entrust.phantom.dicom_writing import write_dicom_study
from napari_entrust.phantom.phantom import make_phantom
from tests.helpers import seg_on_grid


@pytest.fixture(scope="module")
def study_case(tmp_path_factory):
    folder = tmp_path_factory.mktemp("seg") / "study"
    ph = make_phantom(seed=7, spacing=2)
    write_dicom_study(ph, folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_case(folder), ph


def test_the_corrected_mask_and_the_trustmap_read_back_exactly_and_reference_the_source(study_case, tmp_path):
    case, ph = study_case
    mask = ph.labels.copy()  # every label, as a reviewer's corrected mask would hold them
    trust = np.random.default_rng(0).random(case.shape).astype(np.float32) * (mask > 0)
    files = write_dicom_segs(
        mask,
        case.grid,
        case.dicom_reference,
        tmp_path / "corrected.seg.dcm",
        trustmap=trust,
        trustmap_path=tmp_path / "trustmap.seg.dcm",
        edited=True,
    )
    seg = hd.seg.segread(files["mask"])
    labels = seg_on_grid(seg.get_volume(combine_segments=True), case.affine, case.shape)
    as_brats = np.zeros_like(mask)
    for number, _, _, value in SEGMENTS:
        as_brats[labels == number] = value
    np.testing.assert_array_equal(as_brats, mask)
    assert [s.SegmentLabel for s in seg.SegmentSequence] == [label for _, label, _, _ in SEGMENTS]
    assert [s.SegmentedPropertyTypeCodeSequence[0].CodeMeaning for s in seg.SegmentSequence] == [
        "Necrosis",
        "Edema",
        "Neoplasm",
    ]
    assert {s.SegmentAlgorithmType for s in seg.SegmentSequence} == {"SEMIAUTOMATIC"}
    sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in case.dicom_reference]
    assert seg.StudyInstanceUID == sources[0].StudyInstanceUID
    assert seg.FrameOfReferenceUID == sources[0].FrameOfReferenceUID
    (series,) = seg.ReferencedSeriesSequence
    assert series.SeriesInstanceUID == sources[0].SeriesInstanceUID
    assert {r.ReferencedSOPInstanceUID for r in series.ReferencedInstanceSequence} == {
        s.SOPInstanceUID for s in sources
    }
    trust_seg = hd.seg.segread(files["trustmap"])
    assert trust_seg.SegmentationType == "FRACTIONAL" and trust_seg.SegmentationFractionalType == "PROBABILITY"
    back = seg_on_grid(trust_seg.get_volume(), case.affine, case.shape)
    np.testing.assert_allclose(back, trust, atol=0.5 / 255 + 1e-6)


def test_a_case_not_read_from_dicom_gets_no_dicom_seg(phantom2, tmp_path):
    from napari_entrust.outputs.prediction_folder import write_prediction

    class Pred:  # write_prediction refuses before it looks at the prediction
        summary: dict = {}

    with pytest.raises(InputError, match="needs a case read from a DICOM study"):
        write_prediction(phantom2.to_case(), Pred(), tmp_path / "out", dicom_seg=True)
    assert not (tmp_path / "out").exists()
