"""fairseq's TransformerModel for text translation (fairseq/models/transformer/, fairseq 0.12), batch-first.

Encoder (TransformerEncoderBase): tokens × sqrt(d) (unless no_scale_embedding) + sinusoidal or learned positions
(padding-aware, so left-padded sources work) -> optional layernorm_embedding -> dropout -> padded positions
zeroed (fairseq 0.12 multiplies by 1 − padding mask) -> layers -> final layer_norm when normalize_before.
Decoder: the shared TransformerDecoder. share_all_embeddings ties encoder input, decoder input and decoder
output embeddings (joined dictionary); share_decoder_input_output_embed ties the decoder's two.
Architectures: `transformer` (base), `transformer_tiny`, `transformer_iwslt_de_en`, `transformer_wmt_en_de`,
`transformer_vaswani_wmt_en_de_big`, `transformer_wmt_en_de_big`; `WMT19_EN_DE_ARGS` holds the arguments that
differ from `transformer_wmt_en_de_big` in FAIR's WMT19 en-de single models (model1.pt, Ng et al. 2019):
FFN 8192 in the encoder, dropout 0.2, joined 42,024-symbol dictionary with all embeddings shared (≈270 M
parameters; ast_paper.md §2.2).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .seq2seq import EncoderOut, Seq2SeqModel, arch_default, fairseq_embedding
from .transformer import (DecoderCache, LearnedPositionalEmbedding, SinusoidalPositionalEmbedding,
                          TransformerDecoder, TransformerEncoderLayer)


@dataclass
class TransformerNMTConfig:
    """Architecture arguments of fairseq's `transformer` model (same names)."""

    src_vocab_size: int
    tgt_vocab_size: int
    pad: int = 1
    encoder_embed_dim: int = 512
    encoder_ffn_embed_dim: int = 2048
    encoder_layers: int = 6
    encoder_attention_heads: int = 8
    encoder_normalize_before: bool = False
    encoder_learned_pos: bool = False
    decoder_embed_dim: int = 512
    decoder_ffn_embed_dim: int = 2048
    decoder_layers: int = 6
    decoder_attention_heads: int = 8
    decoder_normalize_before: bool = False
    decoder_learned_pos: bool = False
    dropout: float = 0.1
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    activation_fn: str = "relu"
    share_all_embeddings: bool = False
    share_decoder_input_output_embed: bool = False
    no_scale_embedding: bool = False
    layernorm_embedding: bool = False
    no_encoder_final_norm: bool = False  # fairseq's state-dict upgrade drops it for encoder version < 2
    no_decoder_final_norm: bool = False
    max_source_positions: int = 1024
    max_target_positions: int = 1024

    @classmethod
    def from_args(cls, args: dict[str, Any], src_vocab_size: int, tgt_vocab_size: int) -> "TransformerNMTConfig":
        known = {f.name for f in fields(cls)} - {"src_vocab_size", "tgt_vocab_size"}
        kwargs = {name: args[name] for name in known if args.get(name) is not None}
        return cls(src_vocab_size=src_vocab_size, tgt_vocab_size=tgt_vocab_size, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- architectures (fairseq/models/transformer/transformer_legacy.py), on a dict ---------------------------------

def base_architecture(a: dict) -> None:
    arch_default(a, "encoder_embed_dim", 512)
    arch_default(a, "encoder_ffn_embed_dim", 2048)
    arch_default(a, "encoder_layers", 6)
    arch_default(a, "encoder_attention_heads", 8)
    arch_default(a, "encoder_normalize_before", False)
    arch_default(a, "encoder_learned_pos", False)
    arch_default(a, "decoder_embed_dim", a["encoder_embed_dim"])
    arch_default(a, "decoder_ffn_embed_dim", a["encoder_ffn_embed_dim"])
    arch_default(a, "decoder_layers", 6)
    arch_default(a, "decoder_attention_heads", 8)
    arch_default(a, "decoder_normalize_before", False)
    arch_default(a, "decoder_learned_pos", False)
    arch_default(a, "attention_dropout", 0.0)
    arch_default(a, "activation_dropout", a.get("relu_dropout") or 0.0)  # --relu-dropout is its old alias
    arch_default(a, "activation_fn", "relu")
    arch_default(a, "dropout", 0.1)
    arch_default(a, "share_decoder_input_output_embed", False)
    arch_default(a, "share_all_embeddings", False)
    arch_default(a, "no_token_positional_embeddings", False)
    arch_default(a, "decoder_output_dim", a["decoder_embed_dim"])
    arch_default(a, "decoder_input_dim", a["decoder_embed_dim"])
    arch_default(a, "no_scale_embedding", False)
    arch_default(a, "layernorm_embedding", False)


def transformer_tiny(a: dict) -> None:
    arch_default(a, "encoder_embed_dim", 64)
    arch_default(a, "encoder_ffn_embed_dim", 64)
    arch_default(a, "encoder_layers", 2)
    arch_default(a, "encoder_attention_heads", 2)
    arch_default(a, "decoder_layers", 2)
    arch_default(a, "decoder_attention_heads", 2)
    base_architecture(a)


def transformer_iwslt_de_en(a: dict) -> None:
    arch_default(a, "encoder_embed_dim", 512)
    arch_default(a, "encoder_ffn_embed_dim", 1024)
    arch_default(a, "encoder_attention_heads", 4)
    arch_default(a, "encoder_layers", 6)
    arch_default(a, "decoder_embed_dim", 512)
    arch_default(a, "decoder_ffn_embed_dim", 1024)
    arch_default(a, "decoder_attention_heads", 4)
    arch_default(a, "decoder_layers", 6)
    base_architecture(a)


def transformer_vaswani_wmt_en_de_big(a: dict) -> None:
    arch_default(a, "encoder_embed_dim", 1024)
    arch_default(a, "encoder_ffn_embed_dim", 4096)
    arch_default(a, "encoder_attention_heads", 16)
    arch_default(a, "encoder_normalize_before", False)
    arch_default(a, "decoder_embed_dim", 1024)
    arch_default(a, "decoder_ffn_embed_dim", 4096)
    arch_default(a, "decoder_attention_heads", 16)
    arch_default(a, "dropout", 0.3)
    base_architecture(a)


def transformer_wmt_en_de_big(a: dict) -> None:
    arch_default(a, "attention_dropout", 0.1)
    transformer_vaswani_wmt_en_de_big(a)


ARCHITECTURES: dict[str, Callable[[dict], None]] = {
    "transformer": base_architecture,
    "transformer_tiny": transformer_tiny,
    "transformer_iwslt_de_en": transformer_iwslt_de_en,
    "transformer_wmt_en_de": base_architecture,
    "transformer_vaswani_wmt_en_de_big": transformer_vaswani_wmt_en_de_big,
    "transformer_wmt_en_de_big": transformer_wmt_en_de_big,
}

# FAIR's WMT19 en-de single model (wmt19.en-de.joined-dict.ensemble/model1.pt): arch transformer_wmt_en_de_big
# with these arguments changed (the HF FSMT port's config: d_model 1024, encoder_ffn_dim 8192, decoder_ffn_dim
# 4096, 16 heads, 6 + 6 layers, vocab 42024 joined).
WMT19_EN_DE_ARGS: dict[str, Any] = {
    "encoder_ffn_embed_dim": 8192,
    "dropout": 0.2,
    "share_all_embeddings": True,
}
WMT19_EN_DE_VOCAB = 42024


def apply_arch(arch: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    """A copy of `args` completed with the defaults of fairseq architecture `arch` (explicit values win)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown transformer architecture {arch!r} (known: {', '.join(ARCHITECTURES)})")
    a = dict(args or {})
    ARCHITECTURES[arch](a)
    return a


# --- modules ------------------------------------------------------------------------------------------------------

def _positions(learned: bool, max_positions: int, dim: int, pad: int) -> nn.Module:
    if not learned:
        return SinusoidalPositionalEmbedding(dim, pad)
    emb = LearnedPositionalEmbedding(max_positions, dim, pad)
    nn.init.normal_(emb.weight, mean=0.0, std=dim ** -0.5)  # fairseq PositionalEmbedding(learned=True)
    nn.init.constant_(emb.weight[pad], 0.0)
    return emb


class TransformerTextEncoder(nn.Module):
    def __init__(self, cfg: TransformerNMTConfig, embed_tokens: nn.Embedding):
        super().__init__()
        dim = embed_tokens.embedding_dim
        self.padding_idx, self.dropout = embed_tokens.padding_idx, cfg.dropout
        self.embed_tokens = embed_tokens
        self.embed_scale = 1.0 if cfg.no_scale_embedding else math.sqrt(dim)
        self.embed_positions = _positions(cfg.encoder_learned_pos, cfg.max_source_positions, dim, self.padding_idx)
        self.layernorm_embedding = nn.LayerNorm(dim) if cfg.layernorm_embedding else None
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(dim, cfg.encoder_attention_heads, cfg.encoder_ffn_embed_dim, cfg.dropout,
                                    cfg.attention_dropout, cfg.activation_dropout, cfg.activation_fn,
                                    cfg.encoder_normalize_before)
            for _ in range(cfg.encoder_layers))
        self.layer_norm = (nn.LayerNorm(dim) if cfg.encoder_normalize_before and not cfg.no_encoder_final_norm
                           else None)

    def forward(self, src_tokens: Tensor, src_lengths: Tensor | None = None) -> EncoderOut:
        padding_mask = src_tokens.eq(self.padding_idx)
        has_pads = bool(padding_mask.any())
        x = self.embed_scale * self.embed_tokens(src_tokens) + self.embed_positions(src_tokens)
        if self.layernorm_embedding is not None:
            x = self.layernorm_embedding(x)
        x = F.dropout(x, self.dropout, self.training)
        key_mask = None
        if has_pads:
            x = x.masked_fill(padding_mask.unsqueeze(-1), 0.0)
            key_mask = padding_mask
        for layer in self.layers:
            x = layer(x, key_mask)
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        return EncoderOut(x, key_mask)


class TransformerNMTModel(Seq2SeqModel):
    encoder_shared_across_beams = True

    def __init__(self, cfg: TransformerNMTConfig):
        super().__init__()
        self.cfg = cfg
        share_io = cfg.share_decoder_input_output_embed
        encoder_embed = fairseq_embedding(cfg.src_vocab_size, cfg.encoder_embed_dim, cfg.pad)
        if cfg.share_all_embeddings:
            if cfg.src_vocab_size != cfg.tgt_vocab_size or cfg.encoder_embed_dim != cfg.decoder_embed_dim:
                raise ValueError("share_all_embeddings needs a joined dictionary and equal encoder/decoder dims")
            decoder_embed, share_io = encoder_embed, True
        else:
            decoder_embed = fairseq_embedding(cfg.tgt_vocab_size, cfg.decoder_embed_dim, cfg.pad)
        self.encoder = TransformerTextEncoder(cfg, encoder_embed)
        self.decoder = TransformerDecoder(
            decoder_embed, cfg.decoder_layers, cfg.decoder_attention_heads, cfg.decoder_ffn_embed_dim, cfg.dropout,
            cfg.attention_dropout, cfg.activation_dropout, cfg.activation_fn, cfg.decoder_normalize_before,
            cfg.decoder_learned_pos, cfg.max_target_positions, share_io, cfg.no_scale_embedding,
            encoder_dim=cfg.encoder_embed_dim, layernorm_embedding=cfg.layernorm_embedding)
        if cfg.decoder_learned_pos:
            self.decoder.embed_positions = _positions(True, cfg.max_target_positions, cfg.decoder_embed_dim, cfg.pad)
        if cfg.no_decoder_final_norm:
            self.decoder.layer_norm = None
        self.max_target_positions = cfg.max_target_positions

    @classmethod
    def build(cls, arch: str = "transformer", src_vocab_size: int = 8000, tgt_vocab_size: int | None = None,
              **overrides: Any) -> "TransformerNMTModel":
        """A model of fairseq architecture `arch`; keyword arguments override single arguments."""
        tgt = src_vocab_size if tgt_vocab_size is None else tgt_vocab_size
        return cls(TransformerNMTConfig.from_args(apply_arch(arch, overrides), src_vocab_size, tgt))

    @classmethod
    def wmt19_en_de(cls, vocab_size: int = WMT19_EN_DE_VOCAB, **overrides: Any) -> "TransformerNMTModel":
        """The architecture of the paper's expert (FAIR WMT19 en-de model1.pt)."""
        return cls.build("transformer_wmt_en_de_big", vocab_size, vocab_size, **{**WMT19_EN_DE_ARGS, **overrides})

    def encode(self, src: Tensor, src_lengths: Tensor | None = None) -> EncoderOut:
        return self.encoder(src, src_lengths)

    def decode(self, prev_output_tokens: Tensor, enc: EncoderOut, cache: DecoderCache | None = None) -> Tensor:
        return self.decoder(prev_output_tokens, enc.out, enc.padding_mask, cache=cache)

    def new_cache(self) -> DecoderCache:
        return DecoderCache()
