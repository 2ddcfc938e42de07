"""Batches of training crops: drawn in this process, or by DataLoader workers while the model trains.

Under ``torchrun`` each rank draws from its own share of the cases (a ``DistributedSampler`` over
the case list), so N ranks each read 1/N of the data. With ``workers`` = 0 the batches are exactly
those of a plain :class:`.crops.CropSampler`; with workers, each worker has its own sampler and seed
and the loader interleaves them in a fixed order, so a run is still reproducible for a given
number of workers.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import DataLoader, DistributedSampler, IterableDataset, get_worker_info

from .cases import AnyCase
from .crops import Crops, CropSampler


def rank_share(cases: list[AnyCase], rank: int, world: int, seed: int) -> list[AnyCase]:
    """The cases this rank draws crops from (all of them in a single process)."""
    if world <= 1:
        return cases
    sampler = DistributedSampler(range(len(cases)), num_replicas=world, rank=rank, shuffle=True, seed=seed)
    return [cases[i] for i in sampler]


class CropBatches(IterableDataset):
    """Endless batches of crops; a new rater per case every ``iterations_per_epoch`` batches."""

    def __init__(self, cases: list[AnyCase], batch_size: int, iterations_per_epoch: int, seed: int, **sampler_args):
        super().__init__()
        self.cases, self.batch_size, self.per_epoch, self.seed = cases, batch_size, iterations_per_epoch, seed
        self.sampler_args = sampler_args

    def __iter__(self) -> Iterator[Crops]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info else (0, 1)
        seed = self.seed if info is None else self.seed * 100 + worker + 1
        sampler = CropSampler(self.cases, seed=seed, **self.sampler_args)
        iteration = worker  # the loader takes batches from its workers in turn: worker w makes w, w + n, ...
        while True:
            if iteration and iteration // self.per_epoch != (iteration - workers) // self.per_epoch:
                sampler.new_epoch()
            yield sampler.batch(self.batch_size)
            iteration += workers


def crop_batches(dataset: CropBatches, workers: int) -> Iterator[Crops]:
    """Batches from ``dataset``, made here (``workers`` = 0) or by that many DataLoader processes."""
    if workers <= 0:
        return iter(dataset)
    loader = DataLoader(dataset, batch_size=None, num_workers=workers, prefetch_factor=2, persistent_workers=False)
    return iter(loader)
