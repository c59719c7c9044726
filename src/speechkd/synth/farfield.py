"""Simulated far-field copy of close-field audio (stands in for Snips' replay recorded at 2 m by a
microphone array).

Per utterance (all drawn from its own seed): a room impulse response = direct path at the source distance
+ ~12 early reflections + an exponentially decaying diffuse tail (RT60 drawn in a range, the tail darker
than the direct path, its level set by a drawn direct-to-reverberant ratio); a loudspeaker/microphone band
limit (100 Hz - 6 kHz); additive noise, a random mix of pink noise and babble-like noise (speech-shaped
noise from several "talkers" with syllable-rate amplitude modulation) at an SNR drawn in a range,
measured against the active speech frames. The output has the same length as the input, so manifests and
frame counts carry over unchanged.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, fftconvolve, lfilter, sosfilt

SPEED_OF_SOUND = 343.0


@dataclass(frozen=True)
class FarFieldParams:
    rt60: tuple[float, float] = (0.4, 0.9)      # seconds
    snr_db: tuple[float, float] = (0.0, 10.0)
    drr_db: tuple[float, float] = (-3.0, 4.0)   # direct-to-reverberant energy ratio
    distance_m: float = 2.0


def room_impulse_response(rng: np.random.Generator, rt60: float, drr_db: float, distance_m: float,
                          sample_rate: int) -> np.ndarray:
    direct = int(round(distance_m / SPEED_OF_SOUND * sample_rate))
    length = direct + int(rt60 * sample_rate)
    rir = np.zeros(length)
    rir[direct] = 1.0
    t = np.arange(length - direct) / sample_rate
    envelope = np.exp(-6.9078 * t / rt60)  # amplitude -60 dB after rt60 seconds
    # diffuse tail: decaying Gaussian noise, low-passed (walls absorb high frequencies), from 2.5 ms on
    tail = lfilter([0.55], [1.0, -0.45], rng.normal(size=t.shape)) * envelope
    tail[: int(0.0025 * sample_rate)] = 0.0
    tail *= np.sqrt(10 ** (-drr_db / 10) / max(np.sum(tail ** 2), 1e-12))
    rir[direct:] += tail
    # early reflections: discrete echoes within 40 ms, following the tail's decay
    for _ in range(12):
        delay = int(rng.uniform(0.001, 0.040) * sample_rate)
        gain = rng.uniform(0.2, 0.6) * np.exp(-6.9078 * delay / sample_rate / rt60) * rng.choice((-1.0, 1.0))
        rir[direct + delay] += gain
    return rir


def _pink_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    spectrum = np.fft.rfft(rng.normal(size=n))
    f = np.arange(spectrum.shape[0], dtype=float)
    f[0] = 1.0
    return np.fft.irfft(spectrum / np.sqrt(f), n)


@functools.lru_cache(maxsize=None)
def _bandpass(order: int, low: float, high: float, sample_rate: int) -> np.ndarray:
    return butter(order, (low, high), btype="bandpass", fs=sample_rate, output="sos")


def _babble_noise(rng: np.random.Generator, n: int, sample_rate: int) -> np.ndarray:
    speech_band = _bandpass(4, 150, 3500, sample_rate)
    out = np.zeros(n)
    hop = sample_rate // 100
    for _ in range(int(rng.integers(4, 8))):
        carrier = sosfilt(speech_band, rng.normal(size=n))
        # syllable-rate envelope: random levels every 10 ms, smoothed to ~4 Hz
        steps = rng.random(n // hop + 2) ** 2
        smooth = lfilter([0.15], [1.0, -0.85], steps)
        envelope = np.repeat(smooth, hop)[:n]
        out += carrier * envelope
    return out


def _active_power(x: np.ndarray, frame: int = 400) -> float:
    frames = x[: len(x) // frame * frame].reshape(-1, frame) if len(x) >= frame else x[None, :]
    power = np.mean(frames ** 2, axis=1)
    active = power[power > 0.01 * power.max()] if power.max() > 0 else power
    return float(np.mean(active)) if active.size else 0.0


def make_far_field(wave: np.ndarray, seed: int, params: FarFieldParams = FarFieldParams(),
                   sample_rate: int = 16000) -> np.ndarray:
    """float32 far-field version of `wave`, same length, peak in [-9, -3] dBFS."""
    rng = np.random.default_rng([seed, 0xFA4])
    x = np.asarray(wave, dtype=np.float64)
    rir = room_impulse_response(rng, rng.uniform(*params.rt60), rng.uniform(*params.drr_db),
                                params.distance_m, sample_rate)
    y = fftconvolve(x, rir)[: len(x)]
    y = sosfilt(_bandpass(2, 100, 6000, sample_rate), y)
    babble, pink = _babble_noise(rng, len(x), sample_rate), _pink_noise(rng, len(x))
    mix = rng.uniform(0.0, 1.0)  # share of babble in the noise power
    noise = (np.sqrt(mix / max(np.mean(babble ** 2), 1e-12)) * babble
             + np.sqrt((1 - mix) / max(np.mean(pink ** 2), 1e-12)) * pink)
    snr = rng.uniform(*params.snr_db)
    noise *= np.sqrt(_active_power(y) / 10 ** (snr / 10) / max(np.mean(noise ** 2), 1e-12))
    out = y + noise
    out *= 10 ** (rng.uniform(-9.0, -3.0) / 20) / max(float(np.max(np.abs(out))), 1e-9)
    return out.astype(np.float32)
