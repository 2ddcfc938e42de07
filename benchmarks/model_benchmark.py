"""EnTrust model benchmark on held-out phantom cases (seeds 9000+, never used in training).

    python benchmarks/model_benchmark.py [--model CKPT] [--cases 5] [--no-conflict-model CKPT]

Prints tables and writes benchmarks/results/model_benchmark.{json,md}:
  1. accuracy: Dice WT / TC / ET of the mask against the phantom label map;
  2. the central claim: TrustMap AUROC for conflict voxels vs the other voxels within 5 mm of the
     lesion, and mean pairwise disagreement of the hypotheses inside conflict regions over that in
     the rest of the lesion's neighbourhood; for the model, the same model with F_cf zeroed at
     inference, and (if given) a model trained without the conflict branch;
  3. speed and memory on this machine, K = 8: `entrust predict`'s engine on the 2 mm phantom vs
     five forward passes of a plain MONAI UNet over the same volume (each measured in a fresh
     process for peak RSS, and both in this process for wall time, median of interleaved
     repeats), plus the achieved GFLOP/s of the denoiser loop against a plain torch.matmul;
  4. the same quality and speed numbers at fewer DDIM steps (``--steps-sweep``).
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
import torch

from napari_entrust.evaluation.metrics import conflict_localisation, dice
from napari_entrust.inference.engine import predict_case
from napari_entrust.io.labels import to_regions
from napari_entrust.model.checkpoint import load_checkpoint
from napari_entrust.model.config import SamplingConfig
from napari_entrust.phantom.phantom import make_phantom

HELD_OUT_SEED0 = 9000
RESULTS = Path(__file__).resolve().parent / "results"


def conflict_metrics(ph, pred) -> dict:
    """AUROC of the TrustMap (conflict vs other voxels ≤ 5 mm from the lesion) and the disagreement ratio."""
    return conflict_localisation(pred.trustmap, ph.conflict, ph.labels > 0, ph.spacing, (pred.samples > 0))


def evaluate(bundle, phantoms, sampling: SamplingConfig) -> list[dict]:
    rows = []
    for ph in phantoms:
        pred = predict_case(ph.to_case(), bundle, sampling)
        gt, pr = to_regions(ph.labels), pred.prob > 0.5
        rows.append(
            {
                "case": ph.name,
                **{f"dice_{r}": v for r, v in dice(pr, gt).items()},
                **conflict_metrics(ph, pred),
                "seconds": pred.summary["timings_s"]["total_s"],
                "case_score": pred.summary["case_score"]["score"],
            }
        )
    return rows


def mean_row(rows: list[dict]) -> dict:
    return {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0] if k != "case"}


# -- speed and memory ------------------------------------------------------------------------------


def baseline_unet():
    """The architecture of ``entrust benchmark``'s UNet baselines (untrained: only its cost matters here)."""
    from napari_entrust.benchmark.baselines import BaselineConfig, build_unet

    return build_unet(BaselineConfig()).eval()


def run_baseline(case, passes: int = 5, head_only: bool = False) -> float:
    """Five forward passes of a plain MONAI UNet over the volume (the 5× ensemble cost): every whole
    slice, or (``head_only``) only the head's in-plane box of the slices with head, as EnTrust's
    encoders and ``entrust benchmark``'s baselines see it."""
    from napari_entrust.inference.normalize import normalize_case
    from napari_entrust.inference.slices import encoder_input, head_box, head_voxels

    nets = [baseline_unet() for _ in range(passes)]
    t0 = time.perf_counter()
    normed, _ = normalize_case(case)
    volume = torch.from_numpy(np.stack([normed[m] for m in ("t1", "t1ce", "t2", "flair")]))
    with torch.inference_mode():
        if head_only:
            head, zs = head_voxels(volume)
            x = encoder_input(volume, zs, 1, head_box(head), 8)
        else:
            x = encoder_input(volume, list(range(volume.shape[-1])), 1, (slice(None), slice(None)), 8)
        x = x.reshape(x.shape[0], -1, *x.shape[-2:])
        for net in nets:
            for i in range(0, x.shape[0], 16):
                torch.sigmoid(net(x[i : i + 16]))
    return time.perf_counter() - t0


def run_entrust(case, bundle, samples: int, steps: int) -> float:
    t0 = time.perf_counter()
    predict_case(case, bundle, SamplingConfig(samples=samples, steps=steps))
    return time.perf_counter() - t0


def _child(kind: str, case_dir: str, model: str | None, samples: int, steps: int) -> None:
    """Entry point of the fresh-process measurements: prints seconds and peak RSS as JSON.

    The case is read from disk (not generated here), so the peak RSS is that of the model run.
    """
    import threading

    import psutil

    from napari_entrust.io.loader import load_case

    case = load_case(case_dir)
    proc = psutil.Process()
    before = proc.memory_info().rss
    peak = [before]
    done = threading.Event()

    def watch():  # the high-water mark of this run alone (ru_maxrss cannot be reset after imports)
        while not done.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            done.wait(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    if kind == "baseline":
        run_baseline(case, 1)  # warm-up (builds the five networks again: counted, like loading a model)
        seconds = run_baseline(case)
    else:
        bundle = load_checkpoint(model)
        run_entrust(case, bundle, 2, 2)  # warm-up
        seconds = run_entrust(case, bundle, samples, steps)
    done.set()
    watcher.join()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_rss_mb": peak[0] / 2**20,
                "before_run_rss_mb": before / 2**20,
                "working_memory_mb": (peak[0] - before) / 2**20,
                "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def fresh_process(kind: str, case_dir: Path, model: str | None, samples: int, steps: int) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--case-dir",
        str(case_dir),
        "--samples",
        str(samples),
        "--steps",
        str(steps),
    ]
    if model:
        cmd += ["--model", model]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def denoiser_gflops(bundle, ph, samples: int, steps: int) -> dict:
    """FLOPs of the sampling loop counted by torch, over its wall time; and torch.matmul's GFLOP/s."""
    from torch.utils.flop_counter import FlopCounterMode

    from napari_entrust.model.segdiff import sample, slice_noise

    net = bundle.net
    h, w, nslices = 48, 48, 8
    cond = torch.randn(nslices, net.denoiser.cond_in.in_channels, h, w)
    noise = torch.stack([slice_noise(0, z, steps, samples, (h, w)) for z in range(nslices)])
    with torch.inference_mode():
        counter = FlopCounterMode(display=False)
        with counter:
            sample(net, bundle.schedule, cond, noise)
        flops = counter.get_total_flops()
        sample(net, bundle.schedule, cond, noise)
        t0 = time.perf_counter()
        sample(net, bundle.schedule, cond, noise)
        loop_s = time.perf_counter() - t0
        a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
        torch.matmul(a, b)
        t0 = time.perf_counter()
        for _ in range(5):
            torch.matmul(a, b)
        mm_s = (time.perf_counter() - t0) / 5
    loop = flops / loop_s / 1e9
    matmul = 2 * 2048**3 / mm_s / 1e9
    return {
        "denoiser_loop_gflops": loop,
        "matmul_gflops": matmul,
        "fraction_of_matmul": loop / matmul,
        "loop_flops": flops,
        "loop_seconds": loop_s,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", help="checkpoint (default: bundled)")
    p.add_argument("--no-conflict-model", help="checkpoint trained with conflict_branch=false")
    p.add_argument("--cases", type=int, default=5)
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument(
        "--steps-sweep",
        type=lambda v: [int(x) for x in v.split(",") if x],
        default=[4, 6],
        metavar="S,S",
        help="also measure quality and speed at these step counts (default 4,6; '' for none)",
    )
    p.add_argument("--repeats", type=int, default=5, help="same-process timing repeats, interleaved (median)")
    p.add_argument("--child", choices=("baseline", "entrust"), help=argparse.SUPPRESS)
    p.add_argument("--case-dir", help=argparse.SUPPRESS)
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--skip-accuracy", action="store_true")
    args = p.parse_args()
    if args.child:
        _child(args.child, args.case_dir, args.model, args.samples, args.steps)
        return

    bundle = load_checkpoint(args.model)
    phantoms = [make_phantom(seed=HELD_OUT_SEED0 + i, spacing=2) for i in range(args.cases)]
    results = {
        "model": str(bundle.path),
        "model_sha256": bundle.sha256,
        "cases": [ph.name for ph in phantoms],
        "samples": args.samples,
        "steps": args.steps,
    }
    if args.skip_accuracy:
        previous = RESULTS / "model_benchmark.json"
        if previous.exists():
            results = {**json.loads(previous.read_text()), **results}
    else:
        results["variants"] = accuracy(args, bundle, phantoms)
    if not args.skip_speed:
        results["speed"] = speed(args, bundle, phantoms[0])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "model_benchmark.json").write_text(json.dumps(results, indent=2))
    print(f"\nwrote {RESULTS / 'model_benchmark.json'}")


def accuracy(args, bundle, phantoms) -> dict:
    sampling = SamplingConfig(samples=args.samples, steps=args.steps)
    variants = {
        "EnTrust": evaluate(bundle, phantoms, sampling),
        "EnTrust, F_cf zeroed at inference": evaluate(
            bundle, phantoms, SamplingConfig(samples=args.samples, steps=args.steps, conflict_scale=0.0)
        ),
    }
    if args.no_conflict_model:
        variants["trained without conflict branch"] = evaluate(
            load_checkpoint(args.no_conflict_model), phantoms, sampling
        )
    for steps in args.steps_sweep:  # the speed / quality trade-off a user makes with --steps
        if steps != args.steps:
            variants[f"EnTrust, S = {steps}"] = evaluate(
                bundle, phantoms, SamplingConfig(samples=args.samples, steps=steps)
            )
    out = {name: {"mean": mean_row(rows), "per_case": rows} for name, rows in variants.items()}
    print(f"Held-out phantoms {[ph.name for ph in phantoms]} (2 mm), K = {args.samples}, S = {args.steps}")
    print("| model | Dice WT | Dice TC | Dice ET | conflict AUROC | disagreement conflict / rest | s per case |")
    print("|---|---|---|---|---|---|---|")
    for name, v in out.items():
        m = v["mean"]
        print(
            f"| {name} | {m['dice_WT']:.3f} | {m['dice_TC']:.3f} | {m['dice_ET']:.3f} | {m['conflict_auroc']:.3f} "
            f"| {m['disagreement_ratio']:.2f} ({m['disagreement_conflict']:.3f} / {m['disagreement_rest']:.3f}) "
            f"| {m['seconds']:.1f} |"
        )

    return out


def speed(args, bundle, ph) -> dict:
    import tempfile

    from napari_entrust.phantom.writing import save_phantom

    case = ph.to_case()
    run_baseline(case, 1)
    run_baseline(case, 1, head_only=True)
    run_entrust(case, bundle, 2, 2)
    # interleaved repeats, medians: a shared 2-core machine's timings wander by ±30 % from run to run
    steps_list = [args.steps, *(s for s in args.steps_sweep if s != args.steps)]
    runs: dict[str, list[float]] = {
        "baseline_5x_s": [],
        "baseline_5x_head_s": [],
        **{f"entrust_s{s}": [] for s in steps_list},
    }
    for _ in range(args.repeats):
        runs["baseline_5x_s"].append(run_baseline(case))
        runs["baseline_5x_head_s"].append(run_baseline(case, head_only=True))
        for s in steps_list:
            runs[f"entrust_s{s}"].append(run_entrust(case, bundle, args.samples, s))
    median = {key: float(np.median(v)) for key, v in runs.items()}
    same_process = {
        "baseline_5x_s": median["baseline_5x_s"],
        "baseline_5x_head_s": median["baseline_5x_head_s"],
        "entrust_s": median[f"entrust_s{args.steps}"],
        "repeats": args.repeats,
        "runs": runs,
    }
    with tempfile.TemporaryDirectory() as tmp:
        save_phantom(ph, tmp)
        fresh = {
            "baseline_5x": fresh_process("baseline", Path(tmp), None, args.samples, args.steps),
            "entrust": fresh_process("entrust", Path(tmp), args.model, args.samples, args.steps),
        }
    flops = denoiser_gflops(bundle, ph, args.samples, args.steps)
    print(
        f"\nSpeed on {ph.name} (2 mm, {ph.images['t1'].shape}), K = {args.samples}, S = {args.steps}, "
        f"{torch.get_num_threads()} threads"
    )
    print("| measurement | EnTrust predict | 5 x MONAI UNet | ratio |")
    print("|---|---|---|---|")
    print(
        f"| wall time, same process (s, median of {args.repeats}) | {same_process['entrust_s']:.2f} "
        f"| {same_process['baseline_5x_s']:.2f} | {same_process['entrust_s'] / same_process['baseline_5x_s']:.2f} |"
    )
    print(
        f"| the same, UNets on the head's box of the head's slices too (s) | {same_process['entrust_s']:.2f} "
        f"| {same_process['baseline_5x_head_s']:.2f} "
        f"| {same_process['entrust_s'] / same_process['baseline_5x_head_s']:.2f} |"
    )
    print(
        f"| wall time, fresh process (s) | {fresh['entrust']['seconds']:.2f} | {fresh['baseline_5x']['seconds']:.2f} "
        f"| {fresh['entrust']['seconds'] / fresh['baseline_5x']['seconds']:.2f} |"
    )
    for key, label in (("working_memory_mb", "peak RSS above the loaded case"), ("peak_rss_mb", "peak RSS")):
        print(
            f"| {label}, fresh process (MB) | {fresh['entrust'][key]:.0f} | {fresh['baseline_5x'][key]:.0f} "
            f"| {fresh['entrust'][key] / fresh['baseline_5x'][key]:.2f} |"
        )
    print(
        f"\nDenoiser loop: {flops['denoiser_loop_gflops']:.1f} GFLOP/s; torch.matmul 2048²: "
        f"{flops['matmul_gflops']:.1f} GFLOP/s ({flops['fraction_of_matmul']:.0%})"
    )
    if len(steps_list) > 1:
        print("\nFewer steps (same process, medians): S | EnTrust s | ratio to 5 x UNet (whole slices)")
        for s in steps_list:
            print(
                f"  {s} | {median[f'entrust_s{s}']:.2f} | {median[f'entrust_s{s}'] / median['baseline_5x_s']:.2f} "
                f"(head box: {median[f'entrust_s{s}'] / median['baseline_5x_head_s']:.2f})"
            )
    return {
        "same_process": same_process,
        "fresh_process": fresh,
        "gflops": flops,
        "threads": torch.get_num_threads(),
        "baseline": "MONAI UNet(12 -> 3, channels 16/32/64/128, no residual units), 5 passes",
    }


if __name__ == "__main__":
    main()
