"""The command line starts fast: no command imports what it does not use.

``entrust --help`` (and every command's ``--help``) must not import torch, MONAI, nibabel or SciPy,
and ``entrust info`` (headers and label counts) must not import torch or MONAI. Each check runs in
a fresh interpreter, so modules imported by other tests cannot hide an import.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "monai", "nibabel", "scipy", "matplotlib", "skimage", "napari", "qtpy")
COMMANDS = ("sample", "info", "predict", "explain", "train", "evaluate", "benchmark")


def imported_after(argv: list[str]) -> tuple[int, list[str]]:
    """Run ``entrust ARGV`` in a fresh interpreter; its exit status and which HEAVY packages it imported."""
    code = (
        "import json, sys\n"
        "from napari_entrust.cli import main\n"
        "try:\n"
        f"    status = main({argv!r})\n"
        "except SystemExit as exc:\n"
        "    status = exc.code\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(json.dumps([status, heavy]), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    status, heavy = json.loads(done.stderr.strip().splitlines()[-1])
    return status, heavy


@pytest.mark.parametrize("argv", [["--help"], *([c, "--help"] for c in COMMANDS)], ids=lambda a: " ".join(a))
def test_help_imports_no_heavy_package(argv):
    status, heavy = imported_after(argv)
    assert status == 0
    assert heavy == [], f"entrust {' '.join(argv)} imported {heavy}"


def test_a_usage_error_imports_no_heavy_package():
    status, heavy = imported_after(["predict", "--samples", "0", "--out", "x", "case"])
    assert status == 2
    assert heavy == []


def test_info_reads_headers_without_torch(brats_case_dir):
    status, heavy = imported_after(["info", str(brats_case_dir), "--json"])
    assert status == 0
    assert "torch" not in heavy and "monai" not in heavy
