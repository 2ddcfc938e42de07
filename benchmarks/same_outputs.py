"""Do two versions of napari-entrust give the same outputs? For refactors that must change none.

    python benchmarks/same_outputs.py --against REV [--work DIR] [--quick]

REV (a commit, tag or branch) is checked out into a temporary git worktree and run with this
virtual environment (``PYTHONPATH`` puts its package first); the working tree's code runs beside
it. Both run the same ``entrust`` commands on the same inputs, and every file they write is
compared:

- phantom cases (``entrust sample``, 2 mm BraTS 2021 and 1 mm BraTS 2023 naming);
- predictions on those cases written by REV (``entrust predict``; the 1 mm case goes through the
  model grid and back), a prediction with voxels held fixed is not reachable from the CLI and is
  covered by the tests;
- ``entrust explain --no-pipeline`` on the 2 mm case and ``entrust evaluate`` of REV's prediction.

NIfTI files: the same affine, qform/sform codes and stored dtype; integer data identical, float
data within ``--tolerance`` (default 1e-6). JSON and CSV: the same keys and values, numbers within
the tolerance, except what measures time or names the output folder. PNG plots are not compared
(they embed nothing but pixels of the same numbers). Prints one row per file and exits 1 if any differs.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
#: keys whose values measure time or name where a run wrote: never compared
VOLATILE = {"timings_s", "seconds", "total_s", "written_at", "saved_at", "prediction", "output", "files_dir"}


def run_entrust(code_root: Path, args: list[str]) -> None:
    """``entrust ARGS`` with the package found first in ``code_root``. Run from there: ``python -m``
    puts the working directory ahead of ``PYTHONPATH``, so from another checkout it would run that one."""
    env = {**os.environ, "PYTHONPATH": str(code_root)}
    done = subprocess.run(
        [sys.executable, "-m", "napari_entrust.cli", *args], env=env, capture_output=True, text=True, cwd=code_root
    )
    if done.returncode != 0:
        raise SystemExit(f"entrust {' '.join(args)} failed with the code in {code_root}:\n{done.stderr[-3000:]}")


def compare_nifti(a: Path, b: Path, tolerance: float) -> tuple[str, str]:
    ia, ib = nib.load(str(a)), nib.load(str(b))
    if not np.allclose(ia.affine, ib.affine, atol=1e-9):
        return "DIFFERS", "affine"
    for key in ("qform_code", "sform_code"):
        if int(ia.header[key]) != int(ib.header[key]):
            return "DIFFERS", key
    if ia.get_data_dtype() != ib.get_data_dtype():
        return "DIFFERS", f"dtype {ia.get_data_dtype()} vs {ib.get_data_dtype()}"
    da, db = np.asanyarray(ia.dataobj), np.asanyarray(ib.dataobj)
    if da.shape != db.shape:
        return "DIFFERS", f"shape {da.shape} vs {db.shape}"
    if np.issubdtype(da.dtype, np.integer):
        n = int((da != db).sum())
        return ("same", "identical") if n == 0 else ("DIFFERS", f"{n} voxels")
    diff = float(np.max(np.abs(da.astype(np.float64) - db.astype(np.float64)))) if da.size else 0.0
    return ("same" if diff <= tolerance else "DIFFERS"), f"max |diff| {diff:.2e}"


def _differences(x, y, tolerance: float, where: str = "") -> list[str]:
    """Paths of the values that differ between two parsed JSON documents."""
    if isinstance(x, dict) and isinstance(y, dict):
        keys = (set(x) | set(y)) - VOLATILE
        return [d for k in sorted(keys) for d in _differences(x.get(k), y.get(k), tolerance, f"{where}.{k}")]
    if isinstance(x, list) and isinstance(y, list):
        if len(x) != len(y):
            return [f"{where} (length {len(x)} vs {len(y)})"]
        return [d for i, (u, v) in enumerate(zip(x, y)) for d in _differences(u, v, tolerance, f"{where}[{i}]")]
    if isinstance(x, (int, float)) and isinstance(y, (int, float)) and not isinstance(x, bool):
        same = (math.isnan(x) and math.isnan(y)) or abs(x - y) <= tolerance * max(1.0, abs(x))
        return [] if same else [f"{where} ({x} vs {y})"]
    if isinstance(x, str) and isinstance(y, str) and x != y:
        return [f"{where}"] if not (os.sep in x and Path(x).name == Path(y).name) else []
    return [] if x == y else [f"{where} ({x!r} vs {y!r})"]


def _csv_rows(path: Path) -> list[dict]:
    def value(text: str):
        try:
            return float(text)
        except ValueError:
            return text

    with path.open(newline="") as f:
        return [{k: value(v) for k, v in row.items()} for row in csv.DictReader(f)]


def compare_file(a: Path, b: Path, tolerance: float) -> tuple[str, str]:
    name = a.name.lower()
    if name.endswith((".nii.gz", ".nii")):
        return compare_nifti(a, b, tolerance)
    if name.endswith(".json"):
        diffs = _differences(json.loads(a.read_text()), json.loads(b.read_text()), tolerance)
    elif name.endswith(".csv"):
        diffs = _differences(_csv_rows(a), _csv_rows(b), tolerance)
    elif name.endswith(".png"):
        return "skipped", "plot"
    else:
        diffs = [] if a.read_bytes() == b.read_bytes() else ["bytes"]
    return ("same", "equal") if not diffs else ("DIFFERS", "; ".join(diffs[:3]) + (" ..." if len(diffs) > 3 else ""))


def compare_folders(label: str, a: Path, b: Path, tolerance: float) -> list[tuple[str, str, str]]:
    files_a = {p.relative_to(a) for p in a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(b) for p in b.rglob("*") if p.is_file()}
    rows = [(f"{label}/{p}", "DIFFERS", "only in one version") for p in sorted(files_a ^ files_b)]
    rows += [(f"{label}/{p}", *compare_file(a / p, b / p, tolerance)) for p in sorted(files_a & files_b)]
    return rows


def checkout(rev: str, where: Path) -> Path:
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), rev],
        check=True,
        capture_output=True,
        text=True,
    )
    return where


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--against", required=True, metavar="REV", help="the version to compare with (e.g. a commit)")
    p.add_argument("--work", type=Path, help="keep the outputs here (default: a temporary folder, removed)")
    p.add_argument("--tolerance", type=float, default=1e-6, help="for float voxels and numbers (default 1e-6)")
    p.add_argument("--quick", action="store_true", help="the 2 mm case only (no 1 mm case, no explain)")
    args = p.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="entrust-same-outputs-"))
    reference_code = checkout(args.against, work / "reference-code")
    cases = [("case-2mm", ["--seed", "9000", "--spacing", "2"])]
    if not args.quick:
        cases.append(("case-1mm", ["--seed", "9001", "--spacing", "1", "--format", "brats2023"]))
    rows = []
    try:
        for name, options in cases:
            for who, code in (("reference", reference_code), ("current", ROOT)):
                run_entrust(code, ["sample", str(work / who / name), *options])
            rows += compare_folders(
                f"sample {name}", work / "reference" / name, work / "current" / name, args.tolerance
            )
            case = work / "reference" / name
            for who, code in (("reference", reference_code), ("current", ROOT)):
                run_entrust(code, ["predict", str(case), "--out", str(work / who / f"predict-{name}")])
            rows += compare_folders(
                f"predict {name}",
                work / "reference" / f"predict-{name}",
                work / "current" / f"predict-{name}",
                args.tolerance,
            )
        case, prediction = work / "reference" / "case-2mm", work / "reference" / "predict-case-2mm"
        for who, code in (("reference", reference_code), ("current", ROOT)):
            run_entrust(code, ["evaluate", str(prediction), str(case), "--out", str(work / who / "evaluate")])
            if not args.quick:
                run_entrust(
                    code,
                    [
                        "explain",
                        str(case),
                        "--prediction",
                        str(prediction),
                        "--no-pipeline",
                        "--out",
                        str(work / who / "explain"),
                    ],
                )
        for step in ("evaluate",) + (() if args.quick else ("explain",)):
            rows += compare_folders(step, work / "reference" / step, work / "current" / step, args.tolerance)
    finally:
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(reference_code)], capture_output=True
        )
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    print(f"| {'file':<{width}} | result  | detail |")
    print(f"|{'-' * (width + 2)}|---------|--------|")
    for file, verdict, detail in rows:
        print(f"| {file:<{width}} | {verdict:<7} | {detail} |")
    differing = sum(r[1] == "DIFFERS" for r in rows)
    print(
        f"\n{len(rows)} files compared against {args.against}: "
        + ("all the same" if not differing else f"{differing} DIFFER")
    )
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
