"""Transformer building blocks shared by RoBERTa, s2t_transformer and the NMT transformer.

Parameter names follow fairseq (fairseq/modules/{multihead_attention,transformer_layer}.py,
fairseq/models/transformer/transformer_decoder.py) so fairseq state dicts load by name. Tensors are
batch-first (B, T, C) — fairseq is time-first internally, which only changes layout, not numbers.
Attention runs through F.scaled_dot_product_attention (fused kernels on CPU and GPU).

Incremental decoding: `TransformerDecoder.forward(..., cache=DecoderCache())` processes only the
last position of `prev_output_tokens` (TransformerDecoderLayer.forward_step); the cache (models/decoder_cache.py)
keeps every layer's self-attention keys/values and the encoder-attention keys/values, computed once;
`DecoderCache.reorder(order, encoder_order)` follows beam search.

Beam search may pass an encoder output with one row per sentence while the decoder runs k beams per
sentence (rows sentence-major): encoder attention then folds the k beams into the query length, so the
encoder keys/values are projected and stored once per sentence instead of once per beam (fairseq gets
the same saving from its "beamable" encoder-decoder attention).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .decoder_cache import DecoderCache


def make_positions(tokens: Tensor, padding_idx: int) -> Tensor:
    """fairseq utils.make_positions: non-pad tokens get padding_idx+1, +2, ...; pads get padding_idx."""
    mask = tokens.ne(padding_idx).int()
    return (torch.cumsum(mask, dim=1).type_as(mask) * mask).long() + padding_idx


class SinusoidalPositionalEmbedding(nn.Module):
    """fairseq SinusoidalPositionalEmbedding (sin half then cos half, row padding_idx zero)."""

    def __init__(self, embedding_dim: int, padding_idx: int, init_size: int = 1024):
        super().__init__()
        self.embedding_dim, self.padding_idx = embedding_dim, padding_idx
        self.register_buffer("weights", self.table(init_size, embedding_dim, padding_idx), persistent=False)

    @staticmethod
    def table(num_embeddings: int, dim: int, padding_idx: int) -> Tensor:
        half = dim // 2
        freq = torch.exp(torch.arange(half, dtype=torch.float) * -(math.log(10000) / (half - 1)))
        angles = torch.arange(num_embeddings, dtype=torch.float).unsqueeze(1) * freq.unsqueeze(0)
        emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
        if dim % 2 == 1:
            emb = torch.cat([emb, torch.zeros(num_embeddings, 1)], dim=1)
        emb[padding_idx, :] = 0
        return emb

    def forward(self, tokens: Tensor, step: int | None = None) -> Tensor:
        """tokens (B, T) (pad = padding_idx) -> (B, T, C). With `step`, the single position of an
        incremental decoding step (fairseq: padding_idx + seq_len)."""
        bsz, seq_len = tokens.shape
        max_pos = self.padding_idx + 1 + (seq_len if step is None else step + 1)
        if max_pos > self.weights.size(0):
            self.weights = self.table(max_pos, self.embedding_dim, self.padding_idx).to(self.weights)
        if step is not None:
            return self.weights[self.padding_idx + step + 1].expand(bsz, 1, -1)
        positions = make_positions(tokens, self.padding_idx)
        return self.weights.index_select(0, positions.reshape(-1)).view(bsz, seq_len, -1)


class LearnedPositionalEmbedding(nn.Embedding):
    """fairseq LearnedPositionalEmbedding: rows = max_positions + padding_idx + 1."""

    def __init__(self, max_positions: int, embedding_dim: int, padding_idx: int):
        super().__init__(max_positions + padding_idx + 1, embedding_dim, padding_idx)
        self.max_positions = max_positions

    def forward(self, tokens: Tensor, step: int | None = None) -> Tensor:  # type: ignore[override]
        if step is not None:
            pos = torch.full((tokens.size(0), 1), self.padding_idx + step + 1, device=tokens.device)
        else:
            pos = make_positions(tokens, self.padding_idx)
        if pos.max() >= self.num_embeddings:
            raise ValueError(f"sequence of {tokens.size(1)} tokens exceeds max_positions {self.max_positions}")
        return F.embedding(pos, self.weight, self.padding_idx)


class MultiheadAttention(nn.Module):
    """fairseq MultiheadAttention (q/k/v/out projections with bias) on SDPA."""

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0,
                 kdim: int | None = None, vdim: int | None = None):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.head_dim = embed_dim // num_heads
        self.k_proj = nn.Linear(kdim or embed_dim, embed_dim)
        self.v_proj = nn.Linear(vdim or embed_dim, embed_dim)
        self.q_proj = nn.Linear(embed_dim, embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # fairseq init: xavier_uniform with gain 1/sqrt(2) when q/k/v share a size, bias 0 on out_proj
        for proj in (self.k_proj, self.v_proj, self.q_proj):
            nn.init.xavier_uniform_(proj.weight, gain=1 / math.sqrt(2))
        nn.init.xavier_uniform_(self.out_proj.weight)
        nn.init.constant_(self.out_proj.bias, 0.0)

    def _heads(self, x: Tensor) -> Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, query: Tensor, key: Tensor, key_padding_mask: Tensor | None = None,
                causal: bool = False) -> Tensor:
        """query (B, Tq, C), key=value (B, Tk, C); key_padding_mask (B, Tk) True at pads."""
        q = self._heads(self.q_proj(query))
        k, v = self._heads(self.k_proj(key)), self._heads(self.v_proj(key))
        mask = None
        if key_padding_mask is not None:
            mask = ~key_padding_mask[:, None, None, :]
            if causal:
                mask = mask & torch.ones(q.size(2), k.size(2), dtype=torch.bool, device=q.device).tril(
                    k.size(2) - q.size(2))
            causal = False
        return self.out_proj(self.attend(q, k, v, mask, causal))

    def attend(self, q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None, causal: bool = False) -> Tensor:
        """Projected heads q (B, H, Tq, D), k/v (Bk, H, Tk, D) -> attention (B, Tq, C), before out_proj; mask broadcasts
        to (Bk, 1, 1, Tk) or (Bk, 1, Tq, Tk), True where a query may attend. When B = k·Bk (k beams per key row,
        sentence-major: beam search over an unexpanded encoder output) the beams become queries."""
        b, h, t, d = q.shape
        fold = b // k.size(0) if b != k.size(0) else 1
        if fold != 1:
            if causal or b != fold * k.size(0):
                raise ValueError(f"{b} query rows cannot share {k.size(0)} key rows")
            q = q.view(k.size(0), fold, h, t, d).transpose(1, 2).reshape(k.size(0), h, fold * t, d)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal and q.size(2) > 1,
                                             dropout_p=self.dropout if self.training else 0.0)
        if fold != 1:
            out = out.view(k.size(0), h, fold, t, d).permute(0, 2, 3, 1, 4)
        else:
            out = out.transpose(1, 2)
        return out.reshape(b, t, self.embed_dim)


def _activation(name: str):
    if name == "relu":
        return F.relu
    if name == "gelu":
        return F.gelu  # fairseq's gelu is the exact erf form
    raise ValueError(f"unknown activation {name!r} (expected relu or gelu)")


class _Residual:
    """Pre-LN (normalize_before) or post-LN around a sublayer, as fairseq's layers do."""

    @staticmethod
    def pre(x: Tensor, norm: nn.LayerNorm, normalize_before: bool) -> Tensor:
        return norm(x) if normalize_before else x

    @staticmethod
    def post(x: Tensor, norm: nn.LayerNorm, normalize_before: bool) -> Tensor:
        return x if normalize_before else norm(x)


class TransformerEncoderLayer(nn.Module):
    def __init__(self, embed_dim: int, num_heads: int, ffn_dim: int, dropout: float = 0.1,
                 attention_dropout: float = 0.0, activation_dropout: float = 0.0,
                 activation: str = "relu", normalize_before: bool = False):
        super().__init__()
        self.self_attn = MultiheadAttention(embed_dim, num_heads, attention_dropout)
        self.self_attn_layer_norm = nn.LayerNorm(embed_dim)
        self.fc1, self.fc2 = nn.Linear(embed_dim, ffn_dim), nn.Linear(ffn_dim, embed_dim)
        self.final_layer_norm = nn.LayerNorm(embed_dim)
        self.dropout, self.activation_dropout = dropout, activation_dropout
        self.activation_fn, self.normalize_before = _activation(activation), normalize_before

    def _ffn(self, x: Tensor, linear=F.linear) -> Tensor:
        residual = x
        x = _Residual.pre(x, self.final_layer_norm, self.normalize_before)
        x = F.dropout(self.activation_fn(linear(x, self.fc1.weight, self.fc1.bias)), self.activation_dropout,
                      self.training)
        x = residual + F.dropout(linear(x, self.fc2.weight, self.fc2.bias), self.dropout, self.training)
        return _Residual.post(x, self.final_layer_norm, self.normalize_before)

    def forward(self, x: Tensor, padding_mask: Tensor | None) -> Tensor:
        residual = x
        x = _Residual.pre(x, self.self_attn_layer_norm, self.normalize_before)
        x = self.self_attn(x, x, key_padding_mask=padding_mask)
        x = residual + F.dropout(x, self.dropout, self.training)
        x = _Residual.post(x, self.self_attn_layer_norm, self.normalize_before)
        return self._ffn(x)


class TransformerDecoderLayer(TransformerEncoderLayer):
    def __init__(self, embed_dim: int, num_heads: int, ffn_dim: int, dropout: float = 0.1,
                 attention_dropout: float = 0.0, activation_dropout: float = 0.0,
                 activation: str = "relu", normalize_before: bool = False, encoder_dim: int | None = None):
        super().__init__(embed_dim, num_heads, ffn_dim, dropout, attention_dropout, activation_dropout,
                         activation, normalize_before)
        self.encoder_attn = MultiheadAttention(embed_dim, num_heads, attention_dropout,
                                               kdim=encoder_dim, vdim=encoder_dim)
        self.encoder_attn_layer_norm = nn.LayerNorm(embed_dim)

    def forward(self, x: Tensor, encoder_out: Tensor, encoder_padding_mask: Tensor | None,  # type: ignore[override]
                self_padding_mask: Tensor | None = None) -> Tensor:
        return self._sublayers(
            x, lambda h: self.self_attn(h, h, key_padding_mask=self_padding_mask, causal=True),
            lambda h: self.encoder_attn(h, encoder_out, key_padding_mask=encoder_padding_mask))

    def forward_step(self, x: Tensor, cache: DecoderCache, i: int) -> Tensor:
        """One incremental step of x (N, 1, C), this being layer i: this position's self-attention key/value is
        written into the cache at position cache.step; encoder attention reads the projected encoder output
        (B = N or N / beams rows, see MultiheadAttention.attend)."""
        sa, ea, t = self.self_attn, self.encoder_attn, cache.step
        self_kv, encoder_kv = cache.self_kv[i], cache.encoder_kv[i]

        def self_attention(h: Tensor) -> Tensor:
            qkv_heads = cache.linear(h, *cache.weights.qkv[i]).view(h.size(0), 3, sa.num_heads, 1, sa.head_dim)
            self_kv[:, :, :, t: t + 1].copy_(qkv_heads[:, 1:].transpose(0, 1))
            out = sa.attend(qkv_heads[:, 0], self_kv[0, :, :, : t + 1], self_kv[1, :, :, : t + 1])
            return cache.linear(out, sa.out_proj.weight, sa.out_proj.bias)

        def encoder_attention(h: Tensor) -> Tensor:
            q = ea._heads(cache.linear(h, ea.q_proj.weight, ea.q_proj.bias))
            out = ea.attend(q, encoder_kv[0], encoder_kv[1], cache.encoder_mask)
            return cache.linear(out, ea.out_proj.weight, ea.out_proj.bias)

        return self._sublayers(x, self_attention, encoder_attention, cache.linear)

    def _sublayers(self, x: Tensor, self_attention, encoder_attention, linear=F.linear) -> Tensor:
        residual = x
        x = _Residual.pre(x, self.self_attn_layer_norm, self.normalize_before)
        x = residual + F.dropout(self_attention(x), self.dropout, self.training)
        x = _Residual.post(x, self.self_attn_layer_norm, self.normalize_before)
        residual = x
        x = _Residual.pre(x, self.encoder_attn_layer_norm, self.normalize_before)
        x = residual + F.dropout(encoder_attention(x), self.dropout, self.training)
        x = _Residual.post(x, self.encoder_attn_layer_norm, self.normalize_before)
        return self._ffn(x, linear)


class TransformerDecoder(nn.Module):
    """fairseq TransformerDecoder (used by both the NMT transformer and s2t_transformer)."""

    def __init__(self, embed_tokens: nn.Embedding, num_layers: int, num_heads: int, ffn_dim: int,
                 dropout: float = 0.1, attention_dropout: float = 0.0, activation_dropout: float = 0.0,
                 activation: str = "relu", normalize_before: bool = False, learned_pos: bool = False,
                 max_positions: int = 1024, share_input_output_embed: bool = False,
                 no_scale_embedding: bool = False, encoder_dim: int | None = None,
                 layernorm_embedding: bool = False):
        super().__init__()
        dim, self.padding_idx = embed_tokens.embedding_dim, embed_tokens.padding_idx
        self.embed_tokens = embed_tokens
        self.embed_scale = 1.0 if no_scale_embedding else math.sqrt(dim)
        self.max_target_positions = max_positions
        self.embed_positions = (LearnedPositionalEmbedding(max_positions, dim, self.padding_idx) if learned_pos
                                else SinusoidalPositionalEmbedding(dim, self.padding_idx))
        # fairseq --layernorm-embedding: LayerNorm after token + position embeddings, before dropout
        self.layernorm_embedding = nn.LayerNorm(dim) if layernorm_embedding else None
        self.layers = nn.ModuleList(
            TransformerDecoderLayer(dim, num_heads, ffn_dim, dropout, attention_dropout, activation_dropout,
                                    activation, normalize_before, encoder_dim) for _ in range(num_layers))
        self.layer_norm = nn.LayerNorm(dim) if normalize_before else None
        self.dropout = dropout
        self.output_projection = nn.Linear(dim, embed_tokens.num_embeddings, bias=False)
        if share_input_output_embed:
            self.output_projection.weight = embed_tokens.weight
        else:
            nn.init.normal_(self.output_projection.weight, mean=0, std=dim ** -0.5)

    def forward(self, prev_output_tokens: Tensor, encoder_out: Tensor, encoder_padding_mask: Tensor | None,
                cache: DecoderCache | None = None, features_only: bool = False) -> Tensor:
        """prev_output_tokens (B, U) -> logits (B, U, V); with `cache`, only the last position is
        computed (B, 1, V) and the cache advances one step."""
        if cache is not None:
            x = self._step(prev_output_tokens, encoder_out, encoder_padding_mask, cache)
        else:
            # targets are right-padded, so under the causal mask no real position sees a pad: fairseq's
            # self-attention padding mask only changes outputs at pad positions, which every loss ignores;
            # leaving it out keeps SDPA on its fused causal kernel
            x = self._embed(prev_output_tokens, self.embed_positions(prev_output_tokens))
            for layer in self.layers:
                x = layer(x, encoder_out, encoder_padding_mask)
        if self.layer_norm is not None:
            x = self.layer_norm(x)
        if features_only:
            return x
        if cache is not None:
            return cache.linear(x, self.output_projection.weight, self.output_projection.bias)
        return self.output_projection(x)

    def _embed(self, tokens: Tensor, positions: Tensor) -> Tensor:
        x = self.embed_scale * self.embed_tokens(tokens) + positions
        if self.layernorm_embedding is not None:
            x = self.layernorm_embedding(x)
        return F.dropout(x, self.dropout, self.training)

    def _step(self, prev_output_tokens: Tensor, encoder_out: Tensor, encoder_padding_mask: Tensor | None,
              cache: DecoderCache) -> Tensor:
        step = prev_output_tokens.size(1) - 1
        if step != cache.step:
            raise ValueError(f"a prefix of {step + 1} tokens after {cache.step} cached steps")
        tokens = prev_output_tokens[:, -1:]
        x = self._embed(tokens, self.embed_positions(tokens, step=step))
        if step == 0:
            cache.start(self, encoder_out, encoder_padding_mask, tokens.size(0))
        cache.make_room()
        for i, layer in enumerate(self.layers):
            x = layer.forward_step(x, cache, i)
        cache.step += 1
        return x
