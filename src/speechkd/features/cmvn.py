"""Cepstral mean and variance normalisation with fairseq's semantics.

- Utterance CMVN = fairseq's UtteranceCMVN: per-utterance mean/std over frames, var = E[x^2] - mean^2 floored at
  1e-10 before the square root.
- Global CMVN = fairseq's GlobalCMVN: (x - mean) / std with `mean` and `std` read from an .npz with those two keys.
  Statistics are computed like fairseq's cal_gcmvn_stats (population variance, floored at 1e-8, float32 output),
  but accumulated in float64 with Chan's parallel update so that a large corpus does not lose precision.
"""
from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import InputError
from ..fileio import atomic_path

UTTERANCE_VAR_FLOOR = 1e-10  # fairseq UtteranceCMVN
GLOBAL_VAR_FLOOR = 1e-8  # fairseq cal_gcmvn_stats


def utterance_cmvn(x: np.ndarray, norm_means: bool = True, norm_vars: bool = True) -> np.ndarray:
    """(T, F) features normalised over their own frames; float32 out."""
    x64 = np.asarray(x, dtype=np.float64)
    mean = x64.mean(axis=0)
    if norm_means:
        x64 = x64 - mean
    if norm_vars:
        # fairseq's formula (kept for parity), but in float64
        var = (np.asarray(x, dtype=np.float64) ** 2).mean(axis=0) - mean ** 2
        x64 = x64 / np.sqrt(np.maximum(var, UTTERANCE_VAR_FLOOR))
    return x64.astype(np.float32)


class UtteranceCMVN:
    def __init__(self, norm_means: bool = True, norm_vars: bool = True):
        self.norm_means, self.norm_vars = norm_means, norm_vars

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return utterance_cmvn(x, self.norm_means, self.norm_vars)

    def __repr__(self) -> str:
        return f"UtteranceCMVN(norm_means={self.norm_means}, norm_vars={self.norm_vars})"


def compute_global_cmvn(features: Iterable[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std), float32 (F,), over all frames of all (T_i, F) arrays; one pass, float64 accumulation."""
    count, mean, m2 = 0, None, None
    for i, feats in enumerate(features):
        feats = np.asarray(feats, dtype=np.float64)
        if feats.ndim != 2:
            raise ValueError(f"features #{i}: expected a (frames, dims) array, got shape {feats.shape}")
        n = feats.shape[0]
        if n == 0:
            continue
        if mean is None:
            mean, m2 = np.zeros(feats.shape[1]), np.zeros(feats.shape[1])
        elif feats.shape[1] != mean.shape[0]:
            raise ValueError(f"features #{i}: {feats.shape[1]} dims, earlier ones had {mean.shape[0]}")
        batch_mean = feats.mean(axis=0)
        batch_m2 = ((feats - batch_mean) ** 2).sum(axis=0)
        delta = batch_mean - mean
        total = count + n
        mean = mean + delta * (n / total)
        m2 = m2 + batch_m2 + delta ** 2 * (count * n / total)
        count = total
    if mean is None:
        raise ValueError("compute_global_cmvn: no frames to compute statistics from")
    std = np.sqrt(np.maximum(m2 / count, GLOBAL_VAR_FLOOR))
    return mean.astype(np.float32), std.astype(np.float32)


def save_global_cmvn(path: str | Path, mean: np.ndarray, std: np.ndarray) -> None:
    """Writes fairseq's gcmvn .npz (keys "mean", "std"), atomically."""
    mean, std = np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32)
    if mean.shape != std.shape or mean.ndim != 1:
        raise ValueError(f"mean {mean.shape} and std {std.shape} must be equal 1-D shapes")
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: np.savez would rename a bare path
        np.savez(f, mean=mean, std=std)


def load_global_cmvn(path: str | Path, dim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) from a fairseq gcmvn .npz, validated (present keys, equal 1-D shapes, finite, std > 0)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: global CMVN stats not found (expected an .npz with keys 'mean' and 'std')")
    try:
        stats = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise InputError(f"{path}: cannot read global CMVN stats: {e}") from None
    if not isinstance(stats, np.lib.npyio.NpzFile):
        raise InputError(f"{path}: not an .npz archive (expected keys 'mean' and 'std')")
    with stats:
        missing = [k for k in ("mean", "std") if k not in stats.files]
        if missing:
            raise InputError(f"{path}: missing key(s) {', '.join(missing)} (has: {', '.join(stats.files)})")
        try:
            mean, std = stats["mean"].astype(np.float32), stats["std"].astype(np.float32)
        except (OSError, ValueError, zipfile.BadZipFile) as e:
            raise InputError(f"{path}: cannot read global CMVN stats: {e}") from None
    if mean.ndim != 1 or mean.shape != std.shape:
        raise InputError(f"{path}: 'mean' {mean.shape} and 'std' {std.shape} must be 1-D of equal length")
    if dim is not None and mean.shape[0] != dim:
        raise InputError(f"{path}: stats have {mean.shape[0]} dims, features have {dim}")
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
        raise InputError(f"{path}: 'mean' must be finite and 'std' finite and > 0")
    return mean, std


class GlobalCMVN:
    def __init__(self, mean: np.ndarray, std: np.ndarray):
        self.mean, self.std = np.asarray(mean, dtype=np.float32), np.asarray(std, dtype=np.float32)

    @classmethod
    def from_npz(cls, path: str | Path) -> "GlobalCMVN":
        return cls(*load_global_cmvn(path))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, dtype=np.float32) - self.mean) / self.std).astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return f"GlobalCMVN(dim={self.mean.shape[0]})"
