"""Turning a rank's batch specs into device batches, in order, from any position in the epoch.

Each batch is collated under its own seed, derive_seed(run seed, epoch, global position), with the caller's
RNG streams put back afterwards. So a batch's random augmentation (masking, noise) is the same whether it is
collated in the main process or in a DataLoader worker, and whether the epoch started from its first batch or
was resumed in the middle: num_workers and resuming do not change results. The global position assumes the
sampler's sharding contract (rank r takes batches r::world_size): position i of rank r is batch i*world + r,
so N processes with update_freq k see the same augmented batches as 1 process with update_freq N*k.
"""
from __future__ import annotations

from typing import Any, Iterator, Protocol, Sequence

import torch

from .reproducibility import derive_seed, seeded

DUMMY: list = []  # a rank that has run short of batches gets [] (still takes part in DDP communication)


def is_dummy(spec: Any) -> bool:
    return isinstance(spec, (list, tuple)) and len(spec) == 0


class BatchSource(Protocol):
    """What SpecLoader needs of a task (the trainer's TrainTask is one)."""

    def load_batch(self, spec: Any) -> dict:
        """The batch of one spec (called in the loader's worker processes)."""
        ...


class SpecLoader(torch.utils.data.Dataset):
    """Map-style view of one rank's specs for one epoch: item i is the collated batch of spec i (None for [])."""

    def __init__(self, task: BatchSource, specs: Sequence[Any], seed: int, epoch: int, rank: int, world_size: int):
        self.task, self.specs = task, specs
        self.seed, self.epoch, self.rank, self.world = seed, epoch, rank, world_size

    def __len__(self) -> int:
        return len(self.specs)

    def __getitem__(self, index: int) -> Any:
        spec = self.specs[index]
        if is_dummy(spec):
            return None
        with seeded(derive_seed(self.seed, self.epoch, index * self.world + self.rank)):
            return self.task.load_batch(spec)

    def first_real(self) -> Any:
        """The batch a dummy step runs through the model (with its loss multiplied by zero)."""
        for index, spec in enumerate(self.specs):
            if not is_dummy(spec):
                return self[index]
        return None


def _identity(item: Any) -> Any:
    return item


def iterate(loader: SpecLoader, start: int, num_workers: int, pin_memory: bool) -> Iterator[Any]:
    """Collated batches for positions start, start+1, ... (None for dummies)."""
    if num_workers == 0:
        for index in range(start, len(loader)):
            yield loader[index]
        return
    # a private generator: creating the iterator must not draw from the global torch RNG
    generator = torch.Generator().manual_seed(derive_seed(loader.seed, loader.epoch, -1 - loader.rank))
    data = torch.utils.data.DataLoader(loader, batch_size=None, sampler=range(start, len(loader)),
                                       num_workers=num_workers, collate_fn=_identity, pin_memory=pin_memory,
                                       generator=generator)
    yield from data


def to_device(batch: Any, device: torch.device) -> Any:
    """Move every tensor inside nested dicts/lists/tuples to `device`."""
    if torch.is_tensor(batch):
        return batch.to(device, non_blocking=device.type == "cuda")
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list):
        return [to_device(v, device) for v in batch]
    if isinstance(batch, tuple):
        items = [to_device(v, device) for v in batch]
        return type(batch)(*items) if hasattr(batch, "_fields") else tuple(items)
    return batch
