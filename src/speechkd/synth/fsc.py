"""FSC-like command corpus: Fluent Speech Commands' exact label space (31 action/object/location intents)
with our own phrasings, split by speaker as FSC is (train/valid/test speakers disjoint, every intent in
every split).

Phrasings: per intent, several direct commands ("turn on the lights in the kitchen", "kitchen lights on")
wrapped in optional politeness ("could you ...", "... please"), plus indirect remarks ("it's too loud" =
decrease volume, "my feet are cold" = bring socks, "it's freezing in the bedroom" = increase heat bedroom)
and a synonym ("bathroom" for washroom). A text model learns these easily; a small acoustic model has to
hear the difference between "the lights" and "the lights in the washroom".

Output (corpus root <out>/fsc): {train,valid,test}.csv in the seed's format (index,path,speaker,action,
object,location,transcript; no header; paths relative to the root), intent_dict (31 lines, the order of
FSC_INTENTS below = class index), wavs/<split>/<speaker>/*.wav.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import option
from . import slu_corpus

LOCATIONS = ("bedroom", "kitchen", "washroom")
LANGUAGES = ("Chinese", "English", "German", "Korean")

# class index order of intent_dict (sorted by action, object, location)
FSC_INTENTS: tuple[tuple[str, str, str], ...] = (
    ("activate", "lamp", "none"),
    *(("activate", "lights", loc) for loc in ("bedroom", "kitchen", "none", "washroom")),
    ("activate", "music", "none"),
    *(("bring", obj, "none") for obj in ("juice", "newspaper", "shoes", "socks")),
    *(("change language", obj, "none") for obj in (*LANGUAGES, "none")),
    ("deactivate", "lamp", "none"),
    *(("deactivate", "lights", loc) for loc in ("bedroom", "kitchen", "none", "washroom")),
    ("deactivate", "music", "none"),
    *(("decrease", "heat", loc) for loc in ("bedroom", "kitchen", "none", "washroom")),
    ("decrease", "volume", "none"),
    *(("increase", "heat", loc) for loc in ("bedroom", "kitchen", "none", "washroom")),
    ("increase", "volume", "none"),
)

# (commands, remarks) per (action, object) and located-ness. {L} = a location, {X} = a language.
_LOCATED = {
    ("activate", "lights"): (
        ["turn on the lights in the {L}", "turn the lights on in the {L}", "switch on the {L} lights",
         "switch the {L} lights on", "{L} lights on", "lights on in the {L}", "turn on the {L} lights",
         "put the lights on in the {L}", "light up the {L}"],
        ["it's too dark in the {L}", "I can't see anything in the {L}", "the {L} is too dark"]),
    ("deactivate", "lights"): (
        ["turn off the lights in the {L}", "turn the lights off in the {L}", "switch off the {L} lights",
         "switch the {L} lights off", "{L} lights off", "lights off in the {L}", "turn off the {L} lights",
         "kill the lights in the {L}", "deactivate the {L} lights"],
        ["it's too bright in the {L}", "the {L} lights are still on", "nobody is in the {L} anymore"]),
    ("increase", "heat"): (
        ["turn up the heat in the {L}", "turn the heat up in the {L}", "increase the temperature in the {L}",
         "heat up the {L}", "{L} heat up", "make the {L} warmer", "raise the temperature in the {L}",
         "turn up the heating in the {L}", "warm up the {L}"],
        ["it's too cold in the {L}", "it's freezing in the {L}", "the {L} is cold"]),
    ("decrease", "heat"): (
        ["turn down the heat in the {L}", "turn the heat down in the {L}", "decrease the temperature in the {L}",
         "cool down the {L}", "{L} heat down", "make the {L} cooler", "lower the temperature in the {L}",
         "turn down the heating in the {L}"],
        ["it's too hot in the {L}", "it's boiling in the {L}", "the {L} is too warm"]),
}

_UNLOCATED = {
    ("activate", "lights"): (
        ["turn on the lights", "turn the lights on", "switch on the lights", "switch the lights on",
         "lights on", "put the lights on", "activate the lights", "turn the light on"],
        ["it's too dark in here", "I can't see anything", "it's so dark"]),
    ("deactivate", "lights"): (
        ["turn off the lights", "turn the lights off", "switch off the lights", "switch the lights off",
         "lights off", "kill the lights", "deactivate the lights", "cut the lights"],
        ["it's too bright in here", "the lights are still on"]),
    ("increase", "heat"): (
        ["turn up the heat", "turn the heat up", "increase the temperature", "heat up", "make it warmer",
         "raise the temperature", "turn up the heating", "more heat"],
        ["it's too cold", "I'm freezing", "it's cold in here"]),
    ("decrease", "heat"): (
        ["turn down the heat", "turn the heat down", "decrease the temperature", "cool it down",
         "make it cooler", "lower the temperature", "turn down the heating", "less heat"],
        ["it's too hot", "I'm sweating", "it's too warm in here"]),
    ("activate", "lamp"): (
        ["turn on the lamp", "turn the lamp on", "switch on the lamp", "switch the lamp on", "lamp on",
         "activate the lamp", "put the lamp on"],
        ["I need the lamp on", "I want to read by the lamp"]),
    ("deactivate", "lamp"): (
        ["turn off the lamp", "turn the lamp off", "switch off the lamp", "switch the lamp off", "lamp off",
         "deactivate the lamp", "shut off the lamp"],
        ["I don't need the lamp anymore", "the lamp is still on"]),
    ("activate", "music"): (
        ["play music", "play some music", "put on some music", "turn on the music", "start the music",
         "music on", "resume the music", "play a song"],
        ["I'd like some music", "let's have some music"]),
    ("deactivate", "music"): (
        ["stop the music", "pause the music", "turn off the music", "music off", "stop playing",
         "switch the music off", "kill the music"],
        ["I've had enough music", "I don't want to hear music now"]),
    ("increase", "volume"): (
        ["turn up the volume", "turn the volume up", "increase the volume", "volume up", "louder",
         "make it louder", "turn it up", "raise the volume"],
        ["I can't hear that", "it's too quiet", "I couldn't hear anything"]),
    ("decrease", "volume"): (
        ["turn down the volume", "turn the volume down", "decrease the volume", "volume down", "quieter",
         "make it quieter", "turn it down", "lower the volume"],
        ["it's too loud", "that's way too loud", "the music is too loud"]),
    ("bring", "juice"): (
        ["bring me some juice", "bring me juice", "get me some juice", "fetch me a juice", "bring juice",
         "get me a glass of juice"],
        ["I want some juice", "I'm thirsty", "I'd like a glass of juice"]),
    ("bring", "newspaper"): (
        ["bring me the newspaper", "get me the newspaper", "fetch the newspaper", "bring the paper",
         "get me the paper", "bring newspaper"],
        ["I want to read the newspaper", "where is the newspaper", "I need the newspaper"]),
    ("bring", "shoes"): (
        ["bring me my shoes", "get me my shoes", "fetch my shoes", "bring my shoes", "bring shoes"],
        ["I need my shoes", "where are my shoes", "I can't find my shoes"]),
    ("bring", "socks"): (
        ["bring me my socks", "get me my socks", "fetch my socks", "bring my socks", "bring socks"],
        ["I need my socks", "my feet are cold", "where are my socks"]),
    ("change language", "none"): (
        ["change language", "change the language", "switch the language", "switch language",
         "set a different language", "change the system language", "use another language"],
        ["I don't understand this language", "I want a different language"]),
    ("change language", "{X}"): (
        ["change the language to {X}", "switch to {X}", "switch the language to {X}",
         "set the language to {X}", "use {X}", "language {X}", "{X} please"],
        ["I only speak {X}", "I'd prefer {X}", "can we use {X}"]),
}

_PREFIXES = ("please ", "could you ", "can you ", "hey, ", "okay, ", "would you ", "I want you to ")
_SUFFIXES = (" please", " now", " for me", " right now")
_REMARK_PREFIXES = ("hey, ", "oh, ", "well, ", "hmm, ")
# politeness only before a verb: "could you switch on the lamp", never "could you lamp on"
_VERBS = {"turn", "switch", "put", "light", "kill", "cut", "deactivate", "activate", "increase", "decrease",
          "heat", "make", "raise", "warm", "cool", "lower", "play", "start", "resume", "stop", "pause",
          "bring", "get", "fetch", "change", "set", "use", "shut"}


def _wrap(core: str, remark: bool, rng: np.random.Generator) -> str:
    if remark:
        text = (_REMARK_PREFIXES[rng.integers(len(_REMARK_PREFIXES))] if rng.random() < 0.25 else "") + core
    else:
        text = core
        if rng.random() < 0.4 and core.split()[0] in _VERBS:
            text = _PREFIXES[rng.integers(len(_PREFIXES))] + text
        if rng.random() < 0.3 and not text.endswith("please"):
            text += _SUFFIXES[rng.integers(len(_SUFFIXES))]
    return text[0].upper() + text[1:]


def fsc_phrase(intent: tuple[str, str, str], rng: np.random.Generator) -> str:
    """One transcript for `intent`, drawn from the grammar."""
    action, obj, location = intent
    if location != "none":
        commands, remarks = _LOCATED[(action, obj)]
    elif action == "change language" and obj != "none":
        commands, remarks = _UNLOCATED[(action, "{X}")]
    else:
        commands, remarks = _UNLOCATED[(action, obj)]
    k = int(rng.integers(len(commands) + len(remarks)))
    remark = k >= len(commands)
    core = (remarks[k - len(commands)] if remark else commands[k])
    place = "bathroom" if location == "washroom" and rng.random() < 0.25 else location
    return _wrap(core.replace("{L}", place).replace("{X}", obj), remark, rng)


@dataclass
class FscSpec:
    train_speakers: int = option(30, "speakers in the training split")
    valid_speakers: int = option(5, "speakers in the validation split")
    test_speakers: int = option(5, "speakers in the test split")
    utts_per_speaker: int = option(75, "utterances each speaker says")


def build_fsc(spec: FscSpec, out_dir: Path, seed: int, workers: int) -> dict:
    """Synthesise the corpus into out_dir; returns flat stats (fsc_<split>_utts, fsc_hours, ...)."""
    return slu_corpus.build_corpus("fsc", FSC_INTENTS, fsc_phrase, spec, out_dir, seed, workers)
