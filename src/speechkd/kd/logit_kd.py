"""SLU FT-KD (stage 2): match the speech model's intent logits to those of the frozen text teacher.

As released (clovaai/textual-kd-slu, finetuning.py): loss = CE(audio_logit, y) [batch mean] +
L1Loss(reduction='sum')(audio_logit, text_logit) / batch_size — raw logits, weight 1, no temperature, no softmax.
MSE (MSELoss(reduction='sum'), in a comment removed in commit ba14607) and Hinton's temperature KL are options
of ours; finetuning.py's SoftCrossEntropyLoss is unused there (and applies softmax over dim 0), so it is not
reproduced. The paper's own formulation is unconfirmed (slu_paper.md §1.3). The CE term is the caller's.
All functions detach the teacher: gradient reaches only the student.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..errors import InputError


def _check(student_logits: Tensor, teacher_logits: Tensor) -> None:
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ: teacher and student must share the intent dict")


def ft_kd_l1(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """finetuning.py as coded: L1(student, teacher) summed over classes and sentences, divided by the batch size."""
    _check(student_logits, teacher_logits)
    return F.l1_loss(student_logits, teacher_logits.detach(), reduction="sum") / student_logits.size(0)


def ft_kd_mse(student_logits: Tensor, teacher_logits: Tensor) -> Tensor:
    """The commented-out alternative: squared error summed, divided by the batch size."""
    _check(student_logits, teacher_logits)
    return F.mse_loss(student_logits, teacher_logits.detach(), reduction="sum") / student_logits.size(0)


def ft_kd_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0) -> Tensor:
    """Hinton et al. (2015): KL(softmax(teacher/T) || softmax(student/T)), mean over the batch, times T² so the
    gradient scale does not shrink with T."""
    _check(student_logits, teacher_logits)
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    student = F.log_softmax(student_logits / temperature, dim=-1)
    teacher = F.log_softmax(teacher_logits.detach() / temperature, dim=-1)
    return F.kl_div(student, teacher, reduction="batchmean", log_target=True) * temperature ** 2


FT_KD_KINDS = ("l1", "mse", "kl")


def ft_kd(kind: str, student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0) -> Tensor:
    """The FT-KD term named by a config value: "l1" (as released), "mse" or "kl" (uses temperature)."""
    if kind == "l1":
        return ft_kd_l1(student_logits, teacher_logits)
    if kind == "mse":
        return ft_kd_mse(student_logits, teacher_logits)
    if kind == "kl":
        return ft_kd_kl(student_logits, teacher_logits, temperature)
    raise InputError(f"ft_kd loss: {kind!r} is not one of {', '.join(FT_KD_KINDS)}")
