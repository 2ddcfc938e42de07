"""Training data at scale: crops per second and peak memory for 40 and 400 cases, held in memory or
read lazily from the on-disk store (``entrust train --cache``), with and without DataLoader workers.

    python benchmarks/training_data_benchmark.py [--cases 40 400] [--batches 40] [--cache .cache/phantoms]

Each row runs in a fresh process: it opens the randomised phantoms of seeds 1000 and up (generated
into ``--cache`` first when missing: about 2 s per case on this CPU), then draws ``--batches``
batches of 16 crops as training does (2-D crops with context, scanner-style augmentation). Peak RSS
is the high-water mark (``ru_maxrss``) of the process plus that of its largest worker. The ratios are against the
in-memory run on the smallest case count, in the same run of this script: flat memory means the
store's RSS does not grow with the number of cases. Writes ``benchmarks/results/training_data.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
BATCH, CONTEXT, CROP = 16, 2, 64


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + workers) / 1024  # kB on Linux


def measure(mode: str, n_cases: int, workers: int, batches: int, cache: Path) -> dict:
    """One row: open the cases as ``mode`` ('memory' or 'store') and time the crops."""
    import torch

    from napari_entrust.training.cases import TRAIN_SEED0, TrainingCase, phantom_cases
    from napari_entrust.training.crop_loader import CropBatches, crop_batches

    torch.set_num_threads(1)
    t = time.perf_counter()
    cases = phantom_cases(range(TRAIN_SEED0, TRAIN_SEED0 + n_cases), cache_dir=cache, domain="randomised")
    if mode == "memory":  # what training did before the store: every case's arrays held
        cases = [TrainingCase(c.name, np.array(c.images), np.array(c.raters), c.stats) for c in cases]
    open_s = time.perf_counter() - t
    dataset = CropBatches(cases, BATCH, 100, seed=0, context=CONTEXT, crop=CROP, conflict_fraction=0.25)
    it = crop_batches(dataset, workers)
    for _ in range(3):  # warm-up: worker start, first reads
        next(it)
    t = time.perf_counter()
    for _ in range(batches):
        next(it)
    seconds = time.perf_counter() - t
    return {
        "mode": mode,
        "cases": n_cases,
        "workers": workers,
        "open_s": round(open_s, 1),
        "crops_per_s": round(batches * BATCH / seconds, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 0),
    }


def markdown(rows: list[dict]) -> str:
    base = rows[0]
    lines = [
        f"Crops of {CROP} × {CROP} px with ±{CONTEXT} slices of context, batches of {BATCH}; randomised phantoms"
        f" at 2 mm; one thread per process; {time.strftime('%Y-%m-%d')}. Ratios against the first row.",
        "",
        "| cases | held | workers | open s | crops/s | × first | peak RSS MB | × first |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['cases']} | {'in memory' if r['mode'] == 'memory' else 'store (lazy)'} | {r['workers']} "
            f"| {r['open_s']} | {r['crops_per_s']} | {r['crops_per_s'] / base['crops_per_s']:.2f} "
            f"| {r['peak_rss_mb']:.0f} | {r['peak_rss_mb'] / base['peak_rss_mb']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, nargs="+", default=[40, 400])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers for the last row")
    parser.add_argument("--cache", type=Path, default=Path(".cache/phantoms"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--measure", nargs=3, metavar=("MODE", "CASES", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # one row, in this fresh process
        mode, n, workers = args.measure[0], int(args.measure[1]), int(args.measure[2])
        print(json.dumps(measure(mode, n, workers, args.batches, args.cache)))
        return
    small, large = min(args.cases), max(args.cases)
    plan = [("memory", small, 0), ("store", small, 0), ("memory", large, 0), ("store", large, 0)]
    plan.append(("store", large, args.workers))
    rows = []
    for mode, n, workers in plan:
        cmd = [sys.executable, __file__, "--measure", mode, str(n), str(workers)]
        cmd += ["--batches", str(args.batches), "--cache", str(args.cache)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    table = markdown(rows)
    print(table)
    from napari_entrust.io.files import write_json, write_text

    write_json(args.out / "training_data.json", {"rows": rows}, overwrite=True)
    write_text(args.out / "training_data.md", table, overwrite=True)


if __name__ == "__main__":
    main()
