"""KD losses (speechkd.kd.sequence_losses, logit_kd, representation_kd) against hand-computed values, naive loop
implementations of each formula, and the fork's / fairseq's code written out as coded."""
from __future__ import annotations

import math
import os
import subprocess
import textwrap

import pytest
import torch
import torch.nn.functional as F

from speechkd.errors import InputError
from speechkd.kd.logit_kd import ft_kd, ft_kd_kl, ft_kd_l1, ft_kd_mse
from speechkd.kd.representation_kd import cls_distance
from speechkd.kd.sequence_losses import (
    imitkd_full, imitkd_mixer, imitkd_mixer_nll, imitkd_optimal, label_smoothed_nll, word_kd,
)

PAD = 1


def _batch(seed: int = 0, B: int = 3, U: int = 5, V: int = 7):
    """Student log-probs, expert logits/probs and a padded target with rows of lengths 5, 3, 1."""
    g = torch.Generator().manual_seed(seed)
    student_logits = torch.randn(B, U, V, generator=g)
    expert_logits = 3 * torch.randn(B, U, V, generator=g)
    target = torch.randint(4, V, (B, U), generator=g)
    for b, n in enumerate([5, 3, 1][:B]):
        target[b, n:] = PAD
    return student_logits, expert_logits, target


# ---- naive references (loops over sentences, positions and the vocabulary) --------------------------------------
def naive_cross_entropy(lprobs, probs, mask):
    total = 0.0
    B, U, V = lprobs.shape
    for b in range(B):
        for t in range(U):
            if mask is not None and mask[b, t]:
                continue
            total += -sum(float(probs[b, t, v]) * float(lprobs[b, t, v]) for v in range(V))
    return total


def naive_argmax_nll(lprobs, scores, mask):
    total = 0.0
    B, U, V = lprobs.shape
    for b in range(B):
        for t in range(U):
            if mask is not None and mask[b, t]:
                continue
            best = max(range(V), key=lambda v: float(scores[b, t, v]))
            total += -float(lprobs[b, t, best])
    return total


def fairseq_label_smoothed_nll_loss(lprobs, target, epsilon, ignore_index=None, reduce=True):
    """fairseq/criterions/label_smoothed_cross_entropy.py (0.10.2 .. 0.12), verbatim."""
    if target.dim() == lprobs.dim() - 1:
        target = target.unsqueeze(-1)
    nll_loss = -lprobs.gather(dim=-1, index=target)
    smooth_loss = -lprobs.sum(dim=-1, keepdim=True)
    if ignore_index is not None:
        pad_mask = target.eq(ignore_index)
        nll_loss.masked_fill_(pad_mask, 0.0)
        smooth_loss.masked_fill_(pad_mask, 0.0)
    else:
        nll_loss = nll_loss.squeeze(-1)
        smooth_loss = smooth_loss.squeeze(-1)
    if reduce:
        nll_loss = nll_loss.sum()
        smooth_loss = smooth_loss.sum()
    eps_i = epsilon / (lprobs.size(-1) - 1)
    loss = (1.0 - epsilon - eps_i) * nll_loss + eps_i * smooth_loss
    return loss, nll_loss


# ---- label-smoothed NLL --------------------------------------------------------------------------------------------
def test_label_smoothed_nll_hand_computed():
    # one sentence, V=3: p = (0.5, 0.25, 0.25) at both positions, targets 0 and pad
    lprobs = torch.tensor([[0.5, 0.25, 0.25], [0.5, 0.25, 0.25]]).log().unsqueeze(0)
    target = torch.tensor([[0, PAD]])
    loss, nll = label_smoothed_nll(lprobs, target, epsilon=0.1, ignore_index=PAD)
    nll_expected = math.log(2)
    smooth_expected = math.log(2) + 2 * math.log(4)
    eps_i = 0.1 / 2
    assert nll.item() == pytest.approx(nll_expected, rel=1e-6)
    assert loss.item() == pytest.approx((1 - 0.1 - eps_i) * nll_expected + eps_i * smooth_expected, rel=1e-6)


@pytest.mark.parametrize("epsilon", [0.0, 0.1, 0.3])
@pytest.mark.parametrize("ignore_index", [PAD, None])
def test_label_smoothed_nll_matches_fairseq_formula(epsilon, ignore_index):
    logits, _, target = _batch(1, B=4, U=6, V=11)
    lprobs = F.log_softmax(logits, dim=-1)
    loss, nll = label_smoothed_nll(lprobs, target, epsilon, ignore_index)
    ref_loss, ref_nll = fairseq_label_smoothed_nll_loss(lprobs.clone(), target, epsilon, ignore_index)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(nll, ref_nll, rtol=1e-6, atol=1e-6)
    if epsilon == 0.0:
        torch.testing.assert_close(loss, nll)


FAIRSEQ_LS_SCRIPT = textwrap.dedent("""
    import sys, torch
    from fairseq.criterions.label_smoothed_cross_entropy import label_smoothed_nll_loss
    io = torch.load(sys.argv[1])
    V = io["lprobs"].size(-1)
    out = {}
    for eps, ignore in io["cases"]:
        loss, nll = label_smoothed_nll_loss(io["lprobs"].view(-1, V).clone(), io["target"].view(-1), eps,
                                            ignore_index=ignore)
        out[(eps, ignore)] = (loss, nll)
    torch.save(out, sys.argv[2])
    """)


@pytest.mark.reference
def test_label_smoothed_nll_matches_installed_fairseq(tmp_path):
    """fairseq-fixed's own label_smoothed_nll_loss, run by $FAIRSEQ_PYTHON (scripts/install_fairseq_reference.sh)."""
    python = os.environ.get("FAIRSEQ_PYTHON")
    if not python:
        pytest.skip("FAIRSEQ_PYTHON (a python with fairseq-fixed) is not set: compared with the formula written out "
                    "instead")
    logits, _, target = _batch(2, B=4, U=6, V=11)
    lprobs = F.log_softmax(logits, dim=-1)
    cases = [(eps, ignore) for eps in (0.0, 0.1, 0.3) for ignore in (PAD, None)]
    torch.save({"lprobs": lprobs, "target": target, "cases": cases}, tmp_path / "in.pt")
    (tmp_path / "ref.py").write_text(FAIRSEQ_LS_SCRIPT)
    subprocess.run([python, str(tmp_path / "ref.py"), str(tmp_path / "in.pt"), str(tmp_path / "out.pt")],
                   check=True, capture_output=True, env={**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"})
    ref = torch.load(tmp_path / "out.pt", weights_only=False)
    assert sorted(ref, key=str) == sorted(cases, key=str)
    for eps, ignore in cases:
        ours = label_smoothed_nll(lprobs, target, eps, ignore)
        torch.testing.assert_close(ours[0], ref[(eps, ignore)][0])
        torch.testing.assert_close(ours[1], ref[(eps, ignore)][1])


# ---- word-level KD / ImitKD-full ----------------------------------------------------------------------------------
def test_expert_cross_entropy_hand_computed():
    # V=2, two positions, the second is pad: -(0.75·log 0.5 + 0.25·log 0.5) = log 2
    lprobs = torch.tensor([[[0.5, 0.5], [0.9, 0.1]]]).log()
    probs = torch.tensor([[[0.75, 0.25], [0.2, 0.8]]])
    mask = torch.tensor([[False, True]])
    assert word_kd(lprobs, probs, mask).item() == pytest.approx(math.log(2), rel=1e-6)
    unmasked = math.log(2) - (0.2 * math.log(0.9) + 0.8 * math.log(0.1))
    assert imitkd_full(lprobs, probs, None).item() == pytest.approx(unmasked, rel=1e-6)


@pytest.mark.parametrize("fn", [word_kd, imitkd_full])
def test_expert_cross_entropy_matches_naive_and_coded(fn):
    logits, expert_logits, target = _batch(3)
    lprobs = F.log_softmax(logits, dim=-1)
    probs = F.softmax(expert_logits, dim=-1)
    mask = target.eq(PAD)
    ours = fn(lprobs, probs, mask)
    assert ours.item() == pytest.approx(naive_cross_entropy(lprobs, probs, mask), rel=1e-5)
    # the authors' code: expert_out.masked_fill_(pad_mask.unsqueeze(-1), 0.0); -torch.sum(expert_out * lprobs)
    coded = -torch.sum(probs.clone().masked_fill_(mask.unsqueeze(-1), 0.0) * lprobs)
    torch.testing.assert_close(ours, coded, rtol=1e-5, atol=1e-5)
    assert ours.dtype == torch.float32


def test_pad_mask_bug_masks_no_pad_and_zeroes_saturated_probabilities():
    logits, expert_logits, target = _batch(4)
    lprobs = F.log_softmax(logits, dim=-1)
    probs = F.softmax(expert_logits, dim=-1)
    probs[0, 1] = 0.0
    probs[0, 1, 5] = 1.0  # a saturated expert position: prob exactly 1.0 == pad index 1
    mask = target.eq(PAD)
    buggy = imitkd_full(lprobs, probs, mask, pad_mask_bug=True, pad_idx=PAD)
    # coded: pad_mask = expert_logits.eq(ignore_index); expert_logits.masked_fill_(pad_mask, 0.0)
    coded = -torch.sum(probs.clone().masked_fill_(probs.eq(PAD), 0.0) * lprobs)
    torch.testing.assert_close(buggy, coded, rtol=1e-5, atol=1e-5)
    naive_probs = probs.clone()
    naive_probs[0, 1, 5] = 0.0
    assert buggy.item() == pytest.approx(naive_cross_entropy(lprobs, naive_probs, None), rel=1e-5)
    # pads count in the buggy loss: it differs from the fixed one by the pad positions and the zeroed position
    fixed = imitkd_full(lprobs, probs, mask)
    pads_only = naive_cross_entropy(lprobs, naive_probs, ~mask)
    assert buggy.item() - fixed.item() == pytest.approx(pads_only - float(-lprobs[0, 1, 5]), rel=1e-4)
    assert word_kd(lprobs, probs, mask, pad_mask_bug=True).item() == pytest.approx(buggy.item(), rel=1e-6)


def test_cross_entropy_ignores_bf16_autocast():
    logits, expert_logits, target = _batch(5, B=2, U=4, V=3000)
    lprobs = F.log_softmax(logits, dim=-1)
    probs = F.softmax(expert_logits, dim=-1)
    mask = target.eq(PAD)
    ref = word_kd(lprobs, probs, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = word_kd(lprobs, probs, mask)
    assert under_autocast.dtype == torch.float32
    torch.testing.assert_close(under_autocast, ref, rtol=1e-6, atol=1e-6)


def test_shape_mismatch_is_reported():
    lprobs = torch.zeros(2, 3, 5)
    with pytest.raises(ValueError, match="share the target vocabulary"):
        word_kd(lprobs, torch.zeros(2, 3, 6), None)
    with pytest.raises(ValueError, match="pad_mask shape"):
        imitkd_full(lprobs, torch.zeros(2, 3, 5), torch.zeros(2, 4, dtype=torch.bool))


# ---- ImitKD-optimal -------------------------------------------------------------------------------------------------
def test_imitkd_optimal_hand_computed():
    lprobs = torch.tensor([[[0.5, 0.3, 0.2], [0.1, 0.1, 0.8], [0.3, 0.3, 0.4]]]).log()
    expert_logits = torch.tensor([[[0.0, 5.0, 1.0], [2.0, 0.0, 1.0], [9.0, 0.0, 0.0]]])
    mask = torch.tensor([[False, False, True]])
    expected = -(math.log(0.3) + math.log(0.1))
    assert imitkd_optimal(lprobs, expert_logits, mask).item() == pytest.approx(expected, rel=1e-6)


def test_imitkd_optimal_matches_naive_for_logits_logprobs_and_probs():
    logits, expert_logits, target = _batch(6)
    lprobs = F.log_softmax(logits, dim=-1)
    mask = target.eq(PAD)
    ref = naive_argmax_nll(lprobs, expert_logits, mask)
    for scores in (expert_logits, F.log_softmax(expert_logits, -1), F.softmax(expert_logits, -1)):
        assert imitkd_optimal(lprobs, scores, mask).item() == pytest.approx(ref, rel=1e-5)
    # the fork's imitKD.py: -lprobs.gather(-1, preds); masked_fill_(target.eq(pad)); sum
    coded = (-lprobs.gather(-1, expert_logits.argmax(-1, keepdim=True))).masked_fill_(mask.unsqueeze(-1), 0.0).sum()
    torch.testing.assert_close(imitkd_optimal(lprobs, expert_logits, mask), coded)


# ---- mixers ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("beta", [0.0, 0.3, 1.0])
def test_imitkd_mixer_matches_coded_and_naive(beta):
    logits_r, expert_r, prev_r = _batch(7)
    logits_g, expert_g, target_g = _batch(8)
    lp_r, lp_g = F.log_softmax(logits_r, -1), F.log_softmax(logits_g, -1)
    p_g = F.softmax(expert_g, -1)
    mask_r, mask_g = prev_r.eq(PAD), target_g.eq(PAD)
    ours = imitkd_mixer(lp_r, expert_r, mask_r, lp_g, p_g, mask_g, beta)
    # imitKD_mixer.py: -((1 - beta) * gathered.sum() + beta * (expert_out_all * lprobs_all).sum())
    gathered = lp_r.gather(-1, expert_r.argmax(-1, keepdim=True)).masked_fill_(mask_r.unsqueeze(-1), 0.0)
    expert_out_all = p_g.clone().masked_fill_(mask_g.unsqueeze(-1), 0.0)
    coded = -((1 - beta) * gathered.sum() + beta * (expert_out_all * lp_g).sum())
    torch.testing.assert_close(ours, coded, rtol=1e-5, atol=1e-5)
    naive = (1 - beta) * naive_argmax_nll(lp_r, expert_r, mask_r) + beta * naive_cross_entropy(lp_g, p_g, mask_g)
    assert ours.item() == pytest.approx(naive, rel=1e-5)


@pytest.mark.parametrize("beta", [0.0, 0.6, 1.0])
def test_imitkd_mixer_nll_matches_naive(beta):
    logits_r, expert_r, prev_r = _batch(9)
    logits_g, expert_g, target_g = _batch(10)
    lp_r, lp_g = F.log_softmax(logits_r, -1), F.log_softmax(logits_g, -1)
    mask_r, mask_g = prev_r.eq(PAD), target_g.eq(PAD)
    ours = imitkd_mixer_nll(lp_r, expert_r, mask_r, lp_g, expert_g, mask_g, beta)
    naive = (1 - beta) * naive_argmax_nll(lp_r, expert_r, mask_r) + beta * naive_argmax_nll(lp_g, expert_g, mask_g)
    assert ours.item() == pytest.approx(naive, rel=1e-5)


# ---- gradients ------------------------------------------------------------------------------------------------------
def test_gradient_reaches_only_the_student():
    logits, expert_logits, target = _batch(12)
    student = logits.clone().requires_grad_(True)
    expert = expert_logits.clone().requires_grad_(True)
    mask = target.eq(PAD)
    lprobs = F.log_softmax(student, -1)
    probs = F.softmax(expert, -1)
    total = (word_kd(lprobs, probs, mask) + imitkd_full(lprobs, probs, mask, pad_mask_bug=True)
             + imitkd_optimal(lprobs, expert, mask) + label_smoothed_nll(lprobs, target, 0.1, PAD)[0])
    total.backward()
    assert expert.grad is None
    assert student.grad is not None and student.grad.abs().sum() > 0
    # WKD's gradient w.r.t. the log-probs is -p_E at real positions and 0 at pads
    lp = F.log_softmax(logits, -1).requires_grad_(True)
    word_kd(lp, probs, mask).backward()
    torch.testing.assert_close(lp.grad, -(probs.detach() * (~mask).unsqueeze(-1)))
    assert lp.grad[mask].abs().sum() == 0


# ---- SLU logit / representation KD ------------------------------------------------------------------------------
def test_ft_kd_l1_and_mse_hand_computed():
    student = torch.tensor([[1.0, -2.0, 0.5], [0.0, 0.0, 3.0]], requires_grad=True)
    teacher = torch.tensor([[0.0, -1.0, 0.5], [2.0, 0.0, 1.0]], requires_grad=True)
    assert ft_kd_l1(student, teacher).item() == pytest.approx((1 + 1 + 0 + 2 + 0 + 2) / 2)
    assert ft_kd_mse(student, teacher).item() == pytest.approx((1 + 1 + 0 + 4 + 0 + 4) / 2)
    # the released code: nn.L1Loss(reduction='sum')(audio_logit, text_logit) / batch_size
    released = torch.nn.L1Loss(reduction="sum")(student, teacher) / 2
    assert ft_kd("l1", student, teacher).item() == pytest.approx(released.item())
    ft_kd_l1(student, teacher).backward()
    assert teacher.grad is None and student.grad.abs().sum() > 0


def test_ft_kd_kl_matches_hinton_formula():
    g = torch.Generator().manual_seed(13)
    student, teacher = torch.randn(4, 31, generator=g), torch.randn(4, 31, generator=g)
    for temp in (1.0, 2.0, 4.0):
        p_t = F.softmax(teacher / temp, -1)
        naive = sum(float((p_t[b] * (p_t[b].log() - F.log_softmax(student[b] / temp, -1))).sum())
                    for b in range(4)) / 4 * temp ** 2
        assert ft_kd_kl(student, teacher, temp).item() == pytest.approx(naive, rel=1e-5)
    assert ft_kd_kl(teacher, teacher, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(InputError, match="ft_kd loss"):
        ft_kd("cosine", student, teacher)


def test_cls_distance_hand_computed():
    s = torch.tensor([[1.0, 0.0], [0.0, 2.0]], requires_grad=True)
    t = torch.tensor([[0.0, 1.0], [0.0, 1.0]], requires_grad=True)
    assert cls_distance(s, t, "mse").item() == pytest.approx((2 + 1) / 2)
    assert cls_distance(s, t, "l1").item() == pytest.approx((2 + 1) / 2)
    assert cls_distance(s, t, "cosine").item() == pytest.approx((1 + 0) / 2, abs=1e-6)
    cls_distance(s, t).backward()
    assert t.grad is None and s.grad.abs().sum() > 0
    with pytest.raises(InputError, match="pt_kd distance"):
        cls_distance(s, t, "kl")
