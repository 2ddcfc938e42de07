"""What one prediction is: every output on the case grid, and the summary written beside them.

:mod:`napari_entrust.outputs.catalog` says how each of these is stored on disk and shown in napari.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .validity import ValidityReport


@dataclass
class Prediction:
    """Every output on the case grid (RAS+), and the summary written to ``summary.json``."""

    mask: np.ndarray  #: uint8 labels (BraTS 2021): the hypotheses' majority vote, less parts without core
    prob: np.ndarray  #: (3, X, Y, Z) calibrated WT/TC/ET probabilities
    samples: np.ndarray  #: (K, X, Y, Z) uint8 label maps, one per hypothesis
    trustmap: np.ndarray  #: calibrated uncertainty in [0, 1]
    entropy: np.ndarray  #: total entropy H(p̄), max over regions, in bits
    mutual_info: np.ndarray  #: MI, max over regions
    probe: np.ndarray  #: sensitivity of p̄ to F_cf (probe strength ε), max over regions
    consensus: np.ndarray  #: ‖F_c‖
    conflict: np.ndarray  #: ‖F_cf‖
    specific: dict[str, np.ndarray]  #: modality -> ‖F_u,m‖
    weights: dict[str, np.ndarray]  #: modality -> w_m
    validity: ValidityReport | None = None  #: is the input like the training data? (never silently ignored)
    summary: dict = field(default_factory=dict)
