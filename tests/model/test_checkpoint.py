"""Checkpoints: the bundled model is recorded and loads safely; round trip; bad files refused."""

from __future__ import annotations

import pytest
import torch

from napari_entrust.errors import EntrustError
from napari_entrust.io.files import sha256_of
from napari_entrust.model.checkpoint import bundled_model_path, load_checkpoint, save_checkpoint
from napari_entrust.model.checkpoint_file import recorded_sha256
from tests.helpers import TINY


def test_checkpoint_round_trip_and_bad_files(tiny, tmp_path, monkeypatch):
    path = tmp_path / "m.pt"
    digest = save_checkpoint(path, tiny.net, tiny.calibration, training={"note": "test"})
    loaded = load_checkpoint(path)
    assert loaded.sha256 == digest and loaded.config == TINY and loaded.training == {"note": "test"}
    for k, v in tiny.net.state_dict().items():
        torch.testing.assert_close(loaded.net.state_dict()[k], v)
    with pytest.raises(EntrustError, match="already exists"):
        save_checkpoint(path, tiny.net, tiny.calibration)
    truncated = tmp_path / "bad.pt"
    truncated.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(EntrustError, match="not a napari-entrust checkpoint"):
        load_checkpoint(truncated)
    pickled = tmp_path / "code.pt"
    torch.save({"config": TINY.to_dict(), "net": {}, "payload": print}, pickled)  # arbitrary object: refused
    with pytest.raises(EntrustError, match="cannot be loaded safely") as refused:
        load_checkpoint(pickled)
    assert "weights_only" not in str(refused.value)  # torch's advice never reaches a user
    with pytest.raises(EntrustError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pt")
    # a bundled model whose bytes do not match the recorded sha256 is refused
    resources = tmp_path / "resources"
    resources.mkdir()
    (resources / "entrust_brats_phantom.pt").write_bytes(path.read_bytes())
    (resources / "SHA256SUMS").write_text("0" * 64 + "  entrust_brats_phantom.pt\n")
    monkeypatch.setattr("napari_entrust.model.checkpoint.resources_dir", lambda: resources)
    with pytest.raises(EntrustError, match="does not match the recorded"):
        load_checkpoint(resources / "entrust_brats_phantom.pt")


def test_bundled_model_is_recorded_and_loads_safely():
    path = bundled_model_path()
    assert path.exists(), "the bundled model must ship in resources/"
    assert recorded_sha256(path.name, path.parent) == sha256_of(path)
    bundle = load_checkpoint()
    assert bundle.config.modalities == ("t1", "t1ce", "t2", "flair")
    assert path.stat().st_size < 10 * 2**20
    assert bundle.training["train_config"]["iterations"] > 0 and bundle.intensity_stats["flair"]["high_mean"] > 0


def test_every_bundled_checkpoint_loads_with_its_recorded_sha256():
    """Every file in resources/, resources/baselines/ and resources/candidates/ is listed in its
    SHA256SUMS and loads unchanged."""
    from napari_entrust.benchmark.baselines import load_baseline
    from napari_entrust.model.checkpoint import resources_dir

    files = [p for folder in ("", "baselines", "candidates") for p in sorted((resources_dir() / folder).glob("*.pt"))]
    assert len(files) >= 12
    for path in files:
        assert recorded_sha256(path.name, path.parent) == sha256_of(path), path.name
        loaded = load_baseline(path) if path.name.startswith("unet") else load_checkpoint(path)
        assert loaded.sha256 == sha256_of(path)


def test_a_checkpoint_with_one_altered_weight_is_refused_wherever_it_is(tiny, tmp_path):
    """Issue 18: a user's own checkpoint carries a digest of its payload, checked on every load."""
    path = tmp_path / "mine.pt"
    save_checkpoint(path, tiny.net, tiny.calibration)
    state = torch.load(path, weights_only=True)
    name = next(iter(state["net"]))
    state["net"][name] = state["net"][name].clone()
    state["net"][name].view(-1)[0] += 1e-3  # one weight changed, the saved digest kept
    altered = tmp_path / "altered.pt"
    torch.save(state, altered)
    with pytest.raises(EntrustError, match="do not match the digest") as refused:
        load_checkpoint(altered)
    assert str(altered) in str(refused.value)
    # a copy of a bundled file (no digest inside) away from its SHA256SUMS cannot be checked: refused
    copy = tmp_path / "copy" / bundled_model_path().name
    copy.parent.mkdir()
    copy.write_bytes(bundled_model_path().read_bytes())
    with pytest.raises(EntrustError, match="cannot be checked"):
        load_checkpoint(copy)
    with pytest.raises(EntrustError, match="is a folder"):
        load_checkpoint(tmp_path)
