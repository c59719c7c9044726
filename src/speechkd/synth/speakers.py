"""Synthetic speakers: an espeak-ng English voice (accent) x a variant (voice quality) x pitch x rate.

Only voices and variants that exist in the espeak-ng data of the `espeakng-loader` wheel are listed: a
misspelled variant is silently ignored by espeak, so tests/unit/test_synth.py checks that every entry below
changes the waveform. Variants that clip at any volume (paul, iven, john) or are not human-like
(whisper, croak, robosoft, ...) are left out.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .tts import Speaker

ENGLISH_VOICES = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc",
                  "en-gb-x-gbcwmd", "en-gb-x-gbclan")
VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
            "klatt", "klatt2", "klatt3", "Alicia", "Andy", "Annie", "david", "steph", "edward", "linda",
            "michel", "robert", "benjamin", "grandpa", "travis", "max", "adam", "quincy", "belinda",
            "shelby", "anika")
PITCHES = (32, 38, 44, 50, 56, 62, 68)
RATES = (135, 150, 165, 175, 185, 200)


def speaker_id(voice: str, variant: str, pitch: int, rate: int) -> str:
    return f"{voice}_{variant or 'base'}_p{pitch}_r{rate}"


def speaker_pool(n: int, seed: int, voices: Sequence[str] = ENGLISH_VOICES,
                 variants: Sequence[str] = VARIANTS) -> list[Speaker]:
    """`n` distinct speakers, deterministic in `seed`. Every (voice, variant) pair is used once before any
    is reused (with another pitch/rate), so small pools are as varied as possible."""
    pairs = [(v, var) for v in voices for var in variants]
    prosody = [(p, r) for p in PITCHES for r in RATES]
    if n > len(pairs) * len(prosody):
        raise ValueError(f"at most {len(pairs) * len(prosody)} distinct speakers, asked for {n}")
    rng = np.random.default_rng([seed, 0x5B])
    out: list[Speaker] = []
    used: set[str] = set()
    while len(out) < n:
        for i in rng.permutation(len(pairs)):
            voice, variant = pairs[i]
            for j in rng.permutation(len(prosody)):  # first unused pitch/rate for this pair
                pitch, rate = prosody[j]
                sid = speaker_id(voice, variant, pitch, rate)
                if sid not in used:
                    used.add(sid)
                    out.append(Speaker(sid, voice, variant, pitch, rate))
                    break
            if len(out) == n:
                break
    return out


def speaker_splits(n_train: int, n_valid: int, n_test: int,
                   seed: int) -> tuple[list[Speaker], list[Speaker], list[Speaker]]:
    """A fresh pool of n_train + n_valid + n_test speakers, split into disjoint train/valid/test lists."""
    return split_speakers(speaker_pool(n_train + n_valid + n_test, seed), n_train, n_valid, n_test)


def split_speakers(speakers: Sequence[Speaker], n_train: int, n_valid: int,
                   n_test: int) -> tuple[list[Speaker], list[Speaker], list[Speaker]]:
    """Disjoint train/valid/test speaker lists, in pool order (the pool is already shuffled)."""
    total = n_train + n_valid + n_test
    if min(n_train, n_valid, n_test) < 0 or total > len(speakers):
        raise ValueError(f"cannot split {len(speakers)} speakers into {n_train}/{n_valid}/{n_test}")
    ids = [s.id for s in speakers]
    if len(set(ids)) != len(ids):
        raise ValueError("speaker ids are not distinct")
    speakers = list(speakers)
    return (speakers[:n_train], speakers[n_train:n_train + n_valid],
            speakers[n_train + n_valid:total])
