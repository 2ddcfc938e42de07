"""The MR signal equations give the contrast ratios DESIGN.md expects."""

from __future__ import annotations

import pytest

from napari_entrust.io.modalities import MODALITIES
from napari_entrust.phantom import mri_signal

# DESIGN.md §4 "Expected ratios to WM" (T1w / T1ce / T2 / FLAIR)


# DESIGN.md §4 "Expected ratios to WM" (T1w / T1ce / T2 / FLAIR)
EXPECTED = {
    "oedema": (1.0, 1.04, 3.2, 2.9),
    "enhancing": (0.71, 1.63, 2.0, 1.5),
    "necrosis": (0.41, 0.41, 3.4, 0.72),
}


@pytest.mark.parametrize("tissue", sorted(EXPECTED))
def test_signal_equations_give_the_design_contrast_ratios(tissue):
    table = mri_signal.signal_table()
    for modality, expected in zip(MODALITIES, EXPECTED[tissue]):
        ratio = table[modality][tissue] / table[modality]["wm"]
        assert ratio == pytest.approx(expected, rel=0.06), (tissue, modality)


def test_flair_nulls_csf_and_t2_makes_it_bright():
    table = mri_signal.signal_table()
    assert table["flair"]["csf"] < 0.01 * table["flair"]["wm"]
    assert table["t2"]["csf"] > 3 * table["t2"]["wm"]
    assert table["t1"]["gm"] < table["t1"]["wm"]  # grey matter darker than white matter on T1
