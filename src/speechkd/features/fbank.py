"""80-dim log-mel filterbank features, Kaldi-compatible, computed with kaldi-native-fbank.

Settings are Kaldi's (and torchaudio.compliance.kaldi.fbank's) defaults, the ones fairseq's S2T recipes use:
25 ms povey window, 10 ms shift, snip_edges (frames only where the whole window fits), DC offset removed,
pre-emphasis 0.97, FFT size 512, power spectrum, Kaldi mel banks (mel = 1127 ln(1 + f/700), 20 Hz to Nyquist),
natural log floored at float32 epsilon (so exact-zero silence gives log(eps) ~ -15.94, never -inf).
Dither is 0 so that features are deterministic.

Scale convention: our waves are float in [-1, 1] (as read_audio returns them), while Kaldi expects 16-bit integer
scale. Like fairseq's extract_fbank_features (`waveform * 2**15`), we multiply by 32768 before extraction, so
features equal fairseq's / torchaudio-kaldi features numerically. Integer arrays (int16 PCM) are used as they are.
"""
from __future__ import annotations

import functools

import kaldi_native_fbank as knf
import numpy as np

INT16_SCALE = 32768.0  # 2**15, fairseq's "Kaldi compliance: 16-bit signed integers"
FRAME_LENGTH_MS = 25.0
FRAME_SHIFT_MS = 10.0


@functools.lru_cache(maxsize=8)
def _options(sample_rate: int, num_mel_bins: int) -> knf.FbankOptions:
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = float(sample_rate)
    opts.frame_opts.frame_length_ms = FRAME_LENGTH_MS
    opts.frame_opts.frame_shift_ms = FRAME_SHIFT_MS
    opts.frame_opts.dither = 0.0
    opts.frame_opts.snip_edges = True
    opts.frame_opts.remove_dc_offset = True
    opts.frame_opts.preemph_coeff = 0.97
    opts.frame_opts.window_type = "povey"
    opts.mel_opts.num_bins = num_mel_bins
    opts.mel_opts.low_freq = 20.0
    opts.mel_opts.high_freq = 0.0  # 0 = Nyquist
    opts.use_energy = False
    opts.use_log_fbank = True
    opts.use_power = True
    return opts


def num_frames(n_samples: int, sample_rate: int = 16000) -> int:
    """Frames fbank() returns for `n_samples` samples (snip_edges: 1 + (n - window) // shift, 0 if too short)."""
    window = int(sample_rate * FRAME_LENGTH_MS / 1000)
    shift = int(sample_rate * FRAME_SHIFT_MS / 1000)
    return 0 if n_samples < window else 1 + (n_samples - window) // shift


def fbank(wave: np.ndarray, sample_rate: int = 16000, num_mel_bins: int = 80) -> np.ndarray:
    """Log-mel filterbank of a mono wave -> float32 array (num_frames(len(wave)), num_mel_bins).

    `wave`: float samples in [-1, 1] (scaled by 2**15 here), or an integer PCM array (used as is).
    """
    wave = np.asarray(wave)
    if wave.ndim != 1:
        raise ValueError(f"fbank expects a 1-D mono wave, got shape {wave.shape}")
    if np.issubdtype(wave.dtype, np.integer):
        samples = wave.astype(np.float32)
    else:
        samples = (wave * INT16_SCALE).astype(np.float32, copy=False)
    samples = np.ascontiguousarray(samples)
    computer = knf.OnlineFbank(_options(sample_rate, num_mel_bins))
    # A memoryview crosses into the C++ side much faster than a numpy array (no per-element numpy scalars).
    computer.accept_waveform(float(sample_rate), memoryview(samples))
    computer.input_finished()
    n = computer.num_frames_ready
    out = np.empty((n, num_mel_bins), dtype=np.float32)
    for i in range(n):
        out[i] = computer.get_frame(i)  # the returned buffer belongs to the extractor: copy it out
    return out
