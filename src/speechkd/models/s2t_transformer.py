"""fairseq's S2TTransformerModel (fairseq/models/speech_to_text/s2t_transformer.py, fairseq 0.12), batch-first.

Encoder: Conv1dSubsampler (Conv1d k5 s2 p2 + GLU per layer, 4x shorter for two layers) -> × sqrt(d) ->
sinusoidal positions computed from the padding mask (padding_idx 1) -> dropout -> pre-LN transformer layers
(`transformer_layers.N`) -> final `layer_norm`. Decoder: fairseq's TransformerDecoder (models/transformer.py).
`encoder_freezing_updates`: while num_updates < N the encoder runs under no_grad (fairseq ≥ 0.10.2,
`set_num_updates`). Parameter names equal fairseq's, so a fairseq state dict loads by name.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .seq2seq import EncoderOut, Seq2SeqModel, arch_default, fairseq_embedding, lengths_to_padding_mask
from .transformer import DecoderCache, SinusoidalPositionalEmbedding, TransformerDecoder, TransformerEncoderLayer


@dataclass
class S2TTransformerConfig:
    """The architecture arguments of fairseq's s2t_transformer (same names)."""

    vocab_size: int
    pad: int = 1
    input_feat_per_channel: int = 80
    input_channels: int = 1
    conv_kernel_sizes: tuple[int, ...] = (5, 5)
    conv_channels: int = 1024
    encoder_embed_dim: int = 512
    encoder_ffn_embed_dim: int = 2048
    encoder_layers: int = 12
    encoder_attention_heads: int = 8
    encoder_normalize_before: bool = True
    decoder_embed_dim: int = 512
    decoder_ffn_embed_dim: int = 2048
    decoder_layers: int = 6
    decoder_attention_heads: int = 8
    decoder_normalize_before: bool = True
    decoder_learned_pos: bool = False
    dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.1
    activation_fn: str = "relu"
    share_decoder_input_output_embed: bool = False
    no_scale_embedding: bool = False
    layernorm_embedding: bool = False
    max_source_positions: int = 6000
    max_target_positions: int = 1024
    encoder_freezing_updates: int = 0
    ctc_head: bool = False  # encoder.ctc_proj for an auxiliary CTC loss (fairseq main's ctc_proj; ASR only)

    @classmethod
    def from_args(cls, args: dict[str, Any], vocab_size: int) -> "S2TTransformerConfig":
        """From fairseq arguments that an arch function has completed (see `apply_arch`)."""
        known = {f.name for f in fields(cls)} - {"vocab_size", "conv_kernel_sizes"}
        kwargs = {name: args[name] for name in known if args.get(name) is not None}
        kernels = args.get("conv_kernel_sizes", "5,5")
        if isinstance(kernels, str):
            kernels = tuple(int(k) for k in kernels.split(","))
        return cls(vocab_size=vocab_size, conv_kernel_sizes=tuple(kernels), **kwargs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- architectures: fairseq's register_model_architecture functions, on a dict -------------------------------

def base_architecture(a: dict) -> None:
    arch_default(a, "encoder_freezing_updates", 0)
    arch_default(a, "input_channels", 1)
    arch_default(a, "conv_kernel_sizes", "5,5")
    arch_default(a, "conv_channels", 1024)
    arch_default(a, "conv_version", "s2t_transformer")
    arch_default(a, "encoder_embed_dim", 512)
    arch_default(a, "encoder_ffn_embed_dim", 2048)
    arch_default(a, "encoder_layers", 12)
    arch_default(a, "encoder_attention_heads", 8)
    arch_default(a, "encoder_normalize_before", True)
    arch_default(a, "decoder_embed_dim", a["encoder_embed_dim"])
    arch_default(a, "decoder_ffn_embed_dim", a["encoder_ffn_embed_dim"])
    arch_default(a, "decoder_layers", 6)
    arch_default(a, "decoder_attention_heads", 8)
    arch_default(a, "decoder_normalize_before", True)
    arch_default(a, "decoder_learned_pos", False)
    arch_default(a, "dropout", 0.1)
    arch_default(a, "attention_dropout", a["dropout"])
    arch_default(a, "activation_dropout", a["dropout"])
    arch_default(a, "activation_fn", "relu")
    arch_default(a, "share_decoder_input_output_embed", False)
    arch_default(a, "no_token_positional_embeddings", False)
    arch_default(a, "decoder_output_dim", a["decoder_embed_dim"])
    arch_default(a, "decoder_input_dim", a["decoder_embed_dim"])
    arch_default(a, "no_scale_embedding", False)


def s2t_transformer_s(a: dict) -> None:
    arch_default(a, "encoder_embed_dim", 256)
    arch_default(a, "encoder_ffn_embed_dim", 256 * 8)
    arch_default(a, "encoder_attention_heads", 4)
    arch_default(a, "decoder_attention_heads", 4)
    arch_default(a, "dropout", 0.1)
    base_architecture(a)


def s2t_transformer_xs(a: dict) -> None:
    arch_default(a, "encoder_layers", 6)
    arch_default(a, "decoder_layers", 3)
    arch_default(a, "encoder_ffn_embed_dim", 256 * 4)
    arch_default(a, "dropout", 0.3)
    s2t_transformer_s(a)


def s2t_transformer_sp(a: dict) -> None:
    arch_default(a, "encoder_layers", 16)
    s2t_transformer_s(a)


def s2t_transformer_m(a: dict) -> None:
    arch_default(a, "encoder_embed_dim", 512)
    arch_default(a, "encoder_ffn_embed_dim", 512 * 4)
    arch_default(a, "encoder_attention_heads", 8)
    arch_default(a, "decoder_attention_heads", 8)
    arch_default(a, "dropout", 0.15)
    base_architecture(a)


def s2t_transformer_mp(a: dict) -> None:
    arch_default(a, "encoder_layers", 16)
    s2t_transformer_m(a)


def s2t_transformer_l(a: dict) -> None:
    arch_default(a, "encoder_embed_dim", 1024)
    arch_default(a, "encoder_ffn_embed_dim", 1024 * 4)
    arch_default(a, "encoder_attention_heads", 16)
    arch_default(a, "decoder_attention_heads", 16)
    arch_default(a, "dropout", 0.2)
    base_architecture(a)


def s2t_transformer_lp(a: dict) -> None:
    arch_default(a, "encoder_layers", 16)
    s2t_transformer_l(a)


ARCHITECTURES: dict[str, Callable[[dict], None]] = {
    "s2t_transformer": base_architecture,
    "s2t_transformer_xs": s2t_transformer_xs,
    "s2t_transformer_s": s2t_transformer_s,
    "s2t_transformer_sp": s2t_transformer_sp,
    "s2t_transformer_m": s2t_transformer_m,
    "s2t_transformer_mp": s2t_transformer_mp,
    "s2t_transformer_l": s2t_transformer_l,
    "s2t_transformer_lp": s2t_transformer_lp,
}


def apply_arch(arch: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    """A copy of `args` completed with the defaults of fairseq architecture `arch` (explicit values win)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown s2t_transformer architecture {arch!r} (known: {', '.join(ARCHITECTURES)})")
    a = dict(args or {})
    ARCHITECTURES[arch](a)
    return a


# --- modules --------------------------------------------------------------------------------------------------

class Conv1dSubsampler(nn.Module):
    """fairseq Conv1dSubsampler: Conv1d(k, stride 2, padding k//2) + GLU over channels, per kernel size."""

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int,
                 kernel_sizes: Sequence[int] = (3, 3)):
        super().__init__()
        self.n_layers = len(kernel_sizes)
        self.conv_layers = nn.ModuleList(
            nn.Conv1d(in_channels if i == 0 else mid_channels // 2,
                      mid_channels if i < self.n_layers - 1 else out_channels * 2,
                      k, stride=2, padding=k // 2)
            for i, k in enumerate(kernel_sizes))

    def out_lengths(self, lengths: Tensor) -> Tensor:
        """fairseq get_out_seq_lens_tensor: floor((L - 1) / 2 + 1) per layer."""
        out = lengths
        for _ in range(self.n_layers):
            out = torch.div(out - 1, 2, rounding_mode="floor") + 1
        return out

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, T, C·D) -> (B, T', out_channels), lengths (B,) -> (B,)."""
        x = x.transpose(1, 2)
        for conv in self.conv_layers:
            x = F.glu(conv(x), dim=1)
        return x.transpose(1, 2).contiguous(), self.out_lengths(lengths)


class S2TTransformerEncoder(nn.Module):
    def __init__(self, cfg: S2TTransformerConfig):
        super().__init__()
        dim = cfg.encoder_embed_dim
        self.encoder_freezing_updates, self.num_updates = cfg.encoder_freezing_updates, 0
        self.dropout = cfg.dropout
        self.embed_scale = 1.0 if cfg.no_scale_embedding else math.sqrt(dim)
        self.padding_idx = 1  # fairseq hard-codes it: positions are computed from the padding mask
        self.subsample = Conv1dSubsampler(cfg.input_feat_per_channel * cfg.input_channels, cfg.conv_channels,
                                          dim, cfg.conv_kernel_sizes)
        self.embed_positions = SinusoidalPositionalEmbedding(dim, self.padding_idx)
        self.transformer_layers = nn.ModuleList(
            TransformerEncoderLayer(dim, cfg.encoder_attention_heads, cfg.encoder_ffn_embed_dim, cfg.dropout,
                                    cfg.attention_dropout, cfg.activation_dropout, cfg.activation_fn,
                                    cfg.encoder_normalize_before)
            for _ in range(cfg.encoder_layers))
        self.layer_norm = nn.LayerNorm(dim) if cfg.encoder_normalize_before else None
        # a training aid of the criterion's ctc_weight (EncoderOut.ctc_logits): decoding and students never use it
        self.ctc_proj = nn.Linear(dim, cfg.vocab_size) if cfg.ctc_head else None

    def _forward(self, src: Tensor, src_lengths: Tensor) -> EncoderOut:
        x, lengths = self.subsample(src, src_lengths)
        x = self.embed_scale * x
        padding_mask = lengths_to_padding_mask(lengths, max_len=x.size(1))
        # fairseq feeds the padding mask itself (1 = pad = padding_idx) to the positional embedding
        x = x + self.embed_positions(padding_mask.long())
        x = F.dropout(x, self.dropout, self.training)
        key_mask = padding_mask if bool(padding_mask.any()) else None
        for layer in self.transformer_layers:
            x = layer(x, key_mask)
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        # inside forward, so that DDP counts the head among the parameters this forward used
        return EncoderOut(x, key_mask, None if self.ctc_proj is None else self.ctc_proj(x))

    def forward(self, src: Tensor, src_lengths: Tensor | None = None) -> EncoderOut:
        if src_lengths is None:
            src_lengths = torch.full((src.size(0),), src.size(1), dtype=torch.long, device=src.device)
        if self.num_updates < self.encoder_freezing_updates:
            with torch.no_grad():
                return self._forward(src, src_lengths)
        return self._forward(src, src_lengths)


def drop_ctc_head(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A state dict without `encoder.ctc_proj.*`: the CTC head of an ASR trained with criterion.ctc_weight only
    shaped its training; decoding and the students' encoders use the attention model alone."""
    return {k: v for k, v in state.items() if not k.startswith("encoder.ctc_proj.")}


class S2TTransformerModel(Seq2SeqModel):
    encoder_shared_across_beams = True

    def __init__(self, cfg: S2TTransformerConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = S2TTransformerEncoder(cfg)
        embed = fairseq_embedding(cfg.vocab_size, cfg.decoder_embed_dim, cfg.pad)
        self.decoder = TransformerDecoder(
            embed, cfg.decoder_layers, cfg.decoder_attention_heads, cfg.decoder_ffn_embed_dim, cfg.dropout,
            cfg.attention_dropout, cfg.activation_dropout, cfg.activation_fn, cfg.decoder_normalize_before,
            cfg.decoder_learned_pos, cfg.max_target_positions, cfg.share_decoder_input_output_embed,
            cfg.no_scale_embedding, encoder_dim=cfg.encoder_embed_dim, layernorm_embedding=cfg.layernorm_embedding)
        self.max_target_positions = cfg.max_target_positions

    @classmethod
    def build(cls, arch: str = "s2t_transformer_s", vocab_size: int = 8000, **overrides: Any) -> "S2TTransformerModel":
        """A model of fairseq architecture `arch`; keyword arguments override single arguments (any size)."""
        return cls(S2TTransformerConfig.from_args(apply_arch(arch, overrides), vocab_size))

    def encode(self, src: Tensor, src_lengths: Tensor | None) -> EncoderOut:
        return self.encoder(src, src_lengths)

    def decode(self, prev_output_tokens: Tensor, enc: EncoderOut, cache: DecoderCache | None = None) -> Tensor:
        return self.decoder(prev_output_tokens, enc.out, enc.padding_mask, cache=cache)

    def new_cache(self) -> DecoderCache:
        return DecoderCache()

    def set_num_updates(self, num_updates: int) -> None:
        self.encoder.num_updates = num_updates
