"""How a model is trained: the options ``entrust train`` offers and the checkpoint records.

Its own module, free of torch, so the command line can show the defaults without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TrainConfig:
    """How long and how a model is trained; recorded in the checkpoint."""

    iterations: int = 3000
    batch_size: int = 16
    crop: int = 64
    lr: float = 2e-3
    iterations_per_epoch: int = 100  #: a new rater per case every epoch
    lesion_fraction: float = 0.45
    conflict_fraction: float = 0.25  #: crops centred where raters disagree (when a case has several raters)
    augment: bool = True
    seed: int = 0
    calibration_slices: int = 160
    calibration_iterations: int = 400
    calibration_samples: int = 8
    calibration_steps: int = 10
    probe_strength: float = 0.2
    log_every: int = 50
    workers: int = 0  #: DataLoader processes cutting crops (0: in the training process)
