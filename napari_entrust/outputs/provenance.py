"""Where a result came from: input file hashes, model, parameters and the user's edits, as JSON.

A corrected mask is only trustworthy if a reader can tell which inputs, which model and which
decisions made it; the sidecar written next to every saved mask records exactly that.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
from pathlib import Path

from .. import __version__
from ..io.files import sha256_of, strip_nifti_suffix, write_text


def input_hashes(sources: dict[str, str], series: dict[str, list[str]] | None = None) -> dict[str, dict]:
    """Per input (modality or labels): its path and sha256, or why no hash could be taken. An input
    read from a DICOM series (``series``: its files in slice order) gets the sha256 of its files'
    sha256s in that order."""
    out = {}
    for name, path in sources.items():
        entry: dict = {"path": str(path)}
        p = Path(str(path))
        files = (series or {}).get(name)
        if files and all(Path(f).is_file() for f in files):
            entry["sha256"] = hashlib.sha256("".join(sha256_of(f) for f in files).encode()).hexdigest()
            entry["files"] = len(files)
        elif p.is_file():
            entry["sha256"] = sha256_of(p)
        else:
            entry["sha256"] = None
            entry["note"] = "not a file (generated in memory or moved)"
        out[name] = entry
    return out


def now() -> str:
    """Local time with its UTC offset, ISO 8601 to the second."""
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def sidecar_path(nifti_path: str | os.PathLike) -> Path:
    """``mask.nii.gz`` -> ``mask.json`` beside it (``mask.seg.dcm`` -> ``mask.seg.json``)."""
    p = Path(nifti_path)
    stem = p.name[: -len(".dcm")] if p.name.lower().endswith(".dcm") else strip_nifti_suffix(p)
    return p.with_name(stem + ".json")


def write_sidecar(nifti_path: str | os.PathLike, record: dict, *, overwrite: bool = False) -> Path:
    """Write the provenance record beside a saved NIfTI (atomically)."""
    record = {"written_by": f"napari-entrust {__version__}", "written_at": now(), **record}
    path = sidecar_path(nifti_path)
    return write_text(path, json.dumps(record, indent=2, default=str), overwrite=overwrite)
