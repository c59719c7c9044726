"""Optimisers and learning-rate schedules.

A schedule here is a pure function of (num_updates, epochs_done): the lr for the next update never depends
on the history of calls, so a resumed run sets exactly the lr an uninterrupted run would have used.
Timing follows fairseq: the lr for update u (1-based) is lr_at(u - 1, ...), i.e. the scheduler is stepped with
the number of updates done so far, after each update.
"""
from __future__ import annotations

import math
from typing import Iterable

import torch

from .config import TrainConfig


def build_optimizer(cfg: TrainConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters (all have requires_grad=False)")
    impl = {"fused": dict(fused=True), "foreach": dict(foreach=True), "for_loop": dict(foreach=False)}
    if cfg.optimizer in ("adam", "adamw"):
        adam = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
        return adam(params, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps, weight_decay=cfg.weight_decay,
                    **impl[cfg.optimizer_impl])
    if cfg.optimizer == "sgd_nesterov":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=True,
                               weight_decay=cfg.weight_decay, **impl["for_loop" if cfg.optimizer_impl == "for_loop"
                                                                     else "foreach"])
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


class LRSchedule:
    """lr_at(num_updates, epochs_done) for the three schedules; apply() writes it into the optimizer."""

    def __init__(self, cfg: TrainConfig):
        self.cfg = cfg
        if cfg.scheduler == "inverse_sqrt":
            # fairseq InverseSquareRootSchedule: warmup_init_lr < 0 means 0 (with warmup) or lr (without)
            self.warmup_init_lr = cfg.warmup_init_lr
            if self.warmup_init_lr < 0:
                self.warmup_init_lr = 0.0 if cfg.warmup_updates > 0 else cfg.lr
            self.lr_step = (cfg.lr - self.warmup_init_lr) / cfg.warmup_updates
            self.decay_factor = cfg.lr * cfg.warmup_updates ** 0.5

    def lr_at(self, num_updates: int, epochs_done: int = 0) -> float:
        cfg = self.cfg
        if cfg.scheduler == "inverse_sqrt":
            if num_updates < cfg.warmup_updates:
                return self.warmup_init_lr + num_updates * self.lr_step
            return self.decay_factor * num_updates ** -0.5
        lr = cfg.lr
        if cfg.scheduler == "exponential":
            for _ in range(epochs_done):  # the SLU code: after every epoch, "if lr >= 1e-8: lr /= anneal"
                if lr < cfg.min_lr:
                    break
                lr = lr * cfg.lr_decay
        if cfg.warmup_updates > 0 and num_updates < cfg.warmup_updates:
            lr = (num_updates + 1) / float(cfg.warmup_updates) * lr  # fairseq FixedLRSchedule warmup
        return lr

    def apply(self, optimizer: torch.optim.Optimizer, num_updates: int, epochs_done: int) -> float:
        lr = self.lr_at(num_updates, epochs_done)
        if not math.isfinite(lr):
            raise ValueError(f"learning rate is not finite at update {num_updates}: {lr}")
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr
