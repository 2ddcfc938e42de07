"""One held-out case, made and written as a BraTS 2023 case: 240 × 240 × 155, 1 mm, LPS, int16 files.

The ground truth goes to ``truth/`` in the layout ``entrust evaluate`` reads (``phantom.json``,
the raters, the conflict mask), plus one mask per kind of disagreement (``conflict_<kind>``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..io import labels as label_conv
from ..io.files import write_text
from ..io.modalities import MODALITIES, NAMING
from ..io.nifti import ReferenceGrid, write_on_grid
from ..io.output_folder import output_folder, staged, top_names
from ..phantom.raters import rate
from ..progress import Steps, run_to_end
from .anatomy import make_brain
from .contrast import Sequence, acquire, brightest, random_sequences, random_tissues, render, to_stored
from .events import Event, flair_only, labels_of, misregistration, t1ce_focus
from .lesions import Tumour, make_tumour

TISSUE_CLASSES = ("background", "csf", "gm", "wm", "deep_gm")
HEALTHY = TISSUE_CLASSES[1:]
GENERATOR = "heldout"
VERSION = 1
SHAPE = (240, 240, 155)
#: BraTS files are stored left-posterior-superior; the brain sits where fsaverage's coordinates put it
LPS_AFFINE = np.array([[-1.0, 0, 0, 119.5], [0, -1.0, 0, 102.0], [0, 0, 1.0, -62.0], [0, 0, 0, 1]])


@dataclass
class HeldoutCase:
    """A generated case and its truth; arrays RAS+ on ``grid``'s canonical orientation."""

    name: str
    seed: int
    grid: ReferenceGrid
    images: dict[str, np.ndarray]  #: int16, as stored
    labels: np.ndarray  #: internal labels, disagreement events excluded
    raters: np.ndarray  #: (R, ...) internal labels
    events: list[Event]
    included_by: list[list[int]]
    family: str
    sequences: dict[str, Sequence]
    tissue: np.ndarray  #: uint8: the main healthy tissue of each voxel (index into :data:`TISSUE_CLASSES`)

    @property
    def affine(self) -> np.ndarray:
        return self.grid.canonical_affine

    @property
    def event_masks(self) -> dict[str, np.ndarray]:
        return {e.kind: e.mask for e in self.events}

    @property
    def conflict(self) -> np.ndarray:
        return np.logical_or.reduce([e.mask for e in self.events]) if self.events else np.zeros(self.labels.shape, bool)


def heldout_name(seed: int) -> str:
    """The BraTS 2023 case name of the held-out case of ``seed``."""
    return f"BraTS-GLI-{seed:05d}-000"


def make_heldout_case(seed: int, n_raters: int = 4) -> HeldoutCase:
    """:func:`generate_heldout_case` without progress."""
    return run_to_end(generate_heldout_case(seed, n_raters))


def generate_heldout_case(seed: int, n_raters: int = 4) -> Steps[HeldoutCase]:
    """Generate one deterministic held-out case; yields progress."""
    anatomy_rng, lesion_rng, event_rng, imaging_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, VERSION, 1789]).spawn(4)
    )
    grid = ReferenceGrid.from_affine(heldout_name(seed), SHAPE, LPS_AFFINE)
    yield 0.0, "voxelising the fsaverage surfaces"
    brain = make_brain(anatomy_rng, grid.canonical_affine, grid.canonical_shape)
    yield 0.4, "growing the tumour"
    tumour = make_tumour(lesion_rng, brain["wm"], brain["brain"])
    yield 0.55, "placing the disagreements"
    events = _events(event_rng, tumour, brain["brain"])
    labels = labels_of((tumour.necrosis, tumour.enhancing, tumour.oedema))
    raters, included = rate(labels, [(e.mask, e.labels) for e in events], n_raters, event_rng)
    tissues = random_tissues(imaging_rng)
    sequences = random_sequences(imaging_rng, tissues["csf"][0])
    ghosted = MODALITIES[int(imaging_rng.integers(4))] if imaging_rng.random() < 0.25 else None
    images = {}
    for i, modality in enumerate(MODALITIES):
        yield 0.6 + 0.1 * i, f"acquiring {modality}"
        seq = sequences[modality]
        fractions, gd = _modality_fractions(modality, brain, tumour, events, imaging_rng)
        clean = render(fractions, seq, tissues, gd)
        ghost = imaging_rng.uniform(0.03, 0.08) if modality == ghosted else 0.0
        images[modality] = to_stored(
            acquire(clean, seq, brain["brain"], brightest(seq, tissues), imaging_rng, ghost), imaging_rng
        )
    yield 1.0, "done"
    tissue = np.argmax(np.stack([~brain["brain"], *(brain[t] for t in TISSUE_CLASSES[1:])]), axis=0).astype(np.uint8)
    return HeldoutCase(
        grid.path.name, seed, grid, images, labels, raters, events, included, tumour.family, sequences, tissue
    )


def _events(rng: np.random.Generator, tumour: Tumour, brain: np.ndarray) -> list[Event]:
    """FLAIR-only and T1ce-only events always (where they fit), a misregistration in 60 % of cases."""
    first = flair_only(rng, tumour, brain)
    second = t1ce_focus(rng, tumour, brain, taken=first.mask)
    events = [e for e in (first, second) if e.mask.any()]
    if rng.random() < 0.6:
        taken = first.mask | second.mask
        shifted = misregistration(rng, tumour, brain, taken)
        if shifted.mask.any():
            events.append(shifted)
    return events


def _soft(mask: np.ndarray) -> np.ndarray:
    return ndimage.gaussian_filter(mask.astype(np.float32), 0.6)


def _modality_fractions(
    modality: str, brain: dict, tumour: Tumour, events: list[Event], rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """What ``modality`` sees: healthy tissue displaced by the lesion, its own events, its own shift."""
    parts = {"necrosis": tumour.necrosis, "enhancing": tumour.enhancing, "oedema": tumour.oedema}
    shifted = next((e for e in events if e.kind == "misregistration" and e.modality == modality), None)
    lesion = {k: _soft(v) for k, v in parts.items()}
    if shifted is not None:  # this modality sees the lesion where the misregistration put it
        lesion = {k: ndimage.shift(v, shifted.detail["shift_mm"], order=1, mode="constant") for k, v in lesion.items()}
    if tumour.family == "cystic":
        lesion["fluid"] = lesion.pop("necrosis")
    seen = {e.kind: _soft(e.mask) for e in events if e.modality == modality and e.kind != "misregistration"}
    oedema_like = seen.get("flair_only", np.float32(0))  # looks like oedema on FLAIR only
    taken = np.clip(sum(lesion.values()) + oedema_like, 0, 1)
    healthy = {t: brain[t] * (1 - taken) for t in HEALTHY}
    fractions = {**lesion, "oedema": lesion["oedema"] + oedema_like}
    gd = {"enhancing": rng.uniform(0.3, 0.8), "oedema": 0.02} if modality == "t1ce" else {}
    if "t1ce_focus" in seen:  # the healthy tissue there takes up contrast: it changes on T1ce only
        focus, uptake = seen["t1ce_focus"], rng.uniform(0.4, 0.9)
        for t in HEALTHY:
            fractions[f"{t}+gd"], healthy[t] = healthy[t] * focus, healthy[t] * (1 - focus)
            gd[f"{t}+gd"] = uptake
    return {**healthy, **fractions}, gd


def heldout_paths(name: str, out_dir: Path, kinds: list[str], n_raters: int) -> dict[str, Path]:
    """Where each file of a held-out case goes."""
    names = NAMING["brats2023"]
    paths = {m: out_dir / f"{name}-{names[m]}.nii.gz" for m in (*MODALITIES, "seg")}
    truth = out_dir / "truth"
    paths["conflict"] = truth / "conflict.nii.gz"
    paths.update({f"conflict_{k}": truth / f"conflict_{k}.nii.gz" for k in kinds})
    paths.update({f"rater{r + 1}": truth / f"rater{r + 1}.nii.gz" for r in range(n_raters)})
    paths["metadata"] = truth / "phantom.json"
    return paths


def save_heldout_case(case: HeldoutCase, out_dir: str | Path, *, overwrite: bool = False) -> dict[str, Path]:
    """Write the case (BraTS 2023 names and labels, LPS, int16) and its truth; nothing if a file exists."""
    out_dir = Path(out_dir)
    paths = heldout_paths(case.name, out_dir, [e.kind for e in case.events], len(case.raters))
    with output_folder(out_dir, overwrite=overwrite, ours=top_names(out_dir, paths.values())) as staging:
        written = staged(paths, out_dir, staging)
        _write_files(case, written)
        write_text(written["metadata"], json.dumps(_metadata(case, paths, out_dir), indent=2))
    return paths


def _write_files(case: HeldoutCase, paths: dict[str, Path]) -> None:
    """The images, labels, raters and event masks of :func:`save_heldout_case` at ``paths``."""
    masks = case.event_masks
    for key, path in paths.items():
        if key in MODALITIES:
            write_on_grid(case.images[key], case.grid, path, dtype=np.int16)
        elif key == "seg" or key.startswith("rater"):
            labels = case.labels if key == "seg" else case.raters[int(key[5:]) - 1]
            write_on_grid(
                label_conv.from_internal(labels, "brats2023"),
                case.grid,
                path,
                dtype=np.uint8,
                description="brats2023 labels",
            )
        elif key.startswith("conflict"):
            mask = case.conflict if key == "conflict" else masks[key[len("conflict_") :]]
            write_on_grid(mask, case.grid, path, dtype=np.uint8, description=key)


def _metadata(case: HeldoutCase, paths: dict[str, Path], out_dir: Path) -> dict:
    """``truth/phantom.json``: what ``entrust evaluate`` reads, and how the case was made."""
    voxel_ml = case.grid.voxel_volume_ml
    return {
        "name": case.name,
        "seed": case.seed,
        "generator": GENERATOR,
        "generator_version": VERSION,
        "format": "brats2023",
        "label_convention": "brats2023",
        "n_raters": int(len(case.raters)),
        "spacing_mm": 1,
        "family": case.family,
        "events": [
            {
                "kind": e.kind,
                "modality": e.modality,
                "volume_ml": float(e.mask.sum() * voxel_ml),
                "included_by": who,
                **e.detail,
            }
            for e, who in zip(case.events, case.included_by)
        ],
        "sequences": {m: vars(s) for m, s in case.sequences.items()},
        "files": {k: str(p.relative_to(out_dir)) for k, p in paths.items()},
    }
