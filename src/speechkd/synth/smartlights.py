"""Snips SmartLights-like corpus: 6 intents with slot variety (rooms, colours, brightness levels spoken as
number words), split by speaker (Snips has no fixed split; we fix one so runs are comparable), in a
close-field and a simulated far-field version (farfield.py) of the same utterances.

Label mapping into the seed's three-slot SLU CSV: action = the Snips intent name, object = "none",
location = "none"; the intent dict lines are "SwitchLightOn none none", ... in SMARTLIGHTS_INTENTS order
(alphabetical). Slot values stay in the transcript only.

Output: <out>/smartlights/close/{train,valid,test}.csv + intent_dict + wavs/..., and
<out>/smartlights/far/ with the same manifests (same rows, same relative paths) over far-field wavs.
"""
from __future__ import annotations

import multiprocessing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import option
from ..data.audio import read_audio, write_audio
from . import slu_corpus
from .farfield import FarFieldParams, make_far_field
from ..train.reproducibility import derive_seed
from .speakers import speaker_splits

SMARTLIGHTS_INTENTS: tuple[tuple[str, str, str], ...] = tuple(
    (name, "none", "none") for name in ("DecreaseBrightness", "IncreaseBrightness", "SetLightBrightness",
                                        "SetLightColor", "SwitchLightOff", "SwitchLightOn"))

ROOMS = ("living room", "kitchen", "bedroom", "bathroom", "dining room", "hallway", "garage", "basement",
         "office", "attic", "guest room", "kids room", "laundry room", "sitting room", "study", "nursery",
         "master bedroom", "toilet", "lounge", "entrance hall")
COLOURS = ("red", "blue", "green", "yellow", "orange", "purple", "pink", "white", "warm white",
           "cool white", "turquoise", "violet", "gold", "magenta", "cyan", "lavender", "amber", "teal")

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
    """0..100 as English words."""
    if n == 100:
        return "one hundred"
    if n < 20:
        return _ONES[n]
    return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])


# {R} = room phrase ("in the kitchen"), {C} = colour, {N} = brightness. "{R}" may be empty.
_TEMPLATES = {
    "DecreaseBrightness": ["dim the lights{R}", "lower the brightness{R}", "turn down the lights{R}",
                           "decrease the lighting{R}", "make it darker{R}", "reduce the brightness{R}",
                           "the lights are too bright{R}", "could you dim the lights{R} a bit",
                           "less light{R} please"],
    "IncreaseBrightness": ["brighten the lights{R}", "raise the brightness{R}", "turn up the lights{R}",
                           "increase the lighting{R}", "make it brighter{R}", "boost the brightness{R}",
                           "the lights are too dim{R}", "could you brighten the lights{R} a bit",
                           "more light{R} please"],
    "SetLightBrightness": ["set the brightness to {N}{R}", "set the lights to {N}{R}",
                           "change the brightness{R} to {N}", "put the lights at {N}{R}",
                           "I want the lights at {N}{R}", "brightness {N}{R}", "adjust the lights{R} to {N}"],
    "SetLightColor": ["set the lights to {C}{R}", "change the lights{R} to {C}", "make the lights {C}{R}",
                      "turn the lights {C}{R}", "I want {C} light{R}", "switch the lights{R} to {C}",
                      "can I have {C} lights{R}", "{C} lights{R} please"],
    "SwitchLightOff": ["turn off the lights{R}", "switch off the light{R}", "lights off{R}",
                       "turn the lights off{R}", "shut the lights{R}", "kill the lights{R}",
                       "switch the lights off{R}", "no more light{R}"],
    "SwitchLightOn": ["turn on the lights{R}", "switch on the light{R}", "lights on{R}",
                      "turn the lights on{R}", "I need some light{R}", "put the lights on{R}",
                      "switch the lights on{R}", "light up{R}"],
}
_POLITE = ("please ", "could you ", "can you ", "hey, ", "")


def _brightness(rng: np.random.Generator) -> str:
    kind = rng.integers(3)
    if kind == 0:
        return number_words(int(rng.integers(1, 21)) * 5) + " percent"
    if kind == 1:
        return "level " + number_words(int(rng.integers(1, 11)))
    return number_words(int(rng.integers(1, 101)))


def smartlights_phrase(intent: tuple[str, str, str], rng: np.random.Generator) -> str:
    templates = _TEMPLATES[intent[0]]
    text = templates[int(rng.integers(len(templates)))]
    room = "" if rng.random() < 0.35 else f" in the {ROOMS[int(rng.integers(len(ROOMS)))]}"
    text = text.replace("{R}", room).replace("{C}", COLOURS[int(rng.integers(len(COLOURS)))])
    text = text.replace("{N}", _brightness(rng))
    if rng.random() < 0.3 and not text.startswith(("I ", "the ", "could ", "can ")):
        text = _POLITE[int(rng.integers(len(_POLITE)))] + text
    return text[0].upper() + text[1:]


def _write_far_field(job: tuple[Path, Path, int, FarFieldParams]) -> None:
    close_path, far_path, seed, params = job
    write_audio(far_path, make_far_field(read_audio(close_path), seed, params))


@dataclass
class SmartLightsSpec:
    train_speakers: int = option(24, "speakers in the training split")
    valid_speakers: int = option(3, "speakers in the validation split")
    test_speakers: int = option(3, "speakers in the test split")
    utts_per_speaker: int = option(30, "utterances each speaker says")
    rt60_min: float = option(0.4, "far field: smallest reverberation time RT60 (s)")
    rt60_max: float = option(0.9, "far field: largest RT60 (s)")
    snr_min_db: float = option(0.0, "far field: lowest signal-to-noise ratio (dB)")
    snr_max_db: float = option(10.0, "far field: highest signal-to-noise ratio (dB)")
    distance_m: float = option(2.0, "far field: source-microphone distance (m)")


def build_smartlights(spec: SmartLightsSpec, out_dir: Path, seed: int, workers: int) -> dict:
    """out_dir/close and out_dir/far; returns flat stats (smartlights_<split>_utts, smartlights_hours)."""
    close, far = out_dir / "close", out_dir / "far"
    by_split = dict(zip(slu_corpus.SPLITS, speaker_splits(
        spec.train_speakers, spec.valid_speakers, spec.test_speakers, derive_seed(seed, "smartlights-speakers"))))
    params = FarFieldParams((spec.rt60_min, spec.rt60_max), (spec.snr_min_db, spec.snr_max_db),
                            distance_m=spec.distance_m)
    utts, lengths = {}, {}
    for split, speakers in by_split.items():
        utts[split] = slu_corpus.plan_split(split, speakers, spec.utts_per_speaker, SMARTLIGHTS_INTENTS,
                                            smartlights_phrase, derive_seed(seed, "smartlights"))
        lengths[split] = slu_corpus.synthesize_split(close, utts[split], workers, f"smartlights {split}")
        far_jobs = [(close / u.rel_path, far / u.rel_path, derive_seed(u.seed, "far"), params)
                    for u in utts[split]]
        with multiprocessing.get_context("fork").Pool(max(1, workers)) as pool:
            pool.map(_write_far_field, far_jobs, chunksize=16)  # each file depends only on its own seed
        for root in (close, far):
            slu_corpus.write_split(root, split, utts[split])
    for root in (close, far):
        slu_corpus.write_intents(root, SMARTLIGHTS_INTENTS)
    return slu_corpus.split_stats("smartlights", utts, lengths)
