"""Generalisation: the training phantom's cases beside a generator the model never trained on.

    python benchmarks/generalisation_benchmark.py [--cases 6] [--model CKPT] [--samples 8] [--steps 10]

The training generator's held-out phantoms (seeds 9000 and up, 2 mm, as the model trained) and the
independent generator's cases (``napari_entrust.heldout``: fsaverage anatomy, other lesion shapes,
3 T sequences; 240 × 240 × 155, 1 mm, LPS, BraTS 2023 names) are written to disk, loaded as a user's
case would be and predicted. Per kind of disagreement (FLAIR-only, T1ce-only focus,
misregistration), against the other voxels within 5 mm of the lesion (other kinds left out):

- TrustMap AUROC, and the conflict layer's (‖F_cf‖, as napari shows it) AUROC;
- how much more the K hypotheses disagree there than in the rest of that neighbourhood.

Also Dice WT / TC / ET, the input-validity score (and how many cases are flagged), GED against the
raters, ECE in the lesion ROI and seconds per case. Prints the table (mean, and the worst case in
brackets) and writes ``benchmarks/results/generalisation.{json,md}``. The gap between the columns is
what the model has learnt of the phantom rather than of brain-tumour MRI.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_entrust.evaluation import metrics
from napari_entrust.evaluation.evaluate import regions_per_sample
from napari_entrust.heldout.case import make_heldout_case, save_heldout_case
from napari_entrust.heldout.events import KINDS
from napari_entrust.inference.engine import predict_case
from napari_entrust.io.files import write_json, write_text
from napari_entrust.io.labels import to_regions
from napari_entrust.io.loader import load_case
from napari_entrust.model.checkpoint import load_checkpoint
from napari_entrust.model.config import SamplingConfig
from napari_entrust.phantom.phantom import make_phantom
from napari_entrust.phantom.writing import save_phantom
from napari_entrust.training.cases import HELD_OUT_SEED0

RESULTS = Path(__file__).resolve().parent / "results"
GENERATORS = {"training phantom (2 mm)": "phantom", "independent generator (1 mm, LPS)": "heldout"}


def cases(kind: str, n: int, work: Path):
    """(case folder, truth) per case: truth = labels, raters and one mask per kind of event (RAS+)."""
    for i in range(n):
        if kind == "phantom":
            ph = make_phantom(seed=HELD_OUT_SEED0 + i, spacing=2)
            folder = work / ph.name
            save_phantom(ph, folder, overwrite=True)
            yield folder, {"labels": ph.labels, "raters": ph.raters, "events": ph.event_masks}
        else:
            case = make_heldout_case(seed=i)
            folder = work / case.name
            save_heldout_case(case, folder, overwrite=True)
            yield folder, {"labels": case.labels, "raters": case.raters, "events": case.event_masks}


def score(pred, truth: dict, spacing) -> dict:
    """Every number of the table for one case."""
    gt, pr = to_regions(truth["labels"]), to_regions(pred.mask)
    row = {f"dice_{r}": v for r, v in metrics.dice(pr, gt).items()}
    lesion = truth["labels"] > 0
    events = truth["events"]
    everything = np.logical_or.reduce(list(events.values())) if events else np.zeros_like(lesion)
    samples_wt = pred.samples > 0
    for kind in KINDS:
        if kind not in events or not events[kind].any():
            continue
        mask, others = events[kind], everything & ~events[kind]
        trust = metrics.conflict_localisation(pred.trustmap, mask, lesion, spacing, samples_wt, exclude=others)
        layer = metrics.conflict_localisation(pred.conflict, mask, lesion, spacing, exclude=others)
        row[f"trustmap_auroc_{kind}"] = trust["conflict_auroc"]
        row[f"divergence_{kind}"] = trust.get("disagreement_ratio", float("nan"))
        row[f"conflict_layer_auroc_{kind}"] = layer["conflict_auroc"]
    roi = metrics.lesion_neighbourhood(gt[0] | pr[0], spacing)
    row["ece_roi"] = metrics.ece(pred.prob, gt, roi)
    row["ged"] = metrics.ged(regions_per_sample(pred.samples), regions_per_sample(truth["raters"]))
    row["validity"] = pred.validity.score
    row["flagged"] = float(pred.validity.flagged)
    return row


def run(kind: str, n: int, bundle, sampling: SamplingConfig, work: Path) -> list[dict]:
    rows = []
    for folder, truth in cases(kind, n, work):
        case = load_case(folder)
        t = time.perf_counter()
        pred = predict_case(case, bundle, sampling)
        rows.append({"case": case.name, **score(pred, truth, case.spacing), "seconds": time.perf_counter() - t})
        print(
            f"  {case.name}: "
            + ", ".join(
                f"{k} {v:.3f}"
                for k, v in rows[-1].items()
                if isinstance(v, float) and k.startswith(("dice_WT", "trustmap"))
            )
        )
    return rows


ROWS = (
    [("dice_WT", "Dice WT"), ("dice_TC", "Dice TC"), ("dice_ET", "Dice ET")]
    + [(f"trustmap_auroc_{k}", f"TrustMap AUROC, {k}") for k in KINDS]
    + [(f"conflict_layer_auroc_{k}", f"conflict layer AUROC, {k}") for k in KINDS]
    + [(f"divergence_{k}", f"hypotheses diverge ×, {k}") for k in KINDS]
    + [
        ("validity", "validity score"),
        ("flagged", "share flagged"),
        ("ged", "GED ↓"),
        ("ece_roi", "ECE ROI ↓"),
        ("seconds", "s / case"),
    ]
)


def summary(rows: list[dict], key: str) -> str:
    values = np.array([r[key] for r in rows if np.isfinite(r.get(key, np.nan))], float)
    if not values.size:
        return "–"
    worst = values.max() if key in ("ged", "ece_roi", "seconds") else values.min()
    return f"{values.mean():.3f} ({worst:.3f}, n={values.size})"


def markdown(results: dict) -> str:
    names = list(results["generators"])
    lines = [
        f"{results['cases']} cases per generator; K = {results['samples']}, S = {results['steps']}; "
        f"model {results['model']}; {results['date']}. Mean (worst case, cases with that event).",
        "",
        "| | " + " | ".join(names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for key, label in ROWS:
        lines.append(f"| {label} | " + " | ".join(summary(results["generators"][g], key) for g in names) + " |")
    return "\n".join(lines) + "\n"


def run_header(args: argparse.Namespace, bundle) -> dict:
    """What a results file says of its run: cases, K, S, the model's sha256 prefix and the date."""
    return {
        "cases": args.cases,
        "samples": args.samples,
        "steps": args.steps,
        "model": bundle.sha256[:12],
        "date": time.strftime("%Y-%m-%d"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=6)
    parser.add_argument("--model", type=Path, help="checkpoint (default: the bundled model)")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--work", type=Path, help="keep the cases here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    bundle = load_checkpoint(args.model)
    sampling = SamplingConfig(samples=args.samples, steps=args.steps)
    results = {**run_header(args, bundle), "generators": {}}
    with tempfile.TemporaryDirectory(prefix="entrust-generalisation-") as tmp:
        work = args.work or Path(tmp)
        for name, kind in GENERATORS.items():
            print(name)
            results["generators"][name] = run(kind, args.cases, bundle, sampling, work / kind)
    text = markdown(results)
    print(text)
    write_text(args.out / "generalisation.md", text, overwrite=True)
    write_json(args.out / "generalisation.json", results, overwrite=True)


if __name__ == "__main__":
    main()
