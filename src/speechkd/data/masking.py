"""The SLU paper's data augmentations, as the authors coded them (clovaai/textual-kd-slu).

- `span_mask_tokens`: `utility/Masking.py` span_masking, used on the VQ unit tokens for DA in fine-tuning
  (`loader/data_loader.py`: seqfreq = select_prob / max_span = 0.2 / 5, span 5) and for the MLM of PT-KD
  (`loader/masked_data_loader.py`: seqfreq 0.025, span 20).
- `mask_hidden`: `utility/emb_augment.py` time_masking then channel_masking, applied per sample to the VQ-BERT
  output (T, C) before the DS2 block (time_prob 0.5, time_span 10, channel_prob 0.4, channel_span 5 in
  `configs/finetuning_kd.json`).

Randomness comes from a `numpy.random.Generator` passed in (the authors used the global np.random), so a seeded
run is reproducible. Where the authors' code would crash (more spans requested than start positions exist, which
`np.random.choice(replace=False)` refuses), we take every start position instead.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch


def _span_positions(starts: np.ndarray, spans: Sequence[int] | int) -> np.ndarray:
    spans = np.broadcast_to(np.asarray(spans, dtype=np.int64), starts.shape)
    pos = [np.arange(s, s + n) for s, n in zip(starts.tolist(), spans.tolist())]
    return np.unique(np.concatenate(pos)) if pos else np.zeros(0, dtype=np.int64)


def span_mask_tokens(tokens: torch.Tensor | Sequence[int], seqfreq: float, span: int, mask_idx: int,
                     rng: np.random.Generator, dynamic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Span masking of a token sequence (Masking.span_masking).

    ceil(seqfreq * len) start positions are drawn without replacement from [1, len - span) (position 0, the `<s>`
    token, is never masked, nor are the last `span` tokens); each start masks `span` consecutive tokens (with
    `dynamic`, int(U(1, span)) tokens, i.e. 1..span-1). Returns (masked copy of tokens, sorted unique masked
    positions), both LongTensors.

    The authors' dynamic mode rebinds `span` inside the loop, so each draw's upper bound is the previous draw;
    here every span is drawn from U(1, span) with the configured span (the paper's configs use "static").
    """
    seq = torch.as_tensor(tokens, dtype=torch.long).clone()
    n = seq.numel()
    num = math.ceil(n * seqfreq)
    candidates = np.arange(1, n - span)
    num = min(num, len(candidates))
    if num <= 0:
        return seq, torch.zeros(0, dtype=torch.long)
    starts = rng.choice(candidates, num, replace=False)
    lengths = rng.uniform(1, span, size=num).astype(np.int64) if dynamic else span
    positions = torch.from_numpy(_span_positions(starts, lengths).astype(np.int64))
    seq[positions] = mask_idx
    return seq, positions


def _span_starts(count_expected: float, num_candidates: int, rng: np.random.Generator) -> np.ndarray:
    """int(expected + U(0,1)) starts (stochastic rounding) without replacement from range(num_candidates)."""
    num = int(count_expected + rng.random())
    num = min(num, num_candidates)
    if num <= 0:
        return np.zeros(0, dtype=np.int64)
    return rng.choice(num_candidates, num, replace=False)


def mask_hidden(h: torch.Tensor, time_prob: float, time_span: int, channel_prob: float, channel_span: int,
                rng: np.random.Generator, length: int | None = None, replace: float = 0.0) -> torch.Tensor:
    """Time then channel masking of one sample's hidden states h (T, C) (emb_augment.time_masking/channel_masking).

    Time: int(length * time_prob / time_span + U(0,1)) starts from [0, length - time_span), each zeroing
    `time_span` frames; `length` is the sample's valid length (default T; the authors pass the unpadded length).
    Channel: int(C * channel_prob / channel_span + U(0,1)) starts from [0, C - channel_span), each zeroing
    `channel_span` channels over all frames. Returns a masked copy.
    """
    if h.ndim != 2:
        raise ValueError(f"mask_hidden expects one sample (T, C), got shape {tuple(h.shape)}")
    out = h.clone()
    t_len = h.size(0) if length is None else int(length)
    starts = _span_starts(t_len * time_prob / float(time_span), max(t_len - time_span, 0), rng)
    if starts.size:
        out[torch.from_numpy(_span_positions(starts, time_span))] = replace
    dim = h.size(1)
    starts = _span_starts(dim * channel_prob / float(channel_span), max(dim - channel_span, 0), rng)
    if starts.size:
        out[:, torch.from_numpy(_span_positions(starts, channel_span))] = replace
    return out


def mask_hidden_batch(h: torch.Tensor, lengths: torch.Tensor | Sequence[int], time_prob: float, time_span: int,
                      channel_prob: float, channel_span: int, rng: np.random.Generator) -> torch.Tensor:
    """`mask_hidden` on every sample of (B, T, C), in batch order from one generator (the seed's SpeechModel.forward loops over the batch);
    slu-finetune's +DA keep-mask."""
    return torch.stack([mask_hidden(h[i], time_prob, time_span, channel_prob, channel_span, rng, length=int(n))
                        for i, n in enumerate(torch.as_tensor(lengths).tolist())])
