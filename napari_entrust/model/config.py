"""Model and sampling configuration: everything needed to rebuild a model (stored in every checkpoint),
and how its hypotheses are drawn."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from ..io.modalities import MODALITIES

#: fields fine-tuning (``entrust train --init``) may change: loss weights, and the conflict head a new
#: conflict target adds to an existing model
FINE_TUNABLE = ("aux_weight", "independence_weight", "conflict_target_weight")


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model; stored in every checkpoint (field names are its keys)."""

    modalities: tuple[str, ...] = MODALITIES
    spacing_mm: float = 2.0  #: model grid; inputs are resampled to it and results back
    context: int = 1  #: neighbouring slices on each side given to each modality encoder
    encoder_channels: tuple[int, ...] = (8, 16, 32)  #: per-modality MONAI UNet widths
    encoder_res_units: int = 0
    feature_channels: int = 8  #: f_m channels out of each encoder
    consensus_channels: int = 8  #: F_c
    specific_channels: int = 2  #: F_u,m per modality
    conflict_channels: int = 4  #: F_cf
    conflict_branch: bool = True  #: False: ablation without F_cf
    #: False: the denoiser is conditioned on F_c and F_cf only (F_u,m is still computed, decorrelated
    #: and shown); the falsification experiment in the model card
    denoiser_sees_specific: bool = True
    denoiser_channels: int = 8
    denoiser_dilations: tuple[int, ...] = (1, 2, 4)
    train_timesteps: int = 1000
    schedule: str = "scaled_linear_beta"
    independence: str = "xcov"  #: xcov | hsic | xcov+hsic
    independence_weight: float = 0.1
    aux_weight: float = 0.5  #: deep supervision of the per-modality and fused heads
    #: > 0: a head on F_cf learns where the raters (hence the modalities) disagree, with this loss
    #: weight, and the conflict layer shows its probability; 0: no head, the layer shows ‖F_cf‖
    conflict_target_weight: float = 0.0
    regions: tuple[str, ...] = ("WT", "TC", "ET")

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(f"unknown model config keys: {unknown}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    @property
    def in_slices(self) -> int:
        return 2 * self.context + 1

    def differs_in_architecture(self, other: ModelConfig) -> bool:
        """Whether the two configs build networks one cannot start from the other (fine-tuning)."""
        mine, theirs = self.to_dict(), other.to_dict()
        return any(mine[k] != theirs[k] for k in mine if k not in FINE_TUNABLE)

    @property
    def conflict_head(self) -> bool:
        """Whether the model has the conflict head (a target for F_cf)."""
        return self.conflict_branch and self.conflict_target_weight > 0


@dataclass
class SamplingConfig:
    """How hypotheses are drawn; the CLI and the widget expose these."""

    samples: int = 8  #: K
    steps: int = 10  #: S (DDIM)
    eta: float = 1.0  #: DDIM stochasticity η
    probe_strength: float = 0.2  #: ε: F_cf is scaled by 1 ± ε on the last probe_steps
    probe_steps: int = 2
    seed: int = 0
    conflict_scale: float = 1.0  #: 0 zeroes F_cf at inference (the falsification ablation)
    calibrate: bool = True  #: False: TrustMap from the hypotheses' mean p̄, no calibration head (ablation)
    #: with user-fixed voxels, each harmonised step is repeated this many extra times (RePaint)
    inpaint_jumps: int = 8
    #: how many steps before the last are harmonised (the late ones; see :func:`..segdiff.sample`)
    harmonised_steps: int = 2

    def validate(self) -> None:
        """Reject nonsense values with a message a user can act on."""
        if not 1 <= self.samples <= 256:
            raise ValueError(f"samples must be between 1 and 256, got {self.samples}")
        if not 1 <= self.steps <= 1000:
            raise ValueError(f"steps must be between 1 and 1000, got {self.steps}")
        if not 0.0 <= self.eta <= 1.0:
            raise ValueError(f"eta must be between 0 and 1, got {self.eta}")
        if not 0.0 <= self.probe_strength < 1.0:
            raise ValueError(f"probe strength must be in [0, 1), got {self.probe_strength}")
        if not 0 <= self.inpaint_jumps <= 20:
            raise ValueError(f"inpaint jumps must be between 0 and 20, got {self.inpaint_jumps}")
        if not 0 <= self.harmonised_steps <= 100:
            raise ValueError(f"harmonised steps must be between 0 and 100, got {self.harmonised_steps}")
        if not 0 <= self.probe_steps <= self.steps:
            raise ValueError(f"probe steps must be between 0 and steps ({self.steps}), got {self.probe_steps}")
