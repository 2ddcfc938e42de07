"""Saving and loading models: weights, full config, normalisation statistics and versions.

Checkpoints are plain ``torch.save`` dictionaries of tensors and built-in types, read back with
``weights_only=True`` (no pickled code), through :mod:`.checkpoint_file`: written atomically with
a digest of their own payload, checked on every load; the bundled files' sha256 are also recorded
in ``resources/SHA256SUMS`` and checked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch

from .. import __version__
from ..errors import EntrustError, exception_reason
from .checkpoint_file import read_state, write_state
from .config import ModelConfig
from .entrust_net import EnTrustNet
from .segdiff import Schedule
from .trustmap import CalibrationHead

BUNDLED_MODEL = "entrust_brats_phantom.pt"
FORMAT_VERSION = 1


def resources_dir() -> Path:
    """The bundled files: ``napari_entrust/resources`` (in the repository a link to ``resources/``)."""
    return Path(str(resources.files("napari_entrust") / "resources"))


def bundled_model_path() -> Path:
    """The model that ships with the package."""
    return resources_dir() / BUNDLED_MODEL


@dataclass
class ModelBundle:
    """A loaded model, ready for the engine."""

    net: EnTrustNet
    calibration: CalibrationHead
    config: ModelConfig
    schedule: Schedule
    path: Path
    sha256: str
    intensity_stats: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    validity: dict = field(
        default_factory=dict
    )  #: input-validity statistics (:mod:`napari_entrust.inference.validity`)

    def to(self, device: torch.device) -> ModelBundle:
        self.net.to(device)
        self.calibration.to(device)
        return self


def save_checkpoint(
    path: str | os.PathLike,
    net: EnTrustNet,
    calibration: CalibrationHead,
    *,
    intensity_stats: dict | None = None,
    training: dict | None = None,
    validity: dict | None = None,
    overwrite: bool = False,
) -> str:
    """Write a checkpoint atomically; returns its sha256."""
    import monai

    state = {
        "format_version": FORMAT_VERSION,
        "config": net.cfg.to_dict(),
        "net": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "calibration": {k: v.detach().cpu() for k, v in calibration.state_dict().items()},
        "intensity_stats": intensity_stats or {},
        "validity": validity or {},
        "training": training or {},
        "versions": {"napari_entrust": __version__, "torch": str(torch.__version__), "monai": str(monai.__version__)},
    }
    return write_state(path, state, overwrite=overwrite)


def load_checkpoint(path: str | os.PathLike | None = None, device: torch.device | str = "cpu") -> ModelBundle:
    """Load a checkpoint (default: the bundled model), checking its sha256 against a SHA256SUMS beside it."""
    path = Path(path) if path is not None else bundled_model_path()
    if not path.exists():
        hint = (
            " (the bundled model is missing from this installation; reinstall napari-entrust)"
            if path == bundled_model_path()
            else ""
        )
        raise EntrustError(f"{path}: model file does not exist{hint}")
    state, digest = read_state(path, "napari-entrust checkpoint")
    try:
        cfg = ModelConfig.from_dict(state["config"])
        net = EnTrustNet(cfg)
        net.load_state_dict(state["net"])
        calibration = CalibrationHead()
        calibration.load_state_dict(state["calibration"])
    except Exception as exc:  # noqa: BLE001 - a foreign, truncated or incompatible file
        raise EntrustError(f"{path}: not a usable napari-entrust checkpoint ({exception_reason(exc)})") from None
    net.eval()
    calibration.eval()
    bundle = ModelBundle(
        net,
        calibration,
        cfg,
        Schedule(cfg),
        path,
        digest,
        state.get("intensity_stats", {}),
        state.get("training", {}),
        state.get("versions", {}),
        state.get("validity", {}),
    )
    return bundle.to(torch.device(device))
