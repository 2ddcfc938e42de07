"""SegDiff sampling: K hypotheses × S DDIM steps with stochasticity η, conflict probing, inpainting.

The noise schedule, its time steps and the forward noising come from MONAI's ``DDIMScheduler``.
The reverse loop is ours because it needs what MONAI's ``DiffusionInferer.sample`` lacks: η, one
noise stream per slice (so results do not depend on batching, chunking or device), re-running the
last steps with F_cf scaled by 1 ± ε, and voxels held fixed at user-given values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from monai.networks.schedulers import DDIMScheduler

from .config import ModelConfig
from .errors import Cancelled
from .model import EnTrustNet


HARMONISE_RADIUS = 8  #: pixels around fixed voxels that re-settle with them (the denoiser's reach)


class Schedule:
    """Noise schedule of a model (ᾱ_t) and the DDIM time steps for S sampling steps."""

    def __init__(self, cfg: ModelConfig):
        self.scheduler = DDIMScheduler(num_train_timesteps=cfg.train_timesteps, schedule=cfg.schedule,
                                       prediction_type="sample", clip_sample=True)
        self.alphas = self.scheduler.alphas_cumprod.float()
        self.train_timesteps = cfg.train_timesteps

    def add_noise(self, y0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.scheduler.add_noise(y0, noise, t)

    def timesteps(self, steps: int) -> list[tuple[int, int]]:
        """(t, t_prev) pairs from noisy to clean; t_prev = -1 means the clean end (ᾱ = 1)."""
        self.scheduler.set_timesteps(steps)
        ts = [int(t) for t in self.scheduler.timesteps]
        return list(zip(ts, ts[1:] + [-1]))

    def alpha(self, t: int) -> float:
        return 1.0 if t < 0 else float(self.alphas[t])


def to_signed(y: torch.Tensor) -> torch.Tensor:
    """{0, 1} masks (or probabilities) -> [-1, 1], the space diffusion works in."""
    return 2.0 * y - 1.0


@dataclass
class Hypotheses:
    probs: torch.Tensor  #: (B, K, 3, H, W) per-hypothesis probabilities after the last step
    probe_plus: torch.Tensor | None  #: (B, 3, H, W) mean probability with F_cf × (1 + ε)
    probe_minus: torch.Tensor | None  #: (B, 3, H, W) mean probability with F_cf × (1 − ε)
    #: (B, 3, H, W) the first step's x0 probability, averaged over the K hypotheses. From pure noise an
    #: x0-predictor can only say E[y0 | features], the probability the K hypotheses estimate by voting;
    #: this is the same quantity without the hypotheses' sampling noise (Rao-Blackwellised). Within
    #: HARMONISE_RADIUS of fixed voxels it is the hypotheses' mean, which has taken the fixed values up.
    first_step: torch.Tensor | None = None


def slice_noise(seed: int, slice_index: int, steps: int, k: int, shape: tuple[int, int],
                out: torch.Tensor | None = None) -> torch.Tensor:
    """The noise a slice uses: (steps + 1, K, 3, H, W), from a generator seeded by (seed, slice);
    written into ``out`` (a contiguous tensor of that shape) when given."""
    g = torch.Generator().manual_seed((int(seed) * 1_000_003 + int(slice_index)) % (2 ** 63))
    return torch.randn((steps + 1, k, 3, *shape), generator=g, out=out)


@torch.no_grad()
def sample(net: EnTrustNet, schedule: Schedule, cond: torch.Tensor, noise: torch.Tensor, *, eta: float = 1.0,
           probe_strength: float = 0.0, probe_steps: int = 0, known: torch.Tensor | None = None,
           known_values: torch.Tensor | None = None, jump_noise: torch.Tensor | None = None,
           should_stop: Callable[[], bool] | None = None) -> Hypotheses:
    """Draw K hypotheses for a batch of B slices.

    ``cond``: (B, C, H, W) from :meth:`Features.condition`, its last ``conflict_channels`` being F_cf.
    ``noise``: (B, steps + 1, K, 3, H, W) from :func:`slice_noise`. ``known``/``known_values``:
    (B, 3, H, W) bool / {0, 1}; those voxels are held at their values at every step (inpainting).
    ``jump_noise``: (B, J, K, 3, H, W) with J = (steps − 1) × (U − 1) turns on RePaint-style
    harmonisation with inpainting: every step but the last is repeated U times, re-noising the
    result back to the step's noise level in between, so the free voxels can take up what the fixed
    ones imply (Lugmayr et al., 2022).
    ``should_stop()`` is checked before every step; if it returns True, :class:`Cancelled` is raised.
    """
    b, steps_plus_one, k = noise.shape[:3]
    steps = steps_plus_one - 1
    device = cond.device
    noise = noise.to(device)
    pairs = schedule.timesteps(steps)
    n_cf = net.cfg.conflict_channels

    def conditioned(scale: float) -> torch.Tensor:
        scaled = torch.cat([cond[:, :-n_cf], cond[:, -n_cf:] * scale], dim=1) if scale != 1.0 else cond
        return net.denoiser.condition(scaled).repeat_interleave(k, dim=0)

    if known is not None:
        known = known.to(device)[:, None].expand(-1, k, -1, -1, -1).reshape(b * k, *known.shape[1:])
        target = to_signed(known_values.to(device).float())[:, None].expand(-1, k, -1, -1, -1).reshape(known.shape)
        # pixels within HARMONISE_RADIUS of a fixed voxel: the reach of an edit, (B·K, 1, H, W)
        near = F.max_pool2d(known.any(1, keepdim=True).float(), 2 * HARMONISE_RADIUS + 1, 1, HARMONISE_RADIUS).bool()

    jumps = 0
    if known is not None and jump_noise is not None and steps > 1:
        jumps = jump_noise.shape[1] // (steps - 1)
        if jump_noise.shape[1] != jumps * (steps - 1):
            raise ValueError(f"jump_noise has {jump_noise.shape[1]} draws, not a multiple of steps - 1 = {steps - 1}")
        jump_noise = jump_noise.to(device)
        # only voxels near a fixed voxel are harmonised; the rest follow the plain trajectory, so an
        # edit changes its neighbourhood and nothing far from it
        zone = near.expand_as(known)

    def step(y: torch.Tensor, cond_h: torch.Tensor, i: int, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        t, t_prev = pairs[i]
        logits = net.denoiser(y, torch.full((1,), t, device=device, dtype=torch.long), cond_h)
        x0 = to_signed(torch.sigmoid(logits))
        a_t, a_prev = schedule.alpha(t), schedule.alpha(t_prev)
        eps = (y - a_t ** 0.5 * x0) / (1 - a_t) ** 0.5
        sigma = eta * ((1 - a_prev) / (1 - a_t)) ** 0.5 * (1 - a_t / a_prev) ** 0.5
        y = a_prev ** 0.5 * x0 + max(1 - a_prev - sigma ** 2, 0.0) ** 0.5 * eps + sigma * z
        if known is not None:
            y = torch.where(known, a_prev ** 0.5 * target + (1 - a_prev) ** 0.5 * z, y)
        return y, logits

    first_logits: list[torch.Tensor] = []  # the first step's x0 logits (B·K, 3, H, W)

    def run(y: torch.Tensor, cond_h: torch.Tensor, first: int, last: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Steps ``first`` .. ``last`` - 1; returns the new y and the last x0 logits."""
        logits = None
        for i in range(first, last):
            if should_stop is not None and should_stop():
                raise Cancelled("cancelled by the user")
            z = noise[:, i + 1].reshape(y.shape)
            if not jumps or i == steps - 1:
                y, logits = step(y, cond_h, i, z)
            else:
                y_plain, logits = step(y, cond_h, i, z)
                a_t, a_prev = schedule.alpha(pairs[i][0]), schedule.alpha(pairs[i][1])
                for j in range(jumps):  # harmonise near the fixed voxels: step, then noise back to level t
                    y_next, _ = step(y, cond_h, i, z)
                    y = (a_t / a_prev) ** 0.5 * y_next + (1 - a_t / a_prev) ** 0.5 * jump_noise[:, i * jumps + j].reshape(y.shape)
                y, logits_h = step(y, cond_h, i, z)
                y, logits = torch.where(zone, y, y_plain), torch.where(zone, logits_h, logits)
            if i == 0:
                first_logits.append(logits)
        return y, logits

    def first_step_mean(probs: torch.Tensor) -> torch.Tensor:
        """The first step's mean prediction; near fixed voxels, the hypotheses' own mean instead (at the
        first step the fixed values are drowned in noise, so that prediction has not taken them up)."""
        first = probabilities(first_logits[0]).mean(1)
        if known is None:
            return first
        return torch.where(near.reshape(b, k, *near.shape[1:])[:, 0], probs.mean(1), first)

    def probabilities(logits: torch.Tensor) -> torch.Tensor:
        probs = torch.sigmoid(logits)
        if known is not None:
            probs = torch.where(known, (target + 1) / 2, probs)
        return probs.reshape(b, k, 3, *probs.shape[2:])

    y = noise[:, 0].reshape(b * k, 3, *noise.shape[-2:])
    if known is not None:
        a_start = schedule.alpha(pairs[0][0])
        y = torch.where(known, a_start ** 0.5 * target + (1 - a_start) ** 0.5 * y, y)
    base = conditioned(1.0)
    probing = probe_strength > 0 and 0 < probe_steps < steps
    split = steps - probe_steps if probing else steps
    y_split, logits = run(y, base, 0, split)
    if not probing:
        probs = probabilities(logits)
        return Hypotheses(probs, None, None, first_step_mean(probs))
    probs = probabilities(run(y_split, base, split, steps)[1])
    plus = probabilities(run(y_split, conditioned(1.0 + probe_strength), split, steps)[1]).mean(1)
    minus = probabilities(run(y_split, conditioned(1.0 - probe_strength), split, steps)[1]).mean(1)
    return Hypotheses(probs, plus, minus, first_step_mean(probs))
