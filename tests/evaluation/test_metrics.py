"""Evaluation metrics against values computed by hand."""

import math

import numpy as np
import pytest

from napari_entrust.evaluation import metrics


def _regions(mask: np.ndarray) -> np.ndarray:
    """The same mask in all three region channels: (3, ...)."""
    return np.stack([mask] * 3)


def test_dice_and_hd95_per_region():
    gt = np.zeros((3, 12, 12, 12), bool)
    pred = np.zeros_like(gt)
    gt[0, 2:6, 2:6, 2:6] = True  # WT: 64 voxels
    pred[0, 2:6, 2:6, 3:7] = True  # shifted one voxel along z: overlap 48
    gt[1, 3:5, 3:5, 3:5] = pred[1, 3:5, 3:5, 3:5] = True  # TC identical
    pred[2, 8, 8, 8] = True  # ET: predicted, not true
    out = metrics.dice_hd95(pred, gt, spacing=(1.0, 1.0, 2.0))
    assert out["dice_WT"] == pytest.approx(2 * 48 / 128)
    assert out["hd95_WT"] == pytest.approx(2.0)  # one voxel of 2 mm
    assert out["dice_TC"] == 1.0 and out["hd95_TC"] == 0.0
    assert out["dice_ET"] == 0.0 and math.isnan(out["hd95_ET"])
    empty = metrics.dice_hd95(np.zeros_like(gt), np.zeros_like(gt), (1, 1, 1))
    assert empty["dice_ET"] == 1.0 and empty["hd95_ET"] == 0.0


def test_calibration_error_brier_nll():
    p = np.array([[0.92, 0.92, 0.12, 0.62]])
    y = np.array([[1.0, 0.0, 0.0, 1.0]])
    # bins: 0.12 (acc 0) gap 0.12; 0.62 (acc 1) gap 0.38; 0.92 twice (acc 0.5) gap 0.42 each
    assert metrics.ece(p, y) == pytest.approx((0.12 + 0.38 + 2 * 0.42) / 4, abs=1e-6)
    where = np.array([True, True, False, False])
    assert metrics.ece(p, y, where) == pytest.approx(0.42, abs=1e-6)
    assert metrics.brier(np.array([[0.9, 0.2]]), np.array([[1.0, 0.0]])) == pytest.approx((0.01 + 0.04) / 2)
    assert metrics.nll(np.array([[0.9, 0.2]]), np.array([[1.0, 0.0]])) == pytest.approx(
        -(math.log(0.9) + math.log(0.8)) / 2
    )
    bins = metrics.reliability_bins(p, y, bins=10)
    assert sum(bins["count"]) == 4 and sum(bins["sum_y"]) == pytest.approx(2.0)
    assert sum(bins["sum_p"]) == pytest.approx(p.sum(), abs=1e-6)


def test_error_detection_and_ueo():
    u = np.array([0.1, 0.4, 0.35, 0.8])
    e = np.array([0, 0, 1, 1], bool)
    out = metrics.error_detection(u, e)
    assert out["error_auroc"] == pytest.approx(0.75)  # 3 of 4 (error, correct) pairs ranked right
    assert out["error_auprc"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    assert math.isnan(metrics.error_detection(u, np.zeros(4, bool))["error_auroc"])
    # τ in [0.5, 0.9): Dice 2/3; τ in [0.1, 0.5): flags 3 voxels, 2 errors: Dice 0.8; τ < 0.1: 2/3
    assert metrics.ueo(np.array([0.9, 0.5, 0.5, 0.1]), np.array([1, 1, 0, 0], bool)) == pytest.approx(0.8)


def test_qu_brats_score():
    gt = np.zeros((6, 6, 6), bool)
    gt[1:4, 1:4, 1:4] = True
    brain = np.ones_like(gt)
    certain = metrics.qu_brats(_regions(np.zeros(gt.shape)), _regions(gt), _regions(gt), brain)
    assert certain["qu_brats"] == pytest.approx(1.0)  # right and certain everywhere
    pred = np.zeros_like(gt)
    pred[1:4, 1:4, 1:2] = True  # Dice 2·9 / (9 + 27) = 0.5
    unsure = metrics.qu_brats(_regions(np.ones(gt.shape)), _regions(pred), _regions(gt), brain)
    # every voxel filtered below τ = 1: Dice 1, FTP = FTN = 1 on [0, 0.975]; at τ = 1: 0.5, 0, 0
    auc_dice = 0.975 + 0.025 * (1 + 0.5) / 2
    auc_ftp = 0.975 + 0.025 * 0.5
    assert unsure["qu_dice_auc_WT"] == pytest.approx(auc_dice)
    assert unsure["qu_ftp_auc_WT"] == pytest.approx(auc_ftp)
    assert unsure["qu_brats"] == pytest.approx((auc_dice + 2 * (1 - auc_ftp)) / 3)


def test_ged_and_hungarian_iou():
    a = np.zeros((1, 3, 4, 4, 4), bool)
    b = np.zeros_like(a)
    a[0, :, 0, 0, 0] = True
    b[0, :, 3, 3, 3] = True
    A, B = a[0], b[0]  # noqa: N806 - the two masks are A and B, as in the comments
    assert metrics.ged(np.stack([A]), np.stack([A])) == pytest.approx(0.0)
    # samples {A, B}, raters {A, B}: E d(S,Y) = 1/2 = E d(S,S') = E d(Y,Y') -> 0
    assert metrics.ged(np.stack([A, B]), np.stack([A, B])) == pytest.approx(0.0)
    # samples {A, A}, raters {A, B}: 2·(1/2) − 0 − 1/2
    assert metrics.ged(np.stack([A, A]), np.stack([A, B])) == pytest.approx(0.5)
    assert metrics.hungarian_iou(np.stack([A, A]), np.stack([A, B])) == pytest.approx(0.5)
    assert metrics.hungarian_iou(np.stack([A, B]), np.stack([B, A])) == pytest.approx(1.0)
    assert metrics.hungarian_iou(np.stack([A, A, B, B]), np.stack([A, B])) == pytest.approx(1.0)  # raters repeated
    empty = np.zeros_like(a)
    assert metrics.pairwise_iou(empty, empty)[0, 0] == 1.0


def test_conflict_localisation():
    lesion = np.zeros((20, 3, 3), bool)
    lesion[2:6] = True
    conflict = np.zeros_like(lesion)
    conflict[6:8] = True
    u = np.zeros(lesion.shape)
    u[6:8] = 0.9
    u[2] = 0.5
    samples = np.zeros((4, *lesion.shape), bool)
    samples[:2, 6:8] = True  # half the hypotheses include the conflict region
    out = metrics.conflict_localisation(u, conflict, lesion, (1.0, 1.0, 1.0), samples)
    assert out["conflict_auroc"] == 1.0
    # disagreement: 2·0.5·0.5·4/3 inside conflict, 0 elsewhere
    assert out["disagreement_conflict"] == pytest.approx(2 / 3)
    assert out["disagreement_rest"] == 0.0 and out["disagreement_ratio"] == math.inf
    near = metrics.lesion_neighbourhood(lesion | conflict, (1.0, 1.0, 1.0))
    assert near[12].all() and not near[13].any()  # lesion ends at x = 7: within 5 mm, not beyond
    # one kind scored at a time: the other kind's voxels are neither positives nor negatives
    other = np.zeros_like(lesion)
    other[9:11] = True
    u[9:11] = 0.95  # more uncertain than this kind: as negatives they would pull its AUROC down
    assert metrics.conflict_localisation(u, conflict, lesion, (1.0, 1.0, 1.0))["conflict_auroc"] < 1.0
    assert metrics.conflict_localisation(u, conflict, lesion, (1.0, 1.0, 1.0), exclude=other)["conflict_auroc"] == 1.0


def test_uncertainty_error_bins():
    out = metrics.uncertainty_error_bins(np.array([0.05, 0.15, 0.95, 1.0]), np.array([0, 1, 1, 1], bool), bins=10)
    assert out["count"][0] == 1 and out["count"][1] == 1 and out["count"][9] == 2
    assert out["errors"][0] == 0 and out["errors"][9] == 2


def test_case_ranking_is_spearman_between_score_and_error():
    # errors 0.05, 0.10, 0.20, 0.15: scores in the same order except the last pair -> rho = 0.8
    assert metrics.case_ranking([0.1, 0.2, 0.3, 0.4], [0.95, 0.90, 0.80, 0.85]) == pytest.approx(0.8)
    assert metrics.case_ranking([0.4, 0.3, 0.2, 0.1], [0.95, 0.90, 0.80, 0.85]) == pytest.approx(-0.8)
    assert np.isnan(metrics.case_ranking([0.1, 0.2], [0.9, 0.8]))  # too few cases to rank
