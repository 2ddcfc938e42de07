"""Our per-volume Dice and HD95 against the BraTS challenge's package (brats-evaluation, on panoptica),
and its lesion-wise scores beside them, on the same predictions.

    python benchmarks/brats_evaluation_check.py --brats-python /path/to/python [--seeds 9000 9001 9002] [--heldout 1 2]

brats-evaluation 0.0.10 needs panoptica 2.1.7, which pins numpy < 2.3; installed beside napari-entrust
it would downgrade numpy for everything (and bring pandas, SimpleITK and plotly). So it runs in a
Python of its own (``python -m venv V && V/bin/pip install brats-evaluation``), given as
``--brats-python``; this script makes the cases, predicts and evaluates them with ``entrust``, then
has that Python score the same masks with the package's bundled GLI config (labels in BraTS 2023
values, ET = 3). Phantoms are 2 mm (``--seeds``), held-out cases 1 mm (``--heldout``). Writes
``brats_evaluation.{json,md}`` to ``--out`` (default benchmarks/results).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import tempfile
from pathlib import Path

from case_speed_benchmark import write_results  # a sibling script: its folder is on sys.path

RESULTS = Path(__file__).resolve().parent / "results"
REGIONS = ("wt", "tc", "et")

#: run by ``--brats-python``: score (mask, ground truth, spacing) triples with the GLI config
SCORER = """
import json, sys
import nibabel as nib, numpy as np
from brats_evaluation import config_path
from panoptica import Panoptica_Evaluator
evaluator = Panoptica_Evaluator.load_from_config(config_path("gli"))
out = {}
REGIONS = ("wt", "tc", "et")
for name, mask, truth in json.loads(sys.argv[1]):
    image = nib.load(mask)
    p, g = (np.asarray(nib.load(f).dataobj).astype(np.uint8) for f in (mask, truth))
    p[p == 4], g[g == 4] = 3, 3
    spacing = tuple(float(v) for v in image.header.get_zooms()[:3])
    result = evaluator.evaluate(p, g, voxelspacing=spacing, verbose=False)
    out[name] = {r: {k: float(v) for k, v in result[r].to_dict().items() if np.isscalar(v)} for r in REGIONS}
open(sys.argv[2], "w").write(json.dumps(out))
"""


def make_cases(work: Path, seeds: list[int], heldout: list[int]) -> list[tuple[str, Path, Path]]:
    """(name, case folder, prediction folder) for each case, predicted and evaluated by ``entrust``."""
    from napari_entrust.cli import main

    cases = []
    for kind, seed in [("phantom", s) for s in seeds] + [("heldout", s) for s in heldout]:
        name = f"{kind}-{seed}"
        case, pred = work / name, work / f"{name}-prediction"
        extra = ["--generator", "heldout"] if kind == "heldout" else []
        for argv in (
            ["sample", str(case), "--seed", str(seed), *extra],
            ["predict", str(case), "--out", str(pred)],
            ["evaluate", str(pred), str(case)],
        ):
            if main(argv) != 0:
                raise SystemExit(f"entrust {' '.join(argv)} failed")
        cases.append((name, case, pred))
    return cases


def score_with_the_package(python: str, cases, work: Path) -> dict:
    triples = [(name, str(pred / "mask.nii.gz"), str(next(case.glob("*seg.nii.gz")))) for name, case, pred in cases]
    out = work / "panoptica.json"
    subprocess.run([python, "-c", SCORER, json.dumps(triples), str(out)], check=True, capture_output=True)
    return json.loads(out.read_text())


def compare(cases, package: dict) -> dict:
    rows = {}
    for name, _, pred in cases:
        ours = next(csv.DictReader(open(pred / "evaluation" / "cases.csv")))
        rows[name] = {
            r: {
                "dice": float(ours[f"dice_{r.upper()}"]),
                "hd95": float(ours[f"hd95_{r.upper()}"]),
                "package_dice": package[name][r]["global_bin_dsc"],
                "package_hd95": package[name][r]["global_bin_hd95"],
                "lesion_dice": package[name][r]["pq_dsc"],
                "lesion_hd95": package[name][r]["sq_hd95"],
                "lesions": (int(package[name][r]["n_ref_instances"]), int(package[name][r]["n_pred_instances"])),
            }
            for r in REGIONS
        }
    return rows


def table(rows: dict) -> list[str]:
    lines = [
        "| case | region | Dice: ours / package | HD95 (mm): ours / package | lesion-wise Dice (PQ) | lesion HD95 (SQ) "
        "| lesions: true / predicted |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, regions in rows.items():
        for r, v in regions.items():
            lines.append(
                f"| {name} | {r.upper()} | {v['dice']:.4f} / {v['package_dice']:.4f} | {v['hd95']:.2f} / "
                f"{v['package_hd95']:.2f} | {v['lesion_dice']:.3f} | {v['lesion_hd95']:.2f} | {v['lesions'][0]} / "
                f"{v['lesions'][1]} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brats-python", required=True, help="a Python that has brats-evaluation installed")
    parser.add_argument("--seeds", type=int, nargs="*", default=[9000, 9001, 9002])
    parser.add_argument("--heldout", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="entrust-brats-") as tmp:
        cases = make_cases(Path(tmp), args.seeds, args.heldout)
        rows = compare(cases, score_with_the_package(args.brats_python, cases, Path(tmp)))
    write_results(args.out, "brats_evaluation", rows, table(rows))


if __name__ == "__main__":
    main()
