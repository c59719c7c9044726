"""The criterion section of the ST training config (`criterion`, CriterionConfig) and its KD options
(`criterion.kd`, KDConfig): the β schedule of ImitKD, the roll-in limits and the authors' mask quirk.

KD defaults are the fork's (HubReb/imitkd_ast; ast_paper.md §1.2-1.4): β = 200^(-t/T) after every update with
T = train.max_updates, β = 1 before the first update, roll-in max_len = min(200, longest gold prefix - 1).
The β kind is a Literal (kd/beta.py BetaKind, checked when a config is loaded) and validated once more, with its
T, where the schedule is built (kd/beta.py BetaSchedule).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ...config import option
from ...kd.beta import BetaKind
from ..expert import ExpertConfig


@dataclass
class KDConfig:
    beta_schedule: BetaKind = option(
        "exponential", "ImitKD β (probability of keeping a sentence's gold prefix) after update t: exponential = "
                       "base^(-t/T) (the fork's trainer.py), linear / reverse_sigmoid / ones / zeros / half = the "
                       "original ImitKD schedulers (kd/beta.py)")
    beta_base: float = option(200.0, "exponential: the base (the fork and ImitKD's exp_base: 200)")
    beta_total: int = option(0, "T of the β schedule in updates; 0 = train.max_updates (the fork's --max-update)")
    beta_final: float = option(0.0, "linear: β at t = T")
    rollin_max_len_cap: int = option(200, "the student's greedy roll-in stops at min(cap, longest gold prefix - 1) "
                                          "tokens (+ EOS): fairseq SequenceGenerator's max_len_b = 200")
    rollin_encoder: Literal["eval", "train"] = option(
        "eval", "the encoder output the student's greedy roll-in decodes from: eval = a separate dropout-free "
                "encoder pass (the fork: SequenceGenerator on the student in eval mode); train = the training "
                "forward's encoder output (detached), one encoder pass less per batch, the roll-in then sees "
                "encoder dropout (the decoder still runs in eval mode). DDP runs always use eval")
    pad_mask_bug: bool = option(
        False, "reproduce the authors' `expert_probs.eq(pad)` mask of imitKD_ast.py / "
               "imitKD_pipeline_nmt_training.py (pads not masked, probabilities equal to the pad index zeroed). "
               "Off by default: no reported number depends on it (the paper's rows use imitKD_CE.py and "
               "kd_expert_copy.py, which mask by the pads); applies to every expert cross-entropy criterion")

    def __post_init__(self) -> None:
        if self.beta_base <= 1.0:
            raise ValueError(f"criterion.kd.beta_base must be > 1, got {self.beta_base}")
        if self.beta_total < 0:
            raise ValueError(f"criterion.kd.beta_total must be >= 0, got {self.beta_total}")
        if self.rollin_max_len_cap < 1:
            raise ValueError(f"criterion.kd.rollin_max_len_cap must be >= 1, got {self.rollin_max_len_cap}")


@dataclass
class CriterionConfig:
    name: str = option("label_smoothed_nll", "training criterion (see st/criteria CRITERIA): "
                                             "label_smoothed_nll, or a KD criterion", required=True)
    label_smoothing: float = option(0.1, "label_smoothed_nll: epsilon (fairseq --label-smoothing; the S2T "
                                         "recipes use 0.1)")
    expert: ExpertConfig = option(ExpertConfig, "the frozen expert of the KD criteria (ignored by the others)")
    asr_run: str = option("", "criteria with on-the-fly transcripts (cascade): the st-train ASR run whose "
                              "checkpoint_best.pt transcribes the audio (frozen, greedy)", run_ref=True)
    kd: KDConfig = option(KDConfig, "KD criteria: ImitKD β schedule, roll-in length cap, the authors' pad-mask "
                                    "quirk (st/criteria/config.py)")
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
