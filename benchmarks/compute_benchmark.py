"""Compute and memory against the 5× UNet ensemble, as the paper claims them, with repeats.

    python benchmarks/compute_benchmark.py [--cases 3] [--repeats 3] [--samples 8] [--steps 10 5] [--out DIR]

Each method predicts the same held-out phantoms (seeds 9000 and up, 2 mm) in a fresh process
(:mod:`napari_entrust.benchmark.method_process`, as ``entrust benchmark``), in rounds that visit
every method once, so a busy spell of the machine hits every row alike. Per method:

- **time**: mean seconds per case of the prediction alone (loading and writing excluded); median
  over rounds with min–max, and the ratio to the ensemble taken round by round (median, min–max);
- **memory as the paper means it**: peak live torch tensor bytes during one prediction plus the
  weights held (torch profiler, ``profile_memory``; :mod:`napari_entrust.benchmark.tensor_memory`);
- beside it, the process's peak RSS and its working memory (peak RSS less RSS before the models
  were loaded), which on a CPU are mostly torch's and oneDNN's own first-use memory.

EnTrust runs once per ``--steps`` value (fewer DDIM steps is the cheaper setting). Writes
``compute.{json,md}`` to ``--out`` (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from case_speed_benchmark import spread, write_results  # a sibling script: its folder is on sys.path

from napari_entrust.benchmark.method_process import run_in_fresh_process
from napari_entrust.benchmark.methods import METHODS, baselines_dir
from napari_entrust.benchmark.run import make_cases
from napari_entrust.progress import run_to_end

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = {"time": 1.0, "tensor memory": 0.5}
BY_KEY = {m.key: m for m in METHODS}


def rows_to_run(steps: list[int]) -> list[tuple[str, object, int]]:
    """(row name, method, steps): EnTrust at each step count, then the ensemble both ways."""
    entrust = [(f"EnTrust, S = {s}", BY_KEY["entrust"], s) for s in steps]
    return [*entrust, *((BY_KEY[k].name, BY_KEY[k], steps[0]) for k in ("ensemble", "ensemble_sequential"))]


def measure(work: Path, n_cases: int, repeats: int, samples: int, steps: list[int]) -> dict:
    cases = run_to_end(make_cases(work / "cases", n_cases))
    rows = rows_to_run(steps)
    runs: dict[str, list[dict]] = {name: [] for name, _, _ in rows}
    for r in range(repeats):
        for name, method, s in rows:
            out = work / "predictions" / f"{method.key}-s{s}-{r}"
            runs[name].append(run_in_fresh_process(method, cases, out, baselines_dir(), samples, s))
            print(f"round {r + 1}/{repeats}: {name}: {runs[name][-1]['mean_seconds']:.2f} s/case", flush=True)
    ensemble = runs[BY_KEY["ensemble"].name]
    result = {"cases": n_cases, "samples": samples, "repeats": repeats, "rows": {}}
    for name, _, _ in rows:
        seconds = [run["mean_seconds"] for run in runs[name]]
        result["rows"][name] = {
            "seconds": spread(seconds),
            "time_ratio": spread([a / b["mean_seconds"] for a, b in zip(seconds, ensemble)]),
            "tensor_mb": statistics.median(run["tensor_memory_mb"] for run in runs[name]),
            "weights_mb": runs[name][0]["held_weights_mb"],
            "peak_rss_mb": statistics.median(run["peak_rss_mb"] for run in runs[name]),
            "working_mb": statistics.median(run["working_memory_mb"] for run in runs[name]),
            "parameters": runs[name][0]["parameters"],
        }
    return result


def table(result: dict) -> list[str]:
    rows = result["rows"]
    ens = rows[BY_KEY["ensemble"].name]
    lines = [
        f"{result['cases']} held-out phantoms (2 mm), K = {result['samples']}, {result['repeats']} interleaved "
        "rounds, each method in a fresh process. Time: prediction only, median (min–max); ratio to the "
        "ensemble held at once, round by round. Tensor MB: peak live torch tensors during one prediction "
        "+ weights held (torch profiler).",
        "",
        "| method | params | s / case | time / ensemble | tensor MB | tensor / ensemble | peak RSS MB | working MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        s, t = row["seconds"], row["time_ratio"]
        lines.append(
            f"| {name} | {row['parameters']:,} | {s['median']:.2f} ({s['min']:.2f}–{s['max']:.2f}) "
            f"| {t['median']:.2f} ({t['min']:.2f}–{t['max']:.2f}) | {row['tensor_mb']:.1f} "
            f"| {row['tensor_mb'] / ens['tensor_mb']:.2f} | {row['peak_rss_mb']:.0f} | {row['working_mb']:.0f} |"
        )
    lines.append("")
    for name, row in rows.items():
        if name.startswith("EnTrust"):
            time_ok = row["time_ratio"]["median"] <= TARGETS["time"]
            memory_ok = row["tensor_mb"] / ens["tensor_mb"] <= TARGETS["tensor memory"]
            lines.append(
                f"- {name}: time ≤ {TARGETS['time']}× ensemble {'met' if time_ok else 'missed'}; "
                f"tensor memory ≤ {TARGETS['tensor memory']}× ensemble {'met' if memory_ok else 'missed'}"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--steps", type=int, nargs="+", default=[10, 5], help="EnTrust's DDIM steps, one row each")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="entrust-compute-") as tmp:
        result = measure(Path(tmp), args.cases, args.repeats, args.samples, args.steps)
    write_results(args.out, "compute", result, table(result))


if __name__ == "__main__":
    main()
