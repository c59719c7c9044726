"""Character CTC labels (the authors' manifest/labels.json) and CTC decoding."""
from __future__ import annotations

import importlib.util

import pytest
import torch

from speechkd.decode.ctc import beam_decode, greedy_decode, greedy_ids
from speechkd.tokenizers.char import LABELS, CharTokenizer

HAS_PYCTCDECODE = importlib.util.find_spec("pyctcdecode") is not None


def test_labels_are_the_authors_29():
    assert len(LABELS) == 29
    assert LABELS[0] == "_" and LABELS[1] == "'" and LABELS[2] == "A" and LABELS[27] == "Z" and LABELS[28] == " "


def test_encode_uppercases_and_drops_unknown_characters():
    tok = CharTokenizer()
    ids = tok.encode("it's ok, 2_b!")
    # i t ' s ␣ o k ␣ b  (",", "2", "_", "!" dropped; "_" is the blank and never a target)
    assert ids.tolist() == [10, 21, 1, 20, 28, 16, 12, 28, 3]
    assert tok.decode(ids) == "IT'S OK B"
    assert tok.decode([0, 3, 0]) == "B"


def _one_hot_log_probs(paths: list[list[int]], vocab: int = 29) -> torch.Tensor:
    t = max(len(p) for p in paths)
    lp = torch.full((len(paths), t, vocab), -10.0)
    for b, path in enumerate(paths):
        for i, tok in enumerate(path):
            lp[b, i, tok] = 0.0
    return lp.log_softmax(-1)


def test_greedy_collapses_repeats_and_drops_blanks_within_lengths():
    # H H _ E L L _ L O | padding frames predict "Z"
    h, e, l, o, z = 9, 6, 13, 16, 27
    lp = _one_hot_log_probs([[h, h, 0, e, l, l, 0, l, o, z, z], [0, 3, 3, 0, 3, z, z, z, z, z, z]])
    assert greedy_ids(lp, torch.tensor([9, 5])) == [[h, e, l, l, o], [3, 3]]
    assert greedy_decode(lp, [9, 5]) == ["HELLO", "BB"]
    assert greedy_decode(lp) == ["HELLOZ", "BBZ"]  # without lengths every frame counts


@pytest.mark.skipif(HAS_PYCTCDECODE, reason="pyctcdecode is installed; the missing-package error cannot be shown")
def test_beam_decode_without_pyctcdecode_names_the_package():
    with pytest.raises(ImportError, match="pyctcdecode"):
        beam_decode(_one_hot_log_probs([[3]]))


@pytest.mark.skipif(not HAS_PYCTCDECODE, reason="optional pyctcdecode not installed")
def test_beam_decode_agrees_with_greedy_on_a_clear_path():
    lp = _one_hot_log_probs([[9, 0, 6, 13, 0, 13, 16]])
    assert beam_decode(lp, beam_width=8) == ["HELLO"]
