"""The authors' augmentations: utility/Masking.span_masking and utility/emb_augment time/channel masking."""
from __future__ import annotations

import math

import numpy as np
import torch

from speechkd.data.masking import mask_hidden, mask_hidden_batch, span_mask_tokens

MASK = 999


def test_span_masking_da_setting_counts_and_positions():
    tokens = torch.arange(100) + 4
    masked, pos = span_mask_tokens(tokens, seqfreq=0.2 / 5, span=5, mask_idx=MASK, rng=np.random.default_rng(7))
    # replay the draws: ceil(0.04 * 100) = 4 starts from [1, 95), without replacement
    starts = np.random.default_rng(7).choice(np.arange(1, 95), 4, replace=False)
    assert len(set(starts.tolist())) == 4
    expected = sorted({s + c for s in starts.tolist() for c in range(5)})
    assert pos.tolist() == expected
    assert torch.all(masked[pos] == MASK)
    keep = torch.ones(100, dtype=torch.bool)
    keep[pos] = False
    assert torch.equal(masked[keep], tokens[keep])
    assert torch.equal(tokens, torch.arange(100) + 4)  # the input is not modified
    assert 0 not in pos.tolist() and max(pos.tolist()) <= 98


def test_span_masking_pt_kd_setting():
    tokens = torch.arange(400)
    masked, pos = span_mask_tokens(tokens, seqfreq=0.025, span=20, mask_idx=MASK, rng=np.random.default_rng(3))
    starts = np.random.default_rng(3).choice(np.arange(1, 380), math.ceil(400 * 0.025), replace=False)
    assert len(starts) == 10
    assert pos.tolist() == sorted({s + c for s in starts.tolist() for c in range(20)})
    assert (masked == MASK).sum().item() == len(pos) <= 200


def test_span_masking_dynamic_spans_are_shorter_than_the_max():
    tokens = torch.arange(1000)
    rng = np.random.default_rng(11)
    _, pos = span_mask_tokens(tokens, seqfreq=0.01, span=5, mask_idx=MASK, rng=rng, dynamic=True)
    ref = np.random.default_rng(11)
    starts = ref.choice(np.arange(1, 995), 10, replace=False)
    lens = ref.uniform(1, 5, size=10).astype(int)
    assert set(lens.tolist()) <= {1, 2, 3, 4}
    assert pos.tolist() == sorted({s + c for s, n in zip(starts.tolist(), lens.tolist()) for c in range(n)})


def test_span_masking_short_sequences():
    rng = np.random.default_rng(0)
    masked, pos = span_mask_tokens([0, 5, 6, 7, 8, 2], seqfreq=0.5, span=5, mask_idx=MASK, rng=rng)
    assert pos.numel() == 0 and masked.tolist() == [0, 5, 6, 7, 8, 2]  # no start in [1, 1)
    # more spans asked than starts exist: every start is used (the authors' np.random.choice would raise)
    masked, pos = span_mask_tokens(list(range(8)), seqfreq=1.0, span=2, mask_idx=MASK, rng=rng)
    assert pos.tolist() == [1, 2, 3, 4, 5, 6] and masked.tolist() == [0] + [MASK] * 6 + [7]


def test_mask_hidden_replays_time_then_channel_draws():
    h = torch.randn(60, 768) + 5.0  # no exact zeros before masking
    out = mask_hidden(h, time_prob=0.5, time_span=10, channel_prob=0.4, channel_span=5,
                      rng=np.random.default_rng(5), length=40)
    ref = np.random.default_rng(5)
    n_time = int(40 * 0.5 / 10 + ref.random())
    t_starts = ref.choice(30, n_time, replace=False)
    n_chan = int(768 * 0.4 / 5 + ref.random())
    c_starts = ref.choice(763, n_chan, replace=False)
    assert n_time in (2, 3) and n_chan in (61, 62)
    frames = sorted({s + k for s in t_starts.tolist() for k in range(10)})
    chans = sorted({s + k for s in c_starts.tolist() for k in range(5)})
    zero = torch.zeros(60, 768, dtype=torch.bool)
    zero[frames] = True
    zero[:, chans] = True
    assert torch.equal(out == 0, zero)
    assert torch.equal(out[~zero], h[~zero])
    assert max(frames) < 40  # time spans stay inside the valid length
    assert not torch.any(h == 0)  # the input is not modified


def test_mask_hidden_zero_probabilities_and_batch_order():
    h = torch.ones(3, 12, 8)
    assert torch.equal(mask_hidden_batch(h, [12, 5, 3], 0.0, 4, 0.0, 2, np.random.default_rng(1)), h)
    out = mask_hidden_batch(h, [12, 5, 3], 1.0, 4, 0.5, 2, np.random.default_rng(1))
    ref = np.random.default_rng(1)  # samples are masked in batch order from one generator
    for b, n in enumerate([12, 5, 3]):
        expected = mask_hidden(h[b], 1.0, 4, 0.5, 2, ref, length=n)
        assert torch.equal(out[b], expected)
    # a 3-frame sample has no time start in [0, 3 - 4): only whole channels are zeroed
    assert torch.equal((out[2] == 0).all(dim=0), (out[2] == 0).any(dim=0))
    assert (out[2] == 0).any()
