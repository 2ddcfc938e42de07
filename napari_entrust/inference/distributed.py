"""Running under ``torchrun``: join its process group, and share small results between ranks.

Training uses it for DistributedDataParallel; ``entrust predict`` over a folder uses it to shard
the cases over ranks and gather every rank's worklist rows on rank 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class DistributedContext:
    """This process's rank, the number of ranks and its device (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0


def distributed_context(device: torch.device) -> DistributedContext:
    """Join the process group torchrun set up (if any): gloo on CPU, nccl on CUDA."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistributedContext(0, 1, device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank()
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return DistributedContext(rank, dist.get_world_size(), device)


def gather_lists(ctx: DistributedContext, items: list) -> list:
    """Every rank's ``items`` concatenated in rank order (on every rank); ``items`` itself without torchrun."""
    if ctx.world <= 1:
        return list(items)
    parts: list = [None] * ctx.world
    dist.all_gather_object(parts, list(items))
    return [item for part in parts for item in part]


def finish(ctx: DistributedContext) -> None:
    """Wait for every rank, then leave the process group (nothing to do without torchrun)."""
    if ctx.world > 1 and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
