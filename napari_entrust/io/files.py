"""Writing files so that nothing is ever half-written or silently replaced; file checksums.

Every output goes to a temporary file beside its target and is renamed into place, so a crash,
a full disk or an error leaves any existing file untouched; targets are checked before any work.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import uuid
from collections.abc import Callable
from pathlib import Path

from ..errors import OutputError, exception_reason

NIFTI_SUFFIXES = (".nii.gz", ".nii")
#: what an input that is a dangling or looping symbolic link is told
BROKEN_LINK = "is a symbolic link that leads nowhere (a loop, or its target is missing)"


def nifti_suffix(path: str | os.PathLike) -> str | None:
    """``".nii.gz"`` or ``".nii"`` when the name ends so (any case), else None."""
    name = Path(path).name.lower()
    return next((s for s in NIFTI_SUFFIXES if name.endswith(s)), None)


def strip_nifti_suffix(path: str | os.PathLike) -> str:
    """The file name without ``.nii.gz`` / ``.nii``."""
    name = Path(path).name
    suffix = nifti_suffix(name)
    return name[: -len(suffix)] if suffix else name


def check_writable(paths: list[Path], overwrite: bool) -> None:
    """Refuse before writing anything if an output exists (unless ``overwrite``) or is a folder."""
    for path in paths:
        if path.is_dir():
            raise OutputError(path, "is a folder; cannot replace it with a file")
        if path.exists() and not overwrite:
            raise OutputError(path, "already exists; refusing to overwrite it (use --overwrite)")


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object], *, overwrite: bool = False) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place.

    Nothing is left half-written: a crash or error leaves any existing ``path`` untouched.
    """
    path = Path(path)
    check_writable([path], overwrite)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(path.parent, f"cannot create the output folder ({exception_reason(exc)})") from None
    suffix = nifti_suffix(path) or path.suffix
    stem = path.name[: -len(suffix)] if suffix else path.name
    tmp = path.with_name(f".{stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(path, f"cannot be written ({exception_reason(exc)})") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_text(path: str | os.PathLike, text: str, *, overwrite: bool = False) -> Path:
    """Write a text file atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text), overwrite=overwrite)


def json_safe(value: object) -> object:
    """``value`` with every NaN/Inf float replaced by None (valid JSON for any parser)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


def write_json(path: str | os.PathLike, data: dict, *, overwrite: bool = False) -> Path:
    """JSON with NaN/Inf as null, indented, written atomically."""
    return write_text(path, json.dumps(json_safe(data), indent=2), overwrite=overwrite)


def sha256_of(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, read in 1 MB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
