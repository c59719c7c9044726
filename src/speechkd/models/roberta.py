"""RoBERTa: the text teacher (RoBERTa-base) and the speech encoder VQ-BERT (RoBERTa on vq-wav2vec units).

Mirrors fairseq 0.12 `fairseq/models/roberta/model.py` (RobertaModel, RobertaEncoder, RobertaLMHead,
RobertaClassificationHead) on top of `TransformerEncoder` (fairseq/models/transformer/transformer_encoder.py),
which computes exactly what the fairseq 0.9 `TransformerSentenceEncoder` computed:

    x = embed_tokens(tokens) (no scale) + learned positions (make_positions, padding_idx 1)
    x = layernorm_embedding(x); x = dropout(x); x[pad] = 0
    post-LN layers (GELU, dropout 0.1, attention dropout 0.1); pad keys masked in attention

Parameter names are fairseq 0.12's (`encoder.sentence_encoder.*`, `encoder.lm_head.*`,
`classification_heads.<name>.*`), so a converted fairseq state dict loads with `load_state_dict`
(interop/fairseq_roberta.py converts 0.9 names; interop/hf_roberta.py converts HF names).
Tensors are batch-first; fairseq's inner states are time-first, which changes layout only.
"""
from __future__ import annotations

import dataclasses
from typing import Literal, overload

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import option
from .transformer import LearnedPositionalEmbedding, MultiheadAttention, TransformerEncoderLayer

@dataclasses.dataclass
class RobertaConfig:
    """Architecture of one RoBERTa (defaults: fairseq `roberta_base` / base_architecture)."""
    layers: int = option(12, "encoder layers (roberta_base 12)")
    embed_dim: int = option(768, "hidden size (roberta_base 768)")
    heads: int = option(12, "attention heads (roberta_base 12)")
    ffn_dim: int = option(3072, "feed-forward size (roberta_base 3072)")
    max_positions: int = option(512, "learned positions (text RoBERTa 512; VQ-BERT 2048)")
    dropout: float = option(0.1, "dropout after embeddings, attention and FFN (fairseq args dropout)")
    attention_dropout: float = option(0.1, "dropout on attention weights")
    activation_dropout: float = option(0.0, "dropout after the FFN activation")
    pooler_dropout: float = option(0.0, "dropout in classification heads (fairseq pooler_dropout)")
    layernorm_embedding: bool = option(True, "LayerNorm after the embeddings (0.9: emb_layer_norm)")
    normalize_before: bool = option(False, "pre-LN layers + final layer_norm (roberta_prenorm); RoBERTa: post-LN")
    untie_weights: bool = option(False, "LM head with its own output matrix (fairseq untie_weights_roberta)")
    layer_norm_eps: float = option(1e-5, "LayerNorm epsilon (fairseq 1e-5; HF configs carry their own)")


def init_bert_params(module: nn.Module) -> None:
    """fairseq modules/transformer_sentence_encoder.py init_bert_params: N(0, 0.02) weights, zero biases,
    zero padding row."""
    if isinstance(module, nn.Linear):
        module.weight.data.normal_(mean=0.0, std=0.02)
        if module.bias is not None:
            module.bias.data.zero_()
    if isinstance(module, nn.Embedding):
        module.weight.data.normal_(mean=0.0, std=0.02)
        if module.padding_idx is not None:
            module.weight.data[module.padding_idx].zero_()
    if isinstance(module, MultiheadAttention):
        for proj in (module.q_proj, module.k_proj, module.v_proj):
            proj.weight.data.normal_(mean=0.0, std=0.02)


class RobertaSentenceEncoder(nn.Module):
    """fairseq TransformerEncoder as RoBERTa configures it (learned positions, no embedding scale)."""

    def __init__(self, cfg: RobertaConfig, vocab_size: int, padding_idx: int = 1):
        super().__init__()
        self.padding_idx, self.dropout = padding_idx, cfg.dropout
        self.embed_tokens = nn.Embedding(vocab_size, cfg.embed_dim, padding_idx)
        self.embed_positions = LearnedPositionalEmbedding(cfg.max_positions, cfg.embed_dim, padding_idx)
        self.layernorm_embedding = (nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps)
                                    if cfg.layernorm_embedding else None)
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(cfg.embed_dim, cfg.heads, cfg.ffn_dim, cfg.dropout, cfg.attention_dropout,
                                    cfg.activation_dropout, "gelu", cfg.normalize_before)
            for _ in range(cfg.layers))
        self.layer_norm = nn.LayerNorm(cfg.embed_dim, eps=cfg.layer_norm_eps) if cfg.normalize_before else None
        for layer in self.layers:  # the shared layer builds eps-1e-5 norms; HF checkpoints may use another eps
            layer.self_attn_layer_norm.eps = layer.final_layer_norm.eps = cfg.layer_norm_eps

    def forward(self, tokens: Tensor, return_all_hiddens: bool = False) -> tuple[Tensor, list[Tensor]]:
        """tokens (B, T) -> (features (B, T, C), inner states: embedding output + every layer's output when
        return_all_hiddens, else [])."""
        padding_mask = tokens.eq(self.padding_idx)
        has_pads = bool(padding_mask.any())
        x = self.embed_tokens(tokens) + self.embed_positions(tokens)
        if self.layernorm_embedding is not None:
            x = self.layernorm_embedding(x)
        x = F.dropout(x, self.dropout, self.training)
        if has_pads:  # fairseq: "account for padding while computing the representation"
            x = x * (1 - padding_mask.unsqueeze(-1).type_as(x))
        key_padding_mask = padding_mask if has_pads else None
        states = [x] if return_all_hiddens else []
        for layer in self.layers:
            x = layer(x, key_padding_mask)
            if return_all_hiddens:
                states.append(x)
        if self.layer_norm is not None:  # fairseq keeps the inner states from before this norm
            x = self.layer_norm(x)
        return x, states


class RobertaLMHead(nn.Module):
    """fairseq RobertaLMHead: dense -> gelu -> layer_norm -> x @ weight^T + bias; `weight` is the token
    embedding matrix unless untied."""

    def __init__(self, embed_dim: int, vocab_size: int, weight: nn.Parameter | None = None,
                 layer_norm_eps: float = 1e-5):
        super().__init__()
        self.dense = nn.Linear(embed_dim, embed_dim)
        self.layer_norm = nn.LayerNorm(embed_dim, eps=layer_norm_eps)
        self.weight = weight if weight is not None else nn.Linear(embed_dim, vocab_size, bias=False).weight
        self.bias = nn.Parameter(torch.zeros(vocab_size))

    def forward(self, features: Tensor, masked_tokens: Tensor | None = None) -> Tensor:
        """features (..., C) -> logits (..., V); with masked_tokens (bool, features' leading shape) only those
        positions are projected (fairseq: "saves both memory and computation") -> (N, V)."""
        if masked_tokens is not None:
            features = features[masked_tokens, :]
        x = self.layer_norm(F.gelu(self.dense(features)))
        return F.linear(x, self.weight) + self.bias


class RobertaClassificationHead(nn.Module):
    """fairseq RobertaClassificationHead: <s> vector -> dropout -> dense -> tanh -> dropout -> out_proj."""

    def __init__(self, input_dim: int, inner_dim: int, num_classes: int, pooler_dropout: float = 0.0):
        super().__init__()
        self.dense = nn.Linear(input_dim, inner_dim)
        self.dropout = nn.Dropout(p=pooler_dropout)
        self.out_proj = nn.Linear(inner_dim, num_classes)

    def forward(self, features: Tensor) -> Tensor:
        x = self.dropout(features[:, 0, :])
        x = self.dropout(torch.tanh(self.dense(x)))
        return self.out_proj(x)


class RobertaEncoder(nn.Module):
    def __init__(self, cfg: RobertaConfig, vocab_size: int, padding_idx: int = 1):
        super().__init__()
        self.sentence_encoder = RobertaSentenceEncoder(cfg, vocab_size, padding_idx)
        tied = None if cfg.untie_weights else self.sentence_encoder.embed_tokens.weight
        self.lm_head = RobertaLMHead(cfg.embed_dim, vocab_size, tied, cfg.layer_norm_eps)


class RobertaModel(nn.Module):
    """fairseq RobertaModel (encoder + LM head + named classification heads)."""

    def __init__(self, cfg: RobertaConfig, vocab_size: int, padding_idx: int = 1):
        super().__init__()
        self.cfg, self.padding_idx = cfg, padding_idx
        self.encoder = RobertaEncoder(cfg, vocab_size, padding_idx)
        self.apply(init_bert_params)  # fairseq: "We follow BERT's random weight initialization"
        self.classification_heads = nn.ModuleDict()

    @property
    def embed_dim(self) -> int:
        return self.cfg.embed_dim

    @property
    def vocab_size(self) -> int:
        return self.encoder.sentence_encoder.embed_tokens.num_embeddings

    @property
    def max_positions(self) -> int:
        return self.cfg.max_positions

    def register_classification_head(self, name: str, num_classes: int, inner_dim: int | None = None) -> None:
        """fairseq register_classification_head (pooler activation tanh, pooler_dropout from the config).
        fairseq builds heads after `apply(init_bert_params)`, so they keep PyTorch's Linear init; so do we."""
        self.classification_heads[name] = RobertaClassificationHead(
            self.cfg.embed_dim, inner_dim or self.cfg.embed_dim, num_classes, self.cfg.pooler_dropout)

    def forward(self, tokens: Tensor, features_only: bool = False, return_all_hiddens: bool = False,
                classification_head_name: str | None = None,
                masked_tokens: Tensor | None = None) -> tuple[Tensor, dict]:
        """fairseq RobertaModel.forward: (LM logits | features | head logits, {"inner_states": [...] or None})."""
        x, states = self.encoder.sentence_encoder(tokens, return_all_hiddens)
        extra = {"inner_states": states if return_all_hiddens else None}
        if classification_head_name is not None:
            return self.classification_heads[classification_head_name](x), extra
        if not features_only:
            x = self.encoder.lm_head(x, masked_tokens)
        return x, extra

    @overload
    def extract_features(self, tokens: Tensor, return_all_hiddens: Literal[False] = ...) -> Tensor: ...

    @overload
    def extract_features(self, tokens: Tensor, return_all_hiddens: Literal[True]) -> list[Tensor]: ...

    def extract_features(self, tokens: Tensor, return_all_hiddens: bool = False) -> Tensor | list[Tensor]:
        """RobertaHubInterface.extract_features: tokens (B, T) or (T,) -> last layer (B, T, C); with
        return_all_hiddens, the list [embedding output, layer 1, ..., layer L] (each (B, T, C))."""
        if tokens.dim() == 1:
            tokens = tokens.unsqueeze(0)
        if tokens.size(-1) > self.max_positions:
            raise ValueError(f"tokens exceeded max_positions: {tokens.size(-1)} > {self.max_positions}")
        x, states = self.encoder.sentence_encoder(tokens, return_all_hiddens)
        return states if return_all_hiddens else x

    def lm_logits(self, features: Tensor, masked_tokens: Tensor | None = None) -> Tensor:
        """The MLM head on encoder features (the authors' `vq_lm_head(vq_out_emb)` in CrossBert)."""
        return self.encoder.lm_head(features, masked_tokens)


class TextClassifier(nn.Module):
    """The authors' text teacher (textual-kd-slu models/nlu.py TextModel): RoBERTa `extract_features` ->
    `<s>` vector -> `intenter` Linear(hidden, num_classes). Not fairseq's classification head: no dropout,
    no dense+tanh. forward returns (logits, <s> vector) as TextModel does."""

    def __init__(self, roberta: RobertaModel, num_classes: int):
        super().__init__()
        self.roberta = roberta
        self.intenter = nn.Linear(roberta.embed_dim, num_classes)

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        cls = self.roberta.extract_features(tokens)[:, 0, :]
        return self.intenter(cls), cls
