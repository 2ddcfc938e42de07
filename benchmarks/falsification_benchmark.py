"""The falsification test of the central claim, case by case, for one or more model designs.

    python benchmarks/falsification_benchmark.py [--cases 12] [--design NAME MODEL NO_CONFLICT_MODEL ...]

The claim: hypotheses diverge where modalities disagree because the denoiser sees F_cf. So the
model with F_cf zeroed at inference, and the same design trained without the conflict branch,
must both localise conflict clearly worse. For each design, on held-out phantoms (seeds 9000+),
this prints conflict AUROC and the disagreement ratio (as `model_benchmark.py` measures them) of
the three, and for each ablation the mean paired difference, the number of cases where the model
does better and the paired t statistic (|t| > 2.2 is p < 0.05 over 12 cases). Without
``--design`` it tests the bundled model and its bundled no-conflict ablation. Writes
benchmarks/results/falsification.{json,md}.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from model_benchmark import HELD_OUT_SEED0, RESULTS, evaluate

from napari_entrust.model.checkpoint import load_checkpoint
from napari_entrust.model.config import SamplingConfig
from napari_entrust.phantom.phantom import make_phantom

ROOT = Path(__file__).resolve().parents[1]
MEASURES = {"conflict_auroc": "conflict AUROC", "disagreement_ratio": "disagreement ratio"}


def paired(model: list[dict], ablation: list[dict], key: str) -> dict:
    """Model minus ablation per case: mean, cases where the model is better, paired t."""
    diff = np.array([m[key] - a[key] for m, a in zip(model, ablation)])
    sd = diff.std(ddof=1) if len(diff) > 1 else 0.0
    return {
        "mean_difference": float(diff.mean()),
        "model_better": int((diff > 0).sum()),
        "cases": len(diff),
        "paired_t": float(diff.mean() / (sd / np.sqrt(len(diff)))) if sd > 0 else float("nan"),
    }


def test_design(model_path: str | None, no_conflict_path: str, phantoms, sampling: SamplingConfig) -> dict:
    bundle = load_checkpoint(model_path)
    rows = {
        "model": evaluate(bundle, phantoms, sampling),
        "F_cf zeroed at inference": evaluate(
            bundle, phantoms, SamplingConfig(samples=sampling.samples, steps=sampling.steps, conflict_scale=0.0)
        ),
        "trained without conflict branch": evaluate(load_checkpoint(no_conflict_path), phantoms, sampling),
    }
    tests = {
        ablation: {key: paired(rows["model"], rows[ablation], key) for key in MEASURES}
        for ablation in rows
        if ablation != "model"
    }
    return {
        "model": model_path or "bundled",
        "no_conflict_model": no_conflict_path,
        "denoiser_sees_specific": bundle.config.denoiser_sees_specific,
        "rows": rows,
        "tests": tests,
    }


def report(results: dict) -> str:
    lines = [
        f"Held-out phantoms {results['cases']} (2 mm), K = {results['samples']}, S = {results['steps']}",
        "",
        "| design | variant | conflict AUROC | disagreement ratio | Dice WT | Dice TC | Dice ET |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, design in results["designs"].items():
        for variant, rows in design["rows"].items():
            mean = {k: float(np.nanmean([r[k] for r in rows])) for k in (*MEASURES, "dice_WT", "dice_TC", "dice_ET")}
            lines.append(
                f"| {name} | {variant} | {mean['conflict_auroc']:.3f} | {mean['disagreement_ratio']:.2f} | "
                f"{mean['dice_WT']:.3f} | {mean['dice_TC']:.3f} | {mean['dice_ET']:.3f} |"
            )
    lines += [
        "",
        "Model minus ablation, per case:",
        "",
        "| design | ablation | measure | mean difference | model better in | paired t |",
        "|---|---|---|---|---|---|",
    ]
    for name, design in results["designs"].items():
        for ablation, tests in design["tests"].items():
            for key, t in tests.items():
                lines.append(
                    f"| {name} | {ablation} | {MEASURES[key]} | {t['mean_difference']:+.3f} | "
                    f"{t['model_better']} / {t['cases']} | {t['paired_t']:.1f} |"
                )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", type=int, default=12)
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument(
        "--design",
        nargs=3,
        action="append",
        metavar=("NAME", "MODEL", "NO_CONFLICT_MODEL"),
        help="a model and the same design trained with conflict_branch=false; repeatable",
    )
    args = p.parse_args()
    torch.set_num_threads(2)
    designs = args.design or [("bundled", None, str(ROOT / "resources" / "baselines" / "entrust_no_conflict.pt"))]
    phantoms = [make_phantom(seed=HELD_OUT_SEED0 + i, spacing=2) for i in range(args.cases)]
    sampling = SamplingConfig(samples=args.samples, steps=args.steps)
    results = {
        "cases": [ph.name for ph in phantoms],
        "samples": args.samples,
        "steps": args.steps,
        "designs": {name: test_design(model, no_conflict, phantoms, sampling) for name, model, no_conflict in designs},
    }
    text = report(results)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "falsification.json").write_text(json.dumps(results, indent=2))
    (RESULTS / "falsification.md").write_text(text)
    print(f"wrote {RESULTS / 'falsification.md'}, {RESULTS / 'falsification.json'}")


if __name__ == "__main__":
    main()
