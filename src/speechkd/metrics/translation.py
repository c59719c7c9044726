"""Corpus BLEU, chrF++ and TER with sacreBLEU, each with its signature, as the authors' eval_script.sh scores
(HubReb/imitkd_ast): T-/D- lines of the fairseq-generate log -> `sacremoses -l de -q detokenize` on
hypotheses and references -> `sacrebleu REF -i HYP -m bleu ter chrf --chrf-word-order 2`, i.e. sacreBLEU's
defaults (BLEU: 13a tokenisation, mixed case, exp smoothing; TER: tercom defaults) and chrF with word
bigrams (chrF++). Pass `detok_lang="de"` to detokenise both sides first, as that script does; with
`refs_raw=True` the references are the corpus's own untokenised text and only the hypotheses are detokenised
(what st-eval and st-score report: no tokenisation or dictionary round trip touches the references).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from sacrebleu.metrics import BLEU, CHRF, TER

from ..tokenizers.moses import detokenize

__all__ = ["CorpusScore", "corpus_bleu", "corpus_chrf", "corpus_ter", "score_translations"]


@dataclass(frozen=True)
class CorpusScore:
    name: str          # sacreBLEU's metric name: "BLEU", "chrF2++", "TER"
    score: float
    signature: str     # e.g. "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"
    formatted: str     # sacreBLEU's score line, e.g. "BLEU = 53.73 83.3/60.0/50.0/33.3 (BP = 1.000 ...)"


def _prepare(hyps: Sequence[str], refs: Sequence[str], detok_lang: str | None,
             refs_raw: bool = False) -> tuple[list[str], list[str]]:
    if len(hyps) != len(refs):
        raise ValueError(f"{len(hyps)} hypotheses for {len(refs)} references")
    if detok_lang is None:
        return list(hyps), list(refs)
    refs = list(refs) if refs_raw else [detokenize(r, detok_lang) for r in refs]
    return [detokenize(h, detok_lang) for h in hyps], refs


def _score(metric, hyps: list[str], refs: list[str]) -> CorpusScore:
    result = metric.corpus_score(hyps, [refs])
    return CorpusScore(result.name, float(result.score), metric.get_signature().format(), result.format())


def corpus_bleu(hyps: Sequence[str], refs: Sequence[str], detok_lang: str | None = None,
                tokenize: str = "13a", lowercase: bool = False) -> CorpusScore:
    return _score(BLEU(tokenize=tokenize, lowercase=lowercase), *_prepare(hyps, refs, detok_lang))


def corpus_chrf(hyps: Sequence[str], refs: Sequence[str], detok_lang: str | None = None,
                word_order: int = 2) -> CorpusScore:
    return _score(CHRF(word_order=word_order), *_prepare(hyps, refs, detok_lang))


def corpus_ter(hyps: Sequence[str], refs: Sequence[str], detok_lang: str | None = None) -> CorpusScore:
    return _score(TER(), *_prepare(hyps, refs, detok_lang))


def score_translations(hyps: Sequence[str], refs: Sequence[str], detok_lang: str | None = None,
                       refs_raw: bool = False) -> dict[str, CorpusScore]:
    """eval_script.sh's three scores: {"bleu", "chrf", "ter"} (chrF++), detokenising once."""
    h, r = _prepare(hyps, refs, detok_lang, refs_raw)
    return {"bleu": _score(BLEU(), h, r), "chrf": _score(CHRF(word_order=2), h, r), "ter": _score(TER(), h, r)}
