"""Real FFT of many frames at once that rounds exactly like kaldi-native-fbank's.

kaldi-native-fbank 1.23 computes its FFT with kissfft in float32, and its wheel's build reassociates the
butterflies' sums (as -ffast-math allows; read off its machine code). In the weak bins of a tone-like frame,
20+ nats below the peak, float32 round-off is a sizeable part of the value: features through another float32 FFT
(pocketfft's) were 1.5e-3 away from kaldi-native-fbank's on our golden chirp, so we round the same way instead.
This module does kissfft's decimation in time with the operations in that build's order (radix 4 stages, then a
radix 2 stage for an odd power of two, then kiss_fftr's split of the half-size complex FFT), each one vectorised
over all frames: frames are the last axis, so every step is one numpy call on contiguous rows.
tests/unit/test_features.py checks it bit for bit against kaldi_native_fbank.Rfft.
"""
from __future__ import annotations

import functools
import math

import numpy as np

_F32 = np.float32


def _factors(n: int) -> list[tuple[int, int]]:
    """kissfft's kf_factor: (radix p, remaining length m) pairs, powers of 4 first, then 2."""
    out, p, floor_sqrt = [], 4, math.floor(math.sqrt(n))
    while True:
        while n % p:
            p = {4: 2, 2: 3}.get(p, p + 2)
            if p > floor_sqrt:
                p = n
        n //= p
        out.append((p, n))
        if n <= 1:
            return out


class KissRfft:
    """rfft(x) for x (n, frames) float32, n a power of two >= 4 -> (real, imag), each (n // 2 + 1, frames)."""

    def __init__(self, n: int):
        if n < 4 or n & (n - 1):
            raise ValueError(f"KissRfft needs a power of two >= 4, got {n}")
        half = n // 2
        factors = _factors(half)
        if any(p not in (2, 4) for p, _ in factors):
            raise ValueError(f"KissRfft: unexpected radix in {factors}")
        self.n, self.half = n, half
        # where kf_work reads each input of the first (deepest) butterflies: mixed-radix digit reversal
        order = np.empty(half, dtype=np.int64)

        def place(out: int, src: int, stride: int, level: int) -> None:
            p, m = factors[level]
            for q in range(p):
                if m == 1:
                    order[out + q] = src + q * stride
                else:
                    place(out + q * m, src + q * stride, stride * p, level + 1)
        place(0, 0, 1, 0)
        self.real_rows, self.imag_rows = 2 * order, 2 * order + 1  # complex input j = (x[2j], x[2j+1])
        # twiddles as kissfft stores them: double cos/sin of the double phase, rounded to float
        phase = [-2 * math.pi * i / half for i in range(half)]
        tw_r = np.array([math.cos(a) for a in phase], dtype=_F32)
        tw_i = np.array([math.sin(a) for a in phase], dtype=_F32)
        self.stages = []  # deepest first: (p, m, twiddles (m, 1) for q = 1..p-1)
        stride = 1
        for p, m in factors:
            k = np.arange(m)
            tw = [(tw_r[q * k * stride][:, None], tw_i[q * k * stride][:, None]) for q in range(1, p)]
            self.stages.append((p, m, tw))
            stride *= p
        self.stages.reverse()
        super_phase = [-math.pi * (k / half + 0.5) for k in range(1, half // 2 + 1)]
        self.super_r = np.array([math.cos(a) for a in super_phase], dtype=_F32)[:, None]
        self.super_i = np.array([math.sin(a) for a in super_phase], dtype=_F32)[:, None]

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        frames = x.shape[1]
        re = np.take(x, self.real_rows, axis=0)
        im = np.take(x, self.imag_rows, axis=0)
        for p, m, tw in self.stages:
            shape = (self.half // (p * m), p, m, frames)
            stage = _radix4 if p == 4 else _radix2
            stage(re.reshape(shape), im.reshape(shape), tw if m > 1 else None)
        return self._split(re, im)

    def _split(self, re: np.ndarray, im: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """kiss_fftr: the spectrum of the real input from the half-size complex FFT of its sample pairs."""
        half = self.half
        out_r = np.empty((half + 1, re.shape[1]), dtype=_F32)
        out_i = np.zeros_like(out_r)
        np.add(re[0], im[0], out=out_r[0])
        np.subtract(re[0], im[0], out=out_r[half])
        lo, hi = slice(1, half // 2 + 1), slice(half - 1, half // 2 - 1, -1)  # bins k and half - k
        ar, ai, br, bi = re[lo], im[lo], re[hi], im[hi]
        f1r, f2r, f2i = br + ar, ar - br, bi + ai
        a, d = f2r * self.super_r, f2i * self.super_i
        tw_i = self.super_r * f2i
        tw_i += f2r * self.super_i
        # bin half - k is written after bin k, so at k = half / 2 (the same bin) the second formula wins
        out_r[lo] = ((f1r + a) - d) * _F32(0.5)
        out_i[lo] = ((ai - bi) + tw_i) * _F32(0.5)
        out_r[hi] = ((f1r + d) - a) * _F32(0.5)
        out_i[hi] = ((bi - ai) + tw_i) * _F32(0.5)
        return out_r, out_i


def _cmul_parts(xr, xi, tr, ti):
    """x * t as (x.r t.r, x.i t.i, x.r t.i + x.i t.r): the build forms the real part only inside later sums."""
    rr, ii = xr * tr, xi * ti
    imag = xr * ti
    imag += xi * tr
    return rr, ii, imag


def _radix4(re: np.ndarray, im: np.ndarray, tw) -> None:
    """kf_bfly4 on every group at once; re/im (groups, 4, m, frames), in place. tw None: all twiddles are 1
    (the m = 1 stage), where every product is exact and the butterfly reduces to sums."""
    f0r, f1r, f2r, f3r = (re[:, q] for q in range(4))
    f0i, f1i, f2i, f3i = (im[:, q] for q in range(4))
    if tw is None:  # s0i, s2i stay views: f1i and f3i are written last, after their final reads
        s0i, s2i = f1i, f3i
        a0r, s5r = f0r + f2r, f0r - f2r
        a0i, s5i = f0i + f2i, f0i - f2i
        s3r, s4r = f1r + f3r, f1r - f3r
    else:
        (t1r, t1i), (t2r, t2i), (t3r, t3i) = tw
        rr, ii, s0i = _cmul_parts(f1r, f1i, t1r, t1i)
        s0r = rr - ii
        a2, b2, s1i = _cmul_parts(f2r, f2i, t2r, t2i)
        a0r, s5r = (f0r + a2) - b2, (f0r + b2) - a2
        a0i, s5i = f0i + s1i, f0i - s1i
        c3, d3, s2i = _cmul_parts(f3r, f3i, t3r, t3i)
        s3r, s4r = (s0r - d3) + c3, (s0r - c3) + d3
    s3i = s0i + s2i
    np.add(a0r, s3r, out=f0r)
    np.add(a0i, s3i, out=f0i)
    np.subtract(a0r, s3r, out=f2r)
    np.subtract(a0i, s3i, out=f2i)
    np.subtract(s5r + s0i, s2i, out=f1r)
    np.subtract(s5r + s2i, s0i, out=f3r)
    np.subtract(s5i, s4r, out=f1i)
    np.add(s5i, s4r, out=f3i)


def _radix2(re: np.ndarray, im: np.ndarray, tw) -> None:
    """kf_bfly2 on every group at once; re/im (groups, 2, m, frames), in place; tw None as in _radix4."""
    f0r, f1r, f0i, f1i = re[:, 0], re[:, 1], im[:, 0], im[:, 1]
    if tw is None:
        t_i = f1i.copy()
        new1r, new0r = f0r - f1r, f0r + f1r
    else:
        ((t1r, t1i),) = tw
        a, b, t_i = _cmul_parts(f1r, f1i, t1r, t1i)
        new1r, new0r = (f0r + b) - a, (f0r + a) - b
    np.subtract(f0i, t_i, out=f1i)
    np.add(f0i, t_i, out=f0i)
    f1r[...] = new1r
    f0r[...] = new0r


@functools.lru_cache(maxsize=8)
def kiss_rfft(n: int) -> KissRfft:
    """The (cached) transform for size n."""
    return KissRfft(n)
