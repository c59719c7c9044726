"""The interface every sequence-to-sequence (ST / ASR / NMT) model implements, so that beam search, the
trainer tasks and the KD criterions never look inside a model.

It is the batch-first subset of fairseq's FairseqEncoderDecoderModel that those callers use
(fairseq/models/fairseq_model.py, fairseq/sequence_generator.py EnsembleModel):

- `encode(src, src_lengths) -> EncoderOut`: `out` (B, T, C), `padding_mask` (B, T) True at pads, or None when
  no position is padded (fairseq returns an empty list then).
- `decode(prev_output_tokens, enc, cache=None) -> logits (B, U, V)`; with a cache (`new_cache()`) only the last
  position is computed, (B, 1, V), and the cache advances one step (fairseq's incremental_state).
- `forward(src, src_lengths, prev_output_tokens)` = decode(prev, encode(src, src_lengths)).
- `reorder_encoder_out(enc, order)` selects rows (beam search), `cache.reorder(order, encoder_order=None)`
  selects decoder rows; states derived from the encoder output follow encoder_order, the order the caller applied
  to the encoder output (None: the encoder rows did not change).
- `encoder_shared_across_beams`: True when `decode` accepts k·B decoder rows (sentence-major) for an encoder
  output of B rows; beam search then never copies the encoder output per beam.
- `get_normalized_probs(logits)`: log-softmax in float32 (fairseq utils.log_softmax(x.float())).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class EncoderOut:
    """Encoder states, batch-first: out (B, T, C); padding_mask (B, T) bool, True at padded frames, or None;
    ctc_logits (B, T, V) from a CTC head when the encoder has one (training only: index_select drops them)."""

    out: Tensor
    padding_mask: Tensor | None = None
    ctc_logits: Tensor | None = None

    def index_select(self, order: Tensor) -> "EncoderOut":
        mask = None if self.padding_mask is None else self.padding_mask.index_select(0, order)
        return EncoderOut(self.out.index_select(0, order), mask)

    @property
    def lengths(self) -> Tensor:
        """(B,) number of valid positions per row."""
        if self.padding_mask is None:
            return torch.full((self.out.size(0),), self.out.size(1), dtype=torch.long, device=self.out.device)
        return (~self.padding_mask).sum(dim=1)


class IncrementalCache(Protocol):
    def reorder(self, order: Tensor, encoder_order: Tensor | None = None) -> None: ...


def lengths_to_padding_mask(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """fairseq data_utils.lengths_to_padding_mask: (B, T) True at positions >= length. `max_len` widens the mask
    beyond the longest length (inputs padded further than their longest row)."""
    width = int(lengths.max()) if max_len is None else max_len
    return torch.arange(width, device=lengths.device).unsqueeze(0) >= lengths.unsqueeze(1)


def log_softmax_fp32(logits: Tensor) -> Tensor:
    """fairseq get_normalized_probs(log_probs=True): log_softmax computed in float32 whatever the logits' dtype."""
    return F.log_softmax(logits.float(), dim=-1)


class Seq2SeqModel(nn.Module):
    """Base class: subclasses implement encode, decode, new_cache and set max_target_positions."""

    max_target_positions: int = 1024
    encoder_shared_across_beams: bool = False

    def encode(self, src: Tensor, src_lengths: Tensor | None) -> EncoderOut:
        raise NotImplementedError

    def decode(self, prev_output_tokens: Tensor, enc: EncoderOut, cache: IncrementalCache | None = None) -> Tensor:
        raise NotImplementedError

    def new_cache(self) -> IncrementalCache:
        raise NotImplementedError

    def forward(self, src: Tensor, src_lengths: Tensor | None, prev_output_tokens: Tensor,
                return_encoder_out: bool = False) -> Tensor | tuple[Tensor, EncoderOut]:
        """Logits; with return_encoder_out also the EncoderOut, so that a loss on it (the CTC head's) goes through
        this one forward, as DDP requires."""
        enc = self.encode(src, src_lengths)
        logits = self.decode(prev_output_tokens, enc)
        return (logits, enc) if return_encoder_out else logits

    def reorder_encoder_out(self, enc: EncoderOut, order: Tensor) -> EncoderOut:
        return enc.index_select(order)

    @staticmethod
    def get_normalized_probs(logits: Tensor, log_probs: bool = True) -> Tensor:
        lprobs = log_softmax_fp32(logits)
        return lprobs if log_probs else lprobs.exp()

    def max_decoder_positions(self) -> int:
        """fairseq max_decoder_positions(): the longest prefix the decoder accepts."""
        return self.max_target_positions

    def set_num_updates(self, num_updates: int) -> None:
        """Called by the trainer after every update (fairseq set_num_updates); models that care override it."""


def fairseq_embedding(num_embeddings: int, embedding_dim: int, padding_idx: int) -> nn.Embedding:
    """fairseq models/transformer Embedding(): N(0, dim^-0.5) init with the padding row zeroed."""
    emb = nn.Embedding(num_embeddings, embedding_dim, padding_idx=padding_idx)
    nn.init.normal_(emb.weight, mean=0.0, std=embedding_dim ** -0.5)
    nn.init.constant_(emb.weight[padding_idx], 0.0)
    return emb


def arch_default(args: dict, name: str, value):
    """fairseq arch functions' `args.x = getattr(args, "x", default)`, with None counting as unset (new-style
    checkpoint configs store unset fields as None)."""
    if args.get(name) is None:
        args[name] = value
    return args[name]
