"""Shared fixtures: phantom cases (generated once per session) and a tiny random model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from napari_entrust.model.checkpoint import ModelBundle
from napari_entrust.model.entrust_net import EnTrustNet
from napari_entrust.model.segdiff import Schedule
from napari_entrust.model.trustmap import CalibrationHead
from napari_entrust.phantom.phantom import make_phantom
from napari_entrust.phantom.writing import save_phantom
from tests.helpers import TINY


@pytest.fixture(scope="session")
def phantom2():
    """A 2 mm phantom without misregistration, so per-voxel physics checks are clean."""
    return make_phantom(seed=11, spacing=2, misregistration=False)


@pytest.fixture(scope="session")
def phantom2_misregistered():
    return make_phantom(seed=11, spacing=2, misregistration=True)


@pytest.fixture(scope="session")
def phantom1():
    """The same seed at the native 1 mm grid."""
    return make_phantom(seed=11, spacing=1, misregistration=False)


@pytest.fixture(scope="session")
def brats_case_dir(tmp_path_factory, phantom2) -> Path:
    out = tmp_path_factory.mktemp("brats2021")
    save_phantom(phantom2, out, "brats2021")
    return out


@pytest.fixture(scope="module")
def tiny() -> ModelBundle:
    """A small random model (the architecture of :data:`tests.helpers.TINY`): fast, and deterministic."""
    torch.manual_seed(0)
    net, head = EnTrustNet(TINY).eval(), CalibrationHead().eval()
    return ModelBundle(net, head, TINY, Schedule(TINY), Path("tiny"), "0" * 64)
