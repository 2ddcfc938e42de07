"""The provenance sidecar beside a saved mask: input files with their hashes."""

from __future__ import annotations

import json

import pytest

from napari_entrust.io.files import sha256_of
from napari_entrust.outputs.provenance import input_hashes, sidecar_path, write_sidecar


def test_provenance_sidecar_names_inputs_with_hashes(tmp_path):
    src = tmp_path / "t1.nii.gz"
    src.write_bytes(b"scan")
    hashes = input_hashes({"t1": str(src), "t2": "(in memory)"})
    assert hashes["t1"]["sha256"] == sha256_of(src) and hashes["t2"]["sha256"] is None
    out = write_sidecar(tmp_path / "mask.nii.gz", {"inputs": hashes})
    assert out == sidecar_path(tmp_path / "mask.nii.gz") == tmp_path / "mask.json"
    record = json.loads(out.read_text())
    assert record["inputs"]["t1"]["path"] == str(src) and "written_at" in record
    with pytest.raises(OSError, match="already exists"):
        write_sidecar(tmp_path / "mask.nii.gz", {})
