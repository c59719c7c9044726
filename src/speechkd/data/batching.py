"""Length-bucketed batching shared by every stage (fairseq's ordered_indices + batch_by_size + EpochBatchIterator
sharding), and padding collaters.

Per epoch:
1. order: indices sorted by length, longest first (as fairseq's SpeechToTextDataset.ordered_indices); ties are
   broken by a random permutation drawn from (seed, epoch) when shuffling, by index otherwise;
2. pack consecutive indices greedily, like fairseq's batch_by_size: a batch is closed before an item that would
   make (batch size x longest item) exceed max_tokens, or the size exceed max_sentences; with
   required_batch_size_multiple m, a closed batch keeps the largest multiple of m and carries the rest over;
3. shuffle the batch order with (seed, epoch) when shuffling;
4. shard for DDP like fairseq's ShardedIterator: rank r takes global batches r, r + world, r + 2 world, ...; ranks
   that run short get an empty batch [] so that all ranks take the same number of steps (the trainer treats [] as
   a dummy batch that contributes nothing). So step s of N ranks sees global batches sN .. sN + N - 1, which is
   what one process with update_freq N accumulates in update s.
An item longer than max_tokens raises InputError (it could never fit a batch; filter it out, e.g. by n_frames,
or raise max_tokens), as fairseq's batch_by_size does.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch

from ..errors import InputError


class BucketBatchSampler:
    def __init__(self, lengths: Sequence[int], max_tokens: int | None, max_sentences: int | None = None,
                 shuffle: bool = True, seed: int = 1, num_replicas: int = 1, rank: int = 0,
                 required_batch_size_multiple: int = 1):
        if max_tokens is None and max_sentences is None:
            raise InputError("batching: set max_tokens or max_sentences (or both)")
        for name, value in (("max_tokens", max_tokens), ("max_sentences", max_sentences)):
            if value is not None and value < 1:
                raise InputError(f"batching: {name} must be >= 1, got {value}")
        if required_batch_size_multiple < 1:
            raise InputError(f"batching: required_batch_size_multiple must be >= 1, got {required_batch_size_multiple}")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, num_replicas={num_replicas})")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        if self.lengths.ndim != 1 or (self.lengths < 0).any():
            raise ValueError("lengths must be a 1-D sequence of non-negative integers")
        if max_tokens is not None and len(self.lengths) and self.lengths.max() > max_tokens:
            i = int(self.lengths.argmax())
            raise InputError(f"batching: item {i} has length {int(self.lengths[i])} > max_tokens={max_tokens}; "
                             "filter long items (e.g. by n_frames) or raise max_tokens")
        self.max_tokens, self.max_sentences = max_tokens, max_sentences
        self.shuffle, self.seed = shuffle, seed
        self.num_replicas, self.rank = num_replicas, rank
        self.multiple = required_batch_size_multiple
        self.epoch = 1
        # packing depends only on the sorted length sequence, not on the tie-break, so the count is per-epoch fixed
        self._num_global = len(self._pack(self._ordered(self.epoch)))

    def _rng(self, epoch: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, epoch, stream])

    def _ordered(self, epoch: int) -> np.ndarray:
        """Indices longest first; ties in a random (seed, epoch) order when shuffling."""
        n = len(self.lengths)
        tie = self._rng(epoch, 0).permutation(n) if self.shuffle else np.arange(n)
        return np.lexsort((tie, -self.lengths))

    def _is_full(self, size: int, longest: int) -> bool:
        return ((self.max_sentences is not None and size > self.max_sentences)
                or (self.max_tokens is not None and size * longest > self.max_tokens))

    def _pack(self, order: np.ndarray) -> list[list[int]]:
        batches: list[list[int]] = []
        batch: list[int] = []
        longest = 0
        for idx in order.tolist():
            length = int(self.lengths[idx])
            if batch and self._is_full(len(batch) + 1, max(longest, length)):
                keep = max(self.multiple * (len(batch) // self.multiple), len(batch) % self.multiple)
                batches.append(batch[:keep])
                batch = batch[keep:]
                longest = max((int(self.lengths[i]) for i in batch), default=0)
            batch.append(idx)
            longest = max(longest, length)
        if batch:
            batches.append(batch)
        return batches

    def global_batches(self, epoch: int) -> list[list[int]]:
        """All ranks' batches for `epoch`, in step order (what a single process would run)."""
        batches = self._pack(self._ordered(epoch))
        if self.shuffle:
            perm = self._rng(epoch, 1).permutation(len(batches))
            batches = [batches[i] for i in perm]
        return batches

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """This rank's batches for `epoch`, padded with [] to __len__; deterministic in (seed, epoch)."""
        mine = self.global_batches(epoch)[self.rank::self.num_replicas]
        return mine + [[] for _ in range(len(self) - len(mine))]

    def __len__(self) -> int:
        return -(-self._num_global // self.num_replicas)

    # torch DataLoader(batch_sampler=...) protocol: set_epoch() then iterate
    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.epoch_batches(self.epoch))


def collate_features(features: Sequence[np.ndarray | torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(T_i, F) arrays -> zero-padded float32 (B, T_max, F) and lengths (B,) int64."""
    if not features:
        raise ValueError("collate_features: empty batch")
    tensors = [torch.as_tensor(np.asarray(f) if not isinstance(f, torch.Tensor) else f, dtype=torch.float32)
               for f in features]
    dims = {t.shape[1] if t.ndim == 2 else None for t in tensors}
    if len(dims) != 1 or None in dims:
        raise ValueError(f"collate_features: expected (frames, F) arrays with one F, got {[tuple(t.shape) for t in tensors]}")
    lengths = torch.tensor([t.shape[0] for t in tensors], dtype=torch.long)
    out = torch.zeros(len(tensors), int(lengths.max()), tensors[0].shape[1], dtype=torch.float32)
    for i, t in enumerate(tensors):
        out[i, :t.shape[0]] = t
    return out, lengths


def pad_sequences(sequences: Sequence[torch.Tensor], pad: int, left_pad: bool = False) -> torch.Tensor:
    """1-D token tensors -> (B, L_max) int64 padded with `pad` on the right (or left, as fairseq's left_pad_source)."""
    if not sequences:
        raise ValueError("pad_sequences: empty batch")
    width = max(len(s) for s in sequences)
    out = torch.full((len(sequences), width), pad, dtype=torch.long)
    for i, s in enumerate(sequences):
        s = torch.as_tensor(s, dtype=torch.long)
        if s.ndim != 1:
            raise ValueError(f"pad_sequences: sequence {i} has shape {tuple(s.shape)}, expected 1-D")
        if left_pad:
            out[i, width - len(s):] = s
        else:
            out[i, :len(s)] = s
    return out
