"""Masked-LM objective for our RoBERTa pre-training (text RoBERTa, VQ-BERT) and the MLM term of PT-KD.

Masking produces (source, target) per sequence, fairseq's format: `target` holds the original token at every
selected position and `padding_idx` elsewhere, so batches pad both with `padding_idx` and the loss needs no
separate index list.
- `mask_tokens`: fairseq 0.12 MaskTokensDataset (data/mask_tokens_dataset.py, no whole-word masking):
  int(mask_prob * len / span + U(0,1)) starts drawn without replacement from all positions, each selecting
  `mask_multiple_length` tokens (cut at the end); of the selected tokens leave_unmasked_prob stay as they are,
  random_token_prob become a token drawn uniformly from the non-special symbols, the rest become <mask>.
  Text RoBERTa: mask_prob 0.15, span 1 (80/10/10). VQ-BERT (vq_roberta.args): mask_prob 0.5, span 10.
- `span_mask_for_mlm`: the SLU PT-KD loader (loader/masked_data_loader.py -> utility/Masking.span_masking,
  seqfreq 0.025, span 20), via data.masking.span_mask_tokens: every selected token becomes <mask>.
- `masked_lm_loss`: fairseq criterions/masked_lm.py: LM head only on target != pad positions, cross-entropy
  summed; returned with the number of masked tokens (the trainer divides by it: mean over masked tokens).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..data.masking import span_mask_tokens
from .roberta import RobertaModel

TEXT_ROBERTA_MASKING = {"mask_prob": 0.15, "leave_unmasked_prob": 0.1, "random_token_prob": 0.1,
                        "mask_multiple_length": 1}
VQ_BERT_MASKING = {"mask_prob": 0.5, "leave_unmasked_prob": 0.1, "random_token_prob": 0.1,
                   "mask_multiple_length": 10}
PT_KD_SPAN_MASKING = {"seqfreq": 0.025, "span": 20}


def mask_tokens(tokens: Tensor | Sequence[int], mask_idx: int, vocab_size: int, rng: np.random.Generator,
                mask_prob: float = 0.15, leave_unmasked_prob: float = 0.1, random_token_prob: float = 0.1,
                mask_multiple_length: int = 1, num_special: int = 4, padding_idx: int = 1) -> tuple[Tensor, Tensor]:
    """One unpadded sequence -> (source, target) as fairseq's MaskTokensDataset (see module docstring).
    Random replacements are uniform over ids [num_special, vocab_size) (fairseq: weights 0 for specials)."""
    if not 0.0 < mask_prob < 1.0 or leave_unmasked_prob + random_token_prob > 1.0 or mask_multiple_length < 1:
        raise ValueError("mask_prob must be in (0, 1), leave_unmasked_prob + random_token_prob <= 1, span >= 1")
    item = torch.as_tensor(tokens, dtype=torch.long)
    sz = item.numel()
    mask = np.zeros(sz, dtype=bool)
    num_mask = int(mask_prob * sz / float(mask_multiple_length) + rng.random())  # probabilistic rounding
    starts = rng.choice(sz, num_mask, replace=False)
    idx = (starts[:, None] + np.arange(mask_multiple_length)[None, :]).reshape(-1)
    mask[idx[idx < sz]] = True
    target = torch.full_like(item, padding_idx)
    selected = torch.from_numpy(mask)
    target[selected] = item[selected]

    rand_mask = None
    rand_or_unmask_prob = leave_unmasked_prob + random_token_prob
    if rand_or_unmask_prob > 0.0:
        rand_or_unmask = mask & (rng.random(sz) < rand_or_unmask_prob)
        if random_token_prob == 0.0:
            unmask = rand_or_unmask
        elif leave_unmasked_prob == 0.0:
            unmask, rand_mask = np.zeros_like(mask), rand_or_unmask
        else:
            decision = rng.random(sz) < leave_unmasked_prob / rand_or_unmask_prob
            unmask, rand_mask = rand_or_unmask & decision, rand_or_unmask & ~decision
        mask = mask ^ unmask
    source = item.clone()
    source[torch.from_numpy(mask)] = mask_idx
    if rand_mask is not None and rand_mask.any():
        source[torch.from_numpy(rand_mask)] = torch.from_numpy(
            rng.integers(num_special, vocab_size, size=int(rand_mask.sum()))).long()
    return source, target


def span_mask_for_mlm(tokens: Tensor | Sequence[int], mask_idx: int, rng: np.random.Generator,
                      seqfreq: float = 0.025, span: int = 20, padding_idx: int = 1,
                      dynamic: bool = False) -> tuple[Tensor, Tensor]:
    """The PT-KD loader's span masking as (source, target): target = original token at masked positions."""
    item = torch.as_tensor(tokens, dtype=torch.long)
    source, positions = span_mask_tokens(item, seqfreq, span, mask_idx, rng, dynamic=dynamic)
    target = torch.full_like(item, padding_idx)
    target[positions] = item[positions]
    return source, target


def masked_lm_loss(model: RobertaModel, source: Tensor | None, target: Tensor, padding_idx: int = 1,
                   features: Tensor | None = None) -> tuple[Tensor, int]:
    """(summed cross-entropy over positions where target != padding_idx, their number). Pass `features`
    (the encoder output for `source`) when they are already computed, e.g. by PT-KD for its <s> vector."""
    if features is None:
        if source is None:
            raise ValueError("masked_lm_loss needs source tokens or their features")
        features = model.extract_features(source)
    masked = target.ne(padding_idx)
    n = int(masked.sum())
    if n == 0:  # keep every LM-head parameter in the graph (DDP expects gradients for all of them)
        return model.lm_logits(features[:, :1]).sum() * 0.0, 0
    logits = model.lm_logits(features, masked)
    return F.cross_entropy(logits.float(), target[masked], reduction="sum"), n
