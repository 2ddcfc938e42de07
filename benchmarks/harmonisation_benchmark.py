"""Which denoising steps "Re-sample with my edits" harmonises: how well the voxels beside an edit settle, and the time.

    python benchmarks/harmonisation_benchmark.py [--seeds 9000 9001 9002] [--out DIR]

A reviewer corrects half of an uncertain region (hypothesis 2 adopted where x is below the
region's median) and re-samples. The other half was uncertain for the same reason, so a good
harmonisation takes the correction up there: its TrustMap falls (after / before, lower is better)
and the hypotheses agree more with the new mask. Rows: RePaint jumps on every step (the former
default, which also harmonised the two F_cf probes), on the last few steps only, on the first few
only, and none; the re-sample's seconds (the last run kept, as in napari: no encoding, unedited
slices reused) are taken in the same process, with their ratio to harmonising every step.
Held-out 2 mm phantoms, K = 8, S = 10.
Writes ``harmonisation.{json,md}`` to ``--out`` (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from case_speed_benchmark import spread, write_results  # a sibling script: its folder is on sys.path

RESULTS = Path(__file__).resolve().parent / "results"
#: (name, inpaint jumps, harmonised steps counted back from the last, or -n: the first n only)
SETTINGS = [
    ("every step, 8 jumps", 8, 9),
    ("last 2 steps, 8 jumps (default)", 8, 2),
    ("last 2 steps, 4 jumps", 4, 2),
    ("last 3 steps, 4 jumps", 4, 3),
    ("last step, 4 jumps", 4, 1),
    ("first 4 steps only, 8 jumps", 8, -4),
    ("none", 0, 0),
]


def half_corrected(pred, regions):
    """The first region where hypothesis 2 differs from the mask, split at its median x: the half
    the reviewer fixes, the half left, and the labels held there."""
    region = next(r for r in regions if (pred.samples[1][r.indices()] != pred.mask[r.indices()]).any())
    full = region.full_mask(pred.mask.shape)
    cut = int(np.median(np.nonzero(full)[0]))
    fixed = full.copy()
    fixed[cut:] = False
    labels = pred.mask.copy()
    labels[fixed] = pred.samples[1][fixed]
    return fixed, full & ~fixed, labels


@contextmanager
def first_steps_only(n: int | None):
    """With ``n``, harmonise steps 0 .. n-1 only (the comparison row; run with every step harmonised):
    the later steps fall back to the plain inpainting step."""
    from napari_entrust.model import segdiff

    saved = segdiff._ReverseProcess.harmonised_step

    def early(self, y, cond_h, i, z):
        return saved(self, y, cond_h, i, z) if i < n else self.step(y, cond_h, i, z)

    if n is not None:
        segdiff._ReverseProcess.harmonised_step = early
    try:
        yield
    finally:
        segdiff._ReverseProcess.harmonised_step = saved


def measure(seeds: list[int]) -> dict:
    import torch

    from napari_entrust.inference.engine import predict_case
    from napari_entrust.inference.run_cache import RunCache
    from napari_entrust.io.labels import to_internal
    from napari_entrust.model.checkpoint import load_checkpoint
    from napari_entrust.model.config import SamplingConfig
    from napari_entrust.phantom.phantom import make_phantom
    from napari_entrust.review.regions import find_uncertain_regions

    bundle = load_checkpoint(None, torch.device("cpu"))
    rows: dict[str, dict[str, list[float]]] = {name: {"trust": [], "agree": [], "seconds": []} for name, *_ in SETTINGS}
    for seed in seeds:
        case = make_phantom(seed=seed, spacing=2).to_case()
        cache = RunCache()
        pred = predict_case(case, bundle, SamplingConfig(), last_run=cache)
        regions = find_uncertain_regions(
            pred.trustmap, voxel_ml=0.008, weights=pred.weights, specific=pred.specific, conflict=pred.conflict
        )
        fixed, left, labels = half_corrected(pred, regions)
        for name, jumps, steps in SETTINGS:
            sampling = SamplingConfig(inpaint_jumps=jumps, harmonised_steps=9 if steps < 0 else steps)
            with first_steps_only(-steps if steps < 0 else None):
                t = time.perf_counter()
                new = predict_case(
                    case, bundle, sampling, last_run=cache, fixed=fixed, fixed_labels=to_internal(labels, "brats2021")
                )
            rows[name]["seconds"].append(time.perf_counter() - t)
            rows[name]["trust"].append(float(new.trustmap[left].mean() / pred.trustmap[left].mean()))
            rows[name]["agree"].append(float(np.mean([(s[left] == new.mask[left]).mean() for s in new.samples])))
    return {name: {key: spread(v) for key, v in row.items()} for name, row in rows.items()}


def table(result: dict) -> list[str]:
    base = result[SETTINGS[0][0]]["seconds"]["median"]
    lines = [
        "| harmonised (K = 8, S = 10) | TrustMap in the other half, after / before "
        "| hypotheses agree with the mask there | re-sample s | × every step |",
        "|---|---|---|---|---|",
    ]
    for name, row in result.items():
        t, a, s = row["trust"], row["agree"], row["seconds"]
        lines.append(
            f"| {name} | {t['median']:.3f} ({t['min']:.3f}–{t['max']:.3f}) | {a['median']:.3f} "
            f"| {s['median']:.2f} | {s['median'] / base:.2f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[9000, 9001, 9002])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = measure(args.seeds)
    write_results(args.out, "harmonisation", result, table(result))


if __name__ == "__main__":
    main()
