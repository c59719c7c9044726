"""fairseq's s2t_berard (fairseq/models/speech_to_text/berard.py; Bérard et al. 2018), batch-first interface.

Encoder: per input channel, Linear layers each followed by (dropout and) tanh; Conv2d layers with no activation
(kernel k, stride s, padding k//2) over (time, feature); a BiLSTM over the flattened channels; dropout.
Decoder: LSTMCell stack with MLP (Bahdanau) attention computed after the first layer; the first layer is fed
the token embedding, every further layer the attention context. fairseq's quirk is kept: layer i starts from the
state of layer i−1 (layer 0 from the last layer's previous state), and every layer's hidden state is initialised
with the time-mean of the encoder output, cells with zeros. Output: tanh(Linear([h, context, embedding]))
-> dropout -> Linear to the vocabulary. Parameter names equal fairseq's (including `input_layers.N.0` when
dropout > 0, where fairseq wraps the Linear in a Sequential).
"""
from __future__ import annotations

from ast import literal_eval
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .padded_birnn import bidirectional_over_padded
from .seq2seq import EncoderOut, Seq2SeqModel, arch_default, lengths_to_padding_mask


@dataclass
class BerardConfig:
    vocab_size: int
    pad: int = 1
    input_feat_per_channel: int = 80
    input_channels: int = 1
    input_layers: tuple[int, ...] = (256, 128)
    conv_layers: tuple[tuple[int, int, int], ...] = ((16, 3, 2), (16, 3, 2))
    num_blstm_layers: int = 3
    lstm_size: int = 256
    dropout: float = 0.2
    decoder_embed_dim: int = 128
    decoder_num_layers: int = 2
    decoder_hidden_dim: int = 512
    attention_dim: int = 512
    output_layer_dim: int = 128
    max_target_positions: int = 1_000_000  # no positions: fairseq FairseqDecoder.max_positions() = 1e6

    @classmethod
    def from_args(cls, args: dict[str, Any], vocab_size: int) -> "BerardConfig":
        known = {f.name for f in fields(cls)} - {"vocab_size", "input_layers", "conv_layers"}
        kwargs = {name: args[name] for name in known if args.get(name) is not None}
        input_layers, conv_layers = args.get("input_layers", "[256, 128]"), args.get("conv_layers",
                                                                                      "[(16, 3, 2), (16, 3, 2)]")
        input_layers = literal_eval(input_layers) if isinstance(input_layers, str) else input_layers
        conv_layers = literal_eval(conv_layers) if isinstance(conv_layers, str) else conv_layers
        return cls(vocab_size=vocab_size, input_layers=tuple(input_layers),
                   conv_layers=tuple(tuple(c) for c in conv_layers), **kwargs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def berard(a: dict) -> None:
    arch_default(a, "input_layers", "[256, 128]")
    arch_default(a, "conv_layers", "[(16, 3, 2), (16, 3, 2)]")
    arch_default(a, "num_blstm_layers", 3)
    arch_default(a, "lstm_size", 256)
    arch_default(a, "dropout", 0.2)
    arch_default(a, "decoder_embed_dim", 128)
    arch_default(a, "decoder_num_layers", 2)
    arch_default(a, "decoder_hidden_dim", 512)
    arch_default(a, "attention_dim", 512)
    arch_default(a, "output_layer_dim", 128)


def berard_256_3_3(a: dict) -> None:
    arch_default(a, "decoder_num_layers", 3)
    berard(a)


def berard_512_3_2(a: dict) -> None:
    arch_default(a, "num_blstm_layers", 3)
    arch_default(a, "lstm_size", 512)
    arch_default(a, "dropout", 0.3)
    arch_default(a, "decoder_embed_dim", 256)
    arch_default(a, "decoder_num_layers", 2)
    arch_default(a, "decoder_hidden_dim", 1024)
    arch_default(a, "attention_dim", 512)
    arch_default(a, "output_layer_dim", 256)
    berard(a)


def berard_512_5_3(a: dict) -> None:
    arch_default(a, "num_blstm_layers", 5)
    arch_default(a, "lstm_size", 512)
    arch_default(a, "dropout", 0.3)
    arch_default(a, "decoder_embed_dim", 256)
    arch_default(a, "decoder_num_layers", 3)
    arch_default(a, "decoder_hidden_dim", 1024)
    arch_default(a, "attention_dim", 512)
    arch_default(a, "output_layer_dim", 256)
    berard(a)


ARCHITECTURES: dict[str, Callable[[dict], None]] = {
    "s2t_berard": berard,
    "s2t_berard_256_3_3": berard_256_3_3,
    "s2t_berard_512_3_2": berard_512_3_2,
    "s2t_berard_512_5_3": berard_512_5_3,
}


def apply_arch(arch: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown s2t_berard architecture {arch!r} (known: {', '.join(ARCHITECTURES)})")
    a = dict(args or {})
    ARCHITECTURES[arch](a)
    return a


class BerardEncoder(nn.Module):
    def __init__(self, input_layers: Sequence[int], conv_layers: Sequence[tuple[int, int, int]], in_channels: int,
                 input_feat_per_channel: int, num_blstm_layers: int, lstm_size: int, dropout: float):
        super().__init__()
        self.input_layers = nn.ModuleList()
        in_features = input_feat_per_channel
        for out_features in input_layers:
            linear = nn.Linear(in_features, out_features)
            self.input_layers.append(nn.Sequential(linear, nn.Dropout(p=dropout)) if dropout > 0 else linear)
            in_features = out_features
        self.in_channels, self.input_dim = in_channels, input_feat_per_channel
        self.conv_kernel_sizes_and_strides: list[tuple[int, int]] = []
        self.conv_layers = nn.ModuleList()
        lstm_input_dim = input_layers[-1]
        for out_channels, kernel, stride in conv_layers:
            self.conv_layers.append(nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2))
            self.conv_kernel_sizes_and_strides.append((kernel, stride))
            in_channels = out_channels
            lstm_input_dim //= stride
        lstm_input_dim *= conv_layers[-1][0]
        self.lstm_size, self.num_blstm_layers = lstm_size, num_blstm_layers
        self.lstm = nn.LSTM(input_size=lstm_input_dim, hidden_size=lstm_size, num_layers=num_blstm_layers,
                            dropout=dropout, bidirectional=True)
        self.output_dim = 2 * lstm_size
        self.dropout = dropout

    def forward(self, src: Tensor, src_lengths: Tensor | None = None) -> EncoderOut:
        bsz, max_len, _ = src.shape
        if src_lengths is None:
            src_lengths = torch.full((bsz,), max_len, dtype=torch.long, device=src.device)
        x = src.view(bsz, max_len, self.in_channels, self.input_dim).transpose(1, 2)  # (B, C, T, D)
        for layer in self.input_layers:
            x = torch.tanh(layer(x))
        for conv in self.conv_layers:
            x = conv(x)
        _, _, out_len, _ = x.shape
        x = x.permute(2, 0, 1, 3).reshape(out_len, bsz, -1)  # (T', B, C·D')
        lengths = src_lengths
        for k, s in self.conv_kernel_sizes_and_strides:
            lengths = torch.div(lengths + 2 * (k // 2) - k, s, rounding_mode="floor") + 1
        # fairseq packs the sequence; on CPU, unpacked gives the same outputs faster (padded_birnn.py). Zero
        # initial states, as fairseq's h0/c0; frames past the longest sequence are cut, as pad_packed_sequence does
        out = bidirectional_over_padded(self.lstm, x[: int(lengths.max())], lengths)
        out = F.dropout(out, self.dropout, self.training).transpose(0, 1)  # (B, T, 2H)
        return EncoderOut(out, lengths_to_padding_mask(lengths.to(out.device), out.size(1)))


class MLPAttention(nn.Module):
    """Bahdanau attention: scores = v · tanh(W_e enc + W_d dec + b); softmax over source positions."""

    def __init__(self, decoder_hidden_state_dim: int, context_dim: int, attention_dim: int):
        super().__init__()
        self.context_dim, self.attention_dim = context_dim, attention_dim
        self.encoder_proj = nn.Linear(context_dim, attention_dim, bias=True)
        self.decoder_proj = nn.Linear(decoder_hidden_state_dim, attention_dim, bias=False)
        self.to_scores = nn.Linear(attention_dim, 1, bias=False)

    def forward(self, decoder_state: Tensor, source_hids: Tensor, encoder_component: Tensor,
                padding_mask: Tensor | None) -> Tensor:
        """decoder_state (B, H); source_hids (B, T, C); encoder_component = encoder_proj(source_hids) (B, T, A)
        (computed once per sentence by the caller) -> context (B, C)."""
        hidden = torch.tanh(encoder_component + self.decoder_proj(decoder_state).unsqueeze(1))
        scores = self.to_scores(hidden).squeeze(-1)  # (B, T)
        if padding_mask is not None:
            scores = scores.float().masked_fill(padding_mask, float("-inf")).type_as(scores)
        weights = F.softmax(scores, dim=1)
        return torch.bmm(weights.unsqueeze(1), source_hids).squeeze(1)


class BerardCache:
    """Incremental state: per-layer hidden and cell states, and the encoder projection of the attention."""

    def __init__(self) -> None:
        self.hiddens: list[Tensor] | None = None
        self.cells: list[Tensor] | None = None
        self.encoder_component: Tensor | None = None

    def reorder(self, order: Tensor, encoder_order: Tensor | None = None) -> None:
        if self.hiddens is not None:
            self.hiddens = [h.index_select(0, order) for h in self.hiddens]
            self.cells = [c.index_select(0, order) for c in self.cells]
        if self.encoder_component is not None and encoder_order is not None:  # None: encoder rows unchanged
            self.encoder_component = self.encoder_component.index_select(0, encoder_order)


class LSTMDecoder(nn.Module):
    def __init__(self, vocab_size: int, pad: int, embed_dim: int, num_layers: int, hidden_size: int,
                 dropout: float, encoder_output_dim: int, attention_dim: int, output_layer_dim: int):
        super().__init__()
        self.num_layers, self.hidden_size, self.dropout = num_layers, hidden_size, dropout
        self.embed_tokens = nn.Embedding(vocab_size, embed_dim, pad)
        self.layers = nn.ModuleList(
            nn.LSTMCell(input_size=embed_dim if i == 0 else encoder_output_dim, hidden_size=hidden_size)
            for i in range(num_layers))
        self.context_dim = encoder_output_dim
        self.attention = MLPAttention(hidden_size, encoder_output_dim, attention_dim)
        self.deep_output_layer = nn.Linear(hidden_size + encoder_output_dim + embed_dim, output_layer_dim)
        self.output_projection = nn.Linear(output_layer_dim, vocab_size)

    def forward(self, prev_output_tokens: Tensor, enc: EncoderOut, cache: BerardCache | None = None) -> Tensor:
        if cache is not None:
            prev_output_tokens = prev_output_tokens[:, -1:]
        bsz, seqlen = prev_output_tokens.shape
        source = enc.out
        embeddings = self.embed_tokens(prev_output_tokens)
        x = F.dropout(embeddings, self.dropout, self.training)
        if cache is not None and cache.hiddens is not None:
            hiddens, cells = list(cache.hiddens), list(cache.cells)
            encoder_component = cache.encoder_component
        else:
            # fairseq: mean over all time steps of the padded encoder output
            hiddens = [source.mean(dim=1)] * self.num_layers
            cells = [x.new_zeros(bsz, self.hidden_size)] * self.num_layers
            encoder_component = self.attention.encoder_proj(source)
        outs, contexts = [], []
        for j in range(seqlen):
            inp = x[:, j]
            context = None
            hidden = inp
            for i, layer in enumerate(self.layers):
                hidden, cell = layer(inp, (hiddens[(i - 1) % self.num_layers], cells[(i - 1) % self.num_layers]))
                hidden = F.dropout(hidden, self.dropout, self.training)
                hiddens[i], cells[i] = hidden, cell
                if context is None:
                    context = self.attention(hidden, source, encoder_component, enc.padding_mask)
                    context = F.dropout(context, self.dropout, self.training)
                    contexts.append(context)
                inp = context
            outs.append(hidden)
        if cache is not None:
            cache.hiddens, cache.cells, cache.encoder_component = hiddens, cells, encoder_component
        h = torch.stack(outs, dim=1)
        ctx = torch.stack(contexts, dim=1)
        out = torch.tanh(self.deep_output_layer(torch.cat((h, ctx, embeddings), dim=2)))
        out = F.dropout(out, self.dropout, self.training)
        return self.output_projection(out)


class BerardModel(Seq2SeqModel):
    encoder_shared_across_beams = False

    def __init__(self, cfg: BerardConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = BerardEncoder(cfg.input_layers, cfg.conv_layers, cfg.input_channels,
                                     cfg.input_feat_per_channel, cfg.num_blstm_layers, cfg.lstm_size, cfg.dropout)
        self.decoder = LSTMDecoder(cfg.vocab_size, cfg.pad, cfg.decoder_embed_dim, cfg.decoder_num_layers,
                                   cfg.decoder_hidden_dim, cfg.dropout, 2 * cfg.lstm_size, cfg.attention_dim,
                                   cfg.output_layer_dim)
        self.max_target_positions = cfg.max_target_positions

    @classmethod
    def build(cls, arch: str = "s2t_berard", vocab_size: int = 8000, **overrides: Any) -> "BerardModel":
        return cls(BerardConfig.from_args(apply_arch(arch, overrides), vocab_size))

    def encode(self, src: Tensor, src_lengths: Tensor | None) -> EncoderOut:
        return self.encoder(src, src_lengths)

    def decode(self, prev_output_tokens: Tensor, enc: EncoderOut, cache: BerardCache | None = None) -> Tensor:
        return self.decoder(prev_output_tokens, enc, cache)

    def new_cache(self) -> BerardCache:
        return BerardCache()
