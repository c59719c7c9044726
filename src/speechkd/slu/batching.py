"""Batching helpers the SLU stages share (on top of data.batching and the trainer's task protocol)."""
from __future__ import annotations

import dataclasses
from typing import Sequence

import torch

from ..config import option
from ..data.batching import BucketBatchSampler, pad_sequences
from ..runs import Run
from ..train.checkpoint import load_checkpoint
from ..train.trainer import BEST


@dataclasses.dataclass
class BatchConfig:
    batch_size: int = option(32, "sentences per training batch (the authors' batch_size)")
    max_tokens: int = option(0, "also cap batch size x longest sequence (0 = no cap)")
    eval_batch_size: int = option(64, "sentences per validation/test batch (results do not depend on it)",
                                  hashed=False)

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.eval_batch_size < 1 or self.max_tokens < 0:
            raise ValueError("batch_size and eval_batch_size must be >= 1, max_tokens >= 0")


def train_sampler(lengths: Sequence[int], cfg: BatchConfig, seed: int, rank: int = 0,
                  world: int = 1) -> BucketBatchSampler:
    """Length-bucketed batches of at most batch_size sentences, batch order shuffled per epoch (the authors'
    BucketingSampler shuffles fixed bins of consecutive manifest lines; bucketing by length wastes less padding)."""
    max_tokens = cfg.max_tokens or None
    if max_tokens is not None:
        max_tokens = max(max_tokens, int(max(lengths)))  # one over-long utterance still gets a batch of its own
    return BucketBatchSampler(lengths, max_tokens=max_tokens, max_sentences=cfg.batch_size, shuffle=True,
                              seed=seed, num_replicas=world, rank=rank)


def eval_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Fixed evaluation batches, longest first (no randomness)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def pad(seqs: Sequence[torch.Tensor], pad_idx: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L) padded tokens and (B,) lengths."""
    return pad_sequences(seqs, pad_idx), torch.tensor([len(s) for s in seqs], dtype=torch.long)


def load_best_weights(run: Run, model: torch.nn.Module) -> int:
    """Put checkpoint_best.pt's weights into `model`; returns the epoch they are from."""
    state = load_checkpoint(run.checkpoint_dir / BEST)
    model.load_state_dict(state["model"])
    return int(state["train_state"]["best_epoch"])
