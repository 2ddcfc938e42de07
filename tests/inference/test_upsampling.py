"""The trip back to the case grid computes only where maps can be non-zero, and gives what a full
trilinear interpolation gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from napari_entrust.inference.upsampling import resample_box, resample_nonzero


def full(a: np.ndarray, shape) -> np.ndarray:
    return F.interpolate(torch.from_numpy(a)[None], size=shape, mode="trilinear", align_corners=False)[0].numpy()


@pytest.mark.parametrize(
    "grid, shape",
    [((60, 60, 39), (120, 120, 78)), ((12, 10, 9), (23, 17, 31)), ((30, 28, 26), (20, 25, 31)), ((9, 9, 9), (9, 9, 9))],
)
def test_resampling_a_boxed_map_matches_full_trilinear_interpolation(grid, shape):
    rng = np.random.default_rng(sum(grid))
    a = np.zeros((3, *grid), np.float32)
    a[:, 1 : grid[0] // 2, 0 : grid[1] - 2, 3:] = rng.random((3, grid[0] // 2 - 1, grid[1] - 2, grid[2] - 3))
    a[1, -1, -1, -1] = 1.0  # a voxel in the far corner: the box must reach the volume's edge
    got = resample_nonzero(a, shape)
    np.testing.assert_allclose(got, full(a, shape), atol=1e-5)
    assert np.array_equal(got != 0, full(a, shape) != 0)  # zero exactly where the full interpolation is


def test_several_maps_of_any_type_in_one_pass():
    regions = np.zeros((4, 20, 20, 10), bool)
    regions[:, 5:9, 6:10, 2:5] = True
    prob = np.zeros((2, 20, 20, 10), np.float32)
    prob[:, 4:10, 5:11, 1:6] = 0.7
    values, where = resample_box([prob, regions], (40, 40, 19))
    assert values.shape[0] == 6 and values.dtype == np.float32
    out = np.zeros((6, 40, 40, 19), np.float32)
    out[(slice(None), *where)] = values
    expected = full(np.concatenate([prob, regions.astype(np.float32)]), (40, 40, 19))
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert values[0].size < 0.1 * 40 * 40 * 19  # only the box around the non-zero voxels was computed


def test_all_zero_maps_give_zeros_and_no_box():
    values, where = resample_box([np.zeros((2, 5, 5, 5), np.float32)], (10, 10, 10))
    assert where is None
    assert not resample_nonzero(np.zeros((1, 5, 5, 5), np.float32), (10, 10, 10)).any()
