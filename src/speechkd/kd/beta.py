"""β schedules of ImitKD: the probability of keeping the gold prefix of a sentence (rollin.mix_prefixes).

- The fork (HubReb/imitkd_ast, fairseq/fairseq/trainer.py `train_step`): after EVERY optimizer update,
  β = 200 ** (-num_updates / max_update); before the first update β is the criterion's --beta (1). With
  max_update 30k: 1.0 at 0, ≈0.171 at 10k, ≈0.0292 at 20k, 0.005 at 30k. An epoch variant (β = 200 ** (-epoch /
  max_epoch) at begin_epoch, fairseq's 1-based epoch) is used only when max_update is 0.
- The original ImitKD (asappresearch/imitkd, generation/distillation.py `Seq2SeqDistillTrainer`): β starts at 1
  and after each iteration t becomes linear 1 - (1 - final)·t/N, exponential exp_base ** -(t/N - warmup) (1 while
  t/N <= warmup), reverse_sigmoid 1 / (1 + exp((t/N - 0.5)·20)), or the constants ones / zeros / half.
"""
from __future__ import annotations

import dataclasses
import math

from ..errors import InputError


def exponential_beta(t: float, total: float, base: float = 200.0, warmup: float = 0.0) -> float:
    """base ** (-(t/total - warmup)), 1 while t/total <= warmup (warmup=0: the fork's 200 ** (-t/T))."""
    frac = t / total
    return 1.0 if frac <= warmup else base ** (-(frac - warmup))


def epoch_beta(epoch: int, max_epoch: int, base: float = 200.0) -> float:
    """The fork's epoch rule at begin_epoch: base ** (-epoch / max_epoch), with fairseq's 1-based epoch number
    (so the first epoch already has β = base ** (-1/max_epoch))."""
    return base ** (-epoch / max_epoch)


def linear_beta(t: float, total: float, final: float = 0.0) -> float:
    """Original ImitKD 'linear': 1 - (1 - final)·t/total."""
    return 1.0 - (1.0 - final) * t / total


def reverse_sigmoid_beta(t: float, total: float) -> float:
    """Original ImitKD 'reverse_sigmoid' (commented out in the fork): 1 / (1 + exp((t/total - 0.5)·20))."""
    return 1.0 / (1.0 + math.exp((t / total - 0.5) * 20.0))


UPDATE_KINDS = ("exponential", "linear", "reverse_sigmoid", "ones", "zeros", "half")
EPOCH_KINDS = ("exponential_epoch",)
KINDS = UPDATE_KINDS + EPOCH_KINDS


@dataclasses.dataclass
class BetaSchedule:
    """Current β and its rule. `total` is max_update for the per-update kinds and max_epoch for
    'exponential_epoch'. The trainer calls on_update(num_updates, model) after every update (the fork's place);
    an epoch schedule is advanced with on_epoch_begin(epoch). state_dict() holds plain floats (weights_only-safe).
    """
    kind: str = "exponential"
    total: int = 30000
    base: float = 200.0
    warmup: float = 0.0
    final: float = 0.0
    beta: float = dataclasses.field(default=float("nan"))

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"beta schedule kind: {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.kind in ("exponential", "linear", "reverse_sigmoid", "exponential_epoch") and self.total <= 0:
            raise InputError(f"beta schedule total: must be > 0 for kind {self.kind!r}, got {self.total}")
        if math.isnan(self.beta):
            # before any update: the criterion's initial --beta (1) in the fork, self.beta = 1. in ImitKD
            self.beta = {"zeros": 0.0, "half": 0.5}.get(self.kind, 1.0)

    def value_at(self, num_updates: int) -> float:
        """β after `num_updates` updates for the per-update kinds."""
        if self.kind == "exponential":
            return exponential_beta(num_updates, self.total, self.base, self.warmup)
        if self.kind == "linear":
            return linear_beta(num_updates, self.total, self.final)
        if self.kind == "reverse_sigmoid":
            return reverse_sigmoid_beta(num_updates, self.total)
        if self.kind in ("ones", "zeros", "half"):
            return {"ones": 1.0, "zeros": 0.0, "half": 0.5}[self.kind]
        raise ValueError(f"{self.kind!r} is an epoch schedule: use on_epoch_begin")

    def on_update(self, num_updates: int, model: object = None) -> float:
        if self.kind in UPDATE_KINDS:
            self.beta = self.value_at(num_updates)
        return self.beta

    def on_epoch_begin(self, epoch: int) -> float:
        if self.kind == "exponential_epoch":
            self.beta = epoch_beta(epoch, self.total, self.base)
        return self.beta

    def state_dict(self) -> dict:
        return {"beta": float(self.beta)}

    def load_state_dict(self, state: dict) -> None:
        self.beta = float(state["beta"])
