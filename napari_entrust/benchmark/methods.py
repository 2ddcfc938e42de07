"""The models ``entrust benchmark`` compares and the files they need.

The files live in one folder (default ``resources/baselines``) with a SHA256SUMS that is checked on
load; :mod:`.method_training` trains the ones that are missing. Free of torch, so the command line
can list the methods without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

ENSEMBLE_SIZE = 5
MC_DROPOUT_RATE = 0.2
MC_PASSES = 8


def baselines_dir() -> Path:
    """The bundled baseline and ablation weights (``resources/baselines``)."""
    from ..model.checkpoint import resources_dir

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
