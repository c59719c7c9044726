"""GPT-2 byte-level BPE (fairseq gpt2_bpe_utils) and RoBERTa's `encode` on tiny hand-made vocabularies."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from speechkd.errors import InputError
from speechkd.tokenizers.gpt2_bpe import GPT2BPE, RobertaTextEncoder, bytes_to_unicode

# merges in rank order; every merge result is in the vocabulary, as in GPT-2's files
MERGES = [("h", "e"), ("l", "l"), ("ll", "o"), ("he", "llo"),           # hello (and "hell" -> he ll)
          ("Ġ", "w"), ("o", "r"), ("Ġw", "or"), ("l", "d"), ("Ġwor", "ld"),  # Ġworld
          ("Ġ", "t"), ("Ġt", "he"),                                      # Ġthe: "h e" (rank 0) goes first
          ("'", "s"), ("Ġ", "2")]
TEXTS = ["hello world", "Hello world!", "the hell", " the hello", "it's 2024 — café", "  multiple   spaces\n",
         "don't stop", "👍 ok", "tab\there", ""]


def tiny_files(tmp_path: Path) -> tuple[Path, Path]:
    chars = list(bytes_to_unicode().values())
    vocab = {c: i for i, c in enumerate(chars)}
    for a, b in MERGES:
        vocab[a + b] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    encoder_json = tmp_path / "encoder.json"
    encoder_json.write_text(json.dumps(vocab), encoding="utf-8")
    vocab_bpe = tmp_path / "vocab.bpe"
    vocab_bpe.write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in MERGES), encoding="utf-8")
    return encoder_json, vocab_bpe


@pytest.fixture
def bpe(tmp_path) -> GPT2BPE:
    return GPT2BPE.from_files(*tiny_files(tmp_path))


def ids(bpe: GPT2BPE, *pieces: str) -> list[int]:
    return [bpe.encoder[p] for p in pieces]


def test_bytes_to_unicode_is_a_printable_bijection():
    table = bytes_to_unicode()
    assert len(table) == 256 and len(set(table.values())) == 256
    assert table[ord("A")] == "A" and table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ"
    assert all(not c.isspace() for c in table.values())


def test_merges_apply_lowest_rank_first(bpe):
    assert bpe.encode("hello world") == ids(bpe, "hello", "Ġworld")
    assert bpe.encode("hell") == ids(bpe, "he", "ll")          # "he llo" needs llo, which never forms
    assert bpe.encode(" the") == ids(bpe, "Ġthe")              # h+e (rank 0) before Ġ+t (rank 9)
    assert bpe.encode("Hello") == ids(bpe, "H", "e", "llo")   # merges are case-sensitive
    assert bpe.encode("it's") == ids(bpe, "i", "t", "'s")     # contraction split by the pattern
    assert bpe.encode(" 2") == ids(bpe, "Ġ2")


def test_pretokenisation_and_bytes(bpe):
    # "é" is two UTF-8 bytes, each its own symbol; trailing spaces stay with whitespace runs
    assert bpe.encode("é") == ids(bpe, "Ã", "©")
    assert bpe.encode("a  b") == ids(bpe, "a", "Ġ", "Ġ", "b")
    assert bpe.encode("") == []


@pytest.mark.parametrize("text", TEXTS)
def test_decode_inverts_encode(bpe, text):
    assert bpe.decode(bpe.encode(text)) == text


def test_vocab_bpe_format_errors(tmp_path):
    enc, voc = tiny_files(tmp_path)
    voc.write_text("#version: 0.2\nh e x\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"vocab.bpe:2: expected a merge"):
        GPT2BPE.from_files(enc, voc)
    with pytest.raises(InputError, match="not found"):
        GPT2BPE.from_files(tmp_path / "missing.json", voc)


def test_roberta_encode_maps_bpe_ids_through_dict_txt(tmp_path, bpe):
    # fairseq dict.txt: BPE ids as symbols, in frequency order; ids absent from it become <unk>
    kept = ids(bpe, "hello", "Ġworld", "Ġthe", "!")
    dict_txt = tmp_path / "dict.txt"
    dict_txt.write_text("".join(f"{i} {100 - n}\n" for n, i in enumerate(kept)), encoding="utf-8")
    enc = RobertaTextEncoder.from_files(tmp_path / "encoder.json", tmp_path / "vocab.bpe", dict_txt)
    assert len(enc.dictionary) == 4 + len(kept) + 1 and enc.dictionary[len(enc.dictionary) - 1] == "<mask>"
    assert enc.encode("hello world").tolist() == [0, 4, 5, 2]
    assert enc.encode("hello the!").tolist() == [0, 4, 6, 7, 2]
    assert enc.encode("hello x").tolist() == [0, 4, 3, 3, 2]  # " x" = Ġ + x, neither in dict.txt
    assert enc.encode("hello", " world", " the").tolist() == [0, 4, 2, 2, 5, 2, 2, 6, 2]
    assert enc.encode("hello", " world", no_separator=True).tolist() == [0, 4, 2, 5, 2]
    assert enc.bpe_string("hello world") == " ".join(map(str, ids(bpe, "hello", "Ġworld")))
    assert enc.decode(enc.encode("hello world!")) == "hello world!"
    assert enc.decode(torch.tensor([0, 4, 3, 2])) == "hello<unk>"


def _hf_gpt2_tokenizer(encoder_json: Path, vocab_bpe: Path):
    transformers = pytest.importorskip("transformers", reason="transformers not installed: no HF reference")
    vocab = json.loads(encoder_json.read_text(encoding="utf-8"))
    merges = [tuple(line.split()) for line in vocab_bpe.read_text(encoding="utf-8").split("\n")[1:-1]]
    return transformers.GPT2Tokenizer(vocab=vocab, merges=merges)


@pytest.mark.reference
def test_matches_transformers_byte_level_bpe(tmp_path, bpe):
    hf = _hf_gpt2_tokenizer(tmp_path / "encoder.json", tmp_path / "vocab.bpe")
    for text in TEXTS:
        assert bpe.encode(text) == hf.encode(text, add_special_tokens=False), text
