"""The ST criterion registry: name -> class. A criterion computes the training loss of one batch; the task
(st/task.py) owns it, the data, and any frozen helper model (the NMT/AST expert, a cascade's ASR model).

Protocol (what st/task.py calls):
    crit = CRITERIA[name](cfg, ctx)             # cfg: CriterionConfig, ctx: CriterionContext
    loss_sum, sample_size, logs = crit(model, batch)   # sums, fairseq convention; sample_size = gold tokens
    crit.on_update(num_updates)                 # after every optimizer update (the fork's β update lives here)
    crit.valid_loss(model, batch) -> (nll_sum, ntokens)   # validation: NLL on gold, no label smoothing
    crit.state_dict() / crit.load_state_dict(d)        # plain floats/ints only (weights_only checkpoints)

Class attributes tell the task what to load: `needs_expert` (ctx.expert, and the batches carry the expert's
source ids `expert_source`), `needs_asr` (ctx.asr: a frozen ASR model for on-the-fly transcripts). Frozen models
are held by the task, never by the student (so they never enter its optimiser or checkpoints), and a criterion
must not be an nn.Module for the same reason.

KD criteria (word-KD, ImitKD-optimal/-full, mixer, AST-expert, cascade) register here with @register(name) from
their own module; import that module at the end of this file so that the registry sees them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from ..config import option
from ..errors import InputError
from ..kd.sequence_losses import label_smoothed_nll
from ..models.seq2seq import EncoderOut, log_softmax_fp32
from ..tokenizers.dictionary import Dictionary
from .expert import Expert, ExpertConfig
from .kd_config import KDConfig

LossOut = tuple[Tensor, float, dict[str, float]]


@dataclass
class CriterionConfig:
    name: str = option("label_smoothed_nll", "training criterion (see st/criteria.py CRITERIA): "
                                             "label_smoothed_nll, or a KD criterion", required=True)
    label_smoothing: float = option(0.1, "label_smoothed_nll: epsilon (fairseq --label-smoothing; the S2T "
                                         "recipes use 0.1)")
    expert: ExpertConfig = option(ExpertConfig, "the frozen expert of the KD criteria (ignored by the others)")
    asr_run: str = option("", "criteria with on-the-fly transcripts (cascade): the st-train ASR run whose "
                              "checkpoint_best.pt transcribes the audio (frozen, greedy)", run_ref=True)
    kd: KDConfig = option(KDConfig, "KD criteria: ImitKD β schedule, roll-in length cap, the authors' pad-mask "
                                    "quirk (st/kd_config.py)")
    ctc_weight: float = option(0.0, "label_smoothed_nll only: λ of ESPnet's hybrid CTC/attention loss "
                                    "(1-λ)·attention + λ·CTC, a CTC head on the encoder (s2t_transformer); "
                                    "0 = off, as in the papers. An embedded-profile aid for the tiny ASR models")

    def __post_init__(self) -> None:
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"criterion.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0.0 <= self.ctc_weight < 1.0:
            raise ValueError(f"criterion.ctc_weight must be in [0, 1), got {self.ctc_weight}")
        if self.ctc_weight and self.name != "label_smoothed_nll":
            raise ValueError(f"criterion.ctc_weight is a label_smoothed_nll option, not one of {self.name!r}")


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


def criterion_class(name: str) -> type[Criterion]:
    if name not in CRITERIA:
        raise InputError(f"criterion.name: unknown criterion {name!r} (available: {', '.join(sorted(CRITERIA))})")
    return CRITERIA[name]


@register("label_smoothed_nll")
class LabelSmoothedNll(Criterion):
    """fairseq `label_smoothed_cross_entropy` (fairseq/criterions/label_smoothed_cross_entropy.py), the NLL rows:
    loss = (1 - ε - ε/(V-1))·NLL + ε/(V-1)·Σ_v -log p(v), summed over non-pad target positions, ε = 0.1;
    sample_size = ntokens (gold target tokens incl. EOS; fairseq's --sentence-avg is off in the recipes).

    With criterion.ctc_weight λ > 0 (ESPnet's hybrid CTC/attention training, Watanabe et al. 2017):
    loss = (1 - λ)·that + λ·CTC(encoder.ctc_proj(encoder states), target without EOS), summed over utterances,
    blank = <s> (fairseq's CTC convention), zero_infinity for utterances shorter than their transcript."""

    def __call__(self, model: torch.nn.Module, batch: dict) -> LossOut:
        args = (batch["source"], batch["source_lengths"], batch["prev_output_tokens"])
        if self.cfg.ctc_weight > 0:
            logits, enc = model(*args, return_encoder_out=True)
        else:
            logits = model(*args)
        loss, nll = label_smoothed_nll(log_softmax_fp32(logits), batch["target"], self.cfg.label_smoothing,
                                       ignore_index=self.pad)
        logs = {"nll_loss": float(nll.detach())}
        if self.cfg.ctc_weight > 0:
            ctc = self.ctc_loss(enc, batch["target"])
            loss = (1.0 - self.cfg.ctc_weight) * loss + self.cfg.ctc_weight * ctc
            logs["ctc_loss"] = float(ctc.detach())
        return loss, int(batch["ntokens"]), logs

    def ctc_loss(self, enc: EncoderOut, target: Tensor) -> Tensor:
        if enc.ctc_logits is None:
            raise InputError("criterion.ctc_weight: the model has no CTC head (s2t_transformer only)")
        lprobs = log_softmax_fp32(enc.ctc_logits).transpose(0, 1)  # (T, B, V)
        keep = (target != self.pad) & (target != self.eos)
        return F.ctc_loss(lprobs, target[keep], enc.lengths, keep.sum(dim=1), blank=self.ctx.tgt_dict.bos(),
                          reduction="sum", zero_infinity=True)


from . import kd_criteria  # noqa: E402,F401  (registers the KD criteria; it imports this module)
