"""Moses preprocessing as the seed's prepare-rest.sh runs it (HubReb/imitkd_ast,
fairseq/examples/speech_to_text/prepare-rest.sh), through sacremoses:

    train:    normalize-punctuation.perl $l | remove-non-printing-char.perl | tokenizer.perl -a -l <lang>
    dev/test: tokenizer.perl -a -l <lang>

and the detokenisation of eval_script.sh (`sacremoses -l de -q detokenize`).

`$l` is never set in prepare-rest.sh, so normalize-punctuation.perl runs with its default language, English,
for the German side too; `normalize_lang` defaults to "en" for that reason. tokenizer.perl escapes
`& | < > ' " [ ]` as XML entities unless `-no-escape` is given, and the script does not give it.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Iterable

import regex
from sacremoses import MosesDetokenizer, MosesPunctNormalizer, MosesTokenizer

__all__ = ["detokenize", "normalize_punctuation", "preprocess", "preprocess_lines", "remove_non_printing_chars",
           "tokenize"]

_NON_PRINTING = regex.compile(r"\p{C}")


@lru_cache(maxsize=None)
def _tokenizer(lang: str) -> MosesTokenizer:
    return MosesTokenizer(lang=lang)


@lru_cache(maxsize=None)
def _detokenizer(lang: str) -> MosesDetokenizer:
    return MosesDetokenizer(lang=lang)


@lru_cache(maxsize=None)
def _normalizer(lang: str) -> MosesPunctNormalizer:
    # The perl script maps a stray ’, ‘ or ‚ (one not between letters) to ". sacremoses maps all three
    # to ' ; its perl_parity flag fixes ’ (and the French quotes) only, so ‘ and ‚ are patched here.
    normalizer = MosesPunctNormalizer(lang=lang, perl_parity=True)
    normalizer.substitutions = [(pattern, '"' if pattern in ("‘", "‚") else repl)
                                for pattern, repl in normalizer.substitutions]
    return normalizer


def normalize_punctuation(text: str, lang: str = "en") -> str:
    """normalize-punctuation.perl [-l lang] (default English, as prepare-rest.sh runs it)."""
    return _normalizer(lang).normalize(text)


def remove_non_printing_chars(text: str) -> str:
    """remove-non-printing-char.perl: every Unicode "Other" character (\\p{C}) becomes a space.
    (sacremoses' own `remove_control_chars` deletes them instead, which would glue words together.)"""
    return _NON_PRINTING.sub(" ", text)


def tokenize(text: str, lang: str, aggressive_dash_splits: bool = True, escape: bool = True) -> str:
    """tokenizer.perl -a -l <lang> (escaping on, as by default)."""
    return _tokenizer(lang).tokenize(text, aggressive_dash_splits=aggressive_dash_splits, return_str=True,
                                     escape=escape)


def preprocess(text: str, lang: str, train: bool, normalize_lang: str = "en") -> str:
    """One line through prepare-rest.sh's pipeline: the train split gets normalisation and
    non-printing-character removal before tokenisation, dev/test only the tokenisation."""
    if train:
        text = remove_non_printing_chars(normalize_punctuation(text, normalize_lang))
    return tokenize(text, lang)


def preprocess_lines(lines: Iterable[str], lang: str, train: bool, normalize_lang: str = "en") -> list[str]:
    return [preprocess(line.rstrip("\n"), lang, train, normalize_lang) for line in lines]


def detokenize(text: str, lang: str) -> str:
    """`sacremoses -l <lang> -q detokenize` on one line: split on whitespace, detokenise, unescape XML
    entities (the CLI's default --xml-unescape)."""
    return _detokenizer(lang).detokenize(text.split(), return_str=True, unescape=True)
