"""Evaluation plots (matplotlib, no display needed): reliability diagram, uncertainty vs error.

Both take ``{label: bins}`` so one figure can compare methods; the bins come from
:func:`napari_entrust.metrics.reliability_bins` and :func:`~napari_entrust.metrics.uncertainty_error_bins`
summed over cases. Figures are written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .nifti import atomic_write


def _figure():
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, safe inside napari's Qt loop

    fig = Figure(figsize=(5.0, 4.2), dpi=120, layout="constrained")
    return fig, fig.add_subplot()


def _save(fig, path: Path, overwrite: bool) -> Path:
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"), overwrite=overwrite)


def reliability_diagram(series: dict[str, dict | None], path: str | Path, *, overwrite: bool = False) -> Path:
    """Observed frequency against mean predicted probability per bin (the diagonal is perfect)."""
    fig, ax = _figure()
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="perfect calibration")
    for label, bins in series.items():
        if not bins:
            continue
        count = np.asarray(bins["count"])
        used = count > 0
        ax.plot(np.asarray(bins["sum_p"])[used] / count[used], np.asarray(bins["sum_y"])[used] / count[used],
                marker="o", markersize=3, label=label)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted probability (WT, TC, ET)", ylabel="observed frequency",
           title="Reliability in the lesion ROI")
    ax.legend(fontsize=7)
    return _save(fig, Path(path), overwrite)


def uncertainty_error_plot(series: dict[str, dict | None], path: str | Path, *, overwrite: bool = False) -> Path:
    """Voxel error rate per uncertainty bin: a useful uncertainty rises from 0 to high error rates."""
    fig, ax = _figure()
    for label, bins in series.items():
        if not bins:
            continue
        count = np.asarray(bins["count"])
        centres = (np.arange(len(count)) + 0.5) / len(count)
        used = count > 0
        ax.plot(centres[used], np.asarray(bins["errors"])[used] / count[used], marker="o", markersize=3, label=label)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="uncertainty (TrustMap)", ylabel="voxel error rate",
           title="Uncertainty vs error in the lesion ROI")
    ax.legend(fontsize=7)
    return _save(fig, Path(path), overwrite)
