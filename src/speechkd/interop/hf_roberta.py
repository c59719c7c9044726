"""Load a Hugging Face RoBERTa (`roberta-base`: RobertaModel / RobertaForMaskedLM /
RobertaForSequenceClassification; config.json + model.safetensors or pytorch_model.bin, sharded or not)
into our fairseq-named RobertaModel, without transformers.

HF RoBERTa is the fairseq model renamed (transformers' convert_roberta_original_pytorch_checkpoint_to_pytorch.py,
read backwards). Differences handled here:
- HF adds `token_type_embeddings[0]` to every position (type_vocab_size 1; token types default to 0): it is
  folded into the learned position table, which is added at every position as well.
- HF position ids are fairseq's make_positions (start at padding_idx + 1), so the tables line up row by row;
  max_position_embeddings 514 = max_positions 512 + padding_idx + 1.
- HF leaves padded positions un-zeroed after the embeddings (fairseq zeroes them). Pad keys are masked in
  attention either way, so outputs at real tokens agree; outputs at pads differ (nobody reads them).
- Older checkpoints name LayerNorm parameters gamma/beta.
safetensors is read and written by the small reader and writer below (the format is an 8-byte header length, a
JSON header, raw little-endian data), so the run-time environment needs neither transformers nor safetensors.
"""
from __future__ import annotations

import json
import mmap
import re
import struct
import sys
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError
from ..fileio import atomic_path
from ..models.roberta import RobertaConfig, RobertaModel, TextClassifier
from ..train.checkpoint import load_checkpoint

_SE = "encoder.sentence_encoder."
_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
           "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
           "BOOL": torch.bool}
# HF RoBERTa layer module -> ours (fairseq); export_hf.py reads it the other way
HF_LAYER_NAMES = {
    "attention.self.query": "self_attn.q_proj",
    "attention.self.key": "self_attn.k_proj",
    "attention.self.value": "self_attn.v_proj",
    "attention.output.dense": "self_attn.out_proj",
    "attention.output.LayerNorm": "self_attn_layer_norm",
    "intermediate.dense": "fc1",
    "output.dense": "fc2",
    "output.LayerNorm": "final_layer_norm",
}


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a .safetensors file (copied out of a private, copy-on-write memory map)."""
    path = Path(path)
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY) as mm:
            (n,) = struct.unpack("<Q", mm[:8])
            header = json.loads(mm[8:8 + n])
            base, out = 8 + n, {}
            for name, info in header.items():
                if name == "__metadata__":
                    continue
                begin, end = info["data_offsets"]
                dtype = _DTYPES[info["dtype"]]
                flat = torch.frombuffer(mm, dtype=dtype, count=(end - begin) // dtype.itemsize,
                                        offset=base + begin) if end > begin else torch.empty(0, dtype=dtype)
                out[name] = flat.clone().reshape(info["shape"])
                del flat
            return out
    except (OSError, ValueError, KeyError, struct.error, json.JSONDecodeError) as e:
        raise InputError(f"{path}: not a readable safetensors file ({type(e).__name__}: {e})") from None


def write_safetensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None
                      ) -> None:
    """Write tensors as a .safetensors file (atomically): tensors in name order, the header padded with spaces
    to a multiple of 8 bytes as the safetensors library does. A tensor shared by two names is stored under each."""
    if sys.byteorder != "little":
        raise RuntimeError("write_safetensors: safetensors data are little-endian; this machine is not")
    names = {dtype: name for name, dtype in _DTYPES.items()}
    header: dict[str, Any] = {"__metadata__": {"format": "pt", **(metadata or {})}}
    blobs, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype not in names:
            raise ValueError(f"write_safetensors: {name}: dtype {t.dtype} has no safetensors name")
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for data in blobs:
            f.write(data)


def read_hf_weights(model_dir: Path) -> dict[str, torch.Tensor]:
    """The state dict of an HF model directory: model.safetensors, pytorch_model.bin, or their sharded
    `*.index.json` form."""
    for name, reader in (("model.safetensors", read_safetensors), ("pytorch_model.bin", load_checkpoint)):
        if (model_dir / name).is_file():
            return dict(reader(model_dir / name))
        index = model_dir / f"{name}.index.json"
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            out: dict[str, torch.Tensor] = {}
            for shard in shards:
                out.update(reader(model_dir / shard))
            return out
    raise InputError(f"{model_dir}: no model.safetensors or pytorch_model.bin (nor a sharded index)")


def roberta_config_from_hf(hf: dict[str, Any], source: str = "config.json") -> tuple[RobertaConfig, int, int]:
    """HF RobertaConfig fields -> (our config, vocab size, padding idx)."""
    if hf.get("hidden_act", "gelu") != "gelu":
        raise InputError(f"{source}: hidden_act={hf['hidden_act']!r} is not supported (RoBERTa uses 'gelu')")
    if hf.get("position_embedding_type", "absolute") != "absolute":
        raise InputError(f"{source}: position_embedding_type={hf['position_embedding_type']!r} is not supported")
    if hf.get("is_decoder"):
        raise InputError(f"{source}: is_decoder=true (a causal RoBERTa) is not supported")
    try:
        pad = int(hf.get("pad_token_id", 1))
        cfg = RobertaConfig(
            layers=int(hf["num_hidden_layers"]), embed_dim=int(hf["hidden_size"]),
            heads=int(hf["num_attention_heads"]), ffn_dim=int(hf["intermediate_size"]),
            max_positions=int(hf["max_position_embeddings"]) - pad - 1,
            dropout=float(hf.get("hidden_dropout_prob", 0.1)),
            attention_dropout=float(hf.get("attention_probs_dropout_prob", 0.1)),
            pooler_dropout=float(hf.get("hidden_dropout_prob", 0.1) if hf.get("classifier_dropout") is None
                                 else hf["classifier_dropout"]),
            layer_norm_eps=float(hf.get("layer_norm_eps", 1e-12)))
        return cfg, int(hf["vocab_size"]), pad
    except KeyError as e:
        raise InputError(f"{source}: missing field {e.args[0]!r} of a RoBERTa config") from None


def convert_hf_roberta_state(weights: dict[str, torch.Tensor], head_name: str = "classifier"
                             ) -> dict[str, torch.Tensor]:
    """HF RoBERTa parameter names -> ours (fairseq 0.12). The pooler is dropped (fairseq has none)."""
    weights = {re.sub(r"\.gamma$", ".weight", re.sub(r"\.beta$", ".bias", k)): v for k, v in weights.items()}
    weights = {k[len("roberta."):] if k.startswith("roberta.") else k: v for k, v in weights.items()}
    out: dict[str, torch.Tensor] = {}
    for name, value in weights.items():
        if name.startswith("embeddings."):
            sub = name[len("embeddings."):]
            target = {"word_embeddings.weight": "embed_tokens.weight",
                      "position_embeddings.weight": "embed_positions.weight",
                      "LayerNorm.weight": "layernorm_embedding.weight",
                      "LayerNorm.bias": "layernorm_embedding.bias"}.get(sub)
            if target is not None:
                out[_SE + target] = value
        elif m := re.match(r"encoder\.layer\.(\d+)\.(.+)\.(weight|bias)$", name):
            layer, module, kind = m.groups()
            if module in HF_LAYER_NAMES:
                out[f"{_SE}layers.{layer}.{HF_LAYER_NAMES[module]}.{kind}"] = value
        elif m := re.match(r"lm_head\.(dense|layer_norm)\.(weight|bias)$", name):
            out[f"encoder.lm_head.{m.group(1)}.{m.group(2)}"] = value
        elif name in ("lm_head.bias", "lm_head.decoder.bias"):
            out["encoder.lm_head.bias"] = value
        elif name == "lm_head.decoder.weight":
            out["encoder.lm_head.weight"] = value
        elif m := re.match(r"classifier\.(dense|out_proj)\.(weight|bias)$", name):
            out[f"classification_heads.{head_name}.{m.group(1)}.{m.group(2)}"] = value
    token_type = weights.get("embeddings.token_type_embeddings.weight")
    if token_type is not None and _SE + "embed_positions.weight" in out:
        out[_SE + "embed_positions.weight"] = out[_SE + "embed_positions.weight"] + token_type[0]
    return out


def load_hf_roberta(path: str | Path, head_name: str = "classifier",
                    require_lm_head: bool = False) -> tuple[RobertaModel, dict[str, Any]]:
    """HF RoBERTa directory -> (our model in eval mode, the HF config dict). A RobertaModel checkpoint has no
    MLM head: ours then keeps its fresh init, unless require_lm_head. A sequence-classification head becomes
    classification_heads[head_name] (same dropout/dense/tanh/out_proj as fairseq's)."""
    model_dir = Path(path)
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise InputError(f"{model_dir}: no config.json (expected an HF model directory)")
    try:
        hf = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(f"{config_path}:{e.lineno}: invalid JSON: {e.msg}") from None
    cfg, vocab, pad = roberta_config_from_hf(hf, str(config_path))
    state = convert_hf_roberta_state(read_hf_weights(model_dir), head_name)
    lm = state.get("encoder.lm_head.weight")
    embed = state.get(_SE + "embed_tokens.weight")
    if lm is not None and embed is not None and not torch.equal(lm, embed):
        cfg.untie_weights = True
    model = RobertaModel(cfg, vocab, pad)
    if f"classification_heads.{head_name}.out_proj.weight" in state:
        model.register_classification_head(head_name, state[f"classification_heads.{head_name}.out_proj.weight"]
                                           .shape[0], state[f"classification_heads.{head_name}.dense.weight"].shape[0])
    if not cfg.untie_weights and embed is not None:
        state.setdefault("encoder.lm_head.weight", embed)
    has_lm = "encoder.lm_head.dense.weight" in state
    if require_lm_head and not has_lm:
        raise InputError(f"{model_dir}: no MLM head (lm_head.*) in the weights; a RobertaForMaskedLM is needed")
    expected = set(model.state_dict())
    if not has_lm:
        expected -= {k for k in expected if k.startswith("encoder.lm_head.") and k != "encoder.lm_head.weight"}
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - set(model.state_dict()))
    if missing or unexpected:
        raise InputError(f"{model_dir}: weights do not fit the config: missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]}")
    try:
        model.load_state_dict(state, strict=False)
    except RuntimeError as e:
        raise InputError(f"{model_dir}: weights do not fit the config: {' '.join(str(e).split())[:400]}") from None
    return model.eval(), hf


def load_hf_text_classifier(path: str | Path) -> tuple[TextClassifier, dict[str, Any]]:
    """An HF RobertaForTokenClassification whose classifier is the text teacher's intenter (what `speechkd export`
    writes for a slu-text-finetune run) -> (our TextClassifier in eval mode, the HF config dict). The intent
    logits are the classifier's output at <s>."""
    roberta, hf = load_hf_roberta(path)
    weights = read_hf_weights(Path(path))
    if "classifier.weight" not in weights or "classifier.bias" not in weights:
        raise InputError(f"{path}: no classifier.weight / classifier.bias (expected a RobertaForTokenClassification)")
    model = TextClassifier(roberta, weights["classifier.weight"].shape[0])
    try:
        model.intenter.load_state_dict({"weight": weights["classifier.weight"], "bias": weights["classifier.bias"]})
    except RuntimeError as e:
        raise InputError(f"{path}: classifier does not fit the encoder: {' '.join(str(e).split())[:300]}") from None
    return model.eval(), hf
