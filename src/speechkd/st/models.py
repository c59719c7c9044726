"""Build, save-compatible rebuild and load the ST pipeline's models by fairseq architecture name.

- s2t_transformer_{xs,s,sp,m,mp,l,lp} / s2t_transformer: models/s2t_transformer.py (the AST/ASR transformer);
- s2t_berard*: models/rnn_st.py (the "AST RNN" rows);
- transformer, transformer_tiny, transformer_wmt_en_de_big, ...: models/transformer_nmt.py (the NMT expert;
  one joined dictionary, so source and target vocabularies are the same size).
`args` override single architecture arguments with fairseq's names (encoder_layers, encoder_embed_dim, ...).

A trained model is rebuilt from its run's config.json (arch, args, prep run -> dictionary size) and loaded from
checkpoint_best.pt, checkpoint_last.pt or the average of the last N epoch checkpoints (fairseq
scripts/average_checkpoints.py --num-epoch-checkpoints N).
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import torch

from ..config import option
from ..errors import InputError
from ..models.s2t_transformer import drop_ctc_head
from ..models.seq2seq import Seq2SeqModel
from ..tokenizers.dictionary import Dictionary
from ..train.checkpoint import average_checkpoints, load_checkpoint, model_state
from ..runs import finished_run, require_file, run_config
from .vocab import DICT_FILE


@dataclasses.dataclass
class ModelConfig:
    arch: str = option("s2t_transformer_s", "fairseq architecture: s2t_transformer_{xs,s,m,...}, s2t_berard*, "
                                            "or an NMT transformer (transformer, transformer_wmt_en_de_big, ...)",
                       required=True)
    args: dict[str, Any] = option({}, "architecture arguments overriding the arch's defaults, fairseq names "
                                      "(e.g. {\"encoder_layers\": 2, \"encoder_embed_dim\": 128})")


def model_family(arch: str) -> str:
    if arch.startswith("s2t_transformer"):
        return "s2t_transformer"
    if arch.startswith("s2t_berard"):
        return "s2t_berard"
    if arch.startswith("transformer"):
        return "transformer"
    raise InputError(f"model.arch: unknown architecture {arch!r} (s2t_transformer_*, s2t_berard*, transformer*)")


def build_model(cfg: ModelConfig, vocab_size: int, encoder_freezing_updates: int = 0,
                ctc_head: bool = False) -> Seq2SeqModel:
    family = model_family(cfg.arch)
    if ctc_head and family != "s2t_transformer":
        raise InputError(f"criterion.ctc_weight: {cfg.arch} has no CTC head (s2t_transformer only)")
    try:
        if family == "s2t_transformer":
            from ..models.s2t_transformer import S2TTransformerModel
            return S2TTransformerModel.build(cfg.arch, vocab_size, **{
                **cfg.args, "encoder_freezing_updates": encoder_freezing_updates, "ctc_head": ctc_head})
        if family == "s2t_berard":
            from ..models.rnn_st import BerardModel
            return BerardModel.build(cfg.arch, vocab_size, **cfg.args)
        from ..models.transformer_nmt import TransformerNMTModel
        return TransformerNMTModel.build(cfg.arch, vocab_size, vocab_size, **cfg.args)
    except (TypeError, ValueError) as e:
        raise InputError(f"model: cannot build {cfg.arch} with args {cfg.args}: {e}") from None


def freezing_supported(model: torch.nn.Module) -> bool:
    return hasattr(getattr(model, "encoder", None), "encoder_freezing_updates")


def num_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------------------- trained runs

@dataclasses.dataclass
class TrainedModel:
    model: Seq2SeqModel
    task: str                 # asr | nmt | st
    dictionary: Dictionary    # target dictionary (= the joined source dictionary of an NMT model)
    prep_dir: Path            # the prep run's data dir the model was trained with
    config: dict              # the run's resolved st-train config
    checkpoint: str           # what was loaded, for the logs


def checkpoint_paths(ckpt_dir: Path, which: str) -> list[Path]:
    """which: "best", "last", or "average_last_N" (the last N epoch checkpoints, by epoch number)."""
    if which in ("best", "last"):
        path = ckpt_dir / f"checkpoint_{which}.pt"
        if not path.is_file():
            raise InputError(f"checkpoint '{which}': {path} not found")
        return [path]
    m = re.fullmatch(r"average_last_(\d+)", which)
    if not m or int(m.group(1)) < 1:
        raise InputError(f"checkpoint: expected best, last or average_last_N, got {which!r}")
    epochs = sorted((int(p.stem[len("checkpoint"):]), p) for p in ckpt_dir.glob("checkpoint*.pt")
                    if p.stem[len("checkpoint"):].isdigit())
    if not epochs:
        raise InputError(f"checkpoint {which}: no epoch checkpoints in {ckpt_dir} (train with "
                         "train.keep_last_epochs > 0)")
    return [p for _, p in epochs[-int(m.group(1)):]]


def load_model_state(paths: list[Path]) -> dict[str, torch.Tensor]:
    return model_state(load_checkpoint(paths[0]), paths[0]) if len(paths) == 1 else average_checkpoints(paths)


@dataclasses.dataclass
class TrainedRun:
    config: dict          # the run's resolved st-train config
    prep_dir: Path        # its prep run's data dir
    checkpoints: list[Path]


def trained_run(cfg: Any, run_name: str, field: str, checkpoint: str = "best") -> TrainedRun:
    """A finished st-train run with its checkpoint files and its prep run's dict.txt present, checked without
    loading anything: what the stages call before their heavy work, and load_trained_model before loading."""
    path = finished_run(cfg, run_name, field)
    saved = run_config(path)
    if saved.get("stage") != "st-train":
        raise InputError(f"{field}: run '{run_name}' is a {saved.get('stage')} run, expected st-train")
    conf = saved["config"]
    prep_dir = finished_run(cfg, conf["data"]["prep_run"], f"{field} -> data.prep_run") / "data"
    require_file(prep_dir / DICT_FILE, f"{field} -> data.prep_run", "dictionary")
    return TrainedRun(conf, prep_dir, checkpoint_paths(path / "checkpoints", checkpoint))


def load_trained_model(cfg: Any, run_name: str, field: str, checkpoint: str = "best") -> TrainedModel:
    """The model of a finished st-train run of this pipeline (cfg: the caller's config, for runs_dir/profile)."""
    found = trained_run(cfg, run_name, field, checkpoint)
    conf, prep_dir, paths = found.config, found.prep_dir, found.checkpoints
    dictionary = Dictionary.load(prep_dir / DICT_FILE)
    model_cfg = ModelConfig(conf["model"]["arch"], conf["model"]["args"])
    model = build_model(model_cfg, len(dictionary))
    state = drop_ctc_head(load_model_state(paths))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise InputError(f"{paths[0]}: does not fit {model_cfg.arch} {model_cfg.args} "
                         f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    model.eval()
    return TrainedModel(model, conf["task"], dictionary, prep_dir, conf, ", ".join(p.name for p in paths))


def load_pretrained_encoder(model: Seq2SeqModel, source: str, cfg: Any, data_root: str = "") -> str:
    """fairseq --load-pretrained-encoder-from (interop.fairseq_models.load_pretrained_encoder: every `encoder.*`
    tensor of the checkpoint, loaded strictly). `source`: a path ending in .pt (ours or fairseq's; relative to
    data_root) or the name of a finished st-train run of this profile (its checkpoint_best.pt). Returns the file."""
    from ..interop.fairseq_models import load_pretrained_encoder as load_encoder
    path = pretrained_encoder_path(source, cfg, data_root)
    load_encoder(model, path)
    return str(path)


def pretrained_encoder_path(source: str, cfg: Any, data_root: str = "") -> Path:
    """The checkpoint file load_pretrained_encoder reads, which must exist."""
    from ..runs import data_path
    if source.endswith(".pt"):
        return require_file(data_path(data_root, source), "load_pretrained_encoder_from", "checkpoint")
    path = finished_run(cfg, source, "load_pretrained_encoder_from") / "checkpoints" / "checkpoint_best.pt"
    return require_file(path, "load_pretrained_encoder_from", "checkpoint")
