"""Autosaved corrections: a round trip, and keys that follow the case's files."""

from __future__ import annotations

import numpy as np
import pytest

from napari_entrust.review import recovery


def test_recovery_round_trip_and_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("ENTRUST_RECOVERY_DIR", str(tmp_path / "rec"))
    src = tmp_path / "t1.nii.gz"
    src.write_bytes(b"abc")
    key = recovery.case_key("case", {"t1": str(src)})
    assert key == recovery.case_key("case", {"t1": str(src)})
    assert key != recovery.case_key("other", {"t1": str(src)})
    assert recovery.find_recovery(key) is None
    labels = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    decided = labels > 10
    path = recovery.autosave(key, labels, {"edits": [{"action": "erase"}]}, predicted=labels * 0, decided=decided)
    assert path.parent == tmp_path / "rec" and not list(path.parent.glob(".*tmp*"))
    rec = recovery.load_recovery(recovery.find_recovery(key))
    np.testing.assert_array_equal(rec.labels, labels)
    np.testing.assert_array_equal(rec.decided, decided)
    assert rec.record["edits"][0]["action"] == "erase"
    src.write_bytes(b"abcd")  # the input changed: a different case as far as recovery goes
    assert recovery.case_key("case", {"t1": str(src)}) != key
    path.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="recovery file cannot be read"):
        recovery.load_recovery(path)
    recovery.discard(key)
    assert recovery.find_recovery(key) is None
