"""The last run's normalised inputs, encoding and hypotheses, kept so that re-sampling with a user's
edits redoes only what the edits change.

Re-sampling changes only which voxels are held fixed; the case, the model and the encoders' output
are the same as in the run before, and so is every slice without a fixed voxel. Each stage is kept
under a key of what it depends on: the inputs' key is a digest of every image, the grid's shape and
spacing, and the checkpoint's sha256 (so any change to an image or the model starts afresh); the
encoding's adds the device and the conflict scale; the hypotheses' adds every sampling setting but
the harmonisation's, which acts only on slices with fixed voxels (never reused).
"""

from __future__ import annotations

import hashlib
import threading

import numpy as np

from ..io.case import Case
from ..model.checkpoint import ModelBundle
from ..model.config import SamplingConfig

#: settings that change only the slices holding fixed voxels, which are always drawn again
_HARMONISATION = ("inpaint_jumps", "harmonised_steps")


def inputs_key(case: Case, bundle: ModelBundle) -> str:
    """What normalising a case depends on, as one digest (about 20 ms for a 2 mm case)."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(case.images):
        image = np.ascontiguousarray(case.images[name])
        digest.update(f"{name}|{image.dtype}|{image.shape}".encode())
        digest.update(memoryview(image).cast("B"))
    digest.update(f"{tuple(case.shape)}|{tuple(map(float, case.spacing))}|{bundle.sha256}".encode())
    return digest.hexdigest()


def encoding_key(inputs: str, bundle: ModelBundle, sampling: SamplingConfig) -> str:
    """What an encoding depends on: the inputs (and model), the device and the conflict scale."""
    return f"{inputs}|{next(bundle.net.parameters()).device}|{sampling.conflict_scale}"


def hypotheses_key(encoding: str, sampling: SamplingConfig) -> str:
    """What a slice drawn without fixed voxels depends on: the encoding and the sampling settings."""
    settings = sorted((k, v) for k, v in vars(sampling).items() if k not in _HARMONISATION)
    return f"{encoding}|{settings!r}"


class RunCache:
    """The last value of each stage (``"normalised"``, ``"encoding"``, ``"hypotheses"``) with its key;
    shared by the widgets' runs, so it is guarded by a lock. Only the last of each is kept: together
    they are tens of MB."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: dict[str, tuple[str, object]] = {}

    def get(self, stage: str, key: str) -> object | None:
        """The kept value of ``stage`` if it was made under ``key``, else None."""
        with self._lock:
            kept = self._kept.get(stage)
            return kept[1] if kept is not None and kept[0] == key else None

    def keep(self, stage: str, key: str, value: object) -> None:
        with self._lock:
            self._kept[stage] = (key, value)
