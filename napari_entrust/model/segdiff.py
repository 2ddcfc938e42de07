"""SegDiff sampling: K hypotheses × S DDIM steps with stochasticity η, conflict probing, inpainting.

The noise schedule, its time steps and the forward noising come from MONAI's ``DDIMScheduler``.
The reverse loop is ours because it needs what MONAI's ``DiffusionInferer.sample`` lacks: η, one
noise stream per slice (so results do not depend on batching, chunking or device), re-running the
last steps with F_cf scaled by 1 ± ε, and voxels held fixed at user-given values.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from monai.networks.schedulers import DDIMScheduler

from ..progress import ShouldStop, stop_if_asked
from .config import ModelConfig, SamplingConfig
from .denoiser import conv_layout
from .entrust_net import EnTrustNet

HARMONISE_RADIUS = 8  #: pixels around fixed voxels that re-settle with them (the denoiser's reach)


class Schedule:
    """Noise schedule of a model (ᾱ_t) and the DDIM time steps for S sampling steps."""

    def __init__(self, cfg: ModelConfig):
        self.scheduler = DDIMScheduler(
            num_train_timesteps=cfg.train_timesteps, schedule=cfg.schedule, prediction_type="sample", clip_sample=True
        )
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
    """What one sampling run gives for a batch of slices."""

    probs: torch.Tensor  #: (B, K, 3, H, W) per-hypothesis probabilities after the last step
    probe_plus: torch.Tensor | None  #: (B, 3, H, W) mean probability with F_cf × (1 + ε)
    probe_minus: torch.Tensor | None  #: (B, 3, H, W) mean probability with F_cf × (1 − ε)
    #: (B, 3, H, W) the first step's x0 probability, averaged over the K hypotheses. From pure noise an
    #: x0-predictor can only say E[y0 | features], the probability the K hypotheses estimate by voting;
    #: this is the same quantity without the hypotheses' sampling noise (Rao-Blackwellised). Within
    #: HARMONISE_RADIUS of fixed voxels it is the hypotheses' mean, which has taken the fixed values up.
    first_step: torch.Tensor | None = None


def slice_noise(
    seed: int, slice_index: int, steps: int, k: int, shape: tuple[int, int], out: torch.Tensor | None = None
) -> torch.Tensor:
    """The noise a slice uses: (steps + 1, K, 3, H, W), from a generator seeded by (seed, slice);
    written into ``out`` (a contiguous tensor of that shape) when given."""
    g = torch.Generator().manual_seed((int(seed) * 1_000_003 + int(slice_index)) % (2**63))
    return torch.randn((steps + 1, k, 3, *shape), generator=g, out=out)


@dataclass
class _Inpainting:
    """Voxels held at given values in every hypothesis (B·K rows), and the harmonisation near them."""

    known: torch.Tensor  #: (B·K, 3, H, W) bool
    target: torch.Tensor  #: (B·K, 3, H, W) their values in [-1, 1]
    near: torch.Tensor  #: (B·K, 1, H, W) bool: within HARMONISE_RADIUS of a fixed voxel, the reach of an edit
    jumps: int = 0  #: RePaint repetitions per harmonised step (0: none)
    jump_noise: torch.Tensor | None = None  #: (B, J, K, 3, H, W)
    first_harmonised: int = 0  #: the first step harmonised; every later one but the last is too

    @classmethod
    def of(
        cls,
        known: torch.Tensor,
        known_values: torch.Tensor,
        jump_noise: torch.Tensor | None,
        k: int,
        steps: int,
        device: torch.device,
        harmonised_steps: int,
    ) -> _Inpainting:
        b = known.shape[0]
        known = known.to(device)[:, None].expand(-1, k, -1, -1, -1).reshape(b * k, *known.shape[1:])
        target = to_signed(known_values.to(device).float())[:, None].expand(-1, k, -1, -1, -1).reshape(known.shape)
        near = F.max_pool2d(known.any(1, keepdim=True).float(), 2 * HARMONISE_RADIUS + 1, 1, HARMONISE_RADIUS).bool()
        harmonised = min(harmonised_steps, steps - 1)
        if jump_noise is None or harmonised <= 0:
            return cls(known, target, near)
        jumps = jump_noise.shape[1] // harmonised
        if jump_noise.shape[1] != jumps * harmonised:
            raise ValueError(f"jump_noise has {jump_noise.shape[1]} draws, not a multiple of {harmonised} steps")
        return cls(known, target, near, jumps, jump_noise.to(device), steps - 1 - harmonised)

    @property
    def zone(self) -> torch.Tensor:
        """Only voxels near a fixed voxel are harmonised; the rest follow the plain trajectory, so an
        edit changes its neighbourhood and nothing far from it."""
        return self.near.expand_as(self.known)


class _ReverseProcess:
    """The DDIM reverse loop over B·K noisy masks: steps, harmonisation and the probabilities read off."""

    def __init__(
        self,
        net: EnTrustNet,
        schedule: Schedule,
        noise: torch.Tensor,
        eta: float,
        inpainting: _Inpainting | None,
        should_stop: ShouldStop | None,
    ):
        self.net, self.schedule, self.noise, self.eta = net, schedule, noise, eta
        self.b, steps_plus_one, self.k = noise.shape[:3]
        self.steps = steps_plus_one - 1
        self.pairs = schedule.timesteps(self.steps)
        self.paint, self.should_stop = inpainting, should_stop
        self.first_logits: list[torch.Tensor] = []  # the first step's x0 logits (B·K, 3, H, W)

    def start(self) -> torch.Tensor:
        """y at the first time step: the starting noise (fixed voxels noised to that level)."""
        y = self.noise[:, 0].reshape(self.b * self.k, 3, *self.noise.shape[-2:])
        if self.paint is not None:
            a_start = self.schedule.alpha(self.pairs[0][0])
            y = torch.where(self.paint.known, a_start**0.5 * self.paint.target + (1 - a_start) ** 0.5 * y, y)
        return y

    def step(self, y: torch.Tensor, cond_h: torch.Tensor, i: int, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One DDIM step from t to t_prev with stochasticity η; returns the new y and the x0 logits."""
        t, t_prev = self.pairs[i]
        logits = self.net.denoiser(y, torch.full((1,), t, device=y.device, dtype=torch.long), cond_h)
        x0 = to_signed(torch.sigmoid(logits))
        a_t, a_prev = self.schedule.alpha(t), self.schedule.alpha(t_prev)
        eps = (y - a_t**0.5 * x0) / (1 - a_t) ** 0.5
        sigma = self.eta * ((1 - a_prev) / (1 - a_t)) ** 0.5 * (1 - a_t / a_prev) ** 0.5
        y = a_prev**0.5 * x0 + max(1 - a_prev - sigma**2, 0.0) ** 0.5 * eps + sigma * z
        if self.paint is not None:
            y = torch.where(self.paint.known, a_prev**0.5 * self.paint.target + (1 - a_prev) ** 0.5 * z, y)
        return y, logits

    def harmonised_step(
        self, y: torch.Tensor, cond_h: torch.Tensor, i: int, z: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """RePaint: near the fixed voxels, step and noise back to level t ``jumps`` times, then step."""
        paint = self.paint
        y_plain, logits = self.step(y, cond_h, i, z)
        a_t, a_prev = self.schedule.alpha(self.pairs[i][0]), self.schedule.alpha(self.pairs[i][1])
        first = (i - paint.first_harmonised) * paint.jumps
        for j in range(paint.jumps):
            y_next = y_plain if j == 0 else self.step(y, cond_h, i, z)[0]  # the first jump starts as the plain step
            renoise = paint.jump_noise[:, first + j].reshape(y.shape)
            y = (a_t / a_prev) ** 0.5 * y_next + (1 - a_t / a_prev) ** 0.5 * renoise
        y, logits_h = self.step(y, cond_h, i, z)
        zone = paint.zone
        return torch.where(zone, y, y_plain), torch.where(zone, logits_h, logits)

    def run(
        self, y: torch.Tensor, cond_h: torch.Tensor, first: int, last: int, harmonise: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Steps ``first`` .. ``last`` - 1 (Cancel is checked before each); returns y and the last x0 logits.
        ``harmonise=False``: plain inpainting steps only (the F_cf probes, which are compared with each other)."""
        logits = None
        jumps = self.paint.jumps if self.paint is not None and harmonise else 0
        for i in range(first, last):
            stop_if_asked(self.should_stop)
            z = self.noise[:, i + 1].reshape(y.shape)
            if not jumps or i < self.paint.first_harmonised or i == self.steps - 1:
                y, logits = self.step(y, cond_h, i, z)
            else:
                y, logits = self.harmonised_step(y, cond_h, i, z)
            if i == 0:
                self.first_logits.append(logits)
        return y, logits

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """(B·K, 3, H, W) x0 logits -> (B, K, 3, H, W) probabilities, fixed voxels at their values."""
        probs = torch.sigmoid(logits)
        if self.paint is not None:
            probs = torch.where(self.paint.known, (self.paint.target + 1) / 2, probs)
        return probs.reshape(self.b, self.k, 3, *probs.shape[2:])

    def first_step_mean(self, probs: torch.Tensor) -> torch.Tensor:
        """The first step's mean prediction; near fixed voxels, the hypotheses' own mean instead (at the
        first step the fixed values are drowned in noise, so that prediction has not taken them up)."""
        first = self.probabilities(self.first_logits[0]).mean(1)
        if self.paint is None:
            return first
        near = self.paint.near.reshape(self.b, self.k, *self.paint.near.shape[1:])[:, 0]
        return torch.where(near, probs.mean(1), first)


@torch.no_grad()
def sample(
    net: EnTrustNet,
    schedule: Schedule,
    cond: torch.Tensor,
    noise: torch.Tensor,
    *,
    eta: float = 1.0,
    probe_strength: float = 0.0,
    probe_steps: int = 0,
    known: torch.Tensor | None = None,
    known_values: torch.Tensor | None = None,
    jump_noise: torch.Tensor | None = None,
    harmonised_steps: int = SamplingConfig.harmonised_steps,
    should_stop: ShouldStop | None = None,
) -> Hypotheses:
    """Draw K hypotheses for a batch of B slices.

    ``cond``: (B, C, H, W) from :meth:`Features.condition`, its last ``conflict_channels`` being F_cf.
    ``noise``: (B, steps + 1, K, 3, H, W) from :func:`slice_noise`. ``known``/``known_values``:
    (B, 3, H, W) bool / {0, 1}; those voxels are held at their values at every step (inpainting).
    ``jump_noise``: (B, J, K, 3, H, W) with J = h × U, h = min(``harmonised_steps``, steps − 1),
    turns on RePaint-style harmonisation with inpainting: each of the h steps before the last is
    repeated U more times, re-noising the result back to the step's noise level in between, so the
    free voxels can take up what the fixed ones imply (Lugmayr et al., 2022). Late steps only: on the
    2 mm phantoms, harmonising the last 2 steps settled the voxels beside an edit as well as
    harmonising all 9, and harmonising early steps only did worse than none (README, re-sampling).
    ``should_stop()`` is checked before every step; if it returns True,
    :class:`~napari_entrust.errors.Cancelled` is raised.
    """
    k, steps = noise.shape[2], noise.shape[1] - 1
    noise = noise.to(cond.device)
    n_cf = net.cfg.conflict_channels
    paint = (
        None
        if known is None
        else _Inpainting.of(known, known_values, jump_noise, k, steps, cond.device, harmonised_steps)
    )
    process = _ReverseProcess(net, schedule, noise, eta, paint, should_stop)

    def conditioned(scale: float) -> torch.Tensor:
        scaled = torch.cat([cond[:, :-n_cf], cond[:, -n_cf:] * scale], dim=1) if scale != 1.0 else cond
        return conv_layout(net.denoiser.condition(scaled).repeat_interleave(k, dim=0))  # once, not per step

    base = conditioned(1.0)
    probing = probe_strength > 0 and 0 < probe_steps < steps
    split = steps - probe_steps if probing else steps
    y_split, logits = process.run(process.start(), base, 0, split)
    if not probing:
        probs = process.probabilities(logits)
        return Hypotheses(probs, None, None, process.first_step_mean(probs))
    probs = process.probabilities(process.run(y_split, base, split, steps)[1])
    # the two probes are compared with each other only, so both skip the harmonisation (a third of its cost)
    plus, minus = (
        process.probabilities(process.run(y_split, conditioned(1.0 + e), split, steps, harmonise=False)[1]).mean(1)
        for e in (probe_strength, -probe_strength)
    )
    return Hypotheses(probs, plus, minus, process.first_step_mean(probs))
