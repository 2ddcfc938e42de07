"""Checkpoint files: written atomically with a digest of their payload, read back only when intact.

A checkpoint is a ``torch.save`` dictionary of tensors and built-in types, read with
``weights_only=True`` (no pickled code runs). :func:`write_state` adds :func:`payload_digest`, so
any copy of the file can be checked wherever it goes; :func:`read_state` refuses a file whose
payload does not match it, or whose bytes do not match a ``SHA256SUMS`` beside it (the bundled
files). A file with neither cannot be checked and is refused. Every refusal is one line; torch's
own advice (``weights_only=False``) never reaches a user.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import torch

from ..errors import EntrustError, exception_reason
from ..io.files import atomic_write, sha256_of

DIGEST_KEY = "payload_sha256"


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


def recorded_sha256(name: str, folder: Path) -> str | None:
    """The sha256 listed for ``name`` in ``folder/SHA256SUMS``, if any."""
    sums = folder / "SHA256SUMS"
    if not sums.exists():
        return None
    for line in sums.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == name:
            return parts[0]
    return None


def payload_digest(state: dict) -> str:
    """sha256 of everything a checkpoint holds but this digest (tensors by dtype, shape and bytes;
    the rest as sorted JSON): a flipped weight byte changes it, wherever the file is copied."""
    h = hashlib.sha256()

    def feed(value) -> None:
        if isinstance(value, torch.Tensor):
            t = value.detach().cpu().contiguous()
            h.update(f"tensor {t.dtype} {tuple(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(value, dict):
            for key in sorted(value, key=str):
                if key != DIGEST_KEY:
                    h.update(f"key {key!s}".encode())
                    feed(value[key])
        elif isinstance(value, (list, tuple)):
            h.update(f"list {len(value)}".encode())
            for item in value:
                feed(item)
        else:
            h.update(json.dumps(value, sort_keys=True, default=str).encode())

    feed(state)
    return h.hexdigest()


def check_integrity(path: Path, state: dict, vouched: bool) -> None:
    """Refuse a checkpoint whose payload does not match its digest, or that has none and no SHA256SUMS vouches for."""
    recorded = state.get(DIGEST_KEY)
    if recorded is None and not vouched:
        raise EntrustError(
            f"{path}: carries no integrity digest and no SHA256SUMS beside it lists it, so it cannot be checked;"
            " use a checkpoint written by `entrust train`, or keep a bundled file beside its SHA256SUMS"
        )
    if recorded is not None and recorded != payload_digest(state):
        raise EntrustError(
            f"{path}: its weights do not match the digest it was saved with; the file is corrupt or was altered"
        )


def write_state(path: str | os.PathLike, state: dict, *, overwrite: bool = False) -> str:
    """Save ``state`` with its payload digest, atomically; returns the file's sha256."""
    path = Path(path)
    state = {**state, DIGEST_KEY: payload_digest(state)}
    atomic_write(path, lambda tmp: torch.save(state, tmp), overwrite=overwrite)
    return sha256_of(path)


def _saved_by_torch(path: Path) -> bool:
    """``torch.save`` writes a zip archive (a pickle in files of old versions)."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    return head == b"PK\x03\x04" or head[:1] == b"\x80"


def read_state(path: Path, what: str) -> tuple[dict, str]:
    """The checked contents of a checkpoint file and its sha256; ``what`` names the kind in errors."""
    if not path.is_file():
        raise EntrustError(f"{path}: is a folder, not a {what} file")
    digest = sha256_of(path)
    expected = recorded_sha256(path.name, path.parent)  # bundled files, and any folder that keeps SHA256SUMS
    if expected is not None and expected != digest:
        raise EntrustError(
            f"{path}: sha256 {digest} does not match the recorded {expected}; the file is corrupt or was replaced"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's message advises weights_only=False: never
        if not _saved_by_torch(path):
            raise EntrustError(f"{path}: not a {what} (not a file PyTorch saved)") from None
        raise EntrustError(f"{path}: not a {what} (it holds objects that cannot be loaded safely)") from None
    except Exception as exc:  # noqa: BLE001 - a foreign or truncated file
        raise EntrustError(f"{path}: not a {what} ({exception_reason(exc)})") from None
    if not isinstance(state, dict) or "config" not in state:
        raise EntrustError(f"{path}: not a {what} (no model configuration in it)")
    check_integrity(path, state, vouched=expected is not None)
    return state, digest
