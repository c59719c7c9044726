"""Load Hugging Face `Speech2TextForConditionalGeneration` and `FSMTForConditionalGeneration` checkpoints (a
directory with config.json and model.safetensors / pytorch_model.bin, possibly sharded) into our models, without
transformers.

Speech2Text (transformers models/speech_to_text) is fairseq's s2t_transformer with pre-LN layers and final layer
norms in both stacks; only the names differ (`model.encoder.conv` = `encoder.subsample`, `model.encoder.layers` =
`encoder.transformer_layers`, `lm_head` = `decoder.output_projection`, tied to the decoder embeddings unless
config.tie_word_embeddings is false). Positions are the same fairseq sinusoids (not stored).

FSMT (transformers models/fsmt) is the port of FAIR's WMT19 fairseq transformers: post-LN, no final layer norms,
sinusoidal positions (stored but recomputed here), separate source and target vocabularies (src_vocab_size,
tgt_vocab_size; the en-de/de-en models use one joined dictionary, shared when tie_word_embeddings is set), decoder
output projection stored as `model.decoder.output_projection.weight` and tied to the decoder embeddings when it is
absent or equal to them; d_model, encoder_ffn_dim, decoder_ffn_dim, *_layers, *_attention_heads,
max_position_embeddings, scale_embedding map to fairseq's arguments.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..errors import InputError
from ..models.s2t_transformer import S2TTransformerConfig, S2TTransformerModel
from ..models.seq2seq import Seq2SeqModel
from ..models.transformer_nmt import TransformerNMTConfig, TransformerNMTModel
from .fairseq_models import load_state_strict
from .hf_roberta import read_safetensors

_ACTIVATIONS = ("relu", "gelu")
# Speech2Text name parts (after the `model.` prefix) -> fairseq's / ours; export_hf.py applies them backwards
SPEECH2TEXT_RENAMES = (("encoder.conv.conv_layers.", "encoder.subsample.conv_layers."),
                       ("encoder.layers.", "encoder.transformer_layers."))


def read_hf_config(path: str | Path) -> dict[str, Any]:
    cfg_path = Path(path) / "config.json"
    try:
        return json.loads(cfg_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{cfg_path}: missing (a Hugging Face model directory needs config.json)") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{cfg_path}: not valid JSON ({err})") from None


def read_hf_weights(path: str | Path) -> dict[str, Tensor]:
    """All tensors of a HF model directory: model.safetensors, pytorch_model.bin (weights_only) or their sharded
    forms with an *.index.json weight map."""
    root = Path(path)
    for index_name, single in (("model.safetensors.index.json", "model.safetensors"),
                               ("pytorch_model.bin.index.json", "pytorch_model.bin")):
        index = root / index_name
        if index.exists():
            files = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
            state: dict[str, Tensor] = {}
            for name in files:
                state.update(_read_weight_file(root / name))
            return state
        if (root / single).exists():
            return _read_weight_file(root / single)
    raise InputError(f"{root}: no model.safetensors or pytorch_model.bin")


def _read_weight_file(path: Path) -> dict[str, Tensor]:
    if path.suffix == ".safetensors":  # our reader: safetensors is no run-time dependency
        return read_safetensors(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt / truncated files: one clear message
        raise InputError(f"{path}: cannot read weights ({type(err).__name__}: {err})") from None


def _get(cfg: dict[str, Any], name: str, default: Any) -> Any:
    value = cfg.get(name)
    return default if value is None else value


def _activation(cfg: dict[str, Any], source: str) -> str:
    act = _get(cfg, "activation_function", "relu")
    if act not in _ACTIVATIONS:
        raise InputError(f"{source}: activation_function {act!r} is not supported (expected one of {_ACTIVATIONS})")
    return act


def _strip_model_prefix(state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {(k[len("model."):] if k.startswith("model.") else k): v for k, v in state.items()}


def speech2text_config(cfg: dict[str, Any], source: str = "config.json") -> S2TTransformerConfig:
    """Our s2t_transformer config for a HF Speech2TextConfig (defaults: transformers' Speech2TextConfig)."""
    if _get(cfg, "pad_token_id", 1) != 1:
        raise InputError(f"{source}: pad_token_id {cfg['pad_token_id']} is not supported (fairseq's s2t encoder "
                         "computes positions with padding index 1)")
    if _get(cfg, "encoder_layerdrop", 0.0) or _get(cfg, "decoder_layerdrop", 0.0):
        raise InputError(f"{source}: layerdrop is not supported")
    d_model = _get(cfg, "d_model", 256)
    kernels = tuple(int(k) for k in _get(cfg, "conv_kernel_sizes", (5, 5)))
    if len(kernels) != _get(cfg, "num_conv_layers", len(kernels)):
        raise InputError(f"{source}: num_conv_layers {cfg['num_conv_layers']} != len(conv_kernel_sizes) {len(kernels)}")
    return S2TTransformerConfig(
        vocab_size=_get(cfg, "vocab_size", 10000), pad=1,
        input_feat_per_channel=_get(cfg, "input_feat_per_channel", 80), input_channels=_get(cfg, "input_channels", 1),
        conv_kernel_sizes=kernels, conv_channels=_get(cfg, "conv_channels", 1024),
        encoder_embed_dim=d_model, encoder_ffn_embed_dim=_get(cfg, "encoder_ffn_dim", 2048),
        encoder_layers=_get(cfg, "encoder_layers", 12), encoder_attention_heads=_get(cfg, "encoder_attention_heads", 4),
        encoder_normalize_before=True,
        decoder_embed_dim=d_model, decoder_ffn_embed_dim=_get(cfg, "decoder_ffn_dim", 2048),
        decoder_layers=_get(cfg, "decoder_layers", 6), decoder_attention_heads=_get(cfg, "decoder_attention_heads", 4),
        decoder_normalize_before=True, decoder_learned_pos=False,
        dropout=_get(cfg, "dropout", 0.1), attention_dropout=_get(cfg, "attention_dropout", 0.0),
        activation_dropout=_get(cfg, "activation_dropout", 0.0), activation_fn=_activation(cfg, source),
        share_decoder_input_output_embed=bool(_get(cfg, "tie_word_embeddings", True)),
        no_scale_embedding=not _get(cfg, "scale_embedding", True),
        max_source_positions=_get(cfg, "max_source_positions", 6000),
        max_target_positions=_get(cfg, "max_target_positions", 1024))


def speech2text_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """HF Speech2Text names -> fairseq / our names."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if key.startswith("model."):
            key = key[len("model."):]
        if "embed_positions" in key:
            continue
        if key == "lm_head.weight":
            key = "decoder.output_projection.weight"
        for hf_name, ours in SPEECH2TEXT_RENAMES:
            key = key.replace(hf_name, ours)
        out[key] = value
    return out


def load_hf_speech2text(path: str | Path) -> S2TTransformerModel:
    """Our S2TTransformerModel (eval mode) with the weights of a HF Speech2TextForConditionalGeneration."""
    cfg = speech2text_config(read_hf_config(path), str(Path(path) / "config.json"))
    state = speech2text_state(read_hf_weights(path))
    if "decoder.output_projection.weight" not in state:
        cfg.share_decoder_input_output_embed = True
    model = S2TTransformerModel(cfg)
    if cfg.share_decoder_input_output_embed:
        state.setdefault("decoder.output_projection.weight", state.get("decoder.embed_tokens.weight"))
    load_state_strict(model, state, str(path))
    return model.eval()


def fsmt_config(cfg: dict[str, Any], state: dict[str, Tensor], source: str = "config.json") -> TransformerNMTConfig:
    """Our transformer config for a HF FSMTConfig + its (prefix-stripped) weights."""
    if _get(cfg, "encoder_layerdrop", 0.0) or _get(cfg, "decoder_layerdrop", 0.0):
        raise InputError(f"{source}: layerdrop is not supported")
    d_model = _get(cfg, "d_model", 1024)
    src_vocab, tgt_vocab = _get(cfg, "src_vocab_size", 42024), _get(cfg, "tgt_vocab_size", 42024)
    emb_src, emb_tgt = state.get("encoder.embed_tokens.weight"), state.get("decoder.embed_tokens.weight")
    share_all = bool(_get(cfg, "tie_word_embeddings", False)) and src_vocab == tgt_vocab
    if emb_src is not None and emb_tgt is not None and emb_src.shape == emb_tgt.shape and torch.equal(emb_src, emb_tgt):
        share_all = True
    out_proj = state.get("decoder.output_projection.weight")
    share_io = share_all or out_proj is None or (emb_tgt is not None and out_proj.shape == emb_tgt.shape
                                                 and torch.equal(out_proj, emb_tgt))
    max_pos = _get(cfg, "max_position_embeddings", 1024)
    return TransformerNMTConfig(
        src_vocab_size=src_vocab, tgt_vocab_size=tgt_vocab, pad=_get(cfg, "pad_token_id", 1),
        encoder_embed_dim=d_model, encoder_ffn_embed_dim=_get(cfg, "encoder_ffn_dim", 4096),
        encoder_layers=_get(cfg, "encoder_layers", 12), encoder_attention_heads=_get(cfg, "encoder_attention_heads", 16),
        decoder_embed_dim=d_model, decoder_ffn_embed_dim=_get(cfg, "decoder_ffn_dim", 4096),
        decoder_layers=_get(cfg, "decoder_layers", 12), decoder_attention_heads=_get(cfg, "decoder_attention_heads", 16),
        dropout=_get(cfg, "dropout", 0.1), attention_dropout=_get(cfg, "attention_dropout", 0.0),
        activation_dropout=_get(cfg, "activation_dropout", 0.0), activation_fn=_activation(cfg, source),
        share_all_embeddings=share_all, share_decoder_input_output_embed=share_io,
        no_scale_embedding=not _get(cfg, "scale_embedding", True),
        max_source_positions=max_pos, max_target_positions=max_pos)


def load_hf_fsmt(path: str | Path) -> TransformerNMTModel:
    """Our TransformerNMTModel (eval mode) with the weights of a HF FSMTForConditionalGeneration."""
    state = {k: v for k, v in _strip_model_prefix(read_hf_weights(path)).items() if "embed_positions" not in k}
    cfg = fsmt_config(read_hf_config(path), state, str(Path(path) / "config.json"))
    if cfg.share_all_embeddings:
        emb = state.get("decoder.embed_tokens.weight", state.get("encoder.embed_tokens.weight"))
        state.setdefault("encoder.embed_tokens.weight", emb)
        state.setdefault("decoder.embed_tokens.weight", emb)
    if cfg.share_decoder_input_output_embed:
        state.setdefault("decoder.output_projection.weight", state.get("decoder.embed_tokens.weight"))
    model = TransformerNMTModel(cfg)
    load_state_strict(model, state, str(path))
    return model.eval()


def load_hf_model(path: str | Path) -> Seq2SeqModel:
    """Dispatch on config.json's model_type: speech_to_text or fsmt."""
    model_type = read_hf_config(path).get("model_type")
    if model_type == "speech_to_text":
        return load_hf_speech2text(path)
    if model_type == "fsmt":
        return load_hf_fsmt(path)
    raise InputError(f"{Path(path) / 'config.json'}: model_type {model_type!r} is not supported "
                     "(expected speech_to_text or fsmt)")
