"""fastBPE-compatible byte-pair encoding: the WMT19 expert's `bpecodes` are fastBPE codes, and the seed's
prepare-rest.sh runs `fast applybpe` (glample/fastBPE, fastBPE/fastBPE.hpp) with them.

Codes file: one merge per line, `left right count`, in merge order (line number = rank). A word is split
into characters (Unicode code points; fastBPE splits UTF-8 at non-continuation bytes, the same thing),
the last one carrying the end-of-word marker `</w>`. Output pieces are joined with `@@ ` and the final
`</w>` is dropped: "lower" -> "low@@ er".
"""
from __future__ import annotations

import heapq
from collections import defaultdict
from pathlib import Path
from typing import Iterable

from ..errors import InputError
from ..fileio import write_text_atomic
from .dictionary import remove_bpe

__all__ = ["BPE", "END_OF_WORD", "learn_bpe", "read_codes", "remove_bpe", "write_codes"]

END_OF_WORD = "</w>"
TOKEN_DELIM = "@@"

Merge = tuple[str, str, int]


def _split_words(line: str) -> list[str]:
    """fastBPE splits on the space character only (tabs stay inside words) and drops empty fields."""
    return [w for w in line.split(" ") if w]


def _word_symbols(word: str) -> list[str]:
    return list(word[:-1]) + [word[-1] + END_OF_WORD]


def learn_bpe(lines: Iterable[str], num_merges: int) -> list[Merge]:
    """fastBPE `learnbpe`: repeatedly merge the most frequent adjacent symbol pair; ties go to the
    smallest (left id, right id), ids being assigned to characters as first met and to merged symbols
    in creation order (fastBPE.hpp `find_maxp`, `tokenize`).

    Two deliberate differences: fastBPE numbers the characters in the iteration order of its
    `unordered_map` of words (not reproducible outside libstdc++), so equal-count ties between pairs can
    break differently; and fastBPE keeps emitting zero-count merges when no pair is left, whereas this
    stops. Counts (the third field) are the pair frequencies when merged, as fastBPE prints them.
    """
    word_count: dict[str, int] = {}
    for line in lines:
        for w in _split_words(line.rstrip("\n")):
            word_count[w] = word_count.get(w, 0) + 1

    token_to_id: dict[str, int] = {}
    id_to_token: list[str] = []

    def intern(tok: str) -> int:
        if tok not in token_to_id:
            token_to_id[tok] = len(id_to_token)
            id_to_token.append(tok)
        return token_to_id[tok]

    words = [[intern(s) for s in _word_symbols(w)] for w in word_count]
    counts = list(word_count.values())

    pair_count: dict[tuple[int, int], int] = defaultdict(int)
    where: dict[tuple[int, int], set[int]] = defaultdict(set)
    for wi, word in enumerate(words):
        for pair in zip(word, word[1:]):
            pair_count[pair] += counts[wi]
            where[pair].add(wi)
    # max-heap on (count, then smallest pair); stale entries are skipped when popped
    heap = [(-c, p) for p, c in pair_count.items() if c > 0]
    heapq.heapify(heap)

    merges: list[Merge] = []
    while len(merges) < num_merges and heap:
        neg, pair = heapq.heappop(heap)
        if pair_count.get(pair, 0) != -neg or neg == 0:
            continue
        a, b = pair
        # a new id even when the string already exists: fastBPE does the same (int_to_token.push_back)
        new_id = len(id_to_token)
        id_to_token.append(id_to_token[a] + id_to_token[b])
        merges.append((id_to_token[a], id_to_token[b], -neg))
        changed: set[tuple[int, int]] = set()
        for wi in where.pop(pair, ()):
            word, c = words[wi], counts[wi]
            if not any(x == a and y == b for x, y in zip(word, word[1:])):
                continue
            for p in zip(word, word[1:]):
                pair_count[p] -= c
                changed.add(p)
            merged, i = [], 0
            while i < len(word):  # left to right, non-overlapping, as fastBPE's list surgery
                if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
                    merged.append(new_id)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            words[wi] = merged
            for p in zip(merged, merged[1:]):
                pair_count[p] += c
                where[p].add(wi)
                changed.add(p)
        pair_count[pair] = 0
        for p in changed:
            if pair_count[p] > 0:
                heapq.heappush(heap, (-pair_count[p], p))
    return merges


def write_codes(path: str | Path, merges: Iterable[Merge]) -> None:
    write_text_atomic(path, "".join(f"{a} {b} {c}\n" for a, b, c in merges))


def read_codes(path: str | Path) -> list[Merge]:
    """Reads a fastBPE codes file; each line must split (on spaces) into exactly three fields."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: BPE codes file not found") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: BPE codes file is not UTF-8 ({e})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the file's final newline (fastBPE reads with getline)
    merges: list[Merge] = []
    for lineno, line in enumerate(lines, 1):
        fields = _split_words(line)
        try:
            if len(fields) != 3:
                raise ValueError
            merges.append((fields[0], fields[1], int(fields[2])))
        except ValueError:
            raise InputError(f"{path}:{lineno}: expected 'left right count' (fastBPE codes), got {line!r}") from None
    return merges


def read_vocab(path: str | Path) -> set[str]:
    """fastBPE `readVocab`: `word count` per line (a fairseq dict.txt qualifies); only the words matter."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise InputError(f"{path}: BPE vocabulary file not found") from None
    vocab: set[str] = set()
    for lineno, line in enumerate(lines, 1):
        fields = _split_words(line)
        if len(fields) != 2 or not fields[1].lstrip("-").isdigit():
            raise InputError(f"{path}:{lineno}: expected 'word count' (fastBPE vocabulary), got {line!r}")
        if fields[0] in vocab:
            raise InputError(f"{path}:{lineno}: duplicate word {fields[0]!r} (fastBPE asserts words are unique)")
        vocab.add(fields[0])
    return vocab


class BPE:
    """Applies fastBPE codes to text, optionally restricted to a vocabulary (fastBPE `applybpe ... vocab`,
    `fastBPE.fastBPE(codes, vocab)` as the authors' criterion builds it). Words are cached."""

    def __init__(self, merges: Iterable[Merge], vocab: Iterable[str] | None = None,
                 source: str = "<codes>") -> None:
        self.ranks: dict[tuple[str, str], int] = {}
        self.reversed: dict[str, tuple[str, str]] = {}
        for rank, (a, b, _count) in enumerate(merges):
            if (a, b) in self.ranks:
                raise InputError(f"{source}:{rank + 1}: duplicate merge {a!r} {b!r}"
                                 " (fastBPE asserts merges are unique)")
            self.ranks[(a, b)] = rank
            # fastBPE's Python module (compiled with NDEBUG) keeps the later pair for a repeated concatenation
            self.reversed[a + b] = (a, b)
        self.vocab = set(vocab) if vocab is not None else set()
        self._cache: dict[str, str] = {}

    @classmethod
    def from_codes(cls, codes_path: str | Path, vocab_path: str | Path | None = None) -> "BPE":
        vocab = read_vocab(vocab_path) if vocab_path is not None else None
        return cls(read_codes(codes_path), vocab, source=str(codes_path))

    def __len__(self) -> int:
        return len(self.ranks)

    def apply(self, line: str) -> str:
        """One sentence -> BPE pieces (fastBPE `BPEApplyer::apply`: words split on single spaces, empty
        fields dropped, words re-joined with one space)."""
        out = []
        cache = self._cache
        for w in _split_words(line):
            piece = cache.get(w)
            if piece is None:
                piece = cache[w] = self._encode_word(w)
            out.append(piece)
        return " ".join(out)

    def decode(self, text: str) -> str:
        return remove_bpe(text, "@@ ")

    # --- fastBPE process_bpe ----------------------------------------------------------------
    def _encode_word(self, word: str) -> str:
        subwords = _word_symbols(word)
        ranks = self.ranks
        while len(subwords) > 1:
            best_rank, best = -1, None
            for pair in zip(subwords, subwords[1:]):
                r = ranks.get(pair)
                if r is not None and (best is None or r < best_rank):
                    best_rank, best = r, pair
            if best is None:
                break
            a, b = best
            merged, i, n = [], 0, len(subwords)
            while i < n:
                if i + 1 < n and subwords[i] == a and subwords[i + 1] == b:
                    merged.append(a + b)
                    i += 2
                else:
                    merged.append(subwords[i])
                    i += 1
            subwords = merged
        if self.vocab:
            subwords = self._limit_vocab(subwords)
        # every piece gets "@@", then the final "</w>@@" is cut (process_bpe's concatenation)
        return " ".join(s + TOKEN_DELIM for s in subwords)[: -len(END_OF_WORD) - len(TOKEN_DELIM)]

    def _in_vocab(self, subword: str, final: bool) -> bool:
        return (subword[: -len(END_OF_WORD)] if final else subword + TOKEN_DELIM) in self.vocab

    def _limit_vocab(self, subwords: list[str]) -> list[str]:
        """fastBPE `limitVocab`: a piece missing from the vocabulary is split back into the pair that
        made it, recursively, down to single characters (kept even when unknown)."""
        out: list[str] = []
        last = len(subwords) - 1
        for i, s in enumerate(subwords):
            if self._in_vocab(s, i == last):
                out.append(s)
            else:
                self._decompose(s, out, i == last)
        return out

    def _decompose(self, s: str, out: list[str], final: bool) -> None:
        pair = self.reversed.get(s)
        if pair is None:
            out.append(s)  # a single character: fastBPE only asserts this
            return
        left, right = pair
        if left + TOKEN_DELIM in self.vocab:
            out.append(left)
        else:
            self._decompose(left, out, False)
        if self._in_vocab(right, final):
            out.append(right)
        else:
            self._decompose(right, out, final)
