"""Pip-only TTS: libespeak-ng 1.52 from the `espeakng-loader` wheel, driven through ctypes.

Determinism. espeak keeps internal state between utterances (its flutter/phase counters are not reset by
espeak_ng_SetRandSeed, nor by espeak_Terminate + espeak_Initialize), so an utterance's samples depend on
what the same process synthesised before it. We therefore never synthesise in the calling process: jobs
are cut into FIXED chunks of CHUNK_SIZE (independent of the worker count) and every chunk runs in a fresh
forked process (Pool(maxtasksperchild=1)) whose espeak has never spoken. Within a chunk the order is fixed,
so the bytes written are identical for any `workers` and across runs. `synthesize` (one utterance) runs in
a fresh child too, so it equals the first utterance of a chunk.

Signal chain per utterance (all randomness from `seed`): small per-utterance prosody jitter around the
speaker's rate/pitch (people never say two sentences alike), espeak at volume 50 (the default 100 clips for
some voices), 22050 -> 16000 Hz with a polyphase filter, peak normalisation to a level drawn in
[-9, -3] dBFS, then a deterministic Gaussian dither at -70 dBFS: espeak writes exact-zero silence, and a
log-mel of exact zeros is -inf, so the wav files themselves carry a tiny noise floor.
"""
from __future__ import annotations

import ctypes
import multiprocessing
import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy.signal import resample_poly

SAMPLE_RATE = 16000
ESPEAK_RATE = 22050
CHUNK_SIZE = 48  # jobs per fresh process; changing it changes the audio bytes
DITHER_STD = 10 ** (-70 / 20)

# speak_lib.h constants
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4


@dataclass(frozen=True)
class Speaker:
    id: str
    voice: str          # an espeak-ng voice, e.g. "en-us", "en-gb-scotland"
    variant: str = ""   # an espeak-ng variant, e.g. "m3", "f2" ("" = the voice's own)
    pitch: int = 50     # espeak pitch 0..99
    rate: int = 175     # words per minute

    @property
    def voice_name(self) -> str:
        return f"{self.voice}+{self.variant}" if self.variant else self.voice


@dataclass(frozen=True)
class TtsJob:
    text: str
    speaker: Speaker
    seed: int
    path: str  # wav to write (16 kHz mono, 16-bit)


# ---------------------------------------------------------------------------- in a worker process only

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class _Espeak:
    """The library in this process. Created once per fresh worker (see the module docstring)."""

    def __init__(self) -> None:
        import espeakng_loader
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0,
                                     espeakng_loader.get_data_path().encode(), 0)
        if rate != ESPEAK_RATE:
            raise RuntimeError(f"espeak_Initialize returned {rate}, expected sample rate {ESPEAK_RATE}")
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)  # keep a reference: ctypes does not
        lib.espeak_SetSynthCallback(self._callback)
        self.lib = lib

    def _collect(self, wav, n, _events) -> int:
        if n > 0 and wav:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0  # 0 = continue

    def speak(self, text: str, voice_name: str, rate: int, pitch: int, pitch_range: int,
              seed: int) -> np.ndarray:
        """int16 samples at 22050 Hz."""
        if self.lib.espeak_SetVoiceByName(voice_name.encode()) != 0:
            raise ValueError(f"espeak-ng has no voice {voice_name!r}")
        for param, value in ((_RATE, rate), (_PITCH, pitch), (_RANGE, pitch_range), (_VOLUME, 50)):
            self.lib.espeak_SetParameter(param, value, 0)
        self.lib.espeak_ng_SetRandSeed(seed & 0x7FFFFFFF)
        self._chunks = []
        data = text.encode("utf-8")
        err = self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _ENDPAUSE,
                                    None, None)
        self.lib.espeak_Synchronize()
        if err != 0:
            raise RuntimeError(f"espeak_Synth failed with code {err} on {text!r}")
        return np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)


_ENGINE: _Espeak | None = None
_ENGINE_PID: int | None = None


def _engine() -> _Espeak:
    global _ENGINE, _ENGINE_PID
    if _ENGINE_PID != os.getpid():
        if _ENGINE is not None:  # inherited through fork from a process that had spoken: state is dirty
            raise RuntimeError("espeak was used in a parent process; synthesis must start from a fresh process")
        _ENGINE, _ENGINE_PID = _Espeak(), os.getpid()
    return _ENGINE


def _render(text: str, speaker: Speaker, seed: int) -> np.ndarray:
    if not text.strip():
        raise ValueError("cannot synthesise empty text")
    rng = np.random.default_rng([seed, 0x7575])
    rate = int(round(speaker.rate * rng.uniform(0.94, 1.06)))
    pitch = int(np.clip(speaker.pitch + rng.integers(-4, 5), 0, 99))
    pitch_range = int(rng.integers(35, 76))
    pcm = _engine().speak(text, speaker.voice_name, rate, pitch, pitch_range, seed)
    if pcm.size == 0:
        raise RuntimeError(f"espeak produced no audio for {text!r} ({speaker.voice_name})")
    wave = resample_poly(pcm.astype(np.float64) / 32768.0, 320, 441)
    peak = float(np.max(np.abs(wave)))
    if peak > 0:
        wave *= 10 ** (rng.uniform(-9.0, -3.0) / 20) / peak
    wave += rng.normal(0.0, DITHER_STD, wave.shape)
    return wave.astype(np.float32)


def _synth_one(args: tuple[str, Speaker, int]) -> np.ndarray:
    return _render(*args)


def _synth_chunk(jobs: list[TtsJob]) -> list[int]:
    from ..data.audio import write_audio
    lengths = []
    for job in jobs:
        wave = _render(job.text, job.speaker, job.seed)
        write_audio(job.path, wave, SAMPLE_RATE)
        lengths.append(int(wave.shape[0]))
    return lengths


# ------------------------------------------------------------------------------------------ public

def _pool(workers: int):
    # fork: cheap, and this process never initialises espeak, so every child starts clean
    return multiprocessing.get_context("fork").Pool(processes=workers, maxtasksperchild=1)


def synthesize(text: str, speaker: Speaker, seed: int) -> np.ndarray:
    """One utterance as float32 mono 16 kHz (synthesised in a fresh child process)."""
    with _pool(1) as pool:
        return pool.apply(_synth_one, ((text, speaker, seed),))


def synthesize_to_wavs(jobs: Sequence[TtsJob], workers: int = 1, desc: str = "") -> list[int]:
    """Write every job's wav; returns the number of samples per job, in job order."""
    from tqdm import tqdm
    jobs = list(jobs)
    if not jobs:
        return []
    for job in jobs:
        os.makedirs(os.path.dirname(os.path.abspath(job.path)), exist_ok=True)
    chunks = [jobs[i:i + CHUNK_SIZE] for i in range(0, len(jobs), CHUNK_SIZE)]
    lengths: list[int] = []
    with _pool(max(1, min(workers, len(chunks)))) as pool, \
            tqdm(total=len(jobs), desc=desc or "tts", unit="utt", leave=False) as bar:
        for chunk_lengths in pool.imap(_synth_chunk, chunks):
            lengths.extend(chunk_lengths)
            bar.update(len(chunk_lengths))
    return lengths
