"""The wheel carries napari.yaml and resources/, the manifest validates, the core needs no Qt."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
    )
    (whl,) = out.glob("napari_entrust-*.whl")
    return whl


def test_wheel_ships_manifest_resources_and_entry_points(wheel):
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert names.count("napari_entrust/napari.yaml") == 1
        assert "napari_entrust/resources/README.md" in names
        entry_points = zf.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
        metadata = zf.read(next(n for n in names if n.endswith("METADATA"))).decode()
        # the real manifest, not a symlink's target path
        assert zf.read("napari_entrust/napari.yaml").decode() == (ROOT / "napari.yaml").read_text()
    assert "napari-entrust = napari_entrust:napari.yaml" in entry_points
    assert "entrust = napari_entrust.cli:main" in entry_points
    assert "Classifier: Framework :: napari" in metadata
    core = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert not any(q in line.lower() for line in core for q in ("pyqt", "pyside"))  # no Qt binding in core deps
    assert any(line.startswith("Requires-Dist: torch") for line in core)


def test_manifest_resolves_from_a_normal_install_of_the_wheel(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        text=True,
    )
    code = (
        "import napari_entrust, npe2, pathlib, sys;"
        f"assert pathlib.Path(napari_entrust.__file__).is_relative_to({str(target)!r}), napari_entrust.__file__;"
        "m = npe2.PluginManifest.from_distribution('napari-entrust');"
        "c = m.contributions;"
        "print(m.name, len(c.sample_data), len(c.readers), len(c.writers), len(c.widgets))"
    )
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["napari-entrust", "2", "1", "2", "2"]


def test_npe2_validate_passes():
    npe2 = Path(sys.executable).with_name("npe2")
    cmd = [str(npe2)] if npe2.exists() else [sys.executable, "-m", "npe2"]
    result = subprocess.run([*cmd, "validate", "napari-entrust"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout


def test_every_module_outside_the_plugin_imports_neither_napari_nor_qt():
    """Imported for real in a fresh process (what they import at import time, transitively)."""
    core = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in (ROOT / "napari_entrust").rglob("*.py")
        if "plugin" not in p.relative_to(ROOT).parts and p.name != "__main__.py"
    )
    assert len(core) > 50
    code = (
        "import importlib, sys\n"
        f"for name in {core!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'napari', 'qtpy', 'PyQt5', 'PyQt6', 'PySide2', 'PySide6', 'magicgui'})\n"
        "print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
