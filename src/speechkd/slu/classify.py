"""Intent classification of new input with a saved model: what `speechkd slu-infer` and speechkd.api share.

- SpeechIntentClassifier: a slu-finetune run's bundle (bundle.py): wave -> units -> `<s>` + units -> SpeechModel
  -> soft-max, as the authors' inference.py, one utterance at a time (no padding effects).
- TextIntentClassifier: a slu-text-finetune run's teacher (teacher.py): transcript -> `<s> words` (the fine-tuning
  input, text.encode_for_finetuning) -> TextClassifier -> soft-max.
An intent is its intent_dict line (e.g. "change language German none"): the authors split it with split(' ') into
three fields, which breaks on FSC's two-word action "change language"; we keep the line whole.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..data.audio import input_wave, read_audio
from ..errors import InputError
from .bundle import Bundle, load_bundle
from .corpus import encode_units
from ..data.manifests import read_intent_dict
from ..runs import require_file
from .teacher import load_teacher
from .text import encode_for_finetuning, load_text_encoder

SAMPLE_RATE = 16000


def check_length(name: Any, wave: np.ndarray, source: Any, max_positions: int) -> None:
    """Refuse an utterance whose `<s>` + units exceed VQ-BERT's learned positions, with its duration and the
    limit, or that is too short for a single unit, before any model work."""
    positions = 1 + source.num_units(len(wave))
    if positions == 1:
        raise InputError(f"{name}: {len(wave) / SAMPLE_RATE:.1f} s of audio is too short for one unit "
                         f"({len(wave)} samples)")
    if positions > max_positions:
        seconds = len(wave) / SAMPLE_RATE
        limit = seconds * (max_positions - 1) / (positions - 1)
        raise InputError(f"{name}: {seconds:.1f} s of audio is {positions - 1} units (+ <s>), the model takes at "
                         f"most {max_positions} positions (about {limit:.1f} s); split the recording into "
                         "shorter utterances")


def _as_list(items: Any, single: tuple) -> list:
    return [items] if isinstance(items, single) else list(items)


class SpeechIntentClassifier:
    """A loaded slu-finetune model; `classify` may be called many times."""

    def __init__(self, bundle: Bundle, resample: bool = False):
        self.bundle, self.resample = bundle, resample
        self.intents = bundle.intents

    @classmethod
    def load(cls, directory: Path, device: str = "cpu", resample: bool = False) -> "SpeechIntentClassifier":
        return cls(load_bundle(directory, device), resample)

    def waves(self, waves_or_paths: Any, sample_rate: int = SAMPLE_RATE) -> list[np.ndarray]:
        """16 kHz waves of audio files (read_audio's checks; other rates only with `resample`) and/or 1-D float
        arrays at `sample_rate`, every one checked against the model's length limits before any is classified."""
        waves = []
        for k, item in enumerate(_as_list(waves_or_paths, (str, os.PathLike, np.ndarray))):
            if isinstance(item, (str, os.PathLike)):
                name, wave = item, read_audio(item, SAMPLE_RATE, resample=self.resample)
            else:
                name, wave = f"waves[{k}]", input_wave(item, sample_rate, SAMPLE_RATE, name=f"waves[{k}]")
            check_length(name, wave, self.bundle.units, self.bundle.model.vq_bert.max_positions)
            waves.append(wave)
        return waves

    def classify(self, waves_or_paths: Any, sample_rate: int = SAMPLE_RATE) -> list[tuple[str, float]]:
        """(intent, probability) per input, in input order."""
        return [(self.intents[k], p) for k, p in self.classify_waves(self.waves(waves_or_paths, sample_rate))]

    @torch.no_grad()
    def classify_waves(self, waves: Sequence[np.ndarray]) -> list[tuple[int, float]]:
        """(class index, probability) per checked 16 kHz wave."""
        model, dictionary = self.bundle.model, self.bundle.dictionary
        device = next(model.parameters()).device
        out = []
        for wave in waves:
            units = encode_units(dictionary, self.bundle.units.tokens(wave), append_eos=False)
            logits = model(torch.tensor([len(units)], device=device), units[None].to(device))[0]
            probs = torch.softmax(logits.float(), dim=-1)
            out.append((int(probs.argmax()), float(probs.max())))
        return out


class TextIntentClassifier:
    """A loaded slu-text-finetune teacher; `classify_text` may be called many times."""

    def __init__(self, model: torch.nn.Module, encoder: Any, intents: list[str]):
        self.model, self.encoder, self.intents = model, encoder, intents

    @classmethod
    def load(cls, directory: Path, device: str = "cpu") -> "TextIntentClassifier":
        if not (directory / "teacher.json").is_file():
            raise InputError(f"{directory / 'teacher.json'}: not found; is {directory} a finished slu-text-finetune "
                             "run?")
        model, encoder, intents = load_teacher(directory)
        return cls(model.to(device), encoder, intents)

    @classmethod
    def load_hf(cls, directory: Path, device: str = "cpu") -> "TextIntentClassifier":
        """The teacher as `speechkd export` writes it for Hugging Face (RobertaForTokenClassification + dict.txt,
        intent_dict, and GPT-2's encoder.json / vocab.bpe when its text is GPT-2 BPE)."""
        from ..interop.hf_roberta import load_hf_text_classifier
        model, _ = load_hf_text_classifier(directory)
        dictionary = require_file(directory / "dict.txt", "checkpoint_dir", "dictionary")
        if (directory / "encoder.json").is_file():
            encoder = load_text_encoder("gpt2", dictionary, directory / "encoder.json",
                                        require_file(directory / "vocab.bpe", "checkpoint_dir", "GPT-2 merges"))
        else:
            encoder = load_text_encoder("words", dictionary)
        intents = read_intent_dict(require_file(directory / "intent_dict", "checkpoint_dir", "intent dict"))
        return cls(model.to(device), encoder, intents)

    @torch.no_grad()
    def classify_text(self, texts: Any) -> list[tuple[str, float]]:
        """(intent, probability) per transcript, one at a time, in input order."""
        device = next(self.model.parameters()).device
        out = []
        for text in _as_list(texts, (str,)):
            tokens = encode_for_finetuning(self.encoder, text)
            probs = torch.softmax(self.model(tokens[None].to(device))[0][0].float(), dim=-1)
            out.append((self.intents[int(probs.argmax())], float(probs.max())))
        return out
