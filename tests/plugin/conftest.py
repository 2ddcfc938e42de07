"""What the plugin tests share: an isolated recovery folder, and the sample opened with both widgets."""

from __future__ import annotations

import pytest

from tests.helpers import dock_widgets


@pytest.fixture(autouse=True)
def _recovery_dir(tmp_path, monkeypatch):
    """Autosaves go to the test's own folder, never to the user's cache."""
    monkeypatch.setenv("ENTRUST_RECOVERY_DIR", str(tmp_path / "recovery"))


@pytest.fixture
def opened_sample(make_napari_viewer, qtbot):
    viewer = make_napari_viewer(show=True)
    viewer.open_sample("napari-entrust", "phantom_2mm")
    run, review = dock_widgets(viewer)
    return viewer, run, review
