"""Character labels for CTC: the authors' `manifest/labels.json` (clovaai/textual-kd-slu), 29 symbols:
"_" (the CTC blank, index 0), "'", "A".."Z", " ".

Encoding follows `loader/asr_data_loader.py` parse_transcript: every character is looked up in the label map and
characters without a label are dropped (its `filter(None, ...)` also drops index 0, so a literal "_" never becomes
a target). We upper-case first, since the labels are upper-case (LibriSpeech transcripts already are).
"""
from __future__ import annotations

import string
from typing import Iterable, Sequence

import torch

BLANK = "_"
LABELS: tuple[str, ...] = (BLANK, "'", *string.ascii_uppercase, " ")


class CharTokenizer:
    def __init__(self, labels: Sequence[str] = LABELS):
        labels = tuple(labels)
        if len(set(labels)) != len(labels) or any(len(c) != 1 for c in labels):
            raise ValueError("labels must be distinct single characters")
        self.labels = labels
        self.index = {c: i for i, c in enumerate(labels)}
        self.blank = 0

    def __len__(self) -> int:
        return len(self.labels)

    def encode(self, text: str) -> torch.Tensor:
        """Text -> label ids (LongTensor); upper-cased, unknown characters and the blank symbol dropped."""
        ids = [self.index[c] for c in text.upper() if c in self.index]
        return torch.tensor([i for i in ids if i != self.blank], dtype=torch.long)

    def decode(self, ids: Iterable[int] | torch.Tensor) -> str:
        """Label ids -> text (blank ids skipped; no CTC collapsing, see speechkd.decode.ctc for that)."""
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        return "".join(self.labels[i] for i in ids if i != self.blank)
