"""wave -> unit tokens, the same way in slu-units and slu-infer.

k-means units: tokenizers/units.py quantises the 80-dim utterance-CMVN fbank frame (10 ms hop). With
`stack_frames` = s > 1 (an embedded-scale option of ours), s consecutive frames are concatenated first (the last
len % s frames dropped), so a unit covers s x 10 ms: every later stage (VQ-BERT, DS2) then runs on s times fewer
positions. The two product-quantisation groups then split the stacked vector in halves (for s = 2: one group per
10 ms frame). vq-wav2vec units always have its 10 ms hop.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..features.fbank import num_frames
from ..tokenizers.units import UnitTokenizer, codes_to_tokens, unit_features

SOURCE_FILE = "units.json"


def stacked_features(wave: np.ndarray, stack: int) -> np.ndarray:
    """(T // stack, 80 * stack) float32: fbank + utterance CMVN frames, `stack` consecutive ones concatenated."""
    feats = unit_features(wave).numpy()
    if stack == 1:
        return feats
    usable = (len(feats) // stack) * stack
    return feats[:usable].reshape(usable // stack, feats.shape[1] * stack)


class UnitSource:
    def __init__(self, kmeans: UnitTokenizer | None = None, stack: int = 1, vq: torch.nn.Module | None = None,
                 device: str = "cpu"):
        if (kmeans is None) == (vq is None):
            raise ValueError("UnitSource needs exactly one of a k-means tokenizer and a vq-wav2vec model")
        self.kmeans, self.stack, self.vq, self.device = kmeans, stack, vq, device

    def tokens(self, wave: np.ndarray) -> str:
        if self.vq is not None:
            return codes_to_tokens(self.vq.encode(torch.from_numpy(wave).to(self.device)).cpu())
        return self.kmeans.tokens(stacked_features(wave, self.stack))

    def num_units(self, n_samples: int) -> int:
        """How many units `tokens` makes of `n_samples` samples, without running it."""
        if self.vq is not None:
            return self.vq.num_frames(n_samples)
        return num_frames(n_samples) // self.stack

    def describe(self, vq_wav2vec_path: str = "") -> dict:
        return {"tokenizer": "kmeans" if self.kmeans is not None else "vq_wav2vec", "stack_frames": self.stack,
                "vq_wav2vec": vq_wav2vec_path}

    @classmethod
    def load(cls, directory: Path, device: str = "cpu") -> "UnitSource":
        """From a directory holding units.json (+ tokenizer.pt for k-means): a slu-units or slu-finetune run."""
        meta_path = directory / SOURCE_FILE
        if not meta_path.is_file():
            raise InputError(f"{meta_path}: not found (how the units of this run were made)")
        meta = json.loads(meta_path.read_text())
        if meta["tokenizer"] == "kmeans":
            return cls(kmeans=UnitTokenizer.load(directory / "tokenizer.pt"), stack=int(meta["stack_frames"]))
        from ..models.vq_wav2vec import load_fairseq_vq_wav2vec
        path = Path(meta["vq_wav2vec"])
        if not path.is_file():
            raise InputError(f"{meta_path}: vq-wav2vec checkpoint {path} not found")
        return cls(vq=load_fairseq_vq_wav2vec(path).to(device), device=device)
