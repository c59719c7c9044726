"""k-means discrete speech units (the embedded stand-in for vq-wav2vec k-means: 2 groups, "a-b" tokens)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from speechkd.errors import InputError
from speechkd.tokenizers.units import UnitTokenizer, codes_to_tokens, kmeans, unit_dictionary, unit_features


def clustered_frames(n_per: int = 50, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """80-dim frames whose two halves each come from one of 4 well-separated clusters (independently)."""
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(2, 4, 40, generator=g) * 10
    labels = torch.randint(0, 4, (n_per * 8, 2), generator=g)
    frames = torch.cat([centers[0, labels[:, 0]], centers[1, labels[:, 1]]], dim=1)
    return frames + 0.1 * torch.randn(frames.shape, generator=g), labels


def test_kmeans_hand_example():
    x = torch.tensor([[0.0], [1.0], [10.0], [11.0], [0.5], [10.5]])
    centers = kmeans(x, 2, iters=10, seed=0)
    assert sorted(centers.squeeze(1).tolist()) == [0.5, 10.5]


def test_fit_recovers_the_clusters_of_each_group():
    frames, labels = clustered_frames()
    tok = UnitTokenizer.fit(frames, num_codes=4, iters=20, seed=0)
    assert tok.codebooks.shape == (2, 4, 40) and tok.dim == 80
    codes = tok.encode(frames)
    assert codes.shape == (frames.shape[0], 2) and codes.dtype == torch.long
    for g in range(2):  # a bijection between true clusters and codes
        pairs = set(zip(labels[:, g].tolist(), codes[:, g].tolist()))
        assert len(pairs) == 4 and len({c for _, c in pairs}) == 4


def test_fit_is_deterministic_for_a_seed():
    frames = torch.randn(300, 80)
    a = UnitTokenizer.fit(frames, num_codes=8, iters=5, seed=3)
    b = UnitTokenizer.fit(frames, num_codes=8, iters=5, seed=3)
    c = UnitTokenizer.fit(frames, num_codes=8, iters=5, seed=4)
    assert torch.equal(a.codebooks, b.codebooks)
    assert not torch.equal(a.codebooks, c.codebooks)


def test_too_few_frames_is_a_clear_error():
    with pytest.raises(InputError, match="5 training frames cannot make 8 codes"):
        UnitTokenizer.fit(torch.randn(5, 80), num_codes=8)


def test_tokens_format_and_encoding_of_nearest_codes():
    books = torch.zeros(2, 3, 2)
    books[0, :, 0] = torch.tensor([0.0, 1.0, 2.0])
    books[1, :, 1] = torch.tensor([5.0, -5.0, 0.0])
    tok = UnitTokenizer(books)
    feats = torch.tensor([[0.1, 0.0, 0.0, 4.0], [1.9, 0.0, 0.0, -4.0], [0.9, 0.0, 0.0, 0.2]])
    assert tok.encode(feats).tolist() == [[0, 0], [2, 1], [1, 2]]
    assert tok.tokens(feats) == "0-0 2-1 1-2"
    assert codes_to_tokens(torch.tensor([[12, 3]])) == "12-3"
    with pytest.raises(ValueError, match=r"\(T, 4\)"):
        tok.encode(torch.zeros(3, 5))


def test_save_load_round_trip_and_bad_files(tmp_path):
    frames, _ = clustered_frames(10)
    tok = UnitTokenizer.fit(frames, num_codes=4, iters=3, seed=1)
    path = tmp_path / "units.pt"
    tok.save(path)
    loaded = UnitTokenizer.load(path)
    assert torch.equal(loaded.codebooks, tok.codebooks)
    assert loaded.tokens(frames) == tok.tokens(frames)
    torch.save({"codebooks": torch.zeros(2, 4, 40), "num_codes": 5, "groups": 2, "dim": 80,
                "format_version": 1}, tmp_path / "bad.pt")
    with pytest.raises(InputError, match="num_codes"):
        UnitTokenizer.load(tmp_path / "bad.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="junk.pt"):
        UnitTokenizer.load(tmp_path / "junk.pt")


def test_unit_dictionary_is_a_fairseq_dict_of_unit_tokens(tmp_path):
    d = unit_dictionary(["1-2 3-4 1-2", "1-2 5-6 3-4"])
    assert d.symbols[:7] == ["<s>", "<pad>", "</s>", "<unk>", "1-2", "3-4", "5-6"]
    assert len(d) == 8  # padded to a multiple of 8 with madeupword0000
    assert d.encode_line("3-4 9-9", append_eos=False).tolist() == [5, d.unk()]
    d.save(tmp_path / "dict.txt")
    assert (tmp_path / "dict.txt").read_text().splitlines()[:3] == ["1-2 3", "3-4 2", "5-6 1"]
    with pytest.raises(InputError, match="line 2"):
        unit_dictionary(["1-2", "hello"])


def test_unit_features_are_utterance_normalised_fbank():
    t = np.arange(16000) / 16000.0
    wave = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * np.random.default_rng(0).standard_normal(16000))
    feats = unit_features(wave.astype(np.float32))
    assert feats.shape == (98, 80)  # 1 + (16000 - 400) // 160
    torch.testing.assert_close(feats.mean(0), torch.zeros(80), atol=1e-4, rtol=0)
    torch.testing.assert_close(feats.std(0, unbiased=False), torch.ones(80), atol=1e-3, rtol=0)
