"""Device choice: auto picks cuda, then mps, then cpu; every entry point lets the user override it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import EntrustError

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")


def available_devices() -> list[str]:
    """The device names that work on this machine (for the widget's dropdown)."""
    import torch

    found = ["cpu"]
    if torch.cuda.is_available():
        found.insert(0, "cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        found.insert(0, "mps")
    return ["auto", *found]


def resolve_device(name: str = "auto") -> torch.device:
    """The torch device for a name; ``auto`` picks cuda, then mps, then cpu. Asking for one that is
    absent is an error, not a silent fall-back."""
    import torch  # here, so that parsing ``--device`` costs no torch import

    if name not in DEVICE_CHOICES:
        raise EntrustError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise EntrustError("device cuda was asked for, but no CUDA GPU is available here (use --device cpu or auto)")
    if name == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise EntrustError("device mps was asked for, but Apple MPS is not available here (use --device cpu or auto)")
    return torch.device(name)
