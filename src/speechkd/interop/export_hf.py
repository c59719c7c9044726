"""Write our models as Hugging Face model directories (config.json + model.safetensors; no transformers needed):
the reverse of hf_models.py and hf_roberta.py, name for name.

- s2t_transformer (ST student, ASR) -> Speech2TextForConditionalGeneration. Speech2Text is fairseq's pre-LN
  s2t_transformer with one d_model for both stacks; models outside that (post-LN, learned decoder positions,
  an embedding layer norm, different encoder / decoder widths) are refused.
- text transformer (NMT expert) -> FSMTForConditionalGeneration: post-LN, no final layer norms, sinusoidal
  positions (stored, as FSMT's own files do), one d_model and max_position_embeddings for both sides;
  tie_word_embeddings only when all three matrices are one (FSMT ties the encoder embeddings and the output
  projection to the decoder embeddings together). The vocabulary files FSMTTokenizer reads come from the
  fairseq dict and fastBPE codes as transformers' convert_fsmt_original_pytorch_checkpoint_to_pytorch.py
  makes them: a piece `x@@` is `x`, a word-final piece `x` is `x</w>`, merges.txt = bpecodes without counts.
- SLU text teacher (TextClassifier: RoBERTa <s> -> one Linear) -> RobertaForTokenClassification. The teacher's
  head is a single Linear (textual-kd-slu TextModel); RobertaForSequenceClassification's head is
  dense -> tanh -> out_proj and cannot hold it, RobertaForTokenClassification's classifier is exactly that Linear
  applied at every position: the intent logits are its output at position 0 (<s>). token_type_embeddings are
  zero (ours has none; HF adds row 0 everywhere).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..errors import InputError
from ..fileio import write_json_atomic, write_text_atomic
from ..models.roberta import TextClassifier
from ..models.s2t_transformer import S2TTransformerModel
from ..models.transformer import SinusoidalPositionalEmbedding
from ..models.transformer_nmt import TransformerNMTModel
from ..tokenizers.dictionary import BOS, EOS, PAD, UNK, Dictionary
from .hf_models import SPEECH2TEXT_RENAMES
from .hf_roberta import HF_LAYER_NAMES, write_safetensors

WEIGHTS_FILE = "model.safetensors"
_ACTIVATIONS = ("relu", "gelu")
_SPECIAL_IDS = {"pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2, "decoder_start_token_id": 2}


def _require(ok: bool, what: str, why: str) -> None:
    if not ok:
        raise InputError(f"{what}: cannot be written as Hugging Face {why}")


def _cpu(state: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


def _encoder_decoder_sizes(c: Any) -> dict[str, Any]:
    """The config.json keys Speech2Text and FSMT (both BART-style configs) name alike."""
    return {"encoder_layers": c.encoder_layers, "encoder_ffn_dim": c.encoder_ffn_embed_dim,
            "encoder_attention_heads": c.encoder_attention_heads, "decoder_layers": c.decoder_layers,
            "decoder_ffn_dim": c.decoder_ffn_embed_dim, "decoder_attention_heads": c.decoder_attention_heads,
            "encoder_layerdrop": 0.0, "decoder_layerdrop": 0.0, "dropout": c.dropout,
            "attention_dropout": c.attention_dropout, "activation_dropout": c.activation_dropout,
            "activation_function": c.activation_fn, "scale_embedding": not c.no_scale_embedding}


# --------------------------------------------------------------------------------------------- Speech2Text

def speech2text_hf_config(model: S2TTransformerModel, what: str = "model") -> dict[str, Any]:
    c = model.cfg
    _require(c.encoder_embed_dim == c.decoder_embed_dim, what,
             f"Speech2Text: encoder_embed_dim {c.encoder_embed_dim} != decoder_embed_dim {c.decoder_embed_dim}")
    _require(c.encoder_normalize_before and c.decoder_normalize_before and model.decoder.layer_norm is not None,
             what, "Speech2Text: it has pre-LN layers and final layer norms only")
    _require(not c.decoder_learned_pos and not c.layernorm_embedding, what,
             "Speech2Text: sinusoidal decoder positions and no embedding layer norm only")
    _require(c.activation_fn in _ACTIVATIONS and c.pad == 1 and not c.ctc_head, what,
             f"Speech2Text: activation {c.activation_fn!r} / pad {c.pad} / CTC head not supported")
    return {"architectures": ["Speech2TextForConditionalGeneration"], "model_type": "speech_to_text",
            "vocab_size": c.vocab_size, "d_model": c.encoder_embed_dim,
            **_encoder_decoder_sizes(c),
            "max_source_positions": c.max_source_positions, "max_target_positions": c.max_target_positions,
            "num_conv_layers": len(c.conv_kernel_sizes), "conv_kernel_sizes": list(c.conv_kernel_sizes),
            "conv_channels": c.conv_channels, "input_feat_per_channel": c.input_feat_per_channel,
            "input_channels": c.input_channels, "tie_word_embeddings": c.share_decoder_input_output_embed,
            "is_encoder_decoder": True, **_SPECIAL_IDS}


def speech2text_hf_state(model: S2TTransformerModel) -> dict[str, Tensor]:
    """Our / fairseq names -> Speech2Text's (hf_models.speech2text_state read backwards); the output projection is
    lm_head.weight, left out when tied (transformers ties it to the decoder embeddings)."""
    out: dict[str, Tensor] = {}
    for key, value in _cpu(model.state_dict()).items():
        if key == "decoder.output_projection.weight":
            if not model.cfg.share_decoder_input_output_embed:
                out["lm_head.weight"] = value
            continue
        for hf_name, ours in SPEECH2TEXT_RENAMES:
            key = key.replace(ours, hf_name)
        out["model." + key] = value
    return out


def feature_extractor_config(cmvn: str) -> dict[str, Any] | None:
    """Speech2TextFeatureExtractor settings for the run's feature normalisation (80-dim log-mel fbank, 16 kHz);
    None for global CMVN, which the extractor cannot apply."""
    if cmvn == "global":
        return None
    normalise = cmvn == "utterance"
    return {"feature_extractor_type": "Speech2TextFeatureExtractor", "feature_size": 80, "num_mel_bins": 80,
            "sampling_rate": 16000, "padding_value": 0.0, "padding_side": "right", "return_attention_mask": True,
            "do_ceptral_normalize": normalise, "normalize_means": normalise, "normalize_vars": normalise}


def write_hf_speech2text(out: Path, model: S2TTransformerModel, cmvn: str, what: str = "model") -> None:
    write_json_atomic(out / "config.json", speech2text_hf_config(model, what))
    write_safetensors(out / WEIGHTS_FILE, speech2text_hf_state(model))
    extractor = feature_extractor_config(cmvn)
    if extractor is not None:
        write_json_atomic(out / "preprocessor_config.json", extractor)


# ------------------------------------------------------------------------------------------------- FSMT

def _tied_all(model: TransformerNMTModel) -> bool:
    enc, dec = model.encoder.embed_tokens.weight, model.decoder.embed_tokens.weight
    out = model.decoder.output_projection.weight
    return enc.shape == dec.shape and torch.equal(enc, dec) and torch.equal(out, dec)


def fsmt_hf_config(model: TransformerNMTModel, langs: tuple[str, str], what: str = "model") -> dict[str, Any]:
    c = model.cfg
    _require(c.encoder_embed_dim == c.decoder_embed_dim, what,
             f"FSMT: encoder_embed_dim {c.encoder_embed_dim} != decoder_embed_dim {c.decoder_embed_dim}")
    _require(not c.encoder_normalize_before and not c.decoder_normalize_before, what,
             "FSMT: it has post-LN layers only (no *_normalize_before)")
    _require(not c.encoder_learned_pos and not c.decoder_learned_pos and not c.layernorm_embedding, what,
             "FSMT: sinusoidal positions and no embedding layer norm only")
    _require(c.max_source_positions == c.max_target_positions, what,
             f"FSMT: one max_position_embeddings (source {c.max_source_positions}, target {c.max_target_positions})")
    _require(c.activation_fn in _ACTIVATIONS and c.pad == 1, what,
             f"FSMT: activation {c.activation_fn!r} / pad {c.pad} not supported")
    return {"architectures": ["FSMTForConditionalGeneration"], "model_type": "fsmt", "langs": list(langs),
            "src_vocab_size": c.src_vocab_size, "tgt_vocab_size": c.tgt_vocab_size, "d_model": c.encoder_embed_dim,
            **_encoder_decoder_sizes(c),
            "max_position_embeddings": c.max_source_positions, "tie_word_embeddings": _tied_all(model),
            "is_encoder_decoder": True, "forced_eos_token_id": 2, **_SPECIAL_IDS}


def fsmt_hf_state(model: TransformerNMTModel) -> dict[str, Tensor]:
    """Our / fairseq names under `model.` (FSMT keeps fairseq's), with the sinusoidal position tables FSMT stores
    (max_position_embeddings + pad + 1 rows, fairseq's table)."""
    out = {"model." + k: v for k, v in _cpu(model.state_dict()).items()}
    c = model.cfg
    for side, dim in (("encoder", c.encoder_embed_dim), ("decoder", c.decoder_embed_dim)):
        out[f"model.{side}.embed_positions.weight"] = SinusoidalPositionalEmbedding.table(
            c.max_source_positions + c.pad + 1, dim, c.pad)
    return out


def fsmt_vocab(dictionary: Dictionary) -> dict[str, int]:
    """A fairseq BPE dictionary as FSMTTokenizer's vocab-*.json (`x@@` -> `x`, word-final `x` -> `x</w>`)."""
    vocab: dict[str, int] = {}
    for i, sym in enumerate(dictionary.symbols):
        if sym in (BOS, PAD, EOS, UNK):
            key = sym
        else:
            key = sym[:-2] if sym.endswith("@@") else sym + "</w>"
        vocab.setdefault(key, i)
    return vocab


def fsmt_merges(codes_text: str) -> str:
    """fastBPE codes (`left right count` lines) as FSMTTokenizer's merges.txt (counts removed)."""
    return re.sub(r" \d+$", "", codes_text, flags=re.M)


def write_hf_fsmt(out: Path, model: TransformerNMTModel, dictionary: Dictionary, codes: Path,
                  langs: tuple[str, str], what: str = "model") -> None:
    """dictionary: the joined one (source and target); codes: the fastBPE codes file."""
    write_json_atomic(out / "config.json", fsmt_hf_config(model, langs, what))
    write_safetensors(out / WEIGHTS_FILE, fsmt_hf_state(model))
    vocab = fsmt_vocab(dictionary)
    write_json_atomic(out / "vocab-src.json", vocab)
    write_json_atomic(out / "vocab-tgt.json", vocab)
    write_text_atomic(out / "merges.txt", fsmt_merges(codes.read_text(encoding="utf-8")))
    write_json_atomic(out / "tokenizer_config.json", {
        "tokenizer_class": "FSMTTokenizer", "langs": list(langs), "do_lower_case": False,
        "model_max_length": model.cfg.max_source_positions})


# ---------------------------------------------------------------------------------------------- RoBERTa

def roberta_hf_config(model: TextClassifier, intents: list[str], what: str = "model") -> dict[str, Any]:
    r = model.roberta
    c = r.cfg
    _require(c.layernorm_embedding and not c.normalize_before, what,
             "RoBERTa: it has the embedding layer norm and post-LN layers only")
    _require(len(intents) == model.intenter.out_features, what,
             f"a {model.intenter.out_features}-class classifier: the intent dict has {len(intents)} intents")
    return {"architectures": ["RobertaForTokenClassification"], "model_type": "roberta",
            "vocab_size": r.vocab_size, "hidden_size": c.embed_dim, "num_hidden_layers": c.layers,
            "num_attention_heads": c.heads, "intermediate_size": c.ffn_dim, "hidden_act": "gelu",
            "hidden_dropout_prob": c.dropout, "attention_probs_dropout_prob": c.attention_dropout,
            "classifier_dropout": 0.0, "max_position_embeddings": c.max_positions + r.padding_idx + 1,
            "type_vocab_size": 1, "layer_norm_eps": c.layer_norm_eps, "position_embedding_type": "absolute",
            "pad_token_id": r.padding_idx, "bos_token_id": 0, "eos_token_id": 2, "initializer_range": 0.02,
            "id2label": {str(i): name for i, name in enumerate(intents)},
            "label2id": {name: i for i, name in enumerate(intents)}}


def roberta_hf_state(model: TextClassifier) -> dict[str, Tensor]:
    """hf_roberta.convert_hf_roberta_state read backwards, for the encoder; the intenter is `classifier`."""
    se = model.roberta.encoder.sentence_encoder
    layer_names = {ours: hf for hf, ours in HF_LAYER_NAMES.items()}
    out = {"roberta.embeddings.word_embeddings.weight": se.embed_tokens.weight,
           "roberta.embeddings.position_embeddings.weight": se.embed_positions.weight,
           "roberta.embeddings.token_type_embeddings.weight": torch.zeros(1, se.embed_tokens.embedding_dim),
           "roberta.embeddings.LayerNorm.weight": se.layernorm_embedding.weight,
           "roberta.embeddings.LayerNorm.bias": se.layernorm_embedding.bias,
           "classifier.weight": model.intenter.weight, "classifier.bias": model.intenter.bias}
    for name, value in se.layers.state_dict().items():
        m = re.fullmatch(r"(\d+)\.(.+)\.(weight|bias)", name)
        if not m or m.group(2) not in layer_names:
            raise InputError(f"RoBERTa layer parameter {name!r} has no Hugging Face name")
        out[f"roberta.encoder.layer.{m.group(1)}.{layer_names[m.group(2)]}.{m.group(3)}"] = value
    return _cpu(out)


def write_hf_text_classifier(out: Path, model: TextClassifier, intents: list[str], what: str = "model") -> None:
    write_json_atomic(out / "config.json", roberta_hf_config(model, intents, what))
    write_safetensors(out / WEIGHTS_FILE, roberta_hf_state(model))
