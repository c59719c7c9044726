"""Read sentences with transcripts (stands in for LibriSpeech: AM pre-training, PT-KD, ASR pre-training).

A small English grammar (read_lexicon.py: ~1,000 lemmas, ~2,000 word types with inflections) produces
varied declaratives, questions, subordinate clauses and fronted time phrases; a share of the sentences are
command phrasings from the FSC-like and smart-lights grammars, so the read speech covers the command
vocabulary. Transcripts are sentence-cased like FSC's (capital first letter, names, "I"), with commas and
apostrophes only: a CTC character model lowercases them.

Output (<out>/read): {train,dev,test}.tsv as fairseq S2T TSV (id, audio, n_frames, tgt_text, speaker,
src_text; audio relative to the TSV's directory; n_frames = 10 ms fbank frames = 1 + (samples - 400) // 160),
wavs/<split>/<speaker>/*.wav, and text_only.txt: a much larger text-only sample (one sentence a line) of
the same grammars for pre-training a small text RoBERTa.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import option
from ..fileio import write_text_atomic
from ..data.manifests import write_tsv
from . import read_lexicon as L
from .fsc import FSC_INTENTS, fsc_phrase
from ..features.fbank import num_frames
from ..train.reproducibility import derive_seed
from .smartlights import SMARTLIGHTS_INTENTS, number_words, smartlights_phrase
from .speakers import speaker_splits
from .tts import TtsJob, synthesize_to_wavs

COLUMNS = ("id", "audio", "n_frames", "tgt_text", "speaker", "src_text")
SPLITS = ("train", "dev", "test")  # as the S2T corpora (LibriSpeech dev-clean, MuST-C dev)
_COUNTABLE = L.PEOPLE + L.ANIMALS + L.THINGS
_OBJECTS = _COUNTABLE + L.ABSTRACT


def _pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def noun_phrase(rng: np.random.Generator, names: bool = True, nouns=_COUNTABLE) -> tuple[str, bool]:
    """(text, is_plural)."""
    if names and rng.random() < 0.2:
        return _pick(rng, L.NAMES), False
    noun, is_plural = _pick(rng, nouns), rng.random() < 0.3
    adjs = [_pick(rng, L.ADJECTIVES) for _ in range(int(rng.choice(3, p=(0.45, 0.45, 0.1))))]
    head = " ".join([*adjs, L.plural(noun) if is_plural else noun]).replace("_", " ")
    if is_plural:
        det = _pick(rng, ("the", "some", "these", "those", "my", "their", "many", "a few",
                          number_words(int(rng.integers(2, 13)))))
        return f"{det} {head}", True
    det = _pick(rng, ("the", "the", "a", "this", "that", "my", "his", "her", "our", "their", "every"))
    return f"{_article(head) if det == 'a' else det} {head}", False


def place_phrase(rng: np.random.Generator) -> str:
    adj = _pick(rng, L.ADJECTIVES) + " " if rng.random() < 0.3 else ""
    return f"{_pick(rng, L.PREPOSITIONS)} the {adj}{_pick(rng, L.PLACES)}"


def _verb(rng: np.random.Generator, entry: str, plural: bool, tense: str) -> str:
    base, third, past, ing = L.verb_forms(entry)
    if tense == "present":
        return base if plural else third
    if tense == "past":
        return past
    if tense == "future":
        return "will " + base
    return ("were " if plural else "was ") + ing


def _tail(rng: np.random.Generator) -> str:
    r = rng.random()
    if r < 0.3:
        return " " + place_phrase(rng)
    if r < 0.45:
        return " " + _pick(rng, L.ADVERBS)
    if r < 0.55:
        return " " + _pick(rng, L.TIMES)
    return ""


def clause(rng: np.random.Generator) -> str:
    subj, plural = noun_phrase(rng)
    tense = str(rng.choice(("present", "past", "future", "progressive"), p=(0.3, 0.45, 0.1, 0.15)))
    kind = rng.random()
    if kind < 0.5:
        if rng.random() < 0.15:  # mass nouns: no plural, no "a"
            obj = f"{_pick(rng, ('the', 'some', 'no', 'more', 'enough', 'their'))} {_pick(rng, L.MASS)}"
        else:
            obj, _ = noun_phrase(rng, nouns=_OBJECTS)
        return f"{subj} {_verb(rng, _pick(rng, L.TRANSITIVE), plural, tense)} {obj}{_tail(rng)}"
    if kind < 0.75:
        return f"{subj} {_verb(rng, _pick(rng, L.INTRANSITIVE), plural, tense)}{_tail(rng)}"
    be = ("are" if plural else "is") if tense == "present" else ("were" if plural else "was")
    adj = _pick(rng, L.ADJECTIVES) + (f" and {_pick(rng, L.ADJECTIVES)}" if rng.random() < 0.3 else "")
    return f"{subj} {be} {'very ' if rng.random() < 0.15 else ''}{adj}"


def read_sentence(rng: np.random.Generator) -> str:
    r = rng.random()
    if r < 0.45:
        text = clause(rng)
    elif r < 0.55:
        text = f"{_pick(rng, L.TIMES)}, {clause(rng)}"
    elif r < 0.65:
        text = f"{_pick(rng, L.NAMES)} {_pick(rng, ('said', 'thought', 'knew', 'hoped'))} that {clause(rng)}"
    elif r < 0.8:
        conj = _pick(rng, ("and", "but", "because", "when", "so", "while"))
        text = f"{clause(rng)} {conj} {clause(rng)}"
    elif r < 0.9:
        subj, plural = noun_phrase(rng)
        aux = _pick(rng, ("did", "will", "can", "should"))
        obj, _ = noun_phrase(rng, names=False)
        text = f"{aux} {subj} {L.verb_forms(_pick(rng, L.TRANSITIVE))[0]} {obj}"
    else:
        thing, plural = noun_phrase(rng, names=False)
        text = f"there {'were' if plural else 'was'} {thing} {place_phrase(rng)}"
    return text[0].upper() + text[1:]


def command_sentence(rng: np.random.Generator) -> str:
    if rng.random() < 0.7:
        return fsc_phrase(_pick(rng, FSC_INTENTS), rng)
    return smartlights_phrase(_pick(rng, SMARTLIGHTS_INTENTS), rng)


def sentence(rng: np.random.Generator, command_fraction: float) -> str:
    return command_sentence(rng) if rng.random() < command_fraction else read_sentence(rng)


@dataclass
class ReadSpec:
    train_speakers: int = option(40, "speakers in the training split")
    dev_speakers: int = option(4, "speakers in the dev split")
    test_speakers: int = option(4, "speakers in the test split")
    utts_per_speaker: int = option(52, "sentences each speaker reads")
    command_fraction: float = option(0.1, "share of read sentences that are command phrasings")
    text_only_lines: int = option(50000, "lines of text_only.txt (text pre-training sample)")
    text_only_command_fraction: float = option(0.3, "share of command phrasings in text_only.txt")


def build_read(spec: ReadSpec, out_dir: Path, seed: int, workers: int) -> dict:
    splits = speaker_splits(spec.train_speakers, spec.dev_speakers, spec.test_speakers,
                            derive_seed(seed, "read-speakers"))
    stats: dict = {}
    samples = 0
    for split, speakers in zip(SPLITS, splits):
        rng = np.random.default_rng(derive_seed(seed, "read", split))
        rows, jobs = [], []
        for k in range(len(speakers) * spec.utts_per_speaker):
            spk = speakers[k // spec.utts_per_speaker]
            uid = f"read-{split}-{k:05d}"
            text = sentence(rng, spec.command_fraction)
            rel = f"wavs/{split}/{spk.id}/{uid}.wav"
            rows.append({"id": uid, "audio": rel, "tgt_text": text, "speaker": spk.id, "src_text": text})
            jobs.append(TtsJob(text, spk, derive_seed(seed, "read-utt", split, k), str(out_dir / rel)))
        lengths = synthesize_to_wavs(jobs, workers=workers, desc=f"read {split}")
        for row, n in zip(rows, lengths):
            row["n_frames"] = num_frames(n)
        write_tsv(out_dir / f"{split}.tsv", rows, COLUMNS)
        samples += sum(lengths)
        stats[f"read_{split}_utts"] = len(rows)
        stats[f"read_{split}_speakers"] = len(speakers)
    rng = np.random.default_rng(derive_seed(seed, "read-text-only"))
    lines = [sentence(rng, spec.text_only_command_fraction) for _ in range(spec.text_only_lines)]
    write_text_atomic(out_dir / "text_only.txt", "".join(line + "\n" for line in lines))
    stats["read_hours"] = round(samples / 16000 / 3600, 4)
    stats["read_text_only_lines"] = len(lines)
    stats["read_text_only_word_types"] = len({w for line in lines for w in line.lower().replace(",", "").split()})
    return stats
