"""How the benchmark models that are not bundled are trained, like the bundled one.

Every model is trained on the same phantom cases with the same crops, augmentation, rater draws,
optimiser and iteration budget (:func:`napari_entrust.training.loop.optimise`); only the network and
its loss differ.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from pathlib import Path

import torch

from ..errors import EntrustError
from ..model.checkpoint import save_checkpoint
from ..model.checkpoint_file import record_sha256
from ..model.config import ModelConfig
from ..progress import Steps, rescaled
from .methods import TrainedModel

log = logging.getLogger(__name__)


def train_models(
    todo: list[TrainedModel],
    folder: Path,
    *,
    phantoms: int = 40,
    calibration_phantoms: int = 8,
    iterations: int = 4000,
    cache: Path | None = None,
    device: torch.device | None = None,
) -> Steps[list[Path]]:
    """Train the given models like the bundled one (same phantoms, seeds, budget) and save them."""
    from ..training.cases import CALIBRATION_SEED0, TRAIN_SEED0, phantom_cases

    device = device or torch.device("cpu")
    folder.mkdir(parents=True, exist_ok=True)
    if not todo:
        return []
    train_cases = phantom_cases(range(TRAIN_SEED0, TRAIN_SEED0 + phantoms), cache_dir=cache)
    written = []
    for i, spec in enumerate(todo):
        path = folder / spec.file
        if spec.family == "unet":
            work = _train_unet(spec, path, train_cases, iterations, device)
        elif spec.family == "entrust":
            calib = phantom_cases(range(CALIBRATION_SEED0, CALIBRATION_SEED0 + calibration_phantoms), cache_dir=cache)
            work = _train_entrust(spec, path, train_cases, calib, iterations, device)
        else:
            raise EntrustError(f"unknown model family {spec.family!r}")
        digest, record = yield from rescaled(work, i / len(todo), 1 / len(todo), f"{spec.file}: ")
        record_sha256(path, digest)
        log.info(f"wrote {path} (sha256 {digest}) after {record['total_seconds']} s")
        written.append(path)
    return written


def _train_unet(
    spec: TrainedModel, path: Path, train_cases, iterations: int, device: torch.device
) -> Steps[tuple[str, dict]]:
    from ..training.train_config import TrainConfig
    from .baselines import BaselineConfig, save_baseline, train_unet

    started = time.time()
    cfg = BaselineConfig(dropout=spec.dropout)
    net, record, _ = yield from train_unet(
        cfg, TrainConfig(iterations=iterations, seed=spec.seed), train_cases, device=device
    )
    record.update(_provenance(spec, started))
    return save_baseline(path, net, cfg, record), record


def _train_entrust(
    spec: TrainedModel, path: Path, train_cases, calibration_cases, iterations: int, device: torch.device
) -> Steps[tuple[str, dict]]:
    from ..training.pipeline import checkpoint_statistics, train
    from ..training.train_config import TrainConfig

    started = time.time()
    cfg = dataclasses.replace(ModelConfig(), **spec.overrides)
    tc = TrainConfig(iterations=iterations, seed=spec.seed)
    net, head, record, _ = yield from rescaled(train(cfg, tc, train_cases, calibration_cases, device=device), 0.0, 0.95)
    record.update(_provenance(spec, started))
    statistics = yield from rescaled(checkpoint_statistics(net, train_cases, calibration_cases), 0.95, 0.05)
    return save_checkpoint(path, net, head, training=record, **statistics), record


def _provenance(spec: TrainedModel, started: float) -> dict:
    """How and when a benchmark model was trained (kept in its file)."""
    return {
        "benchmark_model": dataclasses.asdict(spec),
        "threads": torch.get_num_threads(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started)),
        "command": " ".join(["entrust", *sys.argv[1:]]) if "benchmark" in sys.argv[1:2] else None,
    }
