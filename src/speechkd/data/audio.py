"""Audio I/O through soundfile. Every failure is an InputError naming the file and what was expected."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from ..errors import InputError
from ..fileio import atomic_path


def read_audio(path: str | Path, sample_rate: int = 16000, resample: bool = False) -> np.ndarray:
    """Mono float32 samples in [-1, 1]. Multi-channel files are rejected (say which channel you want). Another
    sample rate is refused unless `resample` (then polyphase resampling, scipy's resample_poly: what a corpus that
    ships another rate needs, e.g. Common Voice's 48 kHz mp3 clips)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: audio file not found")
    try:
        wave, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError) as e:
        hint = " (mp3: convert to wav/flac first, e.g. `ffmpeg -i x.mp3 -ar 16000 -ac 1 x.wav`)" \
            if path.suffix.lower() == ".mp3" else ""
        raise InputError(f"{path}: cannot read audio: {e}{hint}") from None
    if sr != sample_rate and resample and wave.shape[1] == 1 and wave.shape[0]:
        from math import gcd

        from scipy.signal import resample_poly
        g = gcd(sr, sample_rate)
        wave = resample_poly(wave.astype(np.float64), sample_rate // g, sr // g, axis=0).astype(np.float32)
        sr = sample_rate
    if sr != sample_rate:
        raise InputError(f"{path}: sample rate {sr} Hz, expected {sample_rate} Hz "
                         f"(resample, e.g. `ffmpeg -i in -ar {sample_rate} -ac 1 out.wav`)")
    if wave.shape[1] != 1:
        raise InputError(f"{path}: {wave.shape[1]} channels, expected mono")
    if wave.shape[0] == 0:
        raise InputError(f"{path}: empty audio (0 samples)")
    return wave[:, 0]


def write_audio(path: str | Path, wave: np.ndarray, sample_rate: int = 16000) -> None:
    """16-bit PCM WAV, written atomically. `wave` is float in [-1, 1] (clipped)."""
    pcm = np.clip(np.asarray(wave, dtype=np.float64), -1.0, 1.0)
    pcm = np.round(pcm * 32767.0).astype(np.int16)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), pcm, sample_rate, subtype="PCM_16", format="WAV")
