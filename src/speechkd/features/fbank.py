"""80-dim log-mel filterbank features, Kaldi-compatible, vectorised over frames with numpy.

Settings are Kaldi's (and torchaudio.compliance.kaldi.fbank's) defaults, the ones fairseq's S2T recipes use:
25 ms povey window, 10 ms shift, snip_edges (frames only where the whole window fits), DC offset removed,
pre-emphasis 0.97, FFT size 512, power spectrum, Kaldi mel banks (mel = 1127 ln(1 + f/700), 20 Hz to Nyquist),
natural log floored at float32 epsilon (so exact-zero silence gives log(eps) ~ -15.94, never -inf).
Dither is 0 so that features are deterministic. Other sample rates scale the window, shift and FFT size as Kaldi
does (FFT size = the window rounded up to a power of two, e.g. 256 at 8 kHz).

Scale convention: our waves are float in [-1, 1] (as read_audio returns them), while Kaldi expects 16-bit integer
scale. Like fairseq's extract_fbank_features (`waveform * 2**15`), we multiply by 32768 before extraction, so
features equal fairseq's / torchaudio-kaldi features numerically. Integer arrays (int16 PCM) are used as they are.

Numerics follow kaldi-native-fbank 1.23 (the extractor this project used before, and the tests' reference):
float32 throughout, the same order of operations per frame (sequential DC sum, in-place pre-emphasis), its FFT's
rounding (kiss_rfft.py) and its float32 mel-bank weights, so features agree with it to ~1e-5 even in the
weak bins where float32 round-off dominates. Every step runs on a block of frames at once, frames on the last
axis; a long wave is processed in blocks of CHUNK_FRAMES frames, so memory stays a few MB whatever its length.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .kiss_rfft import KissRfft, kiss_rfft

INT16_SCALE = 32768.0  # 2**15, fairseq's "Kaldi compliance: 16-bit signed integers"
FRAME_LENGTH_MS = 25.0
FRAME_SHIFT_MS = 10.0
PREEMPH_COEFF = np.float32(0.97)
LOW_FREQ_HZ = 20.0
CHUNK_FRAMES = 512  # frames per block: ~3 MB of float32 buffers at 16 kHz, mostly in cache
_F32 = np.float32
_LOG_FLOOR = _F32(np.finfo(np.float32).eps)


@dataclass(frozen=True)
class _Setup:
    """What fbank() needs for one (sample_rate, num_mel_bins), built once."""
    window: int  # samples per frame
    shift: int
    fft: KissRfft
    povey: np.ndarray  # (window, 1) float32
    first_bin: int  # FFT bins [first_bin, first_bin + len(banks)) carry mel weight; the rest are skipped
    banks: np.ndarray  # (bins used, num_mel_bins) float32, mel bank b's triangle in column b


def _frame_sizes(sample_rate: int) -> tuple[int, int]:
    return int(sample_rate * FRAME_LENGTH_MS / 1000), int(sample_rate * FRAME_SHIFT_MS / 1000)


def _mel32(hz: np.ndarray) -> np.ndarray:
    """Kaldi's MelScale in float32 arithmetic, 1127 logf(1 + f / 700). The log is float64 rounded to float32,
    which differs from glibc's logf by one ulp for a few per cent of the values (features move by < 4e-5)."""
    ratio = _F32(1.0) + np.asarray(hz, dtype=_F32) / _F32(700.0)
    return _F32(1127.0) * np.log(ratio.astype(np.float64)).astype(_F32)


def _mel_banks(num_bins: int, n_fft: int, sample_rate: int) -> np.ndarray:
    """(n_fft // 2, num_bins): Kaldi's MelBanks, triangles in the mel domain, zero at and beyond both edges, with
    Kaldi's float32 arithmetic. Kaldi gives the Nyquist bin no weight, so it is left out here."""
    if num_bins < 3:
        raise ValueError(f"fbank: must have at least 3 mel bins, got num_mel_bins={num_bins}")
    nyquist = _F32(0.5) * _F32(sample_rate)
    if nyquist <= LOW_FREQ_HZ:
        raise ValueError(f"fbank: sample rate {sample_rate} Hz has its Nyquist frequency below {LOW_FREQ_HZ} Hz")
    mel_low, mel_high = _mel32(LOW_FREQ_HZ), _mel32(nyquist)
    delta = (mel_high - mel_low) / _F32(num_bins + 1)
    left = mel_low + np.arange(num_bins, dtype=_F32) * delta
    center = mel_low + np.arange(1, num_bins + 1, dtype=_F32) * delta
    right = mel_low + np.arange(2, num_bins + 2, dtype=_F32) * delta
    bin_mel = _mel32((_F32(sample_rate) / _F32(n_fft)) * np.arange(n_fft // 2, dtype=_F32))[:, None]
    rising, falling = (bin_mel - left) / (center - left), (right - bin_mel) / (right - center)
    banks = np.where((bin_mel > left) & (bin_mel < right), np.where(bin_mel <= center, rising, falling), _F32(0))
    if not banks.any(axis=0).all():
        raise ValueError(f"fbank: num_mel_bins={num_bins} is too large for {sample_rate} Hz with FFT size "
                         f"{n_fft}: some mel bins would cover no FFT bin")
    return banks.astype(_F32)


@functools.lru_cache(maxsize=8)
def _setup(sample_rate: int, num_mel_bins: int) -> _Setup:
    window, shift = _frame_sizes(sample_rate)
    if window < 3 or shift < 1:
        raise ValueError(f"fbank: sample rate {sample_rate} Hz gives a {window}-sample window")
    n_fft = 1 << (window - 1).bit_length()
    povey = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(window) / (window - 1))) ** 0.85
    banks = _mel_banks(num_mel_bins, n_fft, sample_rate)
    used = np.flatnonzero(banks.any(axis=1))
    return _Setup(window, shift, kiss_rfft(n_fft), povey.astype(_F32)[:, None], int(used[0]),
                  np.ascontiguousarray(banks[used[0]:used[-1] + 1]))


def num_frames(n_samples: int, sample_rate: int = 16000) -> int:
    """Frames fbank() returns for `n_samples` samples (snip_edges: 1 + (n - window) // shift, 0 if too short)."""
    window, shift = _frame_sizes(sample_rate)
    return 0 if n_samples < window else 1 + (n_samples - window) // shift


def fbank(wave: np.ndarray, sample_rate: int = 16000, num_mel_bins: int = 80) -> np.ndarray:
    """Log-mel filterbank of a mono wave -> float32 array (num_frames(len(wave)), num_mel_bins).

    `wave`: float samples in [-1, 1] (scaled by 2**15 here), or an integer PCM array (used as is).
    """
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise ValueError(f"fbank expects a 1-D mono wave, got shape {wave.shape}")
    setup = _setup(sample_rate, num_mel_bins)
    n = num_frames(len(wave), sample_rate)
    out = np.empty((n, num_mel_bins), dtype=_F32)
    padded = np.zeros((setup.fft.n, min(n, CHUNK_FRAMES)), dtype=_F32)  # rows >= window stay 0 (FFT padding)
    for start in range(0, n, CHUNK_FRAMES):
        stop = min(n, start + CHUNK_FRAMES)
        _log_mel_block(wave, start, stop, setup, padded[:, :stop - start], out[start:stop])
    return out


def _log_mel_block(wave: np.ndarray, start: int, stop: int, s: _Setup, padded: np.ndarray,
                   out: np.ndarray) -> None:
    """Frames [start, stop) of `wave` -> `out`, through `padded` ((n_fft, stop - start), zero past the window).
    Frames are columns, so each step below is a numpy call over all of them."""
    samples = wave[start * s.shift:(stop - 1) * s.shift + s.window]
    if np.issubdtype(samples.dtype, np.integer):
        samples = samples.astype(_F32)
    else:
        samples = (samples * INT16_SCALE).astype(_F32, copy=False)
    frames = padded[:s.window]
    np.copyto(frames, sliding_window_view(samples, s.window)[::s.shift].T)
    frames -= _sequential_sum(frames) / _F32(s.window)  # DC offset
    frames[1:] -= PREEMPH_COEFF * frames[:-1]  # pre-emphasis (right side computed first, from the old values)
    frames[0] -= PREEMPH_COEFF * frames[0]  # Kaldi pre-emphasises the first sample against itself
    frames *= s.povey
    real, imag = s.fft(padded)
    used = slice(s.first_bin, s.first_bin + len(s.banks))
    power = np.square(real[used])
    power += np.square(imag[used])
    np.matmul(power.T, s.banks, out=out)
    np.maximum(out, _LOG_FLOOR, out=out)
    np.log(out, out=out)


def _sequential_sum(frames: np.ndarray) -> np.ndarray:
    """Column sums of (window, frames), adding the samples one by one in order, as Kaldi's DC-offset loop does
    (float32 rounding makes the order visible). numpy reduces a slow axis that way; a single column collapses to
    a fast axis, which numpy sums pairwise, so it goes through cumsum (always sequential) instead."""
    if frames.shape[1] == 1:
        return np.cumsum(frames[:, 0])[-1:]
    return np.add.reduce(frames, axis=0)
