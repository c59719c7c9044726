"""Token-level sequence losses of the ST pipeline: fairseq's label-smoothed NLL and the KD / ImitKD criterions of
the ImitKD-for-AST fork (HubReb/imitkd_ast, fairseq/fairseq/criterions/*.py).

Conventions (fairseq's): every loss is a SUM over positions (and sentences); the trainer divides by sample_size,
the number of gold target tokens, whatever prefixes the loss was computed on. Shapes: log-probs (B, U, V),
token ids (B, U), pad masks (B, U) bool with True = position ignored. The expert side is always detached: gradient
reaches only the student's log-probs.

Memory: the expert cross-entropy -Σ_v p_E·log p_S is computed as one batched dot product per position (a matmul
of (B·U, 1, V) by (B·U, V, 1)), so no (B, U, V) product tensor is created; masking acts on the (B, U) per-position
losses instead of writing zeros into a copy of the expert distribution (same value as the authors' masked_fill_).
The dot product runs with autocast disabled: under bf16 autocast a matmul would round the log-probs to 8 bits.
"""
from __future__ import annotations

import torch
from torch import Tensor


def label_smoothed_nll(lprobs: Tensor, target: Tensor, epsilon: float,
                       ignore_index: int | None = None) -> tuple[Tensor, Tensor]:
    """fairseq's `label_smoothed_nll_loss` (fairseq/criterions/label_smoothed_cross_entropy.py, fairseq >= 0.10.2,
    the version inside the fork), reduce=True:

        nll = -log p(target),  smooth = -Σ_v log p(v),  both zeroed where target == ignore_index and summed;
        eps_i = epsilon / (V - 1);  loss = (1 - epsilon - eps_i)·nll + eps_i·smooth.

    lprobs (..., V) log-probs, target (...) ids. Returns (loss_sum, nll_sum). With epsilon=0 the loss is the fork's
    validation loss (helper_functions.valid_loss: plain NLL against gold, pad masked).
    """
    if target.shape != lprobs.shape[:-1]:
        raise ValueError(f"target shape {tuple(target.shape)} does not match lprobs {tuple(lprobs.shape)}")
    nll = -lprobs.gather(dim=-1, index=target.unsqueeze(-1)).squeeze(-1)
    smooth = -lprobs.sum(dim=-1)
    if ignore_index is not None:
        pad = target.eq(ignore_index)
        nll = nll.masked_fill(pad, 0.0)
        smooth = smooth.masked_fill(pad, 0.0)
    nll_sum, smooth_sum = nll.sum(), smooth.sum()
    eps_i = epsilon / (lprobs.size(-1) - 1)
    loss = (1.0 - epsilon - eps_i) * nll_sum + eps_i * smooth_sum
    return loss, nll_sum


def _masked_sum(per_position: Tensor, pad_mask: Tensor | None) -> Tensor:
    if pad_mask is None:
        return per_position.sum()
    if pad_mask.shape != per_position.shape:
        raise ValueError(f"pad_mask shape {tuple(pad_mask.shape)} does not match the positions "
                         f"{tuple(per_position.shape)}")
    return per_position.masked_fill(pad_mask, 0.0).sum()


def _position_cross_entropy(lprobs: Tensor, probs: Tensor) -> Tensor:
    """-Σ_v probs·lprobs for every position, (B, U), without materialising the (B, U, V) product."""
    if probs.shape != lprobs.shape:
        raise ValueError(f"expert distribution {tuple(probs.shape)} and student log-probs {tuple(lprobs.shape)} "
                         "differ: the expert and the student must share the target vocabulary and the prefixes")
    probs = probs.detach().to(lprobs.dtype)
    with torch.autocast(device_type=lprobs.device.type, enabled=False):
        dot = torch.matmul(probs.unsqueeze(-2), lprobs.unsqueeze(-1))
    return -dot.reshape(lprobs.shape[:-1])


def _expert_cross_entropy(lprobs: Tensor, expert_probs: Tensor, pad_mask: Tensor | None,
                          pad_mask_bug: bool, pad_idx: int) -> Tensor:
    if pad_mask_bug:
        # the coded mask `expert_out.eq(pad)` compares probabilities with the pad index: it masks no pad position
        # and only zeroes probabilities that equal pad_idx exactly (1.0 for fairseq's pad=1, i.e. positions where
        # the expert's float32 softmax saturated, which then drop out of the loss)
        expert_probs = expert_probs.detach()
        expert_probs = expert_probs.masked_fill(expert_probs.eq(pad_idx), 0.0)
        pad_mask = None
    return _masked_sum(_position_cross_entropy(lprobs, expert_probs), pad_mask)


def word_kd(lprobs_student: Tensor, expert_probs: Tensor, pad_mask: Tensor | None, *,
            pad_mask_bug: bool = False, pad_idx: int = 1) -> Tensor:
    """Word-level KD (WKD; the README's "KD"), kd_expert_copy.py `kd_loss`, criterion `kd`:
    -Σ_t Σ_v p_E(v | x_src, y_<t) · log p_S(v | audio, y_<t) on the GOLD prefixes (teacher forcing), summed;
    no gold-NLL term. pad_mask: the gold target's pads (`target.eq(pad)`), as the fork masks the expert
    distribution with; expert_probs: softmax of the expert, (B, U, V), same vocabulary as the student.

    pad_mask_bug=True reproduces a stored version of kd_expert_copy.py (commit 408f247) that masks with
    `expert_out.eq(pad)` (see imitkd_full); another (5f68c7c) masks by the target, which is the default here.
    Which version produced the README's KD rows is not known (ast_paper.md does not say).
    """
    return _expert_cross_entropy(lprobs_student, expert_probs, pad_mask, pad_mask_bug, pad_idx)


def imitkd_full(lprobs_student: Tensor, expert_probs: Tensor, pad_mask: Tensor | None, *,
                pad_mask_bug: bool = False, pad_idx: int = 1) -> Tensor:
    """ImitKD-full, imitKD_CE.py `imit_kd_loss`, criterion `imit_kd_CE` (the README's "ImitKD-full" rows):
    -Σ_t Σ_v p_E(v | x_src, y_<t) · log p_S(v | audio, y_<t) on the MIXED prefixes (rollin.apply_rollin), summed.
    pad_mask: pads of the mixed prev_output_tokens (`prev.eq(pad)`); the authors zero the expert probabilities
    there, which is the same sum. The last real position of a student roll-in is kept: there the expert can
    predict EOS.

    pad_mask_bug=True reproduces imitKD_ast.py (`imit_kd_ast`, AST expert) and imitKD_pipeline_nmt_training.py
    (`imit_pipeline_nmt_training`, cascade NMT): they build the mask as `expert_probs.eq(pad_idx)`, comparing
    PROBABILITIES with the pad index, so pad positions are not masked (they add the expert-vs-student cross-entropy
    after pad inputs), and a probability exactly equal to pad_idx (1.0 when pad=1: a saturated expert) is zeroed.
    The paper's / README's numbers do NOT depend on this flag: its ImitKD rows use imitKD_CE.py, which masks
    correctly; AST-expert and cascade runs have no reported numbers.
    """
    return _expert_cross_entropy(lprobs_student, expert_probs, pad_mask, pad_mask_bug, pad_idx)


def imitkd_optimal(lprobs_student: Tensor, expert_scores: Tensor, pad_mask: Tensor | None) -> Tensor:
    """ImitKD-optimal, imitKD.py `imit_kd_loss`, criterion `imit_kd`: NLL of the expert's argmax,
    -Σ_t log p_S(a*_t | audio, y_<t) with a*_t = argmax_v p_E(v | x_src, y_<t), on the mixed prefixes, summed.

    expert_scores: the expert's logits, log-probs or probs (B, U, V); only its argmax is used, so any of them
    gives the same loss (no gradient flows through argmax). pad_mask: positions to ignore. imitKD.py masks with
    the GOLD target's pads (`sample["target"].eq(pad)`), imitKD_mixer*.py with the roll-in's prev_output_tokens
    pads; for gold-prefix rows the two coincide, for student roll-ins only the latter follows the hypothesis
    length (pass `prev.eq(pad)` for that; pass `target.eq(pad)` to mirror imitKD.py where the shapes agree).
    """
    if expert_scores.shape != lprobs_student.shape:
        raise ValueError(f"expert scores {tuple(expert_scores.shape)} and student log-probs "
                         f"{tuple(lprobs_student.shape)} differ")
    preds = expert_scores.detach().argmax(dim=-1, keepdim=True)
    nll = -lprobs_student.gather(dim=-1, index=preds).squeeze(-1)
    return _masked_sum(nll, pad_mask)


def imitkd_mixer(lprobs_rollin: Tensor, expert_scores_rollin: Tensor, rollin_pad_mask: Tensor | None,
                 lprobs_gold: Tensor, expert_probs_gold: Tensor, gold_pad_mask: Tensor | None,
                 beta: float) -> Tensor:
    """imitKD_mixer.py, criterion `imit_kd_mixer` (interpolation instead of reference phase-out):
    β·WKD on the gold prefixes + (1 - β)·ImitKD-optimal on 100 % student roll-ins, i.e. the coded
    -((1 - β)·Σ log p_S(argmax p_E | student prefix) + β·Σ p_E·log p_S | gold prefix).
    rollin_pad_mask: pads of the roll-in prev_output_tokens; gold_pad_mask: pads of the gold target (as coded).
    The student runs twice (roll-in and gold prefixes), hence the README's "needs more VRAM".
    """
    optimal = imitkd_optimal(lprobs_rollin, expert_scores_rollin, rollin_pad_mask)
    wkd = word_kd(lprobs_gold, expert_probs_gold, gold_pad_mask)
    return (1.0 - beta) * optimal + beta * wkd


def imitkd_mixer_nll(lprobs_rollin: Tensor, expert_scores_rollin: Tensor, rollin_pad_mask: Tensor | None,
                     lprobs_gold: Tensor, expert_scores_gold: Tensor, gold_pad_mask: Tensor | None,
                     beta: float) -> Tensor:
    """imitKD_mixer_nll.py, criterion `imit_kd_mixer_nll`: like imitkd_mixer, but the β-term is the NLL of the
    expert's argmax on the gold prefixes: β·ImitKD-optimal(gold prefixes) + (1 - β)·ImitKD-optimal(roll-ins).
    Masks as coded: the roll-in term by the roll-in prev_output_tokens pads, the gold term by the target pads.
    """
    rollin = imitkd_optimal(lprobs_rollin, expert_scores_rollin, rollin_pad_mask)
    gold = imitkd_optimal(lprobs_gold, expert_scores_gold, gold_pad_mask)
    return (1.0 - beta) * rollin + beta * gold
