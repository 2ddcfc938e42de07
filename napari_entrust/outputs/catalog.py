"""Every output of a prediction in one table: its file, its napari layer, how it is stored and shown.

The prediction folder's writer and reader (:mod:`.prediction_folder`), the napari layers
(:mod:`napari_entrust.plugin.layer_data`) and the review widget all go through :data:`OUTPUTS`,
so an output is named, stored and styled in one place. Per-modality outputs (``specific``,
``weights``) stand for one file and one layer per modality.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..inference.prediction import Prediction
from ..io.labels import LABEL_COLOURS
from ..io.modalities import DISPLAY_NAMES

SUMMARY_FILE = "summary.json"


@dataclass(frozen=True)
class Output:
    """One field of :class:`~napari_entrust.inference.prediction.Prediction` as a file and a layer."""

    key: str  #: the Prediction attribute, and the file stem (``trustmap`` -> ``trustmap.nii.gz``)
    description: str  #: the NIfTI header's description
    dtype: type = np.float32  #: how it is stored
    layer: str | None = None  #: napari layer name (None: not shown as a layer)
    kind: str = "image"  #: napari layer type: image or labels
    style: dict = field(default_factory=dict)  #: napari layer keyword arguments
    visible: bool = False  #: shown when a run ends
    per_modality: bool = False  #: a dict modality -> map: one file and one layer per modality
    stack: bool = False  #: channels first in memory (K hypotheses, 3 regions), last in the 4-D file
    labels: bool = False  #: label values, written in the chosen label convention
    term: str = ""  #: the method's term, shown after the plain-language layer name
    #: stored as ``dtype`` integers with a slope and intercept fitted to the map's range (every NIfTI
    #: reader applies them): a half or a quarter of the bytes to compress, where the steps (1/65535 or
    #: 1/255 of the range) are below what the map is read for
    scaled: bool = False

    def file_stem(self, modality: str | None = None) -> str:
        return f"{self.key}_{modality}" if self.per_modality else self.key

    def layer_name(self, modality: str | None = None) -> str:
        name = f"{self.layer} {DISPLAY_NAMES.get(modality, modality)}" if self.per_modality else self.layer
        return f"{name} ({self.term})" if self.term else name

    def describe(self, modality: str | None = None) -> str:
        """The NIfTI header's description of one file."""
        return f"{self.description} {modality}" if self.per_modality else self.description

    def role(self, modality: str | None = None) -> str:
        """The ``entrust_role`` a layer carries in its metadata (how the widgets find it)."""
        return f"{self.layer} {modality}" if self.per_modality else self.key


def label_colours() -> dict:
    """napari's direct label colours: NCR / ED / ET in their fixed colours, background clear,
    any other value magenta (it should not occur)."""
    return {0: "transparent", **LABEL_COLOURS, None: "magenta"}


def clear_at_zero(name: str, *colours: list[float]) -> dict:
    """A colormap that is transparent at 0 and rises through ``colours`` (RGBA): the map tints only
    where it has a value, and stays visible over bright tissue (translucent, not additive)."""
    return {
        "colormap": {"name": f"entrust {name}", "colors": [[0.0, 0.0, 0.0, 0.0], *colours]},
        "blending": "translucent",
    }


_LABELS = {"opacity": 0.6, "colormap": label_colours()}
#: violet to magenta to near white: none of the label colours (ET is yellow), visible over bright tissue
_TRUST = clear_at_zero("trust", [0.35, 0.2, 0.95, 0.55], [0.9, 0.2, 0.8, 0.85], [1.0, 0.85, 1.0, 1.0])
_WARM = clear_at_zero("warm", [0.8, 0.3, 0.1, 0.6], [1.0, 0.85, 0.3, 0.9])
_COOL = clear_at_zero("cool", [0.1, 0.5, 0.9, 0.6], [0.5, 0.95, 1.0, 0.9])
_GREEN = clear_at_zero("green", [0.2, 0.7, 0.3, 0.6], [0.7, 1.0, 0.6, 0.9])

#: in the order the files are written; layers come in the same order, stacks last
OUTPUTS: tuple[Output, ...] = (
    Output("mask", "label map", np.uint8, "mask", "labels", _LABELS, visible=True, labels=True),
    # uint16 with a slope: steps of 1.5e-5, far below what any metric resolves, in half the bytes
    Output("prob", "p(WT),p(TC),p(ET)", np.uint16, stack=True, scaled=True),
    Output("samples", "K hypotheses", np.uint8, "hypotheses", "labels", _LABELS, stack=True, labels=True),
    Output(
        "trustmap",
        "TrustMap (1 = most uncertain)",
        layer="TrustMap",
        visible=True,
        style={**_TRUST, "contrast_limits": (0.0, 1.0)},
    ),
    Output(
        "entropy",
        "total entropy (bits), max over regions",
        layer="total uncertainty",
        term="entropy",
        style={**_WARM, "contrast_limits": (0.0, 1.0)},
    ),
    Output(
        "mutual_info",
        "mutual information, max over regions",
        layer="hypotheses disagree",
        term="mutual information",
        style=_WARM,
    ),
    Output("probe", "conflict probe sensitivity", layer="sensitivity to conflict", term="probe", style=_WARM),
    Output("consensus", "|F_c|", np.uint8, layer="shared evidence", term="F_c", style=_GREEN, scaled=True),
    Output("conflict", "conflict map", np.uint16, layer="modalities disagree", term="F_cf", style=_COOL, scaled=True),
    Output(
        "specific", "|F_u|", np.uint8, layer="evidence only in", term="F_u", per_modality=True, style=_COOL, scaled=True
    ),
    Output(
        "weights",
        "modality weight",
        np.uint8,
        layer="weight of",
        term="w_m",
        per_modality=True,
        style={**_GREEN, "contrast_limits": (0.0, 1.0)},
        scaled=True,
    ),
)
BY_KEY = {o.key: o for o in OUTPUTS}


def entries(modalities) -> list[tuple[Output, str | None]]:
    """``(output, modality)`` for every file of a prediction (modality None for the others)."""
    return [(o, m) for o in OUTPUTS for m in (modalities if o.per_modality else (None,))]


def output_of(stem: str) -> tuple[Output, str | None] | None:
    """The output (and modality) a file stem such as ``weights_t1ce`` stands for; None if none."""
    if stem in BY_KEY:
        return BY_KEY[stem], None
    for o in OUTPUTS:
        if o.per_modality and stem.startswith(f"{o.key}_"):
            return o, stem[len(o.key) + 1 :]
    return None


def output_of_role(role: str) -> tuple[Output, str | None] | None:
    """The output (and modality) a layer with this ``entrust_role`` shows; None if none."""
    for o in OUTPUTS:
        if o.layer is not None and not o.per_modality and o.role() == role:
            return o, None
        if o.layer is not None and o.per_modality and role.startswith(f"{o.layer} "):
            return o, role[len(o.layer) + 1 :]
    return None


def prediction_files(modalities, out_dir: str | Path) -> dict[str, Path]:
    """The files a prediction writes (so they can be checked before any work is done), and summary.json."""
    out_dir = Path(out_dir)
    files = {o.file_stem(m): out_dir / f"{o.file_stem(m)}.nii.gz" for o, m in entries(modalities)}
    files["summary"] = out_dir / SUMMARY_FILE
    return files


def value(pred: Prediction, output: Output, modality: str | None = None) -> np.ndarray:
    """The array of one output of a prediction."""
    data = getattr(pred, output.key)
    return data[modality] if output.per_modality else data


def maps_of(pred: Prediction) -> dict[str, np.ndarray]:
    """Every output array of a prediction by file stem (``specific_t1``, ``trustmap``, ...)."""
    return {o.file_stem(m): value(pred, o, m) for o, m in entries(list(pred.specific))}


def from_maps(maps: dict[str, np.ndarray], modalities, **rest) -> Prediction:
    """A Prediction from arrays by file stem (the inverse of :func:`maps_of`)."""
    fields = {
        o.key: ({m: maps[o.file_stem(m)] for m in modalities} if o.per_modality else maps[o.key]) for o in OUTPUTS
    }
    return Prediction(**fields, **rest)
