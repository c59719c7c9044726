"""Write our models as fairseq 0.12 checkpoints (no fairseq needed): the reverse of fairseq_models.py.

A checkpoint holds what fairseq's checkpoint_utils.load_model_ensemble_and_task reads: `args` None (fairseq
0.12 writes None there too), `cfg` a plain dict with a `model` section (`_name` = the architecture, every
architecture argument by fairseq's name, fairseq's string forms for conv_kernel_sizes / input_layers /
conv_layers) and a `task` section (speech_to_text: a legacy task, so `task` names itself, as in a cfg converted
from an argparse Namespace; translation: a dataclass task, keyed by `_name`), the `model` state dict in fairseq's
names plus the buffers fairseq's upgrade_state_dict_named reads (`encoder.version` / `decoder.version` = 3:
without them fairseq assumes a checkpoint from before the final layer norms and drops them), and the
optimizer_history / extra_state entries its _upgrade_state_dict expects. Only dicts, lists, strings, numbers
and tensors are pickled: torch.load(weights_only=True) reads the file.

`data` in the task section is "." (the directory the checkpoint lies in, for fairseq's hub loader); fairseq-generate
and load_model_ensemble_and_task take the data directory from their own arguments.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..errors import InputError
from ..models.rnn_st import BerardModel
from ..models.s2t_transformer import S2TTransformerModel
from ..models.seq2seq import Seq2SeqModel
from ..models.transformer_nmt import TransformerNMTModel
from ..train.checkpoint import save_checkpoint

CHECKPOINT_FILE = "checkpoint.pt"
S2T_CONFIG_FILE = "config.yaml"  # fairseq's speech_to_text --config-yaml default
# our config fields that are not fairseq architecture arguments
_NOT_ARGS = {"vocab_size", "src_vocab_size", "tgt_vocab_size", "pad", "ctc_head", "no_encoder_final_norm",
             "no_decoder_final_norm"}


def fairseq_model_args(model: Seq2SeqModel, arch: str) -> dict[str, Any]:
    """The `cfg.model` section for one of our models: fairseq's names, `_name` and `arch` = `arch`."""
    cfg = model.cfg.to_dict()  # type: ignore[union-attr]
    if cfg.get("ctc_head"):
        raise InputError(f"{arch}: a model with its CTC head is exported without it (drop encoder.ctc_proj first)")
    for side in ("encoder", "decoder"):
        if cfg.get(f"no_{side}_final_norm"):
            raise InputError(f"{arch}: the {side} has no final layer norm (a pre-2019 fairseq checkpoint); "
                             "fairseq 0.12 builds one for this architecture, so it cannot be exported")
    args = {k: v for k, v in cfg.items() if k not in _NOT_ARGS}
    if isinstance(model, S2TTransformerModel):
        args["conv_kernel_sizes"] = ",".join(str(k) for k in args["conv_kernel_sizes"])
    elif isinstance(model, BerardModel):
        args["input_layers"] = str(list(args["input_layers"]))
        args["conv_layers"] = str([tuple(c) for c in args["conv_layers"]])
        args.pop("max_target_positions")  # an LSTM decoder has no position limit
    elif not isinstance(model, TransformerNMTModel):
        raise InputError(f"{type(model).__name__}: no fairseq export for this model")
    return {"_name": arch, "arch": arch, **args}


def fairseq_state(model: Seq2SeqModel) -> dict[str, Tensor]:
    """The model's parameters (fairseq names already) on the CPU, with the version buffers fairseq's transformer
    encoder / decoder read when they load."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    if isinstance(model, TransformerNMTModel):
        state["encoder.version"] = torch.tensor([3.0])
    if isinstance(model, (TransformerNMTModel, S2TTransformerModel)):
        state["decoder.version"] = torch.tensor([3.0])
    return state


def checkpoint_dict(model: Seq2SeqModel, arch: str, task: dict[str, Any], num_updates: int = 0,
                    epoch: int = 1, note: dict[str, Any] | None = None) -> dict[str, Any]:
    """A fairseq 0.12 checkpoint of `model` with the given task section; `note` goes to extra_state.speechkd."""
    return {
        "args": None,
        "cfg": {"_name": None, "common": {"_name": None}, "task": task, "model": fairseq_model_args(model, arch),
                "criterion": {"_name": "label_smoothed_cross_entropy"}, "bpe": None, "tokenizer": None},
        "model": fairseq_state(model),
        "criterion": None,
        "optimizer_history": [{"criterion_name": "LabelSmoothedCrossEntropyCriterion", "optimizer_name": "speechkd",
                               "lr_scheduler_state": {}, "num_updates": int(num_updates)}],
        "task_state": {},
        "extra_state": {"epoch": int(epoch), "train_iterator": {"epoch": int(epoch), "iterations_in_epoch": 0},
                        "speechkd": dict(note or {})},
        "last_optimizer_state": None,
    }


def speech_to_text_task(model: Seq2SeqModel) -> dict[str, Any]:
    """The `cfg.task` section of an S2T model (fairseq's speech_to_text arguments, as a converted Namespace)."""
    return {"_name": "speech_to_text", "task": "speech_to_text", "data": ".", "config_yaml": S2T_CONFIG_FILE,
            "multitask_config_yaml": None,
            "max_source_positions": int(getattr(model.cfg, "max_source_positions", 6000)),
            "max_target_positions": int(getattr(model.cfg, "max_target_positions", 1024))}


def translation_task(model: TransformerNMTModel, src_lang: str, tgt_lang: str) -> dict[str, Any]:
    """The `cfg.task` section of a text transformer (fairseq's TranslationConfig fields we know)."""
    return {"_name": "translation", "data": ".", "source_lang": src_lang, "target_lang": tgt_lang,
            "max_source_positions": model.cfg.max_source_positions,
            "max_target_positions": model.cfg.max_target_positions}


def write_fairseq_checkpoint(path: Path, model: Seq2SeqModel, arch: str, task: dict[str, Any], **kw: Any) -> None:
    save_checkpoint(path, checkpoint_dict(model, arch, task, **kw))
