"""β schedules of ImitKD: the probability of keeping the gold prefix of a sentence (rollin.draw_replaced_rows).

- The fork (HubReb/imitkd_ast, fairseq/fairseq/trainer.py `train_step`): after EVERY optimizer update,
  β = 200 ** (-num_updates / max_update); before the first update β is the criterion's --beta (1). With
  max_update 30k: 1.0 at 0, ≈0.171 at 10k, ≈0.0292 at 20k, 0.005 at 30k. (The fork's epoch variant, used only
  when max_update is 0, is not offered: every ST config sets train.max_updates.)
- The original ImitKD (asappresearch/imitkd, generation/distillation.py `Seq2SeqDistillTrainer`): β starts at 1
  and after each iteration t becomes linear 1 - (1 - final)·t/N, exponential exp_base ** -(t/N) (ImitKD's warmup
  offset is 0 in every configuration used here), reverse_sigmoid 1 / (1 + exp((t/N - 0.5)·20)), or the constants
  ones / zeros / half.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Literal, get_args

from ..errors import InputError


def exponential_beta(t: float, total: float, base: float = 200.0) -> float:
    """base ** (-t/total), 1 at t = 0 (the fork's 200 ** (-t/T))."""
    frac = t / total
    return 1.0 if frac <= 0.0 else base ** (-frac)


def linear_beta(t: float, total: float, final: float = 0.0) -> float:
    """Original ImitKD 'linear': 1 - (1 - final)·t/total."""
    return 1.0 - (1.0 - final) * t / total


def reverse_sigmoid_beta(t: float, total: float) -> float:
    """Original ImitKD 'reverse_sigmoid' (commented out in the fork): 1 / (1 + exp((t/total - 0.5)·20))."""
    return 1.0 / (1.0 + math.exp((t / total - 0.5) * 20.0))


BetaKind = Literal["exponential", "linear", "reverse_sigmoid", "ones", "zeros", "half"]
KINDS: tuple[str, ...] = get_args(BetaKind)
TOTAL_KINDS = ("exponential", "linear", "reverse_sigmoid")  # the kinds that need T (total > 0)


@dataclasses.dataclass
class BetaSchedule:
    """Current β and its rule; `total` is max_update. The trainer calls on_update(num_updates, model) after every
    update (the fork's place). state_dict() holds plain floats (weights_only-safe). The one place that validates
    the kind (criterion.kd.beta_schedule is the same Literal, BetaKind)."""
    kind: str = "exponential"
    total: int = 30000
    base: float = 200.0
    final: float = 0.0
    beta: float = dataclasses.field(default=float("nan"))

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"beta schedule kind: {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.kind in TOTAL_KINDS and self.total <= 0:
            raise InputError(f"beta schedule total: must be > 0 for kind {self.kind!r}, got {self.total}")
        if math.isnan(self.beta):
            # before any update: the criterion's initial --beta (1) in the fork, self.beta = 1. in ImitKD
            self.beta = {"zeros": 0.0, "half": 0.5}.get(self.kind, 1.0)

    def value_at(self, num_updates: int) -> float:
        """β after `num_updates` updates for the per-update kinds."""
        if self.kind == "exponential":
            return exponential_beta(num_updates, self.total, self.base)
        if self.kind == "linear":
            return linear_beta(num_updates, self.total, self.final)
        if self.kind == "reverse_sigmoid":
            return reverse_sigmoid_beta(num_updates, self.total)
        return {"ones": 1.0, "zeros": 0.0, "half": 0.5}[self.kind]

    def on_update(self, num_updates: int, model: object = None) -> float:
        self.beta = self.value_at(num_updates)
        return self.beta

    def state_dict(self) -> dict:
        return {"beta": float(self.beta)}

    def load_state_dict(self, state: dict) -> None:
        self.beta = float(state["beta"])
