"""GPT-2 byte-level BPE and RoBERTa's text encoding (what fairseq's `roberta.encode(text)` returns).

- `GPT2BPE`: fairseq/data/encoders/gpt2_bpe_utils.py (OpenAI gpt-2 src/encoder.py): UTF-8 bytes mapped to
  printable characters (bytes_to_unicode), the GPT-2 pre-tokenisation regex, then greedy lowest-rank merges
  from `vocab.bpe`; ids from `encoder.json`. These are the files of fairseq's roberta.base
  (dl.fbaipublicfiles.com/fairseq/gpt2_bpe/{encoder.json,vocab.bpe}).
- `RobertaTextEncoder`: RobertaHubInterface.encode/decode (fairseq/models/roberta/hub_interface.py): BPE ids
  written as decimal strings, `<s> ... </s>` around them, each mapped through the fairseq dict.txt (whose
  symbols are those decimal strings) without adding symbols; unknown ids become `<unk>`.
The SLU authors lowercase transcripts before `encode` and drop the final `</s>` in the fine-tuning loaders
(slu_paper.md 1.1); both are the caller's choice, not part of the encoding.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import regex
import torch

from ..errors import InputError
from .dictionary import Dictionary

# GPT-2's pre-tokeniser (contractions, letter runs, number runs, other runs, whitespace)
_PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


@lru_cache()
def bytes_to_unicode() -> dict[int, str]:
    """Byte -> printable unicode character; the 68 bytes that are whitespace/control get chr(256 + n)."""
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(2 ** 8):
        if b not in bs:
            bs.append(b)
            cs.append(2 ** 8 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


class GPT2BPE:
    def __init__(self, encoder: dict[str, int], merges: Sequence[tuple[str, str]], errors: str = "replace"):
        self.encoder = encoder
        self.decoder = {v: k for k, v in encoder.items()}
        self.errors = errors
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
        self.bpe_ranks = {tuple(m): i for i, m in enumerate(merges)}
        self.cache: dict[str, str] = {}

    @classmethod
    def from_files(cls, encoder_json: str | Path, vocab_bpe: str | Path) -> "GPT2BPE":
        """encoder.json (token -> id) and vocab.bpe (a `#version` line, then one `a b` merge per line).
        As in fairseq, the first and the last line of vocab.bpe are skipped (the file ends with a newline)."""
        try:
            encoder = json.loads(Path(encoder_json).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{encoder_json}: GPT-2 encoder.json not found") from None
        except json.JSONDecodeError as e:
            raise InputError(f"{encoder_json}:{e.lineno}: invalid JSON: {e.msg}") from None
        try:
            lines = Path(vocab_bpe).read_text(encoding="utf-8").split("\n")[1:-1]
        except FileNotFoundError:
            raise InputError(f"{vocab_bpe}: GPT-2 vocab.bpe not found") from None
        merges = []
        for lineno, line in enumerate(lines, 2):
            pair = tuple(line.split())
            if len(pair) != 2:
                raise InputError(f"{vocab_bpe}:{lineno}: expected a merge 'a b', got {line!r}")
            merges.append(pair)
        return cls(encoder, merges)

    def bpe(self, token: str) -> str:
        """One pre-token (already byte-mapped) -> its BPE pieces joined by spaces: repeatedly merge the
        adjacent pair with the lowest rank, all its occurrences left to right."""
        if token in self.cache:
            return self.cache[token]
        word = tuple(token)
        if len(word) < 2:
            return token
        while True:
            pairs = set(zip(word, word[1:]))
            bigram = min(pairs, key=lambda pair: self.bpe_ranks.get(pair, float("inf")))
            if bigram not in self.bpe_ranks:
                break
            first, second = bigram
            merged: list[str] = []
            i = 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    merged.extend(word[i:])
                    break
                merged.extend(word[i:j])
                i = j
                if i < len(word) - 1 and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
            if len(word) == 1:
                break
        out = " ".join(word)
        self.cache[token] = out
        return out

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for token in _PATTERN.findall(text):
            mapped = "".join(self.byte_encoder[b] for b in token.encode("utf-8"))
            for piece in self.bpe(mapped).split(" "):
                if piece not in self.encoder:
                    raise InputError(f"GPT-2 BPE: piece {piece!r} of {token!r} is not in encoder.json "
                                     "(encoder.json and vocab.bpe do not belong together)")
                ids.append(self.encoder[piece])
        return ids

    def decode(self, ids: Sequence[int | str]) -> str:
        text = "".join(self.decoder.get(i, str(i)) if isinstance(i, int) else i for i in ids)
        return bytearray(self.byte_decoder[c] for c in text).decode("utf-8", errors=self.errors)


class RobertaTextEncoder:
    """RobertaHubInterface.encode/decode: text -> fairseq dictionary ids `<s> bpe... </s>` and back."""

    def __init__(self, bpe: GPT2BPE, dictionary: Dictionary):
        self.bpe, self.dictionary = bpe, dictionary

    @classmethod
    def from_files(cls, encoder_json: str | Path, vocab_bpe: str | Path, dict_txt: str | Path) -> "RobertaTextEncoder":
        """The dict.txt is loaded as the masked_lm task loads it (with `<mask>` appended)."""
        from ..interop.fairseq_roberta import load_masked_lm_dictionary
        return cls(GPT2BPE.from_files(encoder_json, vocab_bpe), load_masked_lm_dictionary(dict_txt))

    def bpe_string(self, text: str) -> str:
        """fairseq GPT2BPE.encode: the BPE ids as a space-separated string."""
        return " ".join(map(str, self.bpe.encode(text)))

    def encode(self, sentence: str, *addl_sentences: str, no_separator: bool = False) -> torch.Tensor:
        bpe_sentence = "<s> " + self.bpe_string(sentence) + " </s>"
        for s in addl_sentences:
            bpe_sentence += "" if no_separator else " </s>"
            bpe_sentence += " " + self.bpe_string(s) + " </s>"
        return self.dictionary.encode_line(bpe_sentence, append_eos=False)

    def decode(self, tokens: torch.Tensor | Sequence[int]) -> str:
        """One sentence back to text (leading <s> and </s> dropped, as dictionary.string drops specials)."""
        ids = tokens.tolist() if isinstance(tokens, torch.Tensor) else list(tokens)
        pieces = self.dictionary.string(ids).split()
        return self.bpe.decode([int(p) if p.isdigit() else p for p in pieces])
