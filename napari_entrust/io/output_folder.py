"""Output folders that are complete or absent: written in a hidden sibling, renamed into place.

Every command that writes a folder (predict, explain, evaluate, benchmark, sample) writes it as
``.<name>.partial-<pid>-<id>`` beside the target and renames it into place once every file is
written. On an error, Ctrl-C, SIGTERM or a full disk the sibling is removed, so a user never finds
half a result. ``--overwrite`` swaps the old folder for the new one only once the new one is
complete, and only when the old one holds nothing but outputs this command writes. A sibling left
by a killed process (``kill -9``, power loss) is removed by the next run into the same target.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import OutputError, exception_reason

PARTIAL = ".partial-"
OLD = ".replaced-"


def check_output_folder(
    target: str | os.PathLike, overwrite: bool, ours: Collection[str], *, shared: bool = False
) -> Path:
    """Before any work: refuse a target that is a file, that exists with content (unless
    ``overwrite``), that holds entries not named in ``ours`` (which ``overwrite`` would lose), or
    whose parent cannot be written. Returns the target as a Path.

    ``shared``: the target is a folder others write to too (``benchmarks/results``); only the
    entries named in ``ours`` must be absent (or ``overwrite``)."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise OutputError(target, "is a file; the output must be a folder")
    if shared and target.is_dir():
        taken = sorted(e for e in ours if (target / e).exists())
        if taken and not overwrite:
            raise OutputError(target / taken[0], "already exists; refusing to overwrite it (use --overwrite)")
    elif target.is_dir():
        entries = sorted(p.name for p in target.iterdir())
        if entries and not overwrite:
            raise OutputError(target, "already exists and is not empty; choose a new folder or pass --overwrite")
        foreign = [e for e in entries if e not in ours]
        if foreign:
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise OutputError(
                target,
                f"holds files this command did not write ({shown}); --overwrite would lose them: choose another folder",
            )
    parent = _existing_ancestor(target.parent)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(parent, "is not writable; choose another output folder")
    return target


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    if not path.is_dir():
        raise OutputError(path, "is a file; cannot create an output folder inside it")
    return path


def remove_stale_partials(target: Path) -> list[Path]:
    """Remove siblings a killed earlier run left for ``target`` (their process is gone); returns them."""
    removed = []
    if not target.parent.is_dir():
        return removed
    for prefix in (PARTIAL, OLD):
        for path in target.parent.glob(f".{target.name}{prefix}*"):
            pid = path.name[len(f".{target.name}{prefix}") :].split("-")[0]
            if pid.isdigit() and not _running(int(pid)):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


@contextmanager
def output_folder(
    target: str | os.PathLike, *, overwrite: bool, ours: Collection[str], shared: bool = False
) -> Iterator[Path]:
    """Yield an empty hidden sibling of ``target`` to write into; it replaces ``target`` when the
    block ends, and is removed if the block raises (any exception, KeyboardInterrupt included).

    ``shared`` (see :func:`check_output_folder`): each entry written is renamed into the existing
    target instead, one after the other once all are complete; the target's other entries stay."""
    target = check_output_folder(target, overwrite, ours, shared=shared)
    remove_stale_partials(target)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging = target.parent / f".{target.name}{PARTIAL}{tag}"
    try:
        staging.mkdir(parents=True)
    except OSError as exc:
        raise OutputError(target.parent, f"cannot create the output folder ({exception_reason(exc)})") from None
    try:
        yield staging
        if shared and target.is_dir():
            for entry in sorted(staging.iterdir()):
                _swap_in(entry, target / entry.name, target / f".{entry.name}{OLD}{tag}")
            staging.rmdir()
        else:
            _swap_in(staging, target, target.parent / f".{target.name}{OLD}{tag}")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _swap_in(staging: Path, target: Path, old: Path) -> None:
    """Rename ``staging`` to ``target``; an existing target is moved aside first and removed after."""
    try:
        if target.exists():
            os.replace(target, old)
        try:
            os.replace(staging, target)
        except OSError:
            if old.exists():
                os.replace(old, target)  # put the previous result back
            raise
    except OSError as exc:
        raise OutputError(target, f"cannot be written ({exception_reason(exc)})") from None
    if old.is_dir():
        shutil.rmtree(old, ignore_errors=True)
    elif old.exists():
        old.unlink()


def top_names(folder: str | os.PathLike, paths) -> set[str]:
    """The names directly in ``folder`` that ``paths`` (files inside it, at any depth) occupy."""
    folder = Path(folder)
    return {Path(p).relative_to(folder).parts[0] for p in paths}


def staged(paths: dict[str, Path], folder: Path, staging: Path) -> dict[str, Path]:
    """``paths`` inside ``folder`` moved to the same places inside ``staging``."""
    return {k: staging / Path(p).relative_to(folder) for k, p in paths.items()}
