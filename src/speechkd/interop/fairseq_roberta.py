"""Load fairseq RoBERTa checkpoints (0.9 and 0.12 naming) and the SLU authors' RoBERTa-based state dicts.

Formats:
- fairseq 0.9 (`roberta.base/model.pt`, the VQ-BERT `bert_kmeans.pt` in `bert_kmeans.tar`): `args`
  Namespace; `decoder.sentence_encoder.*` with `emb_layer_norm`, `decoder.lm_head.*`.
- fairseq 0.12: `cfg`; `encoder.sentence_encoder.*` with `layernorm_embedding`, `encoder.lm_head.*`.
- textual-kd-slu `text_finetuning.py` output (`best_acc.pt`, TextModel state_dict): `text_bert.model.<fairseq
  names>` + `intenter.*`; the PT-KD CrossBert (`xbt_recent`, DataParallel): `module.vq_bert.model.<...>`.
The renames are fairseq's own RobertaModel.upgrade_state_dict_named (decoder -> encoder, emb_layer_norm ->
layernorm_embedding); q/k/v stacked in `in_proj_*` (fairseq < 0.8) are split by read_fairseq_checkpoint.
The architecture comes from the tensor shapes (layers, sizes, positions, which norms exist) and, where
shapes cannot tell, from the checkpoint's args (heads, dropouts) with fairseq base_architecture defaults.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError
from ..models.roberta import RobertaConfig, RobertaModel, TextClassifier
from ..tokenizers.dictionary import Dictionary
from ..train.checkpoint import load_released_checkpoint
from .fairseq_checkpoint import arch_arg, read_fairseq_checkpoint, split_in_proj

MASK = "<mask>"
_SE = "encoder.sentence_encoder."
# buffers fairseq saves that carry no weights
_IGNORED = re.compile(r"(^|\.)(version|_float_tensor)$")


def load_masked_lm_dictionary(path: str | Path) -> Dictionary:
    """dict.txt as fairseq's masked_lm / sentence_prediction tasks load it: `<mask>` appended as the last
    symbol (tasks/masked_lm.py setup_task: `dictionary.add_symbol("<mask>")`). For roberta.base: 4 specials +
    50260 BPE ids + <mask> = 50265 = the embedding rows."""
    d = Dictionary.load(path)
    d.add_symbol(MASK)
    return d


def convert_fairseq_roberta_state(params: dict[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    """Keys under `prefix` (stripped) renamed to our (fairseq 0.12) names; everything else dropped."""
    out: dict[str, torch.Tensor] = {}
    for name, value in split_in_proj({k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}).items():
        if _IGNORED.search(name):
            continue
        if name.startswith("decoder."):
            name = "encoder." + name[len("decoder."):]
        name = name.replace(".emb_layer_norm.", ".layernorm_embedding.")
        if name.startswith(("encoder.", "classification_heads.")):
            out[name] = value
    return out


def roberta_config_from_state(state: dict[str, torch.Tensor], args: dict[str, Any] | None = None,
                              padding_idx: int = 1, source: str = "<state dict>") -> tuple[RobertaConfig, int]:
    """(architecture, vocabulary size) of a converted state dict; `args` (fairseq args/cfg.model) supply
    what shapes cannot: heads and dropouts."""
    args = args or {}
    need = [_SE + "embed_tokens.weight", _SE + "embed_positions.weight", _SE + "layers.0.fc1.weight"]
    missing = [k for k in need if k not in state]
    if missing:
        raise InputError(f"{source}: not a RoBERTa state dict (missing {missing[0]})")
    for name, expected in (("activation_fn", "gelu"), ("pooler_activation_fn", "tanh")):
        if arch_arg(args, name, expected) != expected:
            raise InputError(f"{source}: {name}={args[name]!r} is not supported (RoBERTa uses {expected!r})")
    vocab, dim = state[_SE + "embed_tokens.weight"].shape
    layers = len({m.group(1) for k in state if (m := re.match(re.escape(_SE) + r"layers\.(\d+)\.", k))})
    heads = int(arch_arg(args, "encoder_attention_heads", max(dim // 64, 1)))
    embed_lm = state.get("encoder.lm_head.weight")
    untie = bool(arch_arg(args, "untie_weights_roberta", False)) or (
        embed_lm is not None and not torch.equal(embed_lm, state[_SE + "embed_tokens.weight"]))
    cfg = RobertaConfig(
        layers=layers, embed_dim=dim, heads=heads, ffn_dim=state[_SE + "layers.0.fc1.weight"].shape[0],
        max_positions=state[_SE + "embed_positions.weight"].shape[0] - padding_idx - 1,
        dropout=float(arch_arg(args, "dropout", 0.1)),
        attention_dropout=float(arch_arg(args, "attention_dropout", 0.1)),
        activation_dropout=float(arch_arg(args, "activation_dropout", 0.0)),
        pooler_dropout=float(arch_arg(args, "pooler_dropout", 0.0)),
        layernorm_embedding=_SE + "layernorm_embedding.weight" in state,
        normalize_before=_SE + "layer_norm.weight" in state,  # fairseq builds it iff encoder_normalize_before
        untie_weights=untie)
    return cfg, vocab


def roberta_from_state(state: dict[str, torch.Tensor], args: dict[str, Any] | None = None, prefix: str = "",
                       source: str = "<state dict>") -> RobertaModel:
    """A RobertaModel (with any classification heads) from fairseq-named parameters under `prefix`."""
    params = convert_fairseq_roberta_state(state, prefix)
    cfg, vocab = roberta_config_from_state(params, args, source=source)
    model = RobertaModel(cfg, vocab)
    heads = {k.split(".")[1] for k in params if k.startswith("classification_heads.")}
    for name in sorted(heads):
        model.register_classification_head(name, params[f"classification_heads.{name}.out_proj.weight"].shape[0],
                                           params[f"classification_heads.{name}.dense.weight"].shape[0])
    if not cfg.untie_weights:  # tied: the LM head's matrix is the embedding; old checkpoints may omit it
        params.setdefault("encoder.lm_head.weight", params[_SE + "embed_tokens.weight"])
    try:
        model.load_state_dict(params, strict=True)
    except RuntimeError as e:
        raise InputError(f"{source}: parameters do not fit the RoBERTa their shapes describe: "
                         f"{' '.join(str(e).split())[:400]}") from None
    return model


def load_fairseq_roberta(path: str | Path, dictionary: Dictionary | None = None) -> tuple[RobertaModel, dict]:
    """fairseq RoBERTa checkpoint (0.9 or 0.12) -> (model in eval mode, flat args). With `dictionary`
    (load_masked_lm_dictionary of the model's dict.txt) its size is checked against the embedding."""
    state, args = read_fairseq_checkpoint(path)
    model = roberta_from_state(state, args, source=str(path))
    if dictionary is not None and len(dictionary) != model.vocab_size:
        raise InputError(f"{path}: embedding has {model.vocab_size} rows but the dictionary has {len(dictionary)} "
                         f"symbols (dict.txt + 4 specials + <mask>); is it the model's dict.txt?")
    return model.eval(), args


def load_authors_text_classifier(path: str | Path, heads: int | None = None) -> TextClassifier:
    """textual-kd-slu text teacher (`best_acc.pt` / `best_loss.pt`: TextModel.state_dict(), RoBERTa under
    `text_bert.model.`, classifier `intenter`). The file has no args: heads default to dim // 64 (12 for base)."""
    state = load_released_checkpoint(path)
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    if "intenter.weight" not in state:
        raise InputError(f"{path}: not a textual-kd-slu TextModel state dict (no 'intenter.weight')")
    args = {"encoder_attention_heads": heads} if heads else None
    roberta = roberta_from_state(state, args, prefix="text_bert.model.", source=str(path))
    model = TextClassifier(roberta, state["intenter.weight"].shape[0])
    model.intenter.load_state_dict({"weight": state["intenter.weight"], "bias": state["intenter.bias"]})
    return model.eval()


def load_authors_pt_kd_vq_bert(path: str | Path, heads: int | None = None) -> RobertaModel:
    """The VQ-BERT (with its MLM head) of the PT-KD CrossBert checkpoint (`xbt_recent`: DataParallel
    state_dict, `module.vq_bert.model.<fairseq names>`; `module.vq_lm_head.*` duplicates its lm_head)."""
    state = load_released_checkpoint(path)
    prefix = "module.vq_bert.model." if any(k.startswith("module.") for k in state) else "vq_bert.model."
    args = {"encoder_attention_heads": heads} if heads else None
    return roberta_from_state(state, args, prefix=prefix, source=str(path)).eval()
