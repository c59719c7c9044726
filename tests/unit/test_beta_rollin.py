"""β schedules (speechkd.kd.beta) and the ImitKD roll-in (speechkd.kd.rollin) against hand-computed values and the
fork's generate_imit_batch written out as coded."""
from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Categorical

from speechkd.errors import InputError
from speechkd.kd.beta import BetaSchedule, exponential_beta, linear_beta, reverse_sigmoid_beta
from speechkd.kd.rollin import (
    apply_rollin, draw_replaced_rows, rollin_max_len, shift_hypothesis,
)

PAD, EOS = 1, 2


def mix_prefixes(gold_prev, hyps, beta, generator, pad, eos):
    """The draw and the mixed decoder input together (what the ImitKD criteria do, st/criteria): (prev, replaced).
    β = 1 returns gold_prev unchanged; β = 0 replaces every row."""
    replaced = draw_replaced_rows(gold_prev.size(0), beta, generator)
    prev = apply_rollin(gold_prev, hyps, replaced, pad, eos)
    return prev, replaced.to(gold_prev.device)


# ---- β --------------------------------------------------------------------------------------------------------------
def test_exponential_beta_of_the_fork_at_30k_updates():
    values = [exponential_beta(t, 30000) for t in (0, 10000, 20000, 30000)]
    assert values[0] == 1.0
    assert values[1] == pytest.approx(0.17099759, rel=1e-6)  # 200^(-1/3)
    assert values[2] == pytest.approx(0.02924018, rel=1e-6)  # 200^(-2/3)
    assert values[3] == pytest.approx(0.005, rel=1e-12)


def test_other_schedules_hand_computed():
    assert linear_beta(0, 100) == 1.0 and linear_beta(50, 100) == 0.5
    assert linear_beta(100, 100, final=0.2) == pytest.approx(0.2)
    assert reverse_sigmoid_beta(50, 100) == 0.5
    assert reverse_sigmoid_beta(0, 100) == pytest.approx(1 / (1 + math.exp(-10)))
    assert exponential_beta(60, 100, base=200) == pytest.approx(200 ** -0.6)


def test_beta_schedule_follows_updates_and_round_trips():
    sched = BetaSchedule(kind="exponential", total=30000)
    assert sched.beta == 1.0                      # the criterion's initial --beta before any update
    for t in range(1, 4):
        sched.on_update(t, model=None)
    assert sched.beta == pytest.approx(200 ** (-3 / 30000))
    assert sched.on_update(20000, None) == pytest.approx(0.02924018, rel=1e-6)
    restored = BetaSchedule(kind="exponential", total=30000)
    restored.load_state_dict(sched.state_dict())
    assert restored.beta == sched.beta
    assert BetaSchedule(kind="reverse_sigmoid", total=10).beta == 1.0  # ImitKD starts at 1, not at f(0)
    assert BetaSchedule(kind="zeros").beta == 0.0 and BetaSchedule(kind="half").on_update(7) == 0.5


def test_bad_kinds():
    with pytest.raises(InputError, match="beta schedule kind"):
        BetaSchedule(kind="exponential_epoch")    # the fork's epoch variant is not offered
    with pytest.raises(InputError, match="beta schedule kind"):
        BetaSchedule(kind="cosine")
    with pytest.raises(InputError, match="beta schedule total"):
        BetaSchedule(kind="linear", total=0)


# ---- roll-in ----------------------------------------------------------------------------------------------------
def _gold_prev():
    # prev_output_tokens of targets [5 6 7 EOS], [8 EOS], [9 10 EOS]: EOS first, right-padded to width 4
    return torch.tensor([[EOS, 5, 6, 7], [EOS, 8, PAD, PAD], [EOS, 9, 10, PAD]])


def _hyps():
    # greedy hypotheses: ends with EOS / ends without EOS (cut at max_len) / only EOS
    return [torch.tensor([11, 12, EOS]), torch.tensor([13, 14, 15, 16]), torch.tensor([EOS])]


def fork_generate_imit_batch(gold_prev, hyps, samp_mask):
    """The fork's loop (imitKD_CE.py generate_imit_batch) and helper_functions.collate_tokens, as coded."""
    targets = gold_prev.data.tolist()
    for i, h in enumerate(hyps):
        if samp_mask[i]:
            if h[-1] != EOS:
                targets[i] = torch.tensor([EOS] + h.tolist())
            else:
                hypo = h.tolist()
                targets[i] = torch.tensor([hypo[-1]] + hypo[0:-1])
        else:
            targets[i] = torch.tensor(targets[i])
    size = max(v.size(0) for v in targets)
    res = targets[0].new(len(targets), size).fill_(PAD)
    for i, v in enumerate(targets):
        res[i][:len(v)].copy_(v)
    return res


def test_beta_one_returns_gold_exactly():
    gold = _gold_prev()
    prev, replaced = mix_prefixes(gold, _hyps(), 1.0, torch.Generator().manual_seed(0), PAD, EOS)
    assert torch.equal(prev, gold) and not replaced.any()


def test_beta_zero_replaces_every_row_hand_computed():
    prev, replaced = mix_prefixes(_gold_prev(), _hyps(), 0.0, torch.Generator().manual_seed(0), PAD, EOS)
    expected = torch.tensor([[EOS, 11, 12, PAD, PAD],
                             [EOS, 13, 14, 15, 16],
                             [EOS, PAD, PAD, PAD, PAD]])
    assert replaced.all() and torch.equal(prev, expected)


def test_shift_hypothesis():
    assert shift_hypothesis(torch.tensor([4, 5, EOS]), EOS).tolist() == [EOS, 4, 5]
    assert shift_hypothesis(torch.tensor([4, 5]), EOS).tolist() == [EOS, 4, 5]
    assert shift_hypothesis(torch.tensor([], dtype=torch.long), EOS).tolist() == [EOS]


def test_mixed_rows_match_the_fork_and_keep_gold_width():
    gold, hyps = _gold_prev(), _hyps()
    for mask in ([True, False, False], [False, True, False], [False, False, True], [True, False, True]):
        replaced = torch.tensor(mask)
        ours = apply_rollin(gold, hyps, replaced, PAD, EOS)
        assert torch.equal(ours, fork_generate_imit_batch(gold, hyps, mask))
    # a short roll-in next to a kept gold row: the batch keeps the gold width
    short = apply_rollin(gold, [None, None, torch.tensor([EOS])], torch.tensor([False, False, True]), PAD, EOS)
    assert short.shape == (3, 4) and short[2].tolist() == [EOS, PAD, PAD, PAD]
    with pytest.raises(ValueError, match="no hypothesis"):
        apply_rollin(gold, [None, None, None], torch.tensor([True, False, False]), PAD, EOS)


def test_draw_is_seeded_and_matches_categorical():
    a = draw_replaced_rows(64, 0.4, torch.Generator().manual_seed(7))
    b = draw_replaced_rows(64, 0.4, torch.Generator().manual_seed(7))
    c = draw_replaced_rows(64, 0.4, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    # generator=None: the same numbers as the fork's Categorical draw from the global RNG
    for beta in (0.9, 0.5, 0.171, 0.005):
        torch.manual_seed(123)
        fork = Categorical(torch.tensor([beta, 1 - beta])).sample((50,)) == 1
        torch.manual_seed(123)
        assert torch.equal(draw_replaced_rows(50, beta, None), fork)
    big = draw_replaced_rows(20000, 0.3, torch.Generator().manual_seed(1))
    assert big.float().mean().item() == pytest.approx(0.7, abs=0.02)
    with pytest.raises(ValueError, match="beta"):
        draw_replaced_rows(3, 1.5)


def test_mix_prefixes_deterministic_for_a_seeded_generator():
    gold, hyps = _gold_prev(), _hyps()
    runs = [mix_prefixes(gold, hyps, 0.5, torch.Generator().manual_seed(3), PAD, EOS) for _ in range(2)]
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])
    prev, replaced = runs[0]
    assert torch.equal(prev, fork_generate_imit_batch(gold, hyps, replaced.tolist()))


def test_rollin_max_len():
    gold = _gold_prev()
    assert rollin_max_len(gold, PAD) == 3                                   # L = 4 -> L - 1
    padded = torch.cat([gold, torch.full((3, 4), PAD)], dim=1)              # extra batcher padding
    assert rollin_max_len(padded, PAD) == 3
    long = torch.full((2, 300), 7)
    assert rollin_max_len(long, PAD) == 200                                 # fairseq's max_len_b cap
    assert rollin_max_len(long, PAD, cap=1000) == 299
