"""SpecAugment with fairseq's SpecAugmentTransform semantics, deterministic under an explicit generator.

Per call on a (T, F) spectrogram (numpy array or torch tensor; the input is not modified):
- nothing happens when T == 0 or F < freq_mask_F (fairseq returns the input unchanged then);
- time warp (only when W > 0 and 2W < T): w0 ~ U[W, T-W), w ~ U[0, W); frames [0, w0) are linearly resized to
  w0 + w frames and [w0, T) to T - w0 - w (fairseq uses cv2 INTER_LINEAR, i.e. half-pixel-centred linear);
- freq_mask_N times: f ~ U[0, F_max), f0 ~ U[0, F - f), columns [f0, f0 + f) = mask value;
- time masks: T_max = min(time_mask_T, floor(T * p)); if T_max >= 1, time_mask_N times: t ~ U[0, T_max),
  t0 ~ U[0, T - t), rows [t0, t0 + t) = mask value.
U[a, b) is a uniform integer with exclusive upper bound, as np.random.randint. The mask value is `mask_value`, or
when it is None (what fairseq's from_config_dict passes when the config has no mask_value) the spectrogram mean.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError

Spec = TypeVar("Spec", np.ndarray, torch.Tensor)
Rng = np.random.Generator | torch.Generator

# fairseq config keys -> our field names. The recipes' S2TDataConfigWriter writes "time_wrap_W" (sic) while the
# transform reads "time_warp_W", so fairseq never time-warps from a recipe config; we accept and ignore it alike.
_CONFIG_KEYS = {"time_warp_W": "time_warp_w", "freq_mask_N": "freq_mask_n", "freq_mask_F": "freq_mask_f",
                "time_mask_N": "time_mask_n", "time_mask_T": "time_mask_t", "time_mask_p": "time_mask_p",
                "mask_value": "mask_value"}
_IGNORED_KEYS = {"time_wrap_W"}


@dataclass(frozen=True)
class SpecAugment:
    time_warp_w: int = 0
    freq_mask_n: int = 0
    freq_mask_f: int = 0
    time_mask_n: int = 0
    time_mask_t: int = 0
    time_mask_p: float = 0.0
    mask_value: float | None = None

    def __post_init__(self):
        for name in ("time_warp_w", "freq_mask_n", "freq_mask_f", "time_mask_n", "time_mask_t"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 0:
                raise InputError(f"specaugment.{name}: expected a non-negative integer, got {getattr(self, name)!r}")
        if not 0.0 <= self.time_mask_p <= 1.0:
            raise InputError(f"specaugment.time_mask_p: expected a value in [0, 1], got {self.time_mask_p!r}")
        if self.freq_mask_n > 0 and self.freq_mask_f <= 0:
            raise InputError(f"specaugment.freq_mask_F must be > 0 when freq_mask_N = {self.freq_mask_n}")
        if self.time_mask_n > 0 and self.time_mask_t <= 0:
            raise InputError(f"specaugment.time_mask_T must be > 0 when time_mask_N = {self.time_mask_n}")

    @classmethod
    def from_config_dict(cls, config: Mapping[str, Any] | None) -> "SpecAugment":
        """From a fairseq S2T config.yaml `specaugment:` section (fairseq key names)."""
        kwargs = {}
        for key, value in (config or {}).items():
            if key in _IGNORED_KEYS:
                continue
            if key not in _CONFIG_KEYS:
                raise InputError(f"specaugment.{key}: unknown key (expected one of {', '.join(_CONFIG_KEYS)})")
            kwargs[_CONFIG_KEYS[key]] = value
        return cls(**kwargs)

    def __call__(self, spec: Spec, rng: Rng) -> Spec:
        if spec.ndim != 2:
            raise ValueError(f"SpecAugment expects a (frames, freqs) spectrogram, got shape {tuple(spec.shape)}")
        num_frames, num_freqs = spec.shape
        if num_frames == 0 or num_freqs < self.freq_mask_f:
            return spec
        value = float(spec.mean()) if self.mask_value is None else self.mask_value
        out = spec.clone() if isinstance(spec, torch.Tensor) else spec.copy()
        if self.time_warp_w > 0 and 2 * self.time_warp_w < num_frames:
            w0 = _randint(rng, self.time_warp_w, num_frames - self.time_warp_w)
            w = _randint(rng, 0, self.time_warp_w)
            out = _time_warp(out, w0, w)
        for _ in range(self.freq_mask_n):
            f = _randint(rng, 0, self.freq_mask_f)
            f0 = _randint(rng, 0, num_freqs - f)
            if f:
                out[:, f0:f0 + f] = value
        max_t = min(self.time_mask_t, math.floor(num_frames * self.time_mask_p))
        if max_t < 1:
            return out
        for _ in range(self.time_mask_n):
            t = _randint(rng, 0, max_t)
            t0 = _randint(rng, 0, num_frames - t)
            if t:
                out[t0:t0 + t, :] = value
        return out


def _randint(rng: Rng, low: int, high: int) -> int:
    """Uniform integer in [low, high)."""
    if isinstance(rng, torch.Generator):
        return int(torch.randint(low, high, (1,), generator=rng))
    return int(rng.integers(low, high))


def _resize_time(x: Spec, length: int) -> Spec:
    """Linear resize along axis 0 with half-pixel centres (cv2 INTER_LINEAR / align_corners=False)."""
    if isinstance(x, torch.Tensor):
        y = F.interpolate(x.T.unsqueeze(0), size=length, mode="linear", align_corners=False)
        return y.squeeze(0).T
    src = np.clip((np.arange(length) + 0.5) * (x.shape[0] / length) - 0.5, 0, x.shape[0] - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, x.shape[0] - 1)
    frac = (src - lo)[:, None].astype(x.dtype)
    return x[lo] * (1 - frac) + x[hi] * frac


def _time_warp(x: Spec, w0: int, w: int) -> Spec:
    upper = _resize_time(x[:w0], w0 + w)
    lower = _resize_time(x[w0:], x.shape[0] - w0 - w)
    return torch.cat([upper, lower]) if isinstance(x, torch.Tensor) else np.concatenate([upper, lower])


# The fairseq S2T recipes' policies (examples/speech_to_text/data_utils.py S2TDataConfigWriter):
# LibriSpeech basic/double, and the "strong" policies with the proportional time-mask bound.
POLICIES: dict[str, SpecAugment] = {
    "lb": SpecAugment(time_warp_w=0, freq_mask_n=1, freq_mask_f=27, time_mask_n=1, time_mask_t=100, time_mask_p=1.0),
    "ld": SpecAugment(time_warp_w=0, freq_mask_n=2, freq_mask_f=27, time_mask_n=2, time_mask_t=100, time_mask_p=1.0),
    "sm": SpecAugment(time_warp_w=0, freq_mask_n=2, freq_mask_f=15, time_mask_n=2, time_mask_t=70, time_mask_p=0.2),
    "ss": SpecAugment(time_warp_w=0, freq_mask_n=2, freq_mask_f=27, time_mask_n=2, time_mask_t=70, time_mask_p=0.2),
}


def specaugment_policy(name: str, mask_value: float | None = None) -> SpecAugment:
    if name not in POLICIES:
        raise InputError(f"specaugment policy {name!r}: expected one of {', '.join(POLICIES)}")
    p = POLICIES[name]
    return SpecAugment(p.time_warp_w, p.freq_mask_n, p.freq_mask_f, p.time_mask_n, p.time_mask_t, p.time_mask_p,
                       mask_value)
