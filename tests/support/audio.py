"""Tiny test audio: a sine tone, and a 16-bit wav of one."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SR = 16000


def tone(seconds: float = 0.5, sr: int = SR, channels: int = 1, freq: float = 220.0) -> np.ndarray:
    """float32 sine at amplitude 0.3; (samples, channels) when channels > 1."""
    t = np.arange(int(seconds * sr)) / sr
    wave = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([wave] * channels, axis=1) if channels > 1 else wave


def write_wav(path: Path, seconds: float = 0.3, freq: float = 440.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, tone(seconds, freq=freq), SR, subtype="PCM_16")
