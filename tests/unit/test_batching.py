"""BucketBatchSampler (fairseq-like length bucketing + DDP sharding) and the padding collaters."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from speechkd.data.batching import BucketBatchSampler, collate_features, pad_sequences
from speechkd.errors import InputError


def _lengths(n=200, seed=0):
    return np.random.default_rng(seed).integers(20, 400, size=n).tolist()


def test_every_index_once_and_budgets_respected():
    lengths = _lengths()
    s = BucketBatchSampler(lengths, max_tokens=1500, max_sentences=7)
    batches = s.epoch_batches(1)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert len(batches) == len(s)
    for b in batches:
        assert 1 <= len(b) <= 7
        assert len(b) * max(lengths[i] for i in b) <= 1500


def test_unshuffled_order_is_longest_first_with_index_tie_break():
    lengths = [5, 9, 5, 9, 1, 7]
    s = BucketBatchSampler(lengths, max_tokens=None, max_sentences=2, shuffle=False)
    assert s.epoch_batches(1) == [[1, 3], [5, 0], [2, 4]]
    assert s.epoch_batches(1) == s.epoch_batches(7)  # no randomness without shuffle


def test_packing_matches_fairseq_batch_by_size_by_hand():
    # longest first: 10, 8, 6, 5, 3, 3 ; max_tokens 20: [10,8] (2*10=20), [6,5,3] (3*6=18; 4*6=24 closes), [3]
    lengths = [3, 10, 5, 8, 6, 3]
    s = BucketBatchSampler(lengths, max_tokens=20, shuffle=False)
    assert s.epoch_batches(1) == [[1, 3], [4, 2, 0], [5]]


def test_required_batch_size_multiple_carries_the_remainder():
    lengths = [10] * 7
    s = BucketBatchSampler(lengths, max_tokens=50, shuffle=False, required_batch_size_multiple=2)
    sizes = [len(b) for b in s.epoch_batches(1)]
    # 5 fit; keep 4 (a multiple of 2), carry 1 -> [4, 3]
    assert sizes == [4, 3]
    big = BucketBatchSampler(_lengths(), max_tokens=2000, required_batch_size_multiple=4)
    assert all(len(b) % 4 == 0 for b in big.global_batches(1)[:-1] if len(b) >= 4)


def test_shuffle_deterministic_in_seed_and_epoch():
    lengths = [50] * 30 + _lengths(100)  # many ties, so the tie-break permutation matters too
    a = BucketBatchSampler(lengths, max_tokens=800, seed=3)
    b = BucketBatchSampler(lengths, max_tokens=800, seed=3)
    assert a.epoch_batches(2) == b.epoch_batches(2)
    assert a.epoch_batches(2) != a.epoch_batches(3)
    assert a.epoch_batches(2) != BucketBatchSampler(lengths, max_tokens=800, seed=4).epoch_batches(2)
    # the tie-break changes which equal-length items share a batch across epochs
    tied = lambda e: sorted(tuple(sorted(x for x in bt if x < 30)) for bt in a.epoch_batches(e))
    assert tied(2) != tied(3)
    assert len(a.epoch_batches(2)) == len(a.epoch_batches(3)) == len(a)


def test_too_long_item_is_a_clear_input_error():
    with pytest.raises(InputError, match=r"item 2 has length 900 > max_tokens=500"):
        BucketBatchSampler([10, 20, 900], max_tokens=500)
    with pytest.raises(InputError, match="max_tokens or max_sentences"):
        BucketBatchSampler([10], max_tokens=None, max_sentences=None)


@pytest.mark.parametrize("world", [2, 3, 4])
def test_ddp_ranks_equal_one_process_with_update_freq(world):
    lengths = _lengths(101, seed=5)
    single = BucketBatchSampler(lengths, max_tokens=1200, seed=9)
    ranks = [BucketBatchSampler(lengths, max_tokens=1200, seed=9, num_replicas=world, rank=r)
             for r in range(world)]
    for epoch in (1, 2):
        per_rank = [r.epoch_batches(epoch) for r in ranks]
        steps = {len(p) for p in per_rank}
        assert steps == {len(ranks[0])}  # every rank takes the same number of steps
        seq = single.epoch_batches(epoch)
        # step s of the N ranks == update s of one process accumulating N consecutive batches
        interleaved = [per_rank[r][s] for s in range(len(per_rank[0])) for r in range(world)]
        assert [b for b in interleaved if b] == seq
        assert all(b == [] for b in interleaved[len(seq):])
        # the fill batches are empty and only at the end of short ranks
        n_empty = sum(b == [] for p in per_rank for b in p)
        assert n_empty == len(ranks[0]) * world - len(seq) < world


def test_iter_follows_set_epoch():
    s = BucketBatchSampler(_lengths(50), max_tokens=1000)
    s.set_epoch(4)
    assert list(s) == s.epoch_batches(4)


def test_collate_features_pads_with_zeros():
    feats = [np.ones((3, 2), np.float32), torch.full((5, 2), 2.0), np.zeros((1, 2))]
    x, lengths = collate_features(feats)
    assert x.shape == (3, 5, 2) and x.dtype == torch.float32
    assert lengths.tolist() == [3, 5, 1] and lengths.dtype == torch.long
    assert (x[0, :3] == 1).all() and (x[0, 3:] == 0).all() and (x[1] == 2).all()
    with pytest.raises(ValueError):
        collate_features([np.zeros((2, 3)), np.zeros((2, 4))])


def test_pad_sequences_right_and_left():
    seqs = [torch.tensor([5, 6, 7]), torch.tensor([8]), torch.tensor([], dtype=torch.long)]
    assert pad_sequences(seqs, pad=1).tolist() == [[5, 6, 7], [8, 1, 1], [1, 1, 1]]
    assert pad_sequences(seqs, pad=1, left_pad=True).tolist() == [[5, 6, 7], [1, 1, 8], [1, 1, 1]]
    assert pad_sequences(seqs, pad=0).dtype == torch.long
