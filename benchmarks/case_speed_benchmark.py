"""Speed and memory at the user's scale: a 1 mm BraTS-size case end to end, and the command line's start.

    python benchmarks/case_speed_benchmark.py [--case DIR] [--repeats 3] [--samples 8] [--out DIR]

Every number is a ratio against a floor measured in the same run, interleaved with it:

- **end to end**: ``entrust predict CASE`` in a fresh process (process start to every output
  written), against the I/O floor: reading the case's four inputs and writing one float32 volume
  with nibabel (in this process). Peak RSS of the predict process (``wait4``), and the engine's own
  stage timings from ``summary.json``.
- **start-up**: ``entrust --help`` and ``entrust info CASE`` against ``python -c "import numpy"``.

Without ``--case`` a case of the independent held-out generator is made (240 × 240 × 155, 1 mm,
LPS, BraTS 2023 names). Medians of ``--repeats`` interleaved runs, with min–max. Writes
``case_speed.{json,md}`` to ``--out`` (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = {"end_to_end": 10.0, "help": 5.0, "rss_gb": 1.2}


def timed_process(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (GB) of one command in a fresh process; fails loudly if it fails."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) not in (0, 1):  # info exits 1 when a check fails; still timed
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr.read().decode()[-2000:]}")
    proc.stderr.close()
    return seconds, usage.ru_maxrss / 2**20  # ru_maxrss is in KB on Linux


def io_floor(case_dir: Path, work: Path) -> float:
    """Read the four inputs (float32) and write one float32 volume with nibabel: the least any tool does."""
    started = time.perf_counter()
    inputs = sorted(p for p in case_dir.glob("*.nii.gz") if not p.name.endswith("-seg.nii.gz"))[:4]
    volumes = [nib.load(str(p)) for p in inputs]
    data = [v.get_fdata(dtype=np.float32) for v in volumes]
    nib.save(nib.Nifti1Image(data[0], volumes[0].affine), str(work / "floor.nii.gz"))
    return time.perf_counter() - started


def spread(values: list[float]) -> dict:
    """Median, min and max of repeated measurements (and the runs themselves)."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def benchmark_case(case_dir: Path | None, work: Path) -> Path:
    """``case_dir``, or else the 1 mm held-out case every speed script measures (seed 3), made in ``work``."""
    if case_dir is not None:
        return case_dir
    from napari_entrust.heldout.case import make_heldout_case, save_heldout_case

    save_heldout_case(make_heldout_case(seed=3), work / "case")
    return work / "case"


def write_results(out: Path, stem: str, result: dict, lines: list[str]) -> None:
    """Print the table and write ``stem.json`` (every number) and ``stem.md`` (the table) to ``out``."""
    print("\n".join(lines))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(result, indent=2))
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")


def measure(case_dir: Path, work: Path, repeats: int, samples: int) -> dict:
    entrust = [sys.executable, "-m", "napari_entrust.cli"]
    runs: dict[str, list[float]] = {k: [] for k in ("floor", "predict", "rss_gb", "numpy", "help", "info")}
    stages: list[dict] = []
    for i in range(repeats):  # interleaved, so a busy spell of the machine hits every row alike
        runs["floor"].append(io_floor(case_dir, work))
        out = work / f"prediction-{i}"
        seconds, rss = timed_process([*entrust, "predict", str(case_dir), "--out", str(out), "--samples", str(samples)])
        runs["predict"].append(seconds)
        runs["rss_gb"].append(rss)
        stages.append(json.loads((out / "summary.json").read_text())["timings_s"])
        shutil.rmtree(out)
        runs["numpy"].append(timed_process([sys.executable, "-c", "import numpy"])[0])
        runs["help"].append(timed_process([*entrust, "--help"])[0])
        runs["info"].append(timed_process([*entrust, "info", str(case_dir)])[0])
    result = {k: spread(v) for k, v in runs.items()}
    result["stages_s"] = {k: statistics.median(s[k] for s in stages) for k in stages[0]}
    result["samples"] = samples
    return result


def table(r: dict) -> list[str]:
    floor, numpy_ = r["floor"]["median"], r["numpy"]["median"]

    def row(name: str, key: str, base: float, target: float | None) -> str:
        m = r[key]
        ratio = m["median"] / base
        verdict = "" if target is None else ("met" if ratio <= target else "missed")
        shown = f"≤ {target:g}×" if target is not None else ""
        return f"| {name} | {m['median']:.2f} ({m['min']:.2f}–{m['max']:.2f}) | {ratio:.1f}× | {shown} {verdict} |"

    lines = [
        f"| measure (K = {r['samples']}) | seconds, median (min–max) | ratio | target |",
        "|---|---|---|---|",
        f"| I/O floor: read 4 inputs + write 1 float32 volume (nibabel) | {floor:.2f} "
        f"({r['floor']['min']:.2f}–{r['floor']['max']:.2f}) | 1.0× | |",
        row("`entrust predict` end to end, fresh process", "predict", floor, TARGETS["end_to_end"]),
        f'| `python -c "import numpy"` | {numpy_:.2f} | 1.0× | |',
        row("`entrust --help`", "help", numpy_, TARGETS["help"]),
        row("`entrust info CASE`", "info", numpy_, None),
        "",
        f"Peak RSS of `entrust predict`: {r['rss_gb']['median']:.2f} GB "
        f"({r['rss_gb']['min']:.2f}–{r['rss_gb']['max']:.2f}; target ≤ {TARGETS['rss_gb']} GB).",
        "Engine stages (median, s): " + ", ".join(f"{k} {v:.2f}" for k, v in r["stages_s"].items()),
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", type=Path, help="a case folder (default: a 1 mm held-out case made here)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="entrust-speed-") as tmp:
        work = Path(tmp)
        result = measure(benchmark_case(args.case, work), work, args.repeats, args.samples)
    result["threads"] = os.cpu_count()
    write_results(args.out, "case_speed", result, table(result))


if __name__ == "__main__":
    main()
