"""Follow one case through the library: generate, load with checks, normalise, write a result back.

    python examples/load_and_write_back.py OUT_DIR [--seed 0]

Writes a phantom case in BraTS 2023 naming, loads it as the model would, and saves the whole-tumour
region of its label map as a new NIfTI that overlays the input exactly in any viewer.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from napari_entrust.inference.normalize import normalize_case
from napari_entrust.io.labels import to_regions
from napari_entrust.io.loader import load_case
from napari_entrust.phantom.phantom import make_phantom
from napari_entrust.phantom.writing import save_phantom


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    phantom = make_phantom(seed=args.seed, spacing=2)
    save_phantom(phantom, args.out_dir / "case", "brats2023", overwrite=True)

    case = load_case(args.out_dir / "case")  # validated, RAS+, on the T1 grid
    print(f"{case.name}: {', '.join(case.modalities)} on a {case.shape} grid, spacing {case.spacing.tolist()} mm")
    print(f"  {sum(c.ok for c in case.checks)} checks passed; notes: {case.notes or 'none'}")

    normalised, stats = normalize_case(case)  # model inputs; the saved images stay raw
    for mod, st in stats.items():
        print(f"  {mod:6s} robust range {st.low:8.1f} .. {st.high:8.1f} -> 0 .. 1")

    whole_tumour = to_regions(case.labels)[0]
    out = case.write(whole_tumour, args.out_dir / "whole_tumour.nii.gz", overwrite=True, description="WT")
    print(f"  whole tumour {whole_tumour.sum() * case.grid.voxel_volume_ml:.1f} mL written to {out}")


if __name__ == "__main__":
    main()
