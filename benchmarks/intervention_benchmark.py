"""Interventions on the input: does the uncertainty follow the modalities' disagreement? (issue 16)

    python benchmarks/intervention_benchmark.py [--cases 6] [--model CKPT] [--sizes 3 4 5 6 8]

On cases of the independent generator (``napari_entrust.heldout``: 1 mm, LPS, never trained on),
each case is predicted as it is and again after one change to one modality's image:

- **erase** each FLAIR-only hyperintensity: its voxels (and a 1 mm rim) set to the median FLAIR of
  the tissue 2–4 mm around it. The TrustMap there should fall to the level of healthy tissue
  (the brain more than 15 mm from the lesion);
- **insert** a T1ce-only focus D mm across (``--sizes``) in white matter 2–6 mm from the lesion,
  raised on T1ce by this case's own enhancement (median T1ce of ET over median T1ce of white
  matter), with a partial-volume edge. The TrustMap there should rise and the hypotheses diverge.
  Small sizes also answer "can the 2 mm model grid see a 3–5 mm focus?".

Per row: the TrustMap in the region before and after (and healthy tissue's level), the AUROC of the
TrustMap for the region against the rest of the lesion's 5 mm neighbourhood, and how much more the
K hypotheses disagree there than in that neighbourhood. Prints the table, writes
``benchmarks/results/interventions.{json,md}``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from generalisation_benchmark import run_header  # a sibling script: its folder is on sys.path
from scipy import ndimage

from napari_entrust.evaluation import metrics
from napari_entrust.heldout.case import TISSUE_CLASSES, make_heldout_case, save_heldout_case
from napari_entrust.inference.engine import predict_case
from napari_entrust.io.files import write_json, write_text
from napari_entrust.io.labels import ET
from napari_entrust.io.loader import load_case
from napari_entrust.model.checkpoint import load_checkpoint
from napari_entrust.model.config import SamplingConfig

RESULTS = Path(__file__).resolve().parent / "results"
WM = TISSUE_CLASSES.index("wm")


def shell(mask: np.ndarray, inner: int, outer: int) -> np.ndarray:
    """Voxels between ``inner`` and ``outer`` voxels (1 mm) outside ``mask``."""
    d = ndimage.distance_transform_edt(~mask)
    return (d > inner) & (d <= outer)


def erased_flair(image: np.ndarray, event: np.ndarray, keep_out: np.ndarray) -> np.ndarray:
    """FLAIR with the event replaced by the surrounding tissue's median (a 1 mm rim included)."""
    around = shell(event, 2, 4) & ~keep_out
    out = image.copy()
    out[ndimage.binary_dilation(event, iterations=1)] = np.median(image[around])
    return out


def focus_site(rng: np.random.Generator, tissue: np.ndarray, lesion: np.ndarray, taken: np.ndarray, d: float):
    """A ball of ``d`` mm in white matter 2–6 mm from the lesion, clear of the events."""
    dist = ndimage.distance_transform_edt(~lesion)
    clear = ndimage.distance_transform_edt(~taken) > d
    candidates = np.argwhere((tissue == WM) & (dist >= 2 + d / 2) & (dist <= 6 + d / 2) & clear)
    if len(candidates) == 0:
        return None
    centre = candidates[int(rng.integers(len(candidates)))]
    grid = np.indices(tissue.shape, sparse=True)
    r2 = sum((g - c) ** 2 for g, c in zip(grid, centre))
    ball = r2 <= (d / 2) ** 2
    soft = np.clip((d / 2 + 0.5 - np.sqrt(r2)) / 1.0, 0, 1)  # a 1 mm partial-volume edge
    return ball, soft


def region_scores(pred, region: np.ndarray, lesion: np.ndarray, spacing, healthy: np.ndarray) -> dict:
    loc = metrics.conflict_localisation(pred.trustmap, region, lesion, spacing, pred.samples > 0)
    return {
        "trustmap": float(pred.trustmap[region].mean()),
        "healthy": float(pred.trustmap[healthy].mean()),
        "auroc": loc["conflict_auroc"],
        "divergence": loc.get("disagreement_ratio", float("nan")),
    }


def run_case(seed: int, bundle, sampling: SamplingConfig, sizes, work: Path) -> list[dict]:
    truth = make_heldout_case(seed=seed)
    folder = work / truth.name
    save_heldout_case(truth, folder, overwrite=True)
    case = load_case(folder)
    lesion = truth.labels > 0
    healthy = (truth.tissue > 0) & (ndimage.distance_transform_edt(~lesion) > 15)
    events = truth.event_masks
    taken = lesion | np.logical_or.reduce(list(events.values()))
    base = predict_case(case, bundle, sampling)
    rows = []
    if "flair_only" in events and events["flair_only"].any():
        event = events["flair_only"]
        before = region_scores(base, event, lesion, case.spacing, healthy)
        flair = case.images["flair"]
        case.images["flair"] = erased_flair(flair, event, lesion | events.get("misregistration", False))
        after = region_scores(predict_case(case, bundle, sampling), event, lesion, case.spacing, healthy)
        case.images["flair"] = flair
        rows.append(
            {"case": truth.name, "change": "erase FLAIR-only", "size_mm": None, "before": before, "after": after}
        )
    ratio = np.median(case.images["t1ce"][truth.labels == ET]) / np.median(case.images["t1ce"][truth.tissue == WM])
    rng = np.random.default_rng(seed)
    t1ce = case.images["t1ce"]
    for d in sizes:
        site = focus_site(rng, truth.tissue, lesion, taken, d)
        if site is None:
            continue
        ball, soft = site
        before = region_scores(base, ball, lesion, case.spacing, healthy)
        case.images["t1ce"] = (t1ce * (1 + (ratio - 1) * soft)).astype(np.float32)
        after = region_scores(predict_case(case, bundle, sampling), ball, lesion, case.spacing, healthy)
        case.images["t1ce"] = t1ce
        rows.append({"case": truth.name, "change": "insert T1ce focus", "size_mm": d, "before": before, "after": after})
    for row in rows:
        b, a = row["before"], row["after"]
        print(
            f"  {row['case']} {row['change']} {row['size_mm'] or '':>3}: TrustMap {b['trustmap']:.3f} -> "
            f"{a['trustmap']:.3f} (healthy {a['healthy']:.3f}), AUROC {b['auroc']:.3f} -> {a['auroc']:.3f}, "
            f"diverge {b['divergence']:.2f} -> {a['divergence']:.2f}x",
            flush=True,
        )
    return rows


def markdown(results: dict) -> str:
    rows = results["rows"]
    lines = [
        f"{results['cases']} cases of the independent generator; K = {results['samples']}, S = {results['steps']}; "
        f"model {results['model']}; {results['date']}. Mean over cases (min–max).",
        "",
        "| change | cases | TrustMap there, before → after | healthy tissue | AUROC before → after "
        "| hypotheses diverge ×, before → after |",
        "|---|---|---|---|---|---|",
    ]
    kinds = sorted({(r["change"], r["size_mm"] or 0) for r in rows})
    for change, size in kinds:
        sel = [r for r in rows if r["change"] == change and (r["size_mm"] or 0) == size]

        def cell(key: str, sel=sel) -> str:
            b = np.array([r["before"][key] for r in sel], float)
            a = np.array([r["after"][key] for r in sel], float)
            return f"{np.nanmean(b):.3f} → {np.nanmean(a):.3f} ({np.nanmin(a):.3f}–{np.nanmax(a):.3f})"

        healthy = np.mean([r["after"]["healthy"] for r in sel])
        name = f"{change} {size:g} mm" if size else change
        lines.append(
            f"| {name} | {len(sel)} | {cell('trustmap')} | {healthy:.3f} | {cell('auroc')} | {cell('divergence')} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=6)
    parser.add_argument("--model", type=Path, help="checkpoint (default: the bundled model)")
    parser.add_argument("--sizes", type=float, nargs="+", default=[3, 4, 5, 6, 8], help="focus diameters, mm")
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    bundle = load_checkpoint(args.model)
    sampling = SamplingConfig(samples=args.samples, steps=args.steps)
    t = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for seed in range(args.cases):
            rows += run_case(seed, bundle, sampling, args.sizes, Path(work))
    results = {**run_header(args, bundle), "seconds": time.perf_counter() - t, "rows": rows}
    table = markdown(results)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "interventions.json", results, overwrite=True)
    write_text(args.out / "interventions.md", table, overwrite=True)


if __name__ == "__main__":
    main()
