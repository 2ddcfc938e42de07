"""Evaluation plots (matplotlib, no display needed): reliability diagram, uncertainty vs error.

Both take ``{label: bins}`` so one figure can compare methods; the bins come from
:func:`.metrics.reliability_bins` and :func:`.metrics.uncertainty_error_bins`
summed over cases. Figures are written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.files import atomic_write


def _figure():
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, safe inside napari's Qt loop

    fig = Figure(figsize=(5.0, 4.2), dpi=120, layout="constrained")
    return fig, fig.add_subplot()


def _finish(fig, ax, path: Path, overwrite: bool, **labels) -> Path:
    """Unit axes, the labels and a legend; then the figure written atomically."""
    ax.set(xlim=(0, 1), ylim=(0, 1), **labels)
    ax.legend(fontsize=7)
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"), overwrite=overwrite)


def plot_files(out_dir: Path) -> dict[str, Path]:
    """The two plots :func:`write_plots` writes into ``out_dir``."""
    return {"reliability": out_dir / "reliability.png", "uncertainty_error": out_dir / "uncertainty_error.png"}


def write_plots(curves: dict[str, dict], out_dir: Path, *, overwrite: bool = False) -> dict[str, Path]:
    """Both plots, one line per label: ``curves`` maps a label to its summed bins (``reliability_roi``,
    ``uncertainty_error_roi``)."""
    files = plot_files(out_dir)
    reliability_diagram(
        {k: c.get("reliability_roi") for k, c in curves.items()}, files["reliability"], overwrite=overwrite
    )
    uncertainty_error_plot(
        {k: c.get("uncertainty_error_roi") for k, c in curves.items()}, files["uncertainty_error"], overwrite=overwrite
    )
    return files


def reliability_diagram(series: dict[str, dict | None], path: str | Path, *, overwrite: bool = False) -> Path:
    """Observed frequency against mean predicted probability per bin (the diagonal is perfect)."""
    fig, ax = _figure()
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="perfect calibration")
    for label, bins in series.items():
        if not bins:
            continue
        count = np.asarray(bins["count"])
        used = count > 0
        ax.plot(
            np.asarray(bins["sum_p"])[used] / count[used],
            np.asarray(bins["sum_y"])[used] / count[used],
            marker="o",
            markersize=3,
            label=label,
        )
    return _finish(
        fig,
        ax,
        Path(path),
        overwrite,
        xlabel="predicted probability (WT, TC, ET)",
        ylabel="observed frequency",
        title="Reliability in the lesion ROI",
    )


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
    return _finish(
        fig,
        ax,
        Path(path),
        overwrite,
        xlabel="uncertainty (TrustMap)",
        ylabel="voxel error rate",
        title="Uncertainty vs error in the lesion ROI",
    )
