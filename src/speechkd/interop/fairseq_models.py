"""Build our models from fairseq checkpoints (no fairseq needed).

`load_fairseq_model(path)` reads the checkpoint (fairseq_checkpoint.read_fairseq_checkpoint: old `args`
Namespaces and new `cfg` dicts, in_proj split), completes the arguments with the architecture's defaults the
way fairseq's register_model_architecture functions do, applies fairseq's state-dict upgrades
(TransformerEncoderLayer / TransformerDecoder.upgrade_state_dict_named: `layer_norms.N` renamed,
`decoder.embed_out` -> `decoder.output_projection.weight`, no final layer norm in checkpoints from before it
existed: encoder version < 2 / decoder version <= 2, recognised by the missing weights) and loads strictly.
Supported: `transformer*` (text NMT, incl. the WMT19 expert), `s2t_transformer*`, `s2t_berard*`.

`load_pretrained_encoder(model, path)` is fairseq's --load-pretrained-encoder-from
(checkpoint_utils.load_pretrained_component_from_model): every `encoder.*` tensor of the checkpoint replaces the
model's encoder parameters, strictly (same names, same shapes).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import InputError
from ..models import rnn_st, s2t_transformer, transformer_nmt
from ..models.rnn_st import BerardConfig, BerardModel
from ..models.s2t_transformer import S2TTransformerConfig, S2TTransformerModel, drop_ctc_head
from ..models.seq2seq import Seq2SeqModel
from ..models.transformer_nmt import TransformerNMTConfig, TransformerNMTModel
from ..train.checkpoint import load_checkpoint, model_state
from .fairseq_checkpoint import read_fairseq_checkpoint, split_in_proj

# buffers fairseq keeps in state dicts that carry no weights for us
_IGNORED_SUFFIXES = ("._float_tensor", ".version", "embed_positions.weights")

# arguments our models do not implement: (name, value that is fine)
_UNSUPPORTED = (("adaptive_softmax_cutoff", None), ("adaptive_input", False), ("no_token_positional_embeddings", False),
                ("cross_self_attention", False), ("conv_version", "s2t_transformer"), ("ctc_weight", 0.0),
                ("encoder_layers_to_keep", None), ("decoder_layers_to_keep", None), ("quant_noise_pq", 0),
                ("merge_src_tgt_embed", False), ("tie_adaptive_weights", False))


def _arch_of(args: dict[str, Any], source: str) -> str:
    arch = args.get("arch") or args.get("_name")
    if not arch:
        raise InputError(f"{source}: the checkpoint's arguments name no architecture ('arch')")
    return str(arch)


def _check_supported(args: dict[str, Any], source: str) -> None:
    for name, fine in _UNSUPPORTED:
        value = args.get(name)
        if value not in (None, "", fine):
            raise InputError(f"{source}: argument {name}={value!r} is not supported by speechkd's models")
    for side in ("decoder_input_dim", "decoder_output_dim"):
        if args.get(side) is not None and args[side] != args.get("decoder_embed_dim"):
            raise InputError(f"{source}: {side}={args[side]} differs from decoder_embed_dim "
                             f"{args.get('decoder_embed_dim')} (projections are not supported)")


def _rows(state: dict[str, Tensor], key: str, source: str) -> int:
    if key not in state:
        raise InputError(f"{source}: missing parameter {key!r}")
    return int(state[key].shape[0])


def _without_final_norm(state: dict[str, Tensor], side: str) -> bool:
    """fairseq's upgrade removes the layer norm after the stack for encoder version < 2 / decoder version <= 2
    (checkpoints from before it existed), and then loads strictly: such checkpoints have no
    `<side>.layer_norm.*` weights. We decide on the weights themselves, which agrees with fairseq on every
    checkpoint fairseq loads and keeps the norm of files that carry its weights without a version entry."""
    return f"{side}.layer_norm.weight" not in state


def upgrade_transformer_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """fairseq's upgrade_state_dict_named for transformer layers/decoders: layer_norms.N renamed, embed_out ->
    output_projection (a copy; the caller decides whether it is tied)."""
    out: dict[str, Tensor] = {}
    enc_map = {"0": "self_attn_layer_norm", "1": "final_layer_norm"}
    dec_map = {"0": "self_attn_layer_norm", "1": "encoder_attn_layer_norm", "2": "final_layer_norm"}
    for key, value in state.items():
        parts = key.split(".")
        if "layer_norms" in parts:
            i = parts.index("layer_norms")
            mapping = dec_map if parts[0] == "decoder" else enc_map
            if i + 1 < len(parts) and parts[i + 1] in mapping:
                key = ".".join(parts[:i] + [mapping[parts[i + 1]]] + parts[i + 2:])
        if key == "decoder.embed_out":
            key = "decoder.output_projection.weight"
        out[key] = value
    return out


def load_state_strict(module: nn.Module, state: dict[str, Tensor], source: str, prefix: str = "") -> None:
    """Copy `state` into `module`: every parameter/buffer it expects must be there with the same shape, and no
    other tensor may be (fairseq loads strictly). InputError names the first offending key."""
    state = {k: v for k, v in state.items() if not k.endswith(_IGNORED_SUFFIXES)}
    expected = module.state_dict()
    expected = {k: v for k, v in expected.items() if not k.endswith(_IGNORED_SUFFIXES)}
    missing = [k for k in expected if k not in state]
    if missing:
        raise InputError(f"{source}: parameter {(prefix + missing[0])!r} is missing"
                         + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        raise InputError(f"{source}: unexpected parameter {(prefix + unexpected[0])!r} for this architecture"
                         + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""))
    for key, value in state.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise InputError(f"{source}: parameter {(prefix + key)!r} has shape {tuple(value.shape)}, "
                             f"the model expects {tuple(expected[key].shape)}")
    module.load_state_dict(state, strict=False)


def _build_transformer(arch: str, args: dict[str, Any], state: dict[str, Tensor], source: str) -> Seq2SeqModel:
    args = transformer_nmt.apply_arch(arch, args)
    state = upgrade_transformer_state(state)
    for side in ("encoder", "decoder"):
        if args[f"{side}_normalize_before"] and _without_final_norm(state, side):
            args[f"no_{side}_final_norm"] = True
    src_vocab = _rows(state, "encoder.embed_tokens.weight", source)
    tgt_vocab = _rows(state, "decoder.embed_tokens.weight", source) if "decoder.embed_tokens.weight" in state \
        else src_vocab
    if args["share_all_embeddings"] or args["share_decoder_input_output_embed"]:
        state.setdefault("decoder.embed_tokens.weight", state.get("encoder.embed_tokens.weight"))
        state.setdefault("decoder.output_projection.weight", state["decoder.embed_tokens.weight"])
    model = TransformerNMTModel(TransformerNMTConfig.from_args(args, src_vocab, tgt_vocab))
    load_state_strict(model, state, source)
    return model


def _build_s2t(arch: str, args: dict[str, Any], state: dict[str, Tensor], source: str) -> Seq2SeqModel:
    args = s2t_transformer.apply_arch(arch, args)
    arch_default_feats(args)
    state = upgrade_transformer_state(state)
    if args["decoder_normalize_before"] and _without_final_norm(state, "decoder"):
        args["no_decoder_final_norm"] = True
    if args["share_decoder_input_output_embed"]:
        state.setdefault("decoder.output_projection.weight", state.get("decoder.embed_tokens.weight"))
    model = S2TTransformerModel(S2TTransformerConfig.from_args(args, _rows(state, "decoder.embed_tokens.weight",
                                                                           source)))
    if args.get("no_decoder_final_norm"):
        model.decoder.layer_norm = None
    load_state_strict(model, state, source)
    return model


def arch_default_feats(args: dict[str, Any]) -> None:
    """The speech_to_text task sets these from its data config; older checkpoints may lack them."""
    for name, value in (("input_feat_per_channel", 80), ("input_channels", 1), ("max_source_positions", 6000),
                        ("max_target_positions", 1024)):
        if args.get(name) is None:
            args[name] = value


def _build_berard(arch: str, args: dict[str, Any], state: dict[str, Tensor], source: str) -> Seq2SeqModel:
    args = rnn_st.apply_arch(arch, args)
    arch_default_feats(args)
    args.pop("max_target_positions", None)  # an LSTM decoder has no position limit (fairseq: 1e6)
    model = BerardModel(BerardConfig.from_args(args, _rows(state, "decoder.embed_tokens.weight", source)))
    load_state_strict(model, state, source)
    return model


def build_fairseq_model(args: dict[str, Any], state: dict[str, Tensor], source: str = "checkpoint") -> Seq2SeqModel:
    """Our model for fairseq arguments + state dict (in_proj already split)."""
    arch = _arch_of(args, source)
    _check_supported(args, source)
    try:
        if arch in transformer_nmt.ARCHITECTURES:
            return _build_transformer(arch, args, state, source)
        if arch in s2t_transformer.ARCHITECTURES:
            return _build_s2t(arch, args, state, source)
        if arch in rnn_st.ARCHITECTURES:
            return _build_berard(arch, args, state, source)
    except ValueError as err:  # inconsistent arguments (e.g. heads not dividing the dimension)
        raise InputError(f"{source}: {err}") from err
    known = [*transformer_nmt.ARCHITECTURES, *s2t_transformer.ARCHITECTURES, *rnn_st.ARCHITECTURES]
    raise InputError(f"{source}: unsupported fairseq architecture {arch!r} (supported: {', '.join(known)})")


def load_fairseq_model(path: str | Path, arg_overrides: dict[str, Any] | None = None
                       ) -> tuple[Seq2SeqModel, argparse.Namespace]:
    """-> (model in eval mode, the completed architecture arguments as a Namespace)."""
    state, args = read_fairseq_checkpoint(path)
    args.update(arg_overrides or {})
    model = build_fairseq_model(args, state, str(path))
    full = dict(args)
    full.update(model.cfg.to_dict())  # type: ignore[union-attr]
    return model.eval(), argparse.Namespace(**full)


def load_pretrained_encoder(model: Seq2SeqModel, path: str | Path) -> Seq2SeqModel:
    """fairseq --load-pretrained-encoder-from: copy every `encoder.*` tensor of the checkpoint at `path` (fairseq's
    or ours) into model.encoder, strictly. Returns the model."""
    state = upgrade_transformer_state(split_in_proj(model_state(load_checkpoint(path), path)))
    if getattr(model.encoder, "ctc_proj", None) is None:  # an ASR's CTC head has no counterpart in a student
        state = drop_ctc_head(state)
    encoder_state = {k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")}
    if not encoder_state:
        raise InputError(f"{path}: no 'encoder.*' parameters to initialise the encoder from")
    with torch.no_grad():
        load_state_strict(model.encoder, encoder_state, str(path), prefix="encoder.")
    return model
