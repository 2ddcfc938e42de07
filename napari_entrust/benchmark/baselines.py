"""Baselines EnTrust is measured against: a plain MONAI UNet on the concatenated modalities.

Three ways of getting uncertainty out of it, as in the literature the EnTrust paper compares with:
deterministic (sigmoid confidence), MC dropout (T passes with dropout left on; epistemic spread,
the DIANet seed's approach) and a deep ensemble (members trained from different seeds). Each is
trained with :func:`napari_entrust.training.loop.optimise` (the same crops, style augmentation, rater
draws, optimiser and iteration budget as EnTrust) and predicts the same files as
``entrust predict`` (mask, prob, samples, trustmap, entropy, mutual_info), so ``entrust evaluate``
treats every method alike.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from monai.networks.nets import UNet
from torch import nn

from .. import __version__
from ..errors import EntrustError, InputError, exception_reason
from ..inference.coreless_parts import drop_coreless_parts
from ..inference.distributed import distributed_context
from ..inference.slices import case_volume, encoder_input, from_model_grid, head_box, head_voxels
from ..io.case import Case
from ..io.labels import from_regions
from ..io.modalities import MODALITIES
from ..model.checkpoint_file import read_state, write_state
from ..model.trustmap import binary_entropy, trustmap
from ..progress import Steps
from ..training.loop import optimise

KIND = "unet-baseline"


@dataclass
class BaselineConfig:
    """A UNet baseline's architecture, stored in its file so it can be rebuilt."""

    modalities: tuple[str, ...] = MODALITIES
    spacing_mm: float = 2.0
    context: int = 1  #: neighbouring slices on each side, as EnTrust's encoders see
    channels: tuple[int, ...] = (16, 32, 64, 128)
    #: 0: plain convolutions with a bare last conv. With 1, MONAI's top block ends in instance norm
    #: over the 3 output channels; trained that way the UNet never put p(TC) or p(ET) above 0.5.
    res_units: int = 0
    dropout: float = 0.0  #: > 0 for the MC-dropout baseline

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> BaselineConfig:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def build_unet(cfg: BaselineConfig) -> UNet:
    """(B, M·(2c+1), H, W) -> (B, 3, H, W) WT/TC/ET logits."""
    return UNet(
        spatial_dims=2,
        in_channels=len(cfg.modalities) * (2 * cfg.context + 1),
        out_channels=3,
        channels=cfg.channels,
        strides=(2,) * (len(cfg.channels) - 1),
        num_res_units=cfg.res_units,
        dropout=cfg.dropout,
    )


def parameter_count(module: nn.Module) -> int:
    """Trainable and frozen parameters of a network (the benchmark's size column)."""
    return int(sum(p.numel() for p in module.parameters()))


@dataclass
class Baseline:
    """A loaded baseline model (one UNet; an ensemble is a list of these)."""

    net: UNet
    config: BaselineConfig
    path: Path
    sha256: str
    training: dict = field(default_factory=dict)


def train_unet(cfg: BaselineConfig, tc, cases, *, device: torch.device) -> Steps[tuple]:
    """Train one UNet like EnTrust's backbone (BCE on the rater drawn this epoch); returns (net, record, ctx)."""
    ctx = distributed_context(device)
    torch.manual_seed(tc.seed)
    net = build_unet(cfg)
    start = time.perf_counter()

    def loss_fn(model, crops, gen):
        loss = F.binary_cross_entropy_with_logits(model(crops.x.flatten(1, 2)), crops.y)
        return loss, {}

    with torch.enable_grad():
        history = yield from optimise(net, loss_fn, cases, cfg.context, tc, ctx, label="UNet")
    record = {
        "train_config": asdict(tc),
        "world_size": ctx.world,
        "device": str(ctx.device),
        "train_cases": [c.name for c in cases],
        "history": history,
        "total_seconds": round(time.perf_counter() - start, 1),
        "parameters": parameter_count(net),
    }
    return net, record, ctx


def save_baseline(
    path: str | os.PathLike, net: UNet, cfg: BaselineConfig, training: dict, *, overwrite: bool = False
) -> str:
    """Write atomically (plain tensors and built-ins, loadable with ``weights_only=True``); returns sha256."""
    import monai

    state = {
        "kind": KIND,
        "config": cfg.to_dict(),
        "net": {k: v.detach().cpu() for k, v in net.state_dict().items()},
        "training": training,
        "versions": {"napari_entrust": __version__, "torch": str(torch.__version__), "monai": str(monai.__version__)},
    }
    return write_state(path, state, overwrite=overwrite)


def load_baseline(path: str | os.PathLike, device: torch.device | str = "cpu") -> Baseline:
    """Load a UNet baseline, checking its sha256 against a SHA256SUMS beside it."""
    path = Path(path)
    if not path.exists():
        raise EntrustError(
            f"{path}: baseline model file does not exist (train it with `entrust benchmark --train-baselines`)"
        )
    state, digest = read_state(path, "baseline checkpoint")
    try:
        if state.get("kind") != KIND:
            raise ValueError(f"kind is {state.get('kind')!r}, expected {KIND!r}")
        cfg = BaselineConfig.from_dict(state["config"])
        net = build_unet(cfg)
        net.load_state_dict(state["net"])
    except Exception as exc:  # noqa: BLE001 - a foreign, truncated or incompatible file
        raise EntrustError(f"{path}: not a usable baseline checkpoint ({exception_reason(exc)})") from None
    net.eval()
    return Baseline(net.to(torch.device(device)), cfg, path, digest, state.get("training", {}))


@dataclass
class BaselinePrediction:
    """The outputs a baseline shares with EnTrust's :class:`~napari_entrust.inference.prediction.Prediction`."""

    mask: np.ndarray
    prob: np.ndarray  #: (3, X, Y, Z) mean probability
    samples: np.ndarray  #: (T, X, Y, Z) one label map per pass or member
    trustmap: np.ndarray  #: 1 − |2p̄ − 1|, max over regions (EnTrust's formula, uncalibrated)
    entropy: np.ndarray
    mutual_info: np.ndarray
    summary: dict = field(default_factory=dict)

    def maps(self) -> dict[str, np.ndarray]:
        """The output arrays by file stem, as
        :func:`napari_entrust.outputs.prediction_folder.write_arrays` takes them."""
        return {
            "mask": self.mask,
            "prob": self.prob,
            "samples": self.samples,
            "trustmap": self.trustmap,
            "entropy": self.entropy,
            "mutual_info": self.mutual_info,
        }


def _enable_dropout(net: nn.Module, on: bool) -> None:
    for m in net.modules():
        if isinstance(m, nn.modules.dropout._DropoutNd):
            m.train(on)


def run_baseline(
    case: Case,
    members: Sequence[Baseline] | Callable[[int], Baseline],
    *,
    n_members: int | None = None,
    passes: int = 1,
    seed: int = 0,
    chunk: int = 16,
) -> Steps[BaselinePrediction]:
    """Predict with one UNet (``passes`` > 1: MC dropout) or an ensemble; yields progress.

    ``members`` is a list of loaded models (the ensemble held at once) or a function loading member
    ``i`` on demand (one at a time: lower memory, the benchmark reports both).
    """
    load = members if callable(members) else members.__getitem__
    n = n_members if callable(members) else len(members)
    if not n:
        raise EntrustError("no baseline models given")
    first = load(0)
    cfg = first.config
    missing = [m for m in cfg.modalities if m not in case.images]
    if missing:
        raise InputError(case.name, f"the model needs {', '.join(cfg.modalities)}; missing {', '.join(missing)}")
    yield 0.0, "normalising"
    volume, grid = case_volume(case, cfg.modalities, cfg.spacing_mm)
    head, head_slices = head_voxels(volume)
    bx, by = head_box(head)  # as EnTrust's encoders: only the head's in-plane box
    hx, hy = bx.stop - bx.start, by.stop - by.start
    runs = n * passes
    probs = np.zeros((runs, 3, *grid), np.float32)
    multiple = 2 ** (len(cfg.channels) - 1)
    with torch.inference_mode(), torch.random.fork_rng():  # dropout draws from torch's global RNG
        for i in range(n):
            member = first if i == 0 else load(i)
            if callable(members):
                first = None  # one at a time: nothing but the current member stays loaded
            net = member.net
            device = next(net.parameters()).device
            for p in range(passes):
                _enable_dropout(net, passes > 1)
                torch.manual_seed(seed + 1009 * p)
                for j in range(0, len(head_slices), chunk):
                    zs = head_slices[j : j + chunk]
                    x = encoder_input(volume, zs, cfg.context, (bx, by), multiple)
                    out = torch.sigmoid(net(x.flatten(1, 2).to(device)))[..., :hx, :hy].float().cpu().numpy()
                    probs[i * passes + p][:, bx, by, zs] = np.moveaxis(out, 0, -1)
                _enable_dropout(net, False)
                yield (i * passes + p + 1) / runs * 0.9, f"pass {i * passes + p + 1} of {runs}"
            del member, net
    mean = probs.mean(0)
    tp = torch.from_numpy(probs)
    total = binary_entropy(torch.from_numpy(mean))
    mutual = (total - binary_entropy(tp).mean(0)).clamp_min(0.0)
    shape = case.shape
    prob_c = from_model_grid(mean, grid, shape)
    samples = np.stack([from_regions(from_model_grid(probs[r], grid, shape) > 0.5) for r in range(runs)])
    mask = from_regions(prob_c > 0.5)
    drop_coreless_parts(mask)  # as EnTrust's mask does
    yield 1.0, "done"
    return BaselinePrediction(
        mask=mask,
        prob=prob_c,
        samples=samples,
        trustmap=trustmap(prob_c).astype(np.float32),
        entropy=from_model_grid(total.amax(0).numpy(), grid, shape),
        mutual_info=from_model_grid(mutual.amax(0).numpy(), grid, shape),
        summary={
            "case": case.name,
            "method": "UNet" + (f" MC dropout ×{passes}" if passes > 1 else "") + (f" ensemble ×{n}" if n > 1 else ""),
            "members": n,
            "passes": passes,
        },
    )
