"""Training under torchrun: DistributedDataParallel keeps the ranks' weights identical, each rank on its share."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.helpers import ROOT, torchrun


def test_distributed_training_keeps_ranks_identical(tmp_path):
    """Two CPU processes (gloo) train a tiny model for a few steps; both end with the same weights."""
    cmd = torchrun(2, 29517, str(Path(__file__).with_name("ddp_worker.py")), str(tmp_path))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}  # the worker imports tests.helpers
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world"] == ranks[1]["world"] == 2
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    assert ranks[0]["first_loss"] != ranks[1]["first_loss"]  # each rank trained on its own crops
    assert len(ranks[0]["share"]) == 2 and not set(ranks[0]["share"]) & set(ranks[1]["share"])  # of its own cases
    assert ranks[0]["weights_sha256"] != ranks[0]["initial_sha256"]  # and the weights did move
