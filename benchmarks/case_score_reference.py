"""The bundled model's case uncertainty scores on held-out phantoms: the scale the widget shows.

    python benchmarks/case_score_reference.py [--cases 12] [--model CKPT] [--out resources/case_scores.json]

Predicts held-out phantoms (seeds 9000 and up, never trained on, 2 mm, K = 8) with the model,
prints each case's score and Dice WT, and writes the scores with the model's sha256, so the
widget can say where a new case's score lies among them (:mod:`napari_entrust.evaluation.case_reference`).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from napari_entrust.evaluation import metrics
from napari_entrust.evaluation.case_reference import REFERENCE_FILE
from napari_entrust.inference.engine import predict_case
from napari_entrust.io.files import write_json
from napari_entrust.io.labels import to_regions
from napari_entrust.io.loader import load_case
from napari_entrust.model.checkpoint import load_checkpoint, resources_dir
from napari_entrust.model.config import SamplingConfig
from napari_entrust.phantom.phantom import make_phantom
from napari_entrust.phantom.writing import save_phantom
from napari_entrust.training.cases import HELD_OUT_SEED0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=12)
    parser.add_argument("--model", type=Path, help="checkpoint (default: the bundled model)")
    parser.add_argument("--out", type=Path, default=resources_dir() / REFERENCE_FILE)
    args = parser.parse_args(argv)
    bundle = load_checkpoint(args.model)
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for i in range(args.cases):
            ph = make_phantom(seed=HELD_OUT_SEED0 + i, spacing=2)
            folder = Path(work) / ph.name
            save_phantom(ph, folder, overwrite=True)
            pred = predict_case(load_case(folder), bundle, SamplingConfig(samples=8))
            dice = metrics.dice(to_regions(pred.mask), to_regions(ph.labels))["WT"]
            rows.append((ph.name, pred.summary["case_score"]["score"], dice))
    print("| case | case score | Dice WT |\n|---|---|---|")
    for name, score, dice in rows:
        print(f"| {name} | {score:.3f} | {dice:.3f} |")
    scores = [s for _, s, _ in rows]
    print(f"| median | {np.median(scores):.3f} | {np.median([d for *_, d in rows]):.3f} |")
    write_json(
        args.out,
        {
            "model_sha256": bundle.sha256,
            "description": "held-out phantoms",
            "cases": [n for n, *_ in rows],
            "scores": [round(s, 4) for s in scores],
        },
        overwrite=True,
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
