"""The GPU path: a BraTS-size case end to end on the local accelerator, and whether mixed precision
keeps the outputs within tolerance of fp32 on the CPU.

    python benchmarks/gpu_benchmark.py [--device auto] [--samples 16] [--repeats 3] [--case DIR] [--out DIR]

Prepared to run once, briefly, on a lent GPU machine (see DEVELOPERS.md); it also runs on the CPU.

- **end to end**: ``entrust predict CASE --device DEVICE -k K`` in a fresh process (process start to
  every output written; the first run includes CUDA's start-up), interleaved with the I/O floor
  (``case_speed_benchmark.io_floor``). Target on one H200: < 2 s.
- **precision**: in this process, the case predicted on the CPU at fp32 (the reference), then on
  DEVICE at fp32 and under ``torch.autocast`` with bfloat16 and (CUDA only) float16. Per run: the
  engine's stage timings, mask Dice per region against the reference, share of hypothesis voxels
  that agree, and the largest and mean TrustMap difference. A precision is within tolerance when
  every region's Dice is ≥ 0.99 and the mean TrustMap difference ≤ 0.01 (where the reference
  TrustMap is non-zero).

Without ``--case`` a case of the independent held-out generator is made (240 × 240 × 155, 1 mm,
LPS, BraTS 2023 names). Writes ``gpu.{json,md}`` to ``--out`` (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from case_speed_benchmark import benchmark_case, io_floor, spread, timed_process, write_results  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
TOLERANCE = {"dice": 0.99, "trustmap_mean_abs": 0.01}
TARGET_S = 2.0


def dice(a: np.ndarray, b: np.ndarray) -> float:
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else float(2 * (a & b).sum() / total)


def compare(pred, ref) -> dict:
    """How far a prediction is from the fp32 CPU reference."""
    from napari_entrust.io.labels import to_regions

    regions, ref_regions = to_regions(pred.mask) > 0, to_regions(ref.mask) > 0
    where = ref.trustmap > 0
    diff = np.abs(pred.trustmap - ref.trustmap)
    return {
        **{f"dice_{r}": dice(regions[i], ref_regions[i]) for i, r in enumerate(("WT", "TC", "ET"))},
        "samples_agree": float((pred.samples == ref.samples).mean()),
        "trustmap_max_abs": float(diff.max()),
        "trustmap_mean_abs": float(diff[where].mean()) if where.any() else 0.0,
    }


def precisions(device) -> list[tuple[str, object]]:
    """(name, context) for fp32 and the autocast types this device runs."""
    import torch

    runs = [("fp32", contextlib.nullcontext), ("bf16 autocast", lambda: torch.autocast(device.type, torch.bfloat16))]
    if device.type == "cuda":
        runs.append(("fp16 autocast", lambda: torch.autocast("cuda", torch.float16)))
    return runs


def precision_check(case_dir: Path, device_name: str, samples: int) -> dict:
    import torch

    from napari_entrust.inference.device import resolve_device
    from napari_entrust.inference.engine import predict_case
    from napari_entrust.io.loader import load_case
    from napari_entrust.model.checkpoint import load_checkpoint
    from napari_entrust.model.config import SamplingConfig

    case, sampling = load_case(case_dir), SamplingConfig(samples=samples)
    reference = predict_case(case, load_checkpoint(None, "cpu"), sampling)
    device = resolve_device(device_name)
    bundle = load_checkpoint(None, device)
    out = {"device": str(device), "runs": {}}
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
    for name, context in precisions(device):
        predict_case(case, bundle, sampling)  # warm-up: kernels chosen, memory pools filled
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        started = time.perf_counter()
        with context():
            pred = predict_case(case, bundle, sampling)
        seconds = time.perf_counter() - started
        row = {"engine_s": seconds, "stages_s": pred.summary["timings_s"], **compare(pred, reference)}
        if device.type == "cuda":
            row["peak_gpu_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        row["within_tolerance"] = (
            min(row[f"dice_{r}"] for r in ("WT", "TC", "ET")) >= TOLERANCE["dice"]
            and row["trustmap_mean_abs"] <= TOLERANCE["trustmap_mean_abs"]
        )
        out["runs"][name] = row
    return out


def end_to_end(case_dir: Path, work: Path, device_name: str, samples: int, repeats: int) -> dict:
    entrust = [sys.executable, "-m", "napari_entrust.cli", "predict", str(case_dir)]
    floor, wall, rss = [], [], []
    for i in range(repeats):
        floor.append(io_floor(case_dir, work))
        out = work / f"prediction-{i}"
        seconds, peak = timed_process([*entrust, "--out", str(out), "--device", device_name, "-k", str(samples)])
        wall.append(seconds)
        rss.append(peak)
    return {"floor_s": spread(floor), "predict_s": spread(wall), "rss_gb": spread(rss)}


def table(r: dict) -> list[str]:
    e2e, p = r["end_to_end"], r["precision"]
    w = e2e["predict_s"]
    lines = [
        f"{p['device']} {p.get('gpu', platform.processor() or platform.machine())}; K = {r['samples']}; "
        f"1 mm case {r['shape']}; {r['date']}.",
        "",
        f"`entrust predict` end to end: {w['median']:.2f} s median ({w['min']:.2f}–{w['max']:.2f}, runs "
        f"{', '.join(f'{s:.2f}' for s in w['runs'])}), {w['median'] / e2e['floor_s']['median']:.1f}× the I/O "
        f"floor ({e2e['floor_s']['median']:.2f} s); target < {TARGET_S:g} s: "
        f"{'met' if w['median'] < TARGET_S else 'missed'}. Peak RSS {e2e['rss_gb']['median']:.2f} GB.",
        "",
        "| precision | engine s | Dice WT / TC / ET vs fp32 CPU | hypotheses agree | TrustMap abs diff max / mean "
        "| peak GPU MB | within tolerance |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in p["runs"].items():
        lines.append(
            f"| {name} | {row['engine_s']:.2f} | {row['dice_WT']:.4f} / {row['dice_TC']:.4f} / {row['dice_ET']:.4f} "
            f"| {row['samples_agree']:.5f} | {row['trustmap_max_abs']:.4f} / {row['trustmap_mean_abs']:.5f} "
            f"| {row.get('peak_gpu_mb', float('nan')):.0f} | {'yes' if row['within_tolerance'] else 'no'} |"
        )
    lines += ["", "Engine stages (s): "]
    for name, row in p["runs"].items():
        lines.append(f"- {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in row["stages_s"].items()))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "mps", "cpu"))
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--case", type=Path, help="a case folder (default: a 1 mm held-out case made here)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="entrust-gpu-") as tmp:
        work = Path(tmp)
        case_dir = benchmark_case(args.case, work)
        from napari_entrust.io.loader import load_case

        result = {
            "samples": args.samples,
            "shape": list(load_case(case_dir).shape),
            "date": time.strftime("%Y-%m-%d"),
            "end_to_end": end_to_end(case_dir, work, args.device, args.samples, args.repeats),
            "precision": precision_check(case_dir, args.device, args.samples),
        }
    write_results(args.out, "gpu", result, table(result))


if __name__ == "__main__":
    main()
