"""napari reader: a BraTS case folder or an MSD 4-D NIfTI -> one Image layer per modality (+ labels)."""

from __future__ import annotations

from pathlib import Path

from .errors import InputError
from .io import find_case_files, is_msd_image, load_case
from .layers import case_layers


def get_reader(path: str | list[str]):
    """Return a reader if ``path`` looks like a case we can load, else None (napari tries others)."""
    if isinstance(path, list):
        if len(path) != 1:
            return None
        path = path[0]
    path = Path(path)
    try:
        find_case_files(path)
    except InputError:
        return None
    if path.is_file() and not is_msd_image(path):
        return None  # a single 3-D volume: not a whole case, leave it to other readers
    return read_case


def read_case(path: str | list[str]):
    path = path[0] if isinstance(path, list) else path
    case = load_case(Path(path))
    return case_layers(case)
