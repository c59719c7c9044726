"""Frozen VQ-BERT features, computed once per (unit sequences, VQ-BERT weights) and shared by runs.

The authors' fine-tuning and AM pre-training run the frozen VQ-BERT under no_grad on every batch. When its
output cannot change during a run (weights frozen, no token masking, eval mode: no dropout) that work is the same
for every epoch and for every run that uses the same checkpoint on the same corpus (e.g. the +PT-KD, +FT-KD and
+AM-PT rows), so it is done once and stored under <runs_dir>/<profile>/slu_feature_cache/<key>.pt; the key hashes
the checkpoint file's bytes, the token ids and the batching-independent settings. Files are written atomically;
a stale or foreign file can only be one with a different key, and is ignored.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import torch

from ..errors import InputError
from ..models.roberta import RobertaModel
from ..train.checkpoint import load_checkpoint, save_checkpoint
from .batching import eval_batches, pad

FORMAT_VERSION = 1


def cache_key(model_digest: str, seqs: Sequence[torch.Tensor]) -> str:
    h = hashlib.sha256(f"v{FORMAT_VERSION}:{model_digest}:{len(seqs)}:".encode())
    for s in seqs:
        h.update(s.to(torch.int64).numpy().tobytes())
        h.update(b"|")
    return h.hexdigest()[:32]


@torch.no_grad()
def compute_features(model: RobertaModel, seqs: Sequence[torch.Tensor], pad_idx: int,
                     batch_size: int = 32) -> list[torch.Tensor]:
    """Eval-mode `extract_features` of every sequence -> list of (len_i, D) float32 tensors (CPU)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out: list[torch.Tensor | None] = [None] * len(seqs)
    try:
        for batch in eval_batches([len(s) for s in seqs], batch_size):
            feats = model.extract_features(pad([seqs[i] for i in batch], pad_idx)[0].to(device)).float().cpu()
            for row, i in enumerate(batch):
                out[i] = feats[row, :len(seqs[i])].clone()
    finally:
        model.train(was_training)
    return out  # type: ignore[return-value]


def cached_features(cache_dir: Path | None, model: RobertaModel, model_digest: str, seqs: Sequence[torch.Tensor],
                    pad_idx: int, batch_size: int = 32) -> list[torch.Tensor]:
    """compute_features, through the cache when cache_dir is set."""
    if cache_dir is None:
        return compute_features(model, seqs, pad_idx, batch_size)
    path = cache_dir / f"{cache_key(model_digest, seqs)}.pt"
    if path.is_file():
        try:
            state = load_checkpoint(path)
            feats, lengths = state["features"], state["lengths"].tolist()
            if lengths == [len(s) for s in seqs] and state.get("version") == FORMAT_VERSION:
                return list(torch.split(feats, lengths))
        except (InputError, KeyError, AttributeError):
            pass  # unreadable: recompute and overwrite
    out = compute_features(model, seqs, pad_idx, batch_size)
    save_checkpoint(path, {"features": torch.cat(out), "lengths": torch.tensor([len(s) for s in seqs]),
                           "version": FORMAT_VERSION})
    return out
