"""Discrete speech units from k-means on fbank frames: the embedded stand-in for vq-wav2vec (k-means).

vq-wav2vec (Baevski et al., 2020; fairseq `KmeansVectorQuantizer`) quantises each 10 ms frame with G=2 groups: the
frame vector is split into two halves and each half is replaced by the index of its nearest codebook entry, giving
tokens written "a-b" (`examples/wav2vec/vq-wav2vec_featurize.py`). Where the released `vq-wav2vec_kmeans.pt` is not
available, this module does the same product quantisation on the 80-dim utterance-CMVN log-mel frame (10 ms hop):
dims 0-39 and 40-79 each get their own k-means codebook of K entries, learnt with k-means++ initialisation and Lloyd
iterations. The tokens therefore have the seed's format and feed the same VQ-BERT dictionary machinery (`dict.txt`
of "a-b" symbols, as in the `bert_kmeans` tarball).
"""
from __future__ import annotations

import os
from typing import Iterable

import numpy as np
import torch

from ..errors import InputError
from ..features.cmvn import utterance_cmvn
from ..features.fbank import fbank
from ..train.checkpoint import load_checkpoint, save_checkpoint
from .dictionary import Dictionary

FORMAT_VERSION = 1
DEFAULT_GROUPS = 2  # vq-wav2vec's vq_groups
_ASSIGN_CHUNK = 8192  # frames per distance block: bounds memory at chunk x K floats


def unit_features(wave: np.ndarray, sample_rate: int = 16000, num_mel_bins: int = 80) -> torch.Tensor:
    """The frames the unit tokenizer quantises: Kaldi fbank (25 ms / 10 ms) + utterance CMVN, float32 (T, 80)."""
    return torch.from_numpy(utterance_cmvn(fbank(wave, sample_rate, num_mel_bins)))


def _squared_distances(x: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """(N, K) squared Euclidean distances, clamped at 0 (the expansion can go slightly negative)."""
    d = (x * x).sum(1, keepdim=True) - 2.0 * (x @ centers.T) + (centers * centers).sum(1)[None, :]
    return d.clamp_min_(0.0)


def _assign(x: torch.Tensor, centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest center of every row of x -> (indices (N,), squared distances (N,)), computed in blocks."""
    idx = torch.empty(x.shape[0], dtype=torch.long)
    dist = torch.empty(x.shape[0], dtype=x.dtype)
    for start in range(0, x.shape[0], _ASSIGN_CHUNK):
        d = _squared_distances(x[start:start + _ASSIGN_CHUNK], centers)
        dist[start:start + _ASSIGN_CHUNK], idx[start:start + _ASSIGN_CHUNK] = d.min(dim=1)
    return idx, dist


def _kmeans_plus_plus(x: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii, 2007): each new center drawn with probability proportional to the
    squared distance to the nearest center chosen so far."""
    n = x.shape[0]
    centers = torch.empty(k, x.shape[1], dtype=x.dtype)
    first = int(torch.randint(n, (1,), generator=gen))
    centers[0] = x[first]
    closest = _squared_distances(x, centers[:1]).squeeze(1)
    for i in range(1, k):
        total = float(closest.sum())
        if total > 0.0:
            pick = int(torch.multinomial(closest / total, 1, generator=gen))
        else:  # every frame coincides with a center already: any frame will do
            pick = int(torch.randint(n, (1,), generator=gen))
        centers[i] = x[pick]
        closest = torch.minimum(closest, _squared_distances(x, centers[i:i + 1]).squeeze(1))
    return centers


def kmeans(x: torch.Tensor, k: int, iters: int = 50, seed: int = 0) -> torch.Tensor:
    """Lloyd's k-means on the rows of x (N, D) -> centers (k, D), float32. Deterministic for a seed on CPU.

    Empty clusters are re-seeded with the frames farthest from their centers (deterministic, unlike a random
    restart), and iteration stops early once no assignment changes.
    """
    x = x.detach().to(torch.float32).cpu().contiguous()
    n = x.shape[0]
    if n < k:
        raise InputError(f"k-means: {n} frames cannot make {k} codes; give at least {k} frames "
                         f"(more utterances) or lower num_codes")
    gen = torch.Generator().manual_seed(int(seed))
    centers = _kmeans_plus_plus(x, k, gen)
    assign = None
    for _ in range(max(int(iters), 0)):
        new_assign, dist = _assign(x, centers)
        if assign is not None and torch.equal(new_assign, assign):
            break
        assign = new_assign
        sums = torch.zeros_like(centers).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k)
        nonempty = counts > 0
        centers[nonempty] = sums[nonempty] / counts[nonempty, None].to(x.dtype)
        empty = (~nonempty).nonzero().squeeze(1)
        if empty.numel():
            far = torch.argsort(dist, descending=True, stable=True)[: empty.numel()]
            centers[empty] = x[far]
            assign = None  # the codebook moved without a re-assignment: do not stop on the next check
    return centers


class UnitTokenizer:
    """Product-quantised k-means units: `groups` codebooks (groups, K, D/groups), one per slice of the frame."""

    def __init__(self, codebooks: torch.Tensor):
        codebooks = torch.as_tensor(codebooks, dtype=torch.float32)
        if codebooks.ndim != 3:
            raise ValueError(f"codebooks must be (groups, num_codes, dims_per_group), "
                             f"got shape {tuple(codebooks.shape)}")
        self.codebooks = codebooks.contiguous()

    @property
    def groups(self) -> int:
        return self.codebooks.shape[0]

    @property
    def num_codes(self) -> int:
        return self.codebooks.shape[1]

    @property
    def dim(self) -> int:
        return self.codebooks.shape[0] * self.codebooks.shape[2]

    @classmethod
    def fit(cls, frames: torch.Tensor, num_codes: int, iters: int = 50, seed: int = 0,
            groups: int = DEFAULT_GROUPS) -> "UnitTokenizer":
        """Learn one k-means codebook per group from frames (N, D); D must be divisible by `groups`."""
        frames = torch.as_tensor(frames, dtype=torch.float32)
        if frames.ndim != 2:
            raise ValueError(f"frames must be (N, D), got shape {tuple(frames.shape)}")
        if num_codes < 1:
            raise ValueError(f"num_codes must be >= 1, got {num_codes}")
        n, d = frames.shape
        if d % groups:
            raise ValueError(f"frame dim {d} is not divisible by {groups} groups")
        if n < num_codes:
            raise InputError(f"unit tokenizer: {n} training frames cannot make {num_codes} codes per group; "
                             f"give at least {num_codes} frames or lower num_codes")
        width = d // groups
        # each group gets its own stream of randomness, derived from the one seed
        books = [kmeans(frames[:, g * width:(g + 1) * width], num_codes, iters, seed=seed * 1000003 + g)
                 for g in range(groups)]
        return cls(torch.stack(books))

    def encode(self, feats: torch.Tensor | np.ndarray) -> torch.Tensor:
        """Frames (T, D) -> code indices LongTensor (T, groups)."""
        feats = torch.as_tensor(feats, dtype=torch.float32)
        if feats.ndim != 2 or feats.shape[1] != self.dim:
            raise ValueError(f"expected frames of shape (T, {self.dim}), got {tuple(feats.shape)}")
        width = self.codebooks.shape[2]
        cols = [_assign(feats[:, g * width:(g + 1) * width].contiguous(), self.codebooks[g])[0]
                for g in range(self.groups)]
        return torch.stack(cols, dim=1)

    def tokens(self, feats: torch.Tensor | np.ndarray) -> str:
        """Frames -> the vq-wav2vec text format: "a-b a-b ..." (one token per frame)."""
        return codes_to_tokens(self.encode(feats))

    # --- files --------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"codebooks": self.codebooks.clone(), "num_codes": self.num_codes, "groups": self.groups,
                "dim": self.dim, "format_version": FORMAT_VERSION}

    def save(self, path: str | os.PathLike) -> None:
        save_checkpoint(path, self.state_dict())  # atomic

    @classmethod
    def load(cls, path: str | os.PathLike) -> "UnitTokenizer":
        state = load_checkpoint(path)  # weights_only
        books = state.get("codebooks")
        if not isinstance(books, torch.Tensor) or books.ndim != 3:
            raise InputError(f"{path}: not a unit tokenizer (expected a 'codebooks' tensor of shape "
                             f"(groups, num_codes, dims_per_group))")
        for key, value in (("groups", books.shape[0]), ("num_codes", books.shape[1]),
                           ("dim", books.shape[0] * books.shape[2])):
            if state.get(key) != value:
                raise InputError(f"{path}: field '{key}' = {state.get(key)!r} disagrees with the codebooks "
                                 f"shape {tuple(books.shape)}")
        if state.get("format_version") != FORMAT_VERSION:
            raise InputError(f"{path}: unit tokenizer format_version {state.get('format_version')!r}, "
                             f"expected {FORMAT_VERSION}")
        return cls(books)


def codes_to_tokens(codes: torch.Tensor) -> str:
    """(T, G) indices -> "i0-i1 ..." exactly as vq-wav2vec_featurize.py writes them."""
    return " ".join("-".join(str(int(c)) for c in row) for row in codes.tolist())


def unit_dictionary(token_lines: Iterable[str], padding_factor: int = 8) -> Dictionary:
    """fairseq dict.txt over unit tokens ("a-b" symbols), as for the bert_kmeans VQ-BERT: special symbols first,
    then by descending count, padded to a multiple of `padding_factor` (fairseq Dictionary.finalize)."""
    lines = list(token_lines)
    for lineno, line in enumerate(lines, 1):
        for tok in line.split():
            parts = tok.split("-")
            if len(parts) < 2 or not all(p.isdigit() for p in parts):
                raise InputError(f"unit tokens line {lineno}: {tok!r} is not a unit token like '12-34'")
    return Dictionary.build(lines, padding_factor=padding_factor)
