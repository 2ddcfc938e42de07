"""The benchmark's report: one table of every method, the paper's ratios and whether targets are met."""

from __future__ import annotations

import math
from pathlib import Path

from ..evaluation.plots import plot_files, write_plots
from ..evaluation.tables import METRIC_COLUMNS, format_value, markdown_table
from ..io.files import write_json, write_text
from ..io.output_folder import output_folder, staged, top_names

UNET_BASELINES = ("unet", "unet_mc_dropout", "ensemble", "ensemble_sequential")


def _finite(v) -> bool:
    """A number that is neither NaN nor infinite."""
    return isinstance(v, (int, float)) and math.isfinite(v)


def ratios_and_targets(rows: dict[str, dict]) -> dict:
    """The paper's claims as numbers, and whether this run meets the issue's targets."""
    out: dict = {"ratios": {}, "targets": {}}
    e = rows.get("entrust")
    if e is None:
        return out
    base = {k: rows[k] for k in UNET_BASELINES if k in rows}
    if base:
        best_key = min(base, key=lambda k: base[k].get("ece_roi", math.inf))
        best = base[best_key]
        out["ratios"]["ece_roi / best baseline"] = e["ece_roi"] / best["ece_roi"] if best["ece_roi"] else math.inf
        out["ratios"]["best baseline by ECE ROI"] = best_key
        out["targets"]["ECE ROI <= 0.6 x best baseline"] = out["ratios"]["ece_roi / best baseline"] <= 0.6
        for metric, better in (("conflict_auroc", max), ("ged", min)):
            others = [r[metric] for r in base.values() if _finite(r.get(metric))]
            if others and _finite(e.get(metric)):
                best_other = better(others)
                out["targets"][f"{metric} better than every baseline"] = (
                    e[metric] > best_other if better is max else e[metric] < best_other
                )
    for key, label in (("ensemble", "held at once"), ("ensemble_sequential", "one at a time")):
        if key in rows:
            ens = rows[key]
            if _finite(e.get("tensor_memory_mb")) and _finite(ens.get("tensor_memory_mb")):
                out["ratios"][f"memory / ensemble {label} (tensors)"] = e["tensor_memory_mb"] / ens["tensor_memory_mb"]
            out["ratios"][f"memory / ensemble {label} (working)"] = e["working_memory_mb"] / ens["working_memory_mb"]
            out["ratios"][f"memory / ensemble {label} (peak RSS)"] = e["peak_rss_mb"] / ens["peak_rss_mb"]
            out["ratios"][f"time / ensemble {label}"] = e["mean_seconds"] / ens["mean_seconds"]
    if "ensemble" in rows:
        ens = rows["ensemble"]
        out["targets"]["Dice WT >= ensemble - 0.01"] = e["dice_WT"] >= ens["dice_WT"] - 0.01
        tensors = out["ratios"].get("memory / ensemble held at once (tensors)")
        if tensors is not None:  # the paper's measure; RSS and working memory stay beside it
            out["targets"]["memory <= 0.5 x ensemble held at once (peak live tensors + weights)"] = tensors <= 0.5
        out["targets"]["time <= 1 x ensemble"] = out["ratios"]["time / ensemble held at once"] <= 1.0
    return out


TABLE_COLUMNS = (
    *METRIC_COLUMNS,
    ("mean_seconds", "s / case", ".2f"),
    ("peak_rss_mb", "peak RSS MB", ".0f"),
    ("working_memory_mb", "working MB", ".0f"),
    ("tensor_memory_mb", "tensor MB", ".1f"),
    ("parameters", "params", ","),
)


def markdown_report(results: dict) -> str:
    """The table, the ratios, the targets and the dependence left, as markdown."""
    lines = [
        f"Held-out phantoms {', '.join(results['cases'])} (2 mm); EnTrust K = {results['samples']}, "
        f"S = {results['steps']}; {results['threads']} CPU threads; each method in a fresh process; "
        f"{results['machine']['date']}.",
        "",
        *markdown_table("method", TABLE_COLUMNS, ((row["name"], row) for row in results["methods"].values())),
    ]
    ranked = {
        row["name"]: row.get("case_ranking") for row in results["methods"].values() if _finite(row.get("case_ranking"))
    }
    if ranked:
        lines += [
            "",
            "Case score vs 1 − Dice WT over the cases (Spearman; the worklist's ordering): "
            + ", ".join(f"{name} {format_value(v, '.2f')}" for name, v in ranked.items()),
        ]
    lines += ["", "Ratios (EnTrust over the baseline):", ""]
    for k, v in results["ratios"].items():
        lines.append(f"- {k}: {format_value(v, '.2f') if not isinstance(v, str) else v}")
    lines += ["", "Targets:", ""]
    for k, ok in results["targets"].items():
        lines.append(f"- {k}: {'met' if ok else 'MISSED'}")
    if results["dependence"]:
        keys = list(next(iter(results["dependence"].values())))
        lines += ["", "Dependence left between the decomposed features (mean |corr| of channel pairs, HSIC):", ""]
        lines += markdown_table("model", [(k, k, ".4f") for k in keys], results["dependence"].items())
    return "\n".join(lines) + "\n"


def report_files(out: Path) -> dict[str, Path]:
    """The files :func:`write_report` writes (checked before any work is done)."""
    return {"markdown": out / "benchmark.md", "json": out / "benchmark.json", **plot_files(out)}


def write_report(results: dict, out: Path, *, overwrite: bool = False) -> dict[str, Path]:
    """benchmark.md, benchmark.json and the two plots with every method on them."""
    files = report_files(out)
    with output_folder(out, overwrite=overwrite, ours=top_names(out, files.values()), shared=True) as staging:
        written = staged(files, out, staging)
        write_text(written["markdown"], markdown_report(results))
        write_json(written["json"], results)
        names = {k: r["name"] for k, r in results["methods"].items()}
        write_plots({names[k]: c for k, c in results["curves"].items()}, staging)
    return files
