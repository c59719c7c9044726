"""SLU PT-KD (stage 1): distance between the speech encoder's [CLS] (`<s>`, position 0 of VQ-BERT) and the frozen
text RoBERTa's [CLS] vector of the transcript.

The authors did NOT release the PT-KD training script (clovaai/textual-kd-slu ships only CrossBert's pretrain
mode, which returns vq_cls and text_cls, and the masked data loader; slu_paper.md §1.2), so the distance, its
reduction and its weight against the MLM loss are our choice, not the paper's. Default: squared L2 distance
per utterance (summed over the 768 features), averaged over the batch — the same per-sentence-sum / batch
convention as the released FT-KD L1. The teacher side is detached.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..errors import InputError

CLS_DISTANCES = ("mse", "l1", "cosine")


def cls_distance(student_cls: Tensor, teacher_cls: Tensor, kind: str = "mse") -> Tensor:
    """Mean over the batch of a per-utterance distance between (B, D) vectors:
    "mse" Σ_d (s - t)², "l1" Σ_d |s - t|, "cosine" 1 - cos(s, t)."""
    if student_cls.shape != teacher_cls.shape or student_cls.dim() != 2:
        raise ValueError(f"expected two (B, D) tensors of one shape, got {tuple(student_cls.shape)} and "
                         f"{tuple(teacher_cls.shape)}")
    teacher_cls = teacher_cls.detach()
    if kind == "mse":
        per_utt = (student_cls - teacher_cls).pow(2).sum(dim=-1)
    elif kind == "l1":
        per_utt = (student_cls - teacher_cls).abs().sum(dim=-1)
    elif kind == "cosine":
        per_utt = 1.0 - F.cosine_similarity(student_cls, teacher_cls, dim=-1)
    else:
        raise InputError(f"pt_kd distance: {kind!r} is not one of {', '.join(CLS_DISTANCES)}")
    return per_utt.mean()
