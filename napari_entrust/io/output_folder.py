"""Output folders that are complete or absent: written in a hidden sibling, renamed into place.

Every command that writes a folder (predict, explain, evaluate, benchmark, sample) writes it as
``.<name>.partial-<pid>-<id>`` beside the target and renames it into place once every file is
written. On an error, Ctrl-C, SIGTERM or a full disk the sibling is removed, so a user never finds
half a result. ``--overwrite`` swaps the old folder for the new one only once the new one is
complete, and only when the old one holds nothing but outputs this command writes; the swap is
all or none, signals included. What a killed process (``kill -9``, power loss) left is cleared by
the next run into the same target, before it checks it: half-written siblings are removed, and a
previous result caught between the two renames of a swap is put back.
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
    """Before any work, once a killed run's leftovers are cleared: refuse a target that is a file,
    that exists with content (unless ``overwrite``), that holds entries not named in ``ours``
    (which ``overwrite`` would lose), or whose parent cannot be written. Returns it as a Path.

    ``shared``: the target is a folder others write to too (``benchmarks/results``); only the
    entries named in ``ours`` must be absent (or ``overwrite``)."""
    target = Path(target)
    remove_stale_partials(target, ours if shared else ())
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


def remove_stale_partials(target: Path, ours: Collection[str] = ()) -> list[Path]:
    """Clear what a killed earlier run left for ``target`` (its process is gone); returns what it removed.

    That is its hidden siblings, and inside a shared ``target`` the moved-aside old copies of the
    entries in ``ours``. An old copy whose target is missing (killed between the two renames of a
    swap) is put back instead: the previous result is never lost."""
    places = [(target.parent, target.name)] + [(target, name) for name in ours if target.is_dir()]
    removed = []
    for folder, name in places:
        if not folder.is_dir():
            continue
        for prefix in (PARTIAL, OLD):
            for path in folder.glob(f".{name}{prefix}*"):
                pid = path.name[len(f".{name}{prefix}") :].split("-")[0]
                if not pid.isdigit() or _running(int(pid)):
                    continue
                if prefix == OLD and not (folder / name).exists():
                    os.replace(path, folder / name)  # killed mid-swap: the previous result goes back
                else:
                    _remove(path)
                    removed.append(path)
    return removed


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


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
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging = target.parent / f".{target.name}{PARTIAL}{tag}"
    try:
        staging.mkdir(parents=True)
    except OSError as exc:
        raise OutputError(target.parent, f"cannot create the output folder ({exception_reason(exc)})") from None
    try:
        yield staging
        if shared and target.is_dir():
            _swap_in([(e, target / e.name, target / f".{e.name}{OLD}{tag}") for e in sorted(staging.iterdir())])
            staging.rmdir()
        else:
            _swap_in([(staging, target, target.parent / f".{target.name}{OLD}{tag}")])
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _swap_in(moves: list[tuple[Path, Path, Path]]) -> None:
    """Rename each ``(staged, target, old)`` staged entry onto its target, all or none.

    Existing targets are moved aside to ``old`` first and removed only once every entry is in
    place; on any failure or signal, what was placed goes back to staging and the old ones back."""
    aside, placed, current = [], [], None
    try:
        for staged_entry, target, old in moves:
            current = target
            if target.exists():
                os.replace(target, old)
                aside.append((old, target))
            os.replace(staged_entry, target)
            placed.append((target, staged_entry))
    except BaseException as exc:
        for target, staged_entry in reversed(placed):
            os.replace(target, staged_entry)
        for old, target in reversed(aside):
            os.replace(old, target)
        if isinstance(exc, OSError):
            raise OutputError(current, f"cannot be written ({exception_reason(exc)})") from None
        raise
    for old, _target in aside:
        _remove(old)


def top_names(folder: str | os.PathLike, paths) -> set[str]:
    """The names directly in ``folder`` that ``paths`` (files inside it, at any depth) occupy."""
    folder = Path(folder)
    return {Path(p).relative_to(folder).parts[0] for p in paths}


def staged(paths: dict[str, Path], folder: Path, staging: Path) -> dict[str, Path]:
    """``paths`` inside ``folder`` moved to the same places inside ``staging``."""
    return {k: staging / Path(p).relative_to(folder) for k, p in paths.items()}
