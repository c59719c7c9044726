"""Text input of the text RoBERTa (teacher of PT-KD and FT-KD): transcript -> `<s> ... </s>` ids.

Paper scale: roberta.base with its GPT-2 BPE (`RobertaTextEncoder`, = RobertaHubInterface.encode). Embedded
scale: our small RoBERTa has a WORD-level fairseq Dictionary instead of a BPE (the embedded grammars have about
2,000 word types, all seen in the 50k-line text sample, so a subword model would only add a training step);
`WordTextEncoder` produces the same `<s> w1 ... wn </s>` layout. Both lower-case first, as the authors' loaders
do (`transcript.lower()` before `roberta.encode`).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Protocol

import torch

from ..interop.fairseq_roberta import load_masked_lm_dictionary
from ..tokenizers.dictionary import Dictionary

# words (letters, digits, inner apostrophes) or single punctuation marks: "Let's go, now" -> let's go , now
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[^\w\s]")


class TextEncoder(Protocol):
    dictionary: Dictionary

    def encode(self, sentence: str) -> torch.Tensor: ...


def words(text: str) -> list[str]:
    """Lower-cased word tokens of a transcript."""
    return _WORD.findall(text.lower())


class WordTextEncoder:
    """`<s> words </s>` over a word-level dict.txt (loaded with `<mask>` appended, as the masked_lm task does)."""

    def __init__(self, dictionary: Dictionary):
        self.dictionary = dictionary

    @classmethod
    def from_file(cls, dict_txt: str | Path) -> "WordTextEncoder":
        return cls(load_masked_lm_dictionary(dict_txt))

    def encode(self, sentence: str) -> torch.Tensor:
        d = self.dictionary
        return torch.tensor([d.bos()] + [d.index(w) for w in words(sentence)] + [d.eos()], dtype=torch.long)


def build_word_dictionary(lines: Iterable[str], min_count: int = 1) -> Dictionary:
    """fairseq dict.txt over lower-cased words (specials first, by descending count, padded to a multiple of 8)."""
    return Dictionary.build((" ".join(words(line)) for line in lines), threshold=min_count)


def load_text_encoder(kind: str, dict_txt: Path, gpt2_encoder_json: Path | None = None,
                      gpt2_vocab_bpe: Path | None = None) -> TextEncoder:
    """kind "words": WordTextEncoder; "gpt2": roberta.base's GPT-2 BPE + dict.txt."""
    if kind == "words":
        return WordTextEncoder.from_file(dict_txt)
    from ..tokenizers.gpt2_bpe import RobertaTextEncoder
    if gpt2_encoder_json is None or gpt2_vocab_bpe is None:
        raise ValueError("gpt2 text encoding needs encoder.json and vocab.bpe")
    return RobertaTextEncoder.from_files(gpt2_encoder_json, gpt2_vocab_bpe, dict_txt)


def encode_for_finetuning(encoder: TextEncoder, transcript: str) -> torch.Tensor:
    """The FT loaders' text input: `roberta.encode(transcript.lower())[:-1]`, i.e. the trailing `</s>` dropped
    (loader/data_loader.py, loader/text_data_loader.py). PT-KD keeps it (loader/masked_data_loader.py)."""
    return encoder.encode(transcript.lower())[:-1]


def encode_for_pt_kd(encoder: TextEncoder, transcript: str) -> torch.Tensor:
    return encoder.encode(transcript.lower())
