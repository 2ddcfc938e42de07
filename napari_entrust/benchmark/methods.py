"""The models ``entrust benchmark`` compares, and how the ones that are not bundled are trained.

Every model is trained on the same phantom cases with the same crops, augmentation, rater draws,
optimiser and iteration budget (:func:`napari_entrust.training.loop.optimise`); only the network and
its loss differ. The files live in one folder (default ``resources/baselines``) with a
SHA256SUMS that is checked on load.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import EntrustError
from ..model.checkpoint import resources_dir, save_checkpoint
from ..model.checkpoint_file import record_sha256
from ..model.config import ModelConfig
from ..progress import Steps, rescaled

log = logging.getLogger(__name__)

ENSEMBLE_SIZE = 5
MC_DROPOUT_RATE = 0.2
MC_PASSES = 8


def baselines_dir() -> Path:
    """The bundled baseline and ablation weights (``resources/baselines``)."""
    return resources_dir() / "baselines"


@dataclass(frozen=True)
class TrainedModel:
    """One file the benchmark needs: an EnTrust ablation (config overrides) or a UNet (seed, dropout)."""

    file: str
    family: str  #: entrust | unet
    seed: int = 0
    overrides: dict = field(default_factory=dict)  #: ModelConfig fields for EnTrust ablations
    dropout: float = 0.0


TRAINED_MODELS = (
    *(TrainedModel(f"unet_seed{i}.pt", "unet", seed=i) for i in range(ENSEMBLE_SIZE)),
    TrainedModel("unet_mcdropout.pt", "unet", dropout=MC_DROPOUT_RATE),
    TrainedModel("entrust_no_conflict.pt", "entrust", overrides={"conflict_branch": False}),
    TrainedModel("entrust_hsic.pt", "entrust", overrides={"independence": "hsic"}),
)


@dataclass(frozen=True)
class Method:
    """A row of the benchmark table."""

    key: str  #: output folder name
    name: str
    family: str  #: entrust | unet
    files: tuple[str | None, ...]  #: model files in the baselines folder (None: the bundled model)
    sampling: dict = field(default_factory=dict)  #: SamplingConfig overrides (EnTrust)
    passes: int = 1  #: MC-dropout passes (UNet)
    at_once: bool = True  #: ensemble members held in memory together (False: loaded one at a time)


METHODS = (
    Method("entrust", "EnTrust", "entrust", (None,)),
    Method("entrust_fcf0", "EnTrust, F_cf zeroed at inference", "entrust", (None,), {"conflict_scale": 0.0}),
    Method("entrust_uncalibrated", "EnTrust, no calibration head", "entrust", (None,), {"calibrate": False}),
    Method("entrust_no_conflict", "EnTrust, trained without conflict branch", "entrust", ("entrust_no_conflict.pt",)),
    Method("entrust_hsic", "EnTrust, HSIC independence", "entrust", ("entrust_hsic.pt",)),
    Method("unet", "UNet (sigmoid confidence)", "unet", ("unet_seed0.pt",)),
    Method("unet_mc_dropout", f"UNet MC dropout ×{MC_PASSES}", "unet", ("unet_mcdropout.pt",), passes=MC_PASSES),
    Method(
        "ensemble",
        f"UNet {ENSEMBLE_SIZE}× ensemble, held at once",
        "unet",
        tuple(f"unet_seed{i}.pt" for i in range(ENSEMBLE_SIZE)),
    ),
    Method(
        "ensemble_sequential",
        f"UNet {ENSEMBLE_SIZE}× ensemble, one at a time",
        "unet",
        tuple(f"unet_seed{i}.pt" for i in range(ENSEMBLE_SIZE)),
        at_once=False,
    ),
)
METHOD_KEYS = tuple(m.key for m in METHODS)


def missing_models(folder: Path, methods=METHODS) -> list[TrainedModel]:
    """The models ``methods`` need that ``folder`` does not hold yet."""
    needed = {f for m in methods for f in m.files if f}
    return [t for t in TRAINED_MODELS if t.file in needed and not (folder / t.file).exists()]


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
    from ..training.loop import TrainConfig
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
    from ..training.loop import TrainConfig
    from ..training.pipeline import checkpoint_statistics, train

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
