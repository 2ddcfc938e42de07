"""Evaluation: prediction folders scored against ground truth (``entrust evaluate``).

:mod:`.ground_truth` reads the truth, :mod:`.metrics` holds one function per metric (MONAI,
scikit-learn and SciPy where they exist), :mod:`.evaluate` scores and aggregates cases and
:mod:`.plots` draws the reliability and uncertainty-error plots.
"""
