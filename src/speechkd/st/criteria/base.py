"""The criterion base class, its context and the registry (name -> class); see the package docstring."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
from torch import Tensor

from ...kd.sequence_losses import label_smoothed_nll
from ...models.seq2seq import log_softmax_fp32
from ...tokenizers.dictionary import Dictionary
from ..expert import Expert
from .config import CriterionConfig

LossOut = tuple[Tensor, float, dict[str, float]]


@dataclass
class CriterionContext:
    """What a criterion may use besides the student and the batch."""
    tgt_dict: Dictionary
    max_updates: int = 0                 # train.max_updates (T of the fork's β = 200^(-t/T))
    expert: Expert | None = None
    asr: Any = None                      # a frozen Seq2SeqModel (needs_asr)
    asr_dict: Dictionary | None = None


class Criterion:
    """Base class. Subclasses set `name` (via @register) and implement __call__."""
    name: ClassVar[str] = ""
    needs_expert: ClassVar[bool] = False
    needs_asr: ClassVar[bool] = False

    def __init__(self, cfg: CriterionConfig, ctx: CriterionContext):
        self.cfg, self.ctx = cfg, ctx
        self.pad = ctx.tgt_dict.pad()
        self.eos = ctx.tgt_dict.eos()

    def __call__(self, model: torch.nn.Module, batch: dict) -> LossOut:
        raise NotImplementedError

    def on_update(self, num_updates: int) -> None:
        """After every optimizer update (the fork's trainer.py updates β here)."""

    def valid_loss(self, model: torch.nn.Module, batch: dict) -> tuple[Tensor, int]:
        """(NLL sum over gold target tokens, ntokens): the fork validates every criterion this way (valid=True)."""
        lprobs = log_softmax_fp32(model(batch["source"], batch["source_lengths"], batch["prev_output_tokens"]))
        _, nll = label_smoothed_nll(lprobs, batch["target"], 0.0, ignore_index=self.pad)
        return nll, int(batch["ntokens"])

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


CRITERIA: dict[str, type[Criterion]] = {}


def register(name: str) -> Callable[[type[Criterion]], type[Criterion]]:
    def wrap(cls: type[Criterion]) -> type[Criterion]:
        if name in CRITERIA and CRITERIA[name] is not cls:
            raise ValueError(f"criterion {name!r} registered twice ({CRITERIA[name].__name__}, {cls.__name__})")
        cls.name = name
        CRITERIA[name] = cls
        return cls
    return wrap
