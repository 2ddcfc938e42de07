"""Intervention evidence: occlusion, one block of one modality set to healthy tissue at a time.

Modality m's intensities in one block of :data:`BLOCK` voxels are replaced by its healthy-tissue
value (the median over the head) and the drop of the target score, per voxel of the block, is the
attribution of those voxels.
"""

from __future__ import annotations

import numpy as np
import torch

from ..inference.slices import context_stack, pad_to_multiple
from ..progress import Steps
from .crop import TargetCrop

BLOCK = (4, 4, 2)  #: smallest occlusion block in model voxels (8 × 8 × 4 mm at 2 mm)
MAX_BLOCKS = 250  #: per modality; larger targets get proportionally larger blocks
OCCLUSION_BATCH = 8  #: blocks re-encoded together (on CPU 4-8 is fastest; 16 took twice as long)


def block_size(box: tuple[slice, ...]) -> tuple[int, int, int]:
    """:data:`BLOCK`, grown until the box holds at most :data:`MAX_BLOCKS` blocks."""
    sizes = [b.stop - b.start for b in box]
    scale = 1.0
    while True:
        block = tuple(int(np.ceil(s * scale)) for s in BLOCK)
        if np.prod([-(-n // k) for n, k in zip(sizes, block)]) <= MAX_BLOCKS:
            return block
        scale += 0.25


def intervention_map(crop: TargetCrop, volume: torch.Tensor) -> Steps[np.ndarray]:
    """Occlusion: drop of the target score per voxel when a block of one modality is set to healthy tissue.

    Only the occluded modality's encoder is re-run, and only on the scored slices whose context
    holds the block. Yields progress; returns the (M, cx, cy, cz) map.
    """
    out = np.zeros(volume.shape, np.float32)
    block = block_size(crop.box)
    ctx = crop.cfg.context
    features = crop.encode(volume)
    clean_rows = crop.contributions(features, torch.arange(len(crop.zs)))
    total = float(crop.target.sum())
    local = [range(b.start - c.start, b.stop - c.start, k) for b, c, k in zip(crop.box, crop.crop, block)]
    ends = [b.stop - c.start for b, c in zip(crop.box, crop.crop)]
    blocks = [
        [
            (
                m,
                slice(x0, min(x0 + block[0], ends[0])),
                slice(y0, min(y0 + block[1], ends[1])),
                slice(z0, min(z0 + block[2], ends[2])),
            )
            for x0 in local[0]
            for y0 in local[1]
            for z0 in local[2]
        ]
        for m in range(volume.shape[0])
    ]
    blocks = [[sel for sel in mine if crop.elements[sel].any()] for mine in blocks]  # per modality
    zs = np.asarray(crop.zs)
    count, done = sum(map(len, blocks)), 0
    for m, mine in enumerate(blocks):
        for start in range(0, len(mine), OCCLUSION_BATCH):
            batch = mine[start : start + OCCLUSION_BATCH]
            stacks, rows, owner = [], [], []
            for b, (_, sx, sy, sz) in enumerate(batch):
                affected = np.flatnonzero((zs >= sz.start - ctx) & (zs < sz.stop + ctx))
                if affected.size == 0:
                    continue  # no scored slice sees this block: no effect
                v = volume[m].clone()
                v[sx, sy, sz] = torch.where(
                    torch.from_numpy(crop.elements[(m, sx, sy, sz)]), crop.baseline[m], v[sx, sy, sz]
                )
                stacks.append(context_stack(v[None], zs[affected].tolist(), ctx)[:, 0])
                rows += affected.tolist()
                owner += [b] * len(affected)
            drops = torch.zeros(len(batch))
            if rows:
                x, _ = pad_to_multiple(torch.cat(stacks), crop.net.size_multiple)
                rows_t = torch.as_tensor(rows, dtype=torch.long)
                with torch.inference_mode():
                    f = features[rows_t].clone()
                    f[:, m] = crop.net.encoders[m](x.to(crop.device))
                change = crop.contributions(f, rows_t) - clean_rows[rows_t]
                drops = -drops.index_add_(0, torch.as_tensor(owner, dtype=torch.long), change) / total
            for sel, drop in zip(batch, drops.tolist()):
                inside = crop.elements[sel]
                out[sel] = np.where(inside, drop / inside.sum(), 0.0)
            done += len(batch)
            yield done / count, f"occluding block {done} of {count}"
    return out
