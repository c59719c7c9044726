"""Shared by the SLU-side corpora (FSC-like, SNIPS-like, smart-lights): plan utterances per speaker-disjoint split,
synthesise them, write the seed's SLU CSV manifests and the intent dict.

Manifest paths are relative to the manifest's directory (the corpus root), as in FSC.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..train.reproducibility import derive_seed
from ..data.manifests import SluExample, write_intent_dict, write_slu_csv
from .speakers import Speaker, speaker_splits
from .tts import SAMPLE_RATE, TtsJob, synthesize_to_wavs

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class SluUtt:
    split: str
    index: int
    speaker: Speaker
    intent: tuple[str, str, str]  # action, object, location
    transcript: str
    seed: int

    @property
    def rel_path(self) -> str:
        return f"wavs/{self.split}/{self.speaker.id}/{self.split}-{self.index:05d}.wav"


def plan_split(split: str, speakers: Sequence[Speaker], utts_per_speaker: int,
               intents: Sequence[tuple[str, str, str]],
               phrase: Callable[[tuple[str, str, str], np.random.Generator], str],
               seed: int) -> list[SluUtt]:
    """Speaker k says utterances [k*U, (k+1)*U). Intents follow shuffled rounds over the whole label set,
    so a split with at least len(intents) utterances contains every intent."""
    rng = np.random.default_rng(derive_seed(seed, "plan", split))
    total = len(speakers) * utts_per_speaker
    order: list[int] = []
    while len(order) < total:
        order.extend(rng.permutation(len(intents)).tolist())
    out = []
    for k in range(total):
        intent = intents[order[k]]
        out.append(SluUtt(split, k, speakers[k // utts_per_speaker], intent, phrase(intent, rng),
                          derive_seed(seed, "utt", split, k)))
    return out


def synthesize_split(root: Path, utts: Sequence[SluUtt], workers: int, desc: str) -> list[int]:
    jobs = [TtsJob(u.transcript, u.speaker, u.seed, str(root / u.rel_path)) for u in utts]
    return synthesize_to_wavs(jobs, workers=workers, desc=desc)


def write_split(root: Path, split: str, utts: Sequence[SluUtt]) -> None:
    write_slu_csv(root / f"{split}.csv", [
        SluExample(str(u.index), u.rel_path, u.speaker.id, *u.intent, u.transcript) for u in utts])


def write_intents(root: Path, intents: Sequence[tuple[str, str, str]]) -> None:
    write_intent_dict(root / "intent_dict", [" ".join(i) for i in intents])


def split_stats(prefix: str, utts_by_split: dict[str, Sequence[SluUtt]],
                lengths_by_split: dict[str, Sequence[int]]) -> dict:
    """Flat metrics: <prefix>_<split>_utts, <prefix>_<split>_speakers, <prefix>_hours."""
    stats: dict = {}
    samples = 0
    for split, utts in utts_by_split.items():
        stats[f"{prefix}_{split}_utts"] = len(utts)
        stats[f"{prefix}_{split}_speakers"] = len({u.speaker.id for u in utts})
        samples += sum(lengths_by_split[split])
    stats[f"{prefix}_hours"] = round(samples / SAMPLE_RATE / 3600, 4)
    return stats


def build_corpus(name: str, intents: Sequence[tuple[str, str, str]], phrase: Callable, spec: Any, out_dir: Path,
                 seed: int, workers: int) -> dict:
    """Synthesise a speaker-disjoint command corpus into out_dir (spec: train/valid/test_speakers and
    utts_per_speaker; phrase(intent, rng) -> transcript); returns flat stats (<name>_<split>_utts, <name>_hours)."""
    by_split = dict(zip(SPLITS, speaker_splits(
        spec.train_speakers, spec.valid_speakers, spec.test_speakers, derive_seed(seed, f"{name}-speakers"))))
    utts, lengths = {}, {}
    for split, speakers in by_split.items():
        utts[split] = plan_split(split, speakers, spec.utts_per_speaker, intents, phrase, derive_seed(seed, name))
        lengths[split] = synthesize_split(out_dir, utts[split], workers, f"{name} {split}")
        write_split(out_dir, split, utts[split])
    write_intents(out_dir, intents)
    return split_stats(name, utts, lengths)
