"""The st-train task: data, batching, criterion and frozen helper models behind the shared Trainer's protocol
(train/trainer.py): train_batches / load_batch / loss / validate / on_update / state_dict.

- Training batches: BucketBatchSampler over source lengths (frames or tokens) with max_tokens packing, fairseq's
  default required_batch_size_multiple 8, shuffled per epoch; items longer than max_source_positions /
  max_target_positions are skipped (fairseq's filter_indices_by_size; counted in the metrics).
- Training transforms: utterance CMVN (or global) then SpecAugment, drawn from the per-batch seed.
- Validation (rank 0): the criterion's valid_loss, i.e. the gold NLL without label smoothing (the fork's
  valid=True path), summed over the dev set and divided by its target tokens -> valid_loss, which selects
  checkpoint_best.pt and drives patience. Losses are in nats per token (fairseq prints base 2).
- The expert / ASR helper models are attributes of this plain object, so they are never part of the student's
  parameters, optimiser or checkpoints (the fork saved the whole expert into every checkpoint).
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

from ..data.batching import BucketBatchSampler
from ..train.batches import to_device
from ..train.distributed import unwrap
from ..train.reproducibility import batch_rng
from .criteria import Criterion
from .data import specaugment_of


class StTask:
    def __init__(self, train_data: Any, valid_data: Any, criterion: Criterion, *, max_tokens: int,
                 max_sentences: int = 0, seed: int = 1, specaugment: str = "none",
                 max_source_positions: int = 6000, max_target_positions: int = 1024,
                 required_batch_size_multiple: int = 8, helpers: Sequence[Any] = ()):
        self.train_data, self.valid_data, self.criterion = train_data, valid_data, criterion
        self.max_tokens, self.max_sentences = max_tokens, max_sentences or None
        self.seed, self.multiple = seed, required_batch_size_multiple
        self.specaugment = specaugment_of(specaugment)
        self.helpers = list(helpers)  # frozen models (expert, ASR) to move with set_device
        self.num_updates = 0
        src_len = getattr(train_data, "source_lengths", train_data.lengths)
        keep = (src_len <= max_source_positions) & (train_data.target_lengths() <= max_target_positions)
        self.train_indices = np.flatnonzero(keep)
        self.skipped = int((~keep).sum())
        self._samplers: dict[tuple[int, int], BucketBatchSampler] = {}
        self._valid_batches: list[dict] | None = None
        self.device = torch.device("cpu")

    # ------------------------------------------------------------------------------------- protocol
    def set_device(self, device: torch.device) -> None:
        self.device = device
        for helper in self.helpers:
            helper.to(device)

    def _sampler(self, rank: int, world: int) -> BucketBatchSampler:
        if (rank, world) not in self._samplers:
            self._samplers[(rank, world)] = BucketBatchSampler(
                self.train_data.lengths[self.train_indices], self.max_tokens, self.max_sentences, shuffle=True,
                seed=self.seed, num_replicas=world, rank=rank, required_batch_size_multiple=self.multiple)
        return self._samplers[(rank, world)]

    def train_batches(self, epoch: int, rank: int, world_size: int) -> list[list[int]]:
        return [[int(self.train_indices[i]) for i in b] for b in self._sampler(rank, world_size).epoch_batches(epoch)]

    def load_batch(self, spec: list[int]) -> dict:
        rng = batch_rng() if self.specaugment is not None else None
        return self.train_data.collate(spec, self.specaugment, rng)

    def loss(self, model: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, float, dict]:
        unwrap(model).set_num_updates(self.num_updates)  # exact after a resume too (encoder freezing)
        return self.criterion(model, batch)

    def on_update(self, num_updates: int, model: torch.nn.Module) -> None:
        self.num_updates = num_updates
        unwrap(model).set_num_updates(num_updates)
        self.criterion.on_update(num_updates)

    def valid_batches(self) -> list[dict]:
        if self._valid_batches is None:  # no augmentation: collate once, reuse every epoch
            sampler = BucketBatchSampler(self.valid_data.lengths, self.max_tokens, self.max_sentences, shuffle=False)
            self._valid_batches = [self.valid_data.collate(b) for b in sampler.global_batches(1)]
        return self._valid_batches

    def validate(self, model: torch.nn.Module) -> dict[str, float]:
        unwrap(model).set_num_updates(self.num_updates)
        nll_sum, ntokens = 0.0, 0
        for batch in self.valid_batches():
            nll, n = self.criterion.valid_loss(model, to_device(batch, self.device))
            nll_sum += float(nll)
            ntokens += int(n)
        loss = nll_sum / max(ntokens, 1)
        return {"valid_loss": loss, "valid_ppl": math.exp(min(loss, 50.0))}

    def state_dict(self) -> dict:
        return {"num_updates": self.num_updates, "criterion": self.criterion.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.num_updates = int(state.get("num_updates", 0))
        self.criterion.load_state_dict(state.get("criterion", {}))
