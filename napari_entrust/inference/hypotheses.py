"""K hypotheses × S denoising steps on the region of interest, box by box, chunk by chunk.

Each slice has its own seeded noise stream (from the seed, the slice and the box, never from the
chunking), so the same seed gives the same hypotheses on any device and under any memory budget.
Voxels a user fixed are imposed at every step (inpainting). The TrustMap statistics and the
calibration head run on each chunk as it is drawn. A slice without fixed voxels whose box and
region are as in an earlier draw of the same encoding is taken from it instead of drawn again: it
would come out the same (re-sampling with an edit redraws only the edited slices).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..model.checkpoint import ModelBundle
from ..model.config import SamplingConfig
from ..model.segdiff import sample, slice_noise
from ..model.trustmap import trust_statistics
from ..progress import ShouldStop, Steps, stop_if_asked
from .encoding import Encoding, slices_per_chunk

#: the TrustMap statistics kept as maps (max over regions), by their index in :func:`trust_statistics`
STATISTICS = {"entropy": 1, "mutual_info": 3, "probe": 4}


@dataclass
class DrawnHypotheses:
    """What sampling leaves on the model grid (zero outside the region of interest)."""

    prob: np.ndarray  #: (3, X, Y, Z) calibrated WT/TC/ET probability
    regions: np.ndarray  #: (K, 3, X, Y, Z) bool, each hypothesis's region channels
    statistics: dict[str, np.ndarray]  #: entropy, mutual information, probe sensitivity (max over regions)
    parts: np.ndarray | None = None  #: the region's connected parts, labelled 1, 2, … in box order
    boxes: list[tuple[slice, slice, slice]] = field(default_factory=list)  #: each part's box
    plain: dict[tuple, set[int]] = field(default_factory=dict)  #: box -> its slices drawn with no fixed voxel

    def reusable(self, box, inside: np.ndarray) -> set[int]:
        """The slices of ``box`` that can be copied for a part with voxels ``inside`` (the box's shape):
        drawn here in the same box with no fixed voxel, and the part covering the same voxels."""
        key = _box_key(box)
        if key not in self.plain or self.parts is None:
            return set()
        earlier, z0 = self.parts[box] == self.boxes.index(box) + 1, box[2].start
        return {z for z in self.plain[key] if np.array_equal(earlier[..., z - z0], inside[..., z - z0])}

    def copy_from(self, earlier: DrawnHypotheses, where: tuple) -> None:
        """Take every output at ``where`` (x, y, z slices and the part's voxels) from ``earlier``."""
        sx, sy, sz, inside = where
        _put(self.prob, earlier.prob[:, sx, sy, sz], where)
        _put(self.regions, earlier.regions[:, :, sx, sy, sz], where)
        for name, values in self.statistics.items():
            _put(values, earlier.statistics[name][sx, sy, sz], where)


@dataclass
class FixedVoxels:
    """Voxels held at given region values while sampling, on the model grid."""

    mask: np.ndarray  #: (X, Y, Z) bool
    regions: np.ndarray  #: (3, X, Y, Z) bool


def _box_key(box: tuple[slice, slice, slice]) -> tuple:
    return tuple((b.start, b.stop) for b in box)


def _stream(z: int, box: tuple[slice, slice, slice]) -> int:
    """The noise stream of slice ``z`` of a box: the noise depends on the seed, the slice and the box."""
    return (z * 4099 + box[0].start) * 4099 + box[1].start


def _chunk_inputs(
    enc: Encoding, box, zs: list[int], sampling: SamplingConfig, fixed: FixedVoxels | None, device: torch.device
) -> dict:
    """The sampler's inputs for slices ``zs`` of ``box``: conditioning, noise and the fixed voxels."""
    sx, sy, _ = box
    bx, by = enc.box
    h, w, k = sx.stop - sx.start, sy.stop - sy.start, sampling.samples
    z0 = zs[0] - enc.cond_start
    c = enc.cond[
        z0 : z0 + len(zs), :, sx.start - bx.start : sx.stop - bx.start, sy.start - by.start : sy.stop - by.start
    ].to(device)  # a view; the ROI lies in the head box and its slices
    streams = [_stream(z, box) for z in zs]
    noise = torch.empty((len(zs), sampling.steps + 1, k, 3, h, w))
    for j, stream in enumerate(streams):
        slice_noise(sampling.seed, stream, sampling.steps, k, (h, w), out=noise[j])
    inputs = {"cond": c, "noise": noise, "known": None, "known_values": None, "jump_noise": None}
    if fixed is not None and fixed.mask[sx, sy][..., zs].any():
        harmonised = min(sampling.harmonised_steps, sampling.steps - 1)
        if sampling.inpaint_jumps and harmonised > 0:
            draws = harmonised * sampling.inpaint_jumps - 1
            inputs["jump_noise"] = torch.stack(
                [slice_noise(sampling.seed + 7919, stream, draws, k, (h, w)) for stream in streams]
            )
        known = torch.from_numpy(np.ascontiguousarray(fixed.mask[sx, sy][..., zs].transpose(2, 0, 1)))
        inputs["known"] = known[:, None].expand(-1, 3, -1, -1)
        inputs["known_values"] = torch.from_numpy(
            np.ascontiguousarray(fixed.regions[:, sx, sy][..., zs].transpose(3, 0, 1, 2))
        )
    return inputs


def _draw_chunk(
    enc: Encoding,
    bundle: ModelBundle,
    sampling: SamplingConfig,
    box,
    zs: list[int],
    fixed: FixedVoxels | None,
    should_stop: ShouldStop | None,
) -> tuple[torch.Tensor, ...]:
    """Hypotheses, TrustMap statistics and calibrated probabilities of slices ``zs`` of one box."""
    device = next(bundle.net.parameters()).device
    inputs = _chunk_inputs(enc, box, zs, sampling, fixed, device)
    hyp = sample(
        bundle.net,
        bundle.schedule,
        inputs.pop("cond"),
        inputs.pop("noise"),
        eta=sampling.eta,
        probe_strength=sampling.probe_strength,
        probe_steps=sampling.probe_steps,
        harmonised_steps=sampling.harmonised_steps,
        **inputs,
        should_stop=should_stop,
    )
    sx, sy, _ = box
    cf = torch.from_numpy(enc.conflict[sx, sy][..., zs].transpose(2, 0, 1)).to(device)
    stats = trust_statistics(hyp.probs, hyp.probe_plus, hyp.probe_minus, cf, sampling.probe_strength, hyp.first_step)
    calibrated = torch.sigmoid(bundle.calibration(stats)) if sampling.calibrate else stats[:, :, 0]
    return hyp.probs, stats, calibrated


def _put(target: np.ndarray, values: np.ndarray, where: tuple) -> None:
    """Write a chunk's ``values`` (..., h, w, slices) into ``target`` at ``where`` = (x, y, z slices,
    the voxels of this part of the region)."""
    sx, sy, sz, inside = where
    view = target[..., sx, sy, sz]
    view[..., inside] = values[..., inside]


def _slices_within(box, within) -> range:
    """The slices of a part's box to draw: all of them, or those inside ``within`` if the box reaches it."""
    sz = box[2]
    if within is None:
        return range(sz.start, sz.stop)
    if any(b.stop <= w.start or b.start >= w.stop for b, w in zip(box[:2], within[:2])):
        return range(0)
    return range(max(sz.start, within[2].start), min(sz.stop, within[2].stop))


def _edited_slices(fixed: FixedVoxels | None, box) -> set[int]:
    """The slices of ``box`` that hold fixed voxels: only they need inpainting and its harmonisation."""
    if fixed is None:
        return set()
    sx, sy, sz = box
    return {sz.start + int(i) for i in np.flatnonzero(fixed.mask[sx, sy, sz].any(axis=(0, 1)))}


def _chunks(zs: list[int], size: int, edited: set[int]) -> list[list[int]]:
    """Consecutive slices in chunks of at most ``size``, never mixing edited slices with others: the
    harmonisation repeats every step ``inpaint_jumps`` times, and a slice without fixed voxels would
    pay for it and get exactly its plain trajectory (slices are drawn independently)."""
    out: list[list[int]] = []
    for z in zs:
        last = out[-1] if out else []
        if last and len(last) < size and last[-1] + 1 == z and ((last[-1] in edited) == (z in edited)):
            out[-1].append(z)
        else:
            out.append([z])
    return out


def draw_hypotheses(
    enc: Encoding,
    bundle: ModelBundle,
    sampling: SamplingConfig,
    parts: np.ndarray,
    boxes: list[tuple[slice, slice, slice]],
    *,
    fixed: FixedVoxels | None = None,
    memory_mb: float = 1024,
    should_stop: ShouldStop | None = None,
    within: tuple[slice, slice, slice] | None = None,
    earlier: DrawnHypotheses | None = None,
) -> Steps[DrawnHypotheses]:
    """Sample every box of the region (``parts``: its connected parts, labelled 1, 2, … in box order).

    ``within`` (model grid): draw only the parts that reach this box, and only their slices inside it;
    every slice drawn is exactly as in the whole run (its noise depends on its part's box, not on
    what is skipped), the rest stays 0. For re-runs that are read only there (explanations).
    ``earlier``: a draw of the same encoding with the same sampling settings but for the fixed voxels
    (the caller checks); its slices that :meth:`DrawnHypotheses.reusable` allows are copied."""
    grid, k = enc.fused_wt.shape, sampling.samples
    drawn = DrawnHypotheses(
        np.zeros((3, *grid), np.float32),
        np.zeros((k, 3, *grid), bool),
        {name: np.zeros(grid, np.float32) for name in STATISTICS},
        parts,
        list(boxes),
    )
    z_ranges = [_slices_within(b, within) for b in boxes]
    total_slices, done = sum(len(r) for r in z_ranges), 0
    with torch.inference_mode():
        for part, (box, z_range) in enumerate(zip(boxes, z_ranges), start=1):
            if not z_range:
                continue
            sx, sy, sz = box
            inside = parts[sx, sy, sz] == part  # write only this part's voxels
            edited = _edited_slices(fixed, box)
            drawn.plain[_box_key(box)] = set(z_range) - edited
            copied = earlier.reusable(box, inside) - edited if earlier is not None else set()
            for z in sorted(copied & set(z_range)):
                drawn.copy_from(earlier, (sx, sy, slice(z, z + 1), inside[..., [z - sz.start]]))
                done += 1
            h, w = sx.stop - sx.start, sy.stop - sy.start
            per_slice = k * h * w * 4 * (3 * (sampling.steps + 1) + bundle.config.denoiser_channels * 8 + 3 * 6)
            chunk = slices_per_chunk(per_slice, memory_mb)
            for zs in _chunks([z for z in z_range if z not in copied], chunk, edited):
                stop_if_asked(should_stop)
                probs, stats, calibrated = _draw_chunk(enc, bundle, sampling, box, zs, fixed, should_stop)
                where = (sx, sy, slice(zs[0], zs[-1] + 1), inside[..., [z - sz.start for z in zs]])
                _put(drawn.prob, calibrated.cpu().numpy().transpose(1, 2, 3, 0), where)
                _put(drawn.regions, (probs > 0.5).cpu().numpy().transpose(1, 2, 3, 4, 0), where)
                for name, j in STATISTICS.items():
                    _put(drawn.statistics[name], stats[:, :, j].amax(1).cpu().numpy().transpose(1, 2, 0), where)
                done += len(zs)
                yield (
                    done / max(total_slices, 1),
                    f"sampling {k} hypotheses x {sampling.steps} steps, slice {done} of {total_slices}",
                )
    return drawn
