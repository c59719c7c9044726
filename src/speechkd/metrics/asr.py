"""WER/CER as fairseq's `wer` scorer computes them (fairseq/scoring/wer.py, fairseq/scoring/tokenizer.py):
each sentence is passed through a sacreBLEU tokenizer (`--wer-tokenizer`), then punctuation-only tokens are
dropped (`--wer-remove-punct`, Unicode category P*), then optionally split into characters with spaces kept
as U+2581 (`--wer-char-level`), then lowercased (`--wer-lowercase`); the corpus score is
100 * sum(edit distances) / sum(reference lengths), 0 when there is no reference token.
The fairseq S2T recipes score ASR with `--wer-tokenizer 13a --wer-lowercase --wer-remove-punct`
(FAIRSEQ_S2T_RECIPE). Edit operations are counted with jiwer.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Sequence

import jiwer
from sacrebleu.metrics import BLEU

__all__ = ["ErrorRate", "FAIRSEQ_S2T_RECIPE", "cer", "normalize", "wer"]

SPACE_ESCAPE = "\u2581"
FAIRSEQ_S2T_RECIPE = {"tokenizer": "13a", "lowercase": True, "remove_punct": True}


@dataclass(frozen=True)
class ErrorRate:
    substitutions: int
    deletions: int
    insertions: int
    ref_length: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def score(self) -> float:
        """Percent, as fairseq prints it (`WER: 25.60`)."""
        return 100.0 * self.errors / self.ref_length if self.ref_length else 0.0


@lru_cache(maxsize=None)
def _sacrebleu_tokenizer(name: str) -> Callable[[str], str]:
    if name not in BLEU.TOKENIZERS:
        raise ValueError(f"unknown WER tokenizer {name!r}; expected one of {', '.join(BLEU.TOKENIZERS)}")
    return BLEU(tokenize=name).tokenizer


def _remove_punctuation(sent: str) -> str:
    # fairseq EvaluationTokenizer.remove_punctuation: split on single spaces, drop all-punctuation tokens
    # (empty tokens included, since all() of nothing is true)
    return " ".join(t for t in sent.split(" ") if not all(unicodedata.category(c)[0] == "P" for c in t))


def normalize(text: str, tokenizer: str = "none", lowercase: bool = False, remove_punct: bool = False,
              char_level: bool = False) -> list[str]:
    """One sentence -> the token list fairseq's WerScorer compares."""
    tokenized = _sacrebleu_tokenizer(tokenizer)(text)
    if remove_punct:
        tokenized = _remove_punctuation(tokenized)
    if char_level:
        tokenized = " ".join(tokenized.replace(" ", SPACE_ESCAPE))
    if lowercase:
        tokenized = tokenized.lower()
    return tokenized.split()


def _error_rate(refs: Sequence[str], hyps: Sequence[str], **norm) -> ErrorRate:
    if len(refs) != len(hyps):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
    ref_tokens = [normalize(r, **norm) for r in refs]
    hyp_tokens = [normalize(h, **norm) for h in hyps]
    ref_length = sum(len(r) for r in ref_tokens)
    if not refs:
        return ErrorRate(0, 0, 0, 0)
    # tokens never contain spaces, so joining and re-splitting in jiwer is lossless
    out = jiwer.process_words([" ".join(r) for r in ref_tokens], [" ".join(h) for h in hyp_tokens])
    return ErrorRate(out.substitutions, out.deletions, out.insertions, ref_length)


def wer(refs: Sequence[str], hyps: Sequence[str], tokenizer: str = "none", lowercase: bool = False,
        remove_punct: bool = False) -> ErrorRate:
    """Corpus word error rate; the defaults are fairseq's (`--scoring wer` with no options)."""
    return _error_rate(refs, hyps, tokenizer=tokenizer, lowercase=lowercase, remove_punct=remove_punct)


def cer(refs: Sequence[str], hyps: Sequence[str], tokenizer: str = "none", lowercase: bool = False,
        remove_punct: bool = False) -> ErrorRate:
    """Corpus character error rate, spaces counted as characters (fairseq `--wer-char-level`)."""
    return _error_rate(refs, hyps, tokenizer=tokenizer, lowercase=lowercase, remove_punct=remove_punct,
                       char_level=True)
