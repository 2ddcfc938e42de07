"""Saving and loading models: weights, full config, normalisation statistics and versions.

Checkpoints are plain ``torch.save`` dictionaries of tensors and built-in types, read back with
``weights_only=True`` (no pickled code). Writing is atomic. The bundled model's sha256 is recorded
in ``resources/SHA256SUMS`` and checked on every load.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import torch

from .. import __version__
from ..errors import EntrustError
from ..io.files import atomic_write, sha256_of
from .config import ModelConfig
from .entrust_net import EnTrustNet
from .segdiff import Schedule
from .trustmap import CalibrationHead

BUNDLED_MODEL = "entrust_brats_phantom.pt"
FORMAT_VERSION = 1


def resources_dir() -> Path:
    """The bundled files: ``napari_entrust/resources`` (in the repository a link to ``resources/``)."""
    return Path(str(resources.files("napari_entrust") / "resources"))


def record_sha256(path: Path, digest: str) -> None:
    """Add or replace ``path``'s line in the SHA256SUMS beside it (atomically)."""
    sums = path.parent / "SHA256SUMS"
    lines = [
        ln
        for ln in (sums.read_text().splitlines() if sums.exists() else [])
        if ln.split()[-1:] != [path.name] and ln.strip()
    ]
    text = "\n".join(sorted([*lines, f"{digest}  {path.name}"], key=lambda ln: ln.split()[-1])) + "\n"
    atomic_write(sums, lambda tmp: tmp.write_text(text), overwrite=True)


def bundled_model_path() -> Path:
    """The model that ships with the package."""
    return resources_dir() / BUNDLED_MODEL


def recorded_sha256(name: str, folder: Path | None = None) -> str | None:
    """The sha256 listed for ``name`` in ``folder/SHA256SUMS`` (default: the bundled resources)."""
    sums = (folder or resources_dir()) / "SHA256SUMS"
    if not sums.exists():
        return None
    for line in sums.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == name:
            return parts[0]
    return None


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
    path = Path(path)
    atomic_write(path, lambda tmp: torch.save(state, tmp), overwrite=overwrite)
    return sha256_of(path)


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
    digest = sha256_of(path)
    expected = recorded_sha256(path.name, path.parent)  # bundled files, and any folder that keeps SHA256SUMS
    if expected is not None and expected != digest:
        raise EntrustError(
            f"{path}: sha256 {digest} does not match the recorded {expected}; the file is corrupt or was replaced"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        cfg = ModelConfig.from_dict(state["config"])
        net = EnTrustNet(cfg)
        net.load_state_dict(state["net"])
        calibration = CalibrationHead()
        calibration.load_state_dict(state["calibration"])
    except Exception as exc:  # noqa: BLE001 - a foreign, truncated or incompatible file
        raise EntrustError(f"{path}: not a usable napari-entrust checkpoint ({type(exc).__name__}: {exc})") from None
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
