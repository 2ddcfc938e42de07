"""The case score's scale: placed among the bundled model's held-out phantoms, for that model only."""

from __future__ import annotations

from napari_entrust.evaluation.case_reference import describe_score, load_reference, percentile
from napari_entrust.model.checkpoint import load_checkpoint


def test_the_bundled_model_has_reference_scores_and_a_score_is_placed_among_them():
    reference = load_reference()
    bundle = load_checkpoint()
    assert reference["model_sha256"] == bundle.sha256  # made with the model that ships
    scores = reference["scores"]
    assert len(scores) == len(reference["cases"]) >= 10 and all(0 <= s <= 1 for s in scores)
    low, high = (
        describe_score(min(scores) - 0.01, bundle.sha256, reference),
        describe_score(2.0, bundle.sha256, reference),
    )
    assert "above 0 %" in low[1] and "above 100 %" in high[1] and "0 sure, 1 unsure" in low[0]
    assert len(describe_score(0.2, "another model", reference)) == 1  # no reference for another model


def test_percentile_counts_ties_half():
    assert percentile(0.5, [0.1, 0.5, 0.9, 1.0]) == 37.5
