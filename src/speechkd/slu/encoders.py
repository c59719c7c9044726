"""The two RoBERTas of the pipeline (VQ-BERT on units, the text RoBERTa) as files and config references.

Our stages save a RoBERTa as a fairseq 0.12-style checkpoint (`{"model": <fairseq names>, "cfg": {"model":
<architecture args>}}`) next to its dict.txt, so ONE loader (interop.fairseq_roberta.load_fairseq_roberta)
reads both our encoders and the released ones (roberta.base `model.pt`, VQ-BERT `bert_kmeans.pt`). A
reference may also point at the authors' PT-KD CrossBert state dict (`xbt_recent`); its VQ-BERT is taken.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar, Literal

from ..config import DataRunConfig, exactly_one, option
from ..errors import InputError
from ..fileio import sha256_file
from ..interop.fairseq_roberta import load_authors_pt_kd_vq_bert, load_fairseq_roberta, load_masked_lm_dictionary
from ..models.roberta import RobertaConfig, RobertaModel
from ..tokenizers.dictionary import Dictionary
from ..train.checkpoint import load_released_checkpoint, save_checkpoint
from ..runs import data_path, finished_run, require_file
from .text import TextEncoder, load_text_encoder

ENCODER_FILE = "encoder.pt"
DICT_FILE = "dict.txt"
ENCODER_STAGES = ("slu-mlm-pretrain", "slu-pt-kd")


@dataclasses.dataclass
class RobertaRef:
    """Where a RoBERTa comes from: one of `run` (ours) or `checkpoint` (a file)."""
    exclusive_options: ClassVar[tuple] = (("run", "checkpoint"),)  # setting one clears the default of the other
    run: str = option("", "name of a finished slu-mlm-pretrain / slu-pt-kd run (uses its encoder.pt + dict.txt)", run_ref=True)
    checkpoint: str = option("", "a fairseq RoBERTa checkpoint (roberta.base/model.pt, bert_kmeans.pt) or the "
                                 "authors' PT-KD CrossBert state dict (xbt_recent); relative to data_root")
    dict: str = option("", "the checkpoint's dict.txt (default: dict.txt next to it)")
    bpe: Literal["words", "gpt2"] = option(
        "words", "text RoBERTa only: 'gpt2' = roberta.base's GPT-2 BPE (paper), 'words' = word-level dict (embedded)")
    gpt2_encoder_json: str = option("", "text, bpe gpt2: GPT-2 encoder.json (relative to data_root)")
    gpt2_vocab_bpe: str = option("", "text, bpe gpt2: GPT-2 vocab.bpe (relative to data_root)")
    heads: int = option(0, "attention heads when the file does not say (the authors' xbt_recent): 0 = dim // 64")


@dataclasses.dataclass
class LoadedRoberta:
    model: RobertaModel
    dictionary: Dictionary
    checkpoint: Path       # the file the weights came from
    dict_path: Path
    digest: str            # sha256 of the checkpoint file: identifies the weights (feature cache key)

    def text_encoder(self, ref: RobertaRef, cfg: DataRunConfig) -> TextEncoder:
        if ref.bpe == "gpt2":
            encoder_json = data_path(cfg.data_root, ref.gpt2_encoder_json)
            vocab_bpe = data_path(cfg.data_root, ref.gpt2_vocab_bpe)
            return load_text_encoder("gpt2", self.dict_path,
                                     require_file(encoder_json, "gpt2_encoder_json", "GPT-2 encoder.json"),
                                     require_file(vocab_bpe, "gpt2_vocab_bpe", "GPT-2 vocab.bpe"))
        return load_text_encoder("words", self.dict_path)



def resolve_ref(cfg: DataRunConfig, ref: RobertaRef, key: str) -> tuple[Path, Path]:
    """(checkpoint file, dict.txt) of a reference."""
    which = exactly_one(ref, key, "run", "checkpoint")
    if which == "run":
        directory = None
        for stage in ENCODER_STAGES:
            try:
                directory = finished_run(cfg, ref.run, f"{key}.run", stage=stage)
                break
            except InputError as e:
                error = e
        if directory is None:
            raise error
        return directory / ENCODER_FILE, directory / DICT_FILE
    ckpt = require_file(data_path(cfg.data_root, ref.checkpoint), f"{key}.checkpoint", "checkpoint")
    dict_path = data_path(cfg.data_root, ref.dict) if ref.dict else ckpt.parent / DICT_FILE
    return ckpt, require_file(dict_path, f"{key}.dict", "dict.txt of the checkpoint")


def load_roberta(cfg: DataRunConfig, ref: RobertaRef, key: str) -> LoadedRoberta:
    ckpt, dict_path = resolve_ref(cfg, ref, key)
    dictionary = load_masked_lm_dictionary(dict_path)
    state = load_released_checkpoint(ckpt)  # a released file: what fairseq of 2019 pickled is accepted
    if "model" in state:
        model, _ = load_fairseq_roberta(ckpt, dictionary)
    elif any(k.startswith(("module.vq_bert.model.", "vq_bert.model.")) for k in state):
        model = load_authors_pt_kd_vq_bert(ckpt, heads=ref.heads or None)
        if len(dictionary) != model.vocab_size:
            raise InputError(f"{ckpt}: embedding has {model.vocab_size} rows but {dict_path} gives "
                             f"{len(dictionary)} symbols")
    else:
        raise InputError(f"{key}: {ckpt} is neither a fairseq RoBERTa checkpoint nor the authors' CrossBert "
                         f"state dict (keys: {sorted(state)[:5]})")
    return LoadedRoberta(model, dictionary, ckpt, dict_path, sha256_file(ckpt))


def roberta_args(cfg: RobertaConfig) -> dict:
    """Our RobertaConfig as the fairseq args roberta_config_from_state reads."""
    return {"arch": "roberta", "encoder_layers": cfg.layers, "encoder_embed_dim": cfg.embed_dim,
            "encoder_attention_heads": cfg.heads, "encoder_ffn_embed_dim": cfg.ffn_dim,
            "max_positions": cfg.max_positions, "dropout": cfg.dropout, "attention_dropout": cfg.attention_dropout,
            "activation_dropout": cfg.activation_dropout, "pooler_dropout": cfg.pooler_dropout,
            "activation_fn": "gelu", "pooler_activation_fn": "tanh", "untie_weights_roberta": cfg.untie_weights,
            "encoder_normalize_before": cfg.normalize_before}


def save_roberta(directory: Path, model: RobertaModel, dictionary: Dictionary) -> None:
    """encoder.pt (fairseq 0.12 layout) + dict.txt (without the `<mask>` the loader appends again)."""
    if dictionary.symbols[-1] != "<mask>":
        raise ValueError("save_roberta expects the masked-LM dictionary (with <mask> last)")
    plain = Dictionary()
    for sym, count in zip(dictionary.symbols[plain.nspecial:-1], dictionary.count[plain.nspecial:-1]):
        plain.add_symbol(sym, count)
    plain.save(directory / DICT_FILE)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    save_checkpoint(directory / ENCODER_FILE, {"model": state, "cfg": {"model": roberta_args(model.cfg)}})
