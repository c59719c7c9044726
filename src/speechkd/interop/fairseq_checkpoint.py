"""Read fairseq checkpoints without fairseq: the model state dict and the training arguments.

fairseq <= 0.9 stores `args` (argparse.Namespace); fairseq >= 0.10 stores `cfg` (a plain dict after
OmegaConf.to_container) whose `model` section holds the architecture arguments. Both come back as one
flat dict of architecture arguments. Old attention layouts are upgraded here, once, for every model:
fairseq < 0.8 stored q/k/v stacked in `in_proj_weight`/`in_proj_bias`
(fairseq/modules/multihead_attention.py upgrade_state_dict_named).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError
from ..train.checkpoint import load_released_checkpoint, model_state


def read_fairseq_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """-> (model state dict with attention keys upgraded, architecture arguments as a flat dict). The file is read
    with load_released_checkpoint: numpy bookkeeping and unknown classes load, pickled code is refused."""
    state = load_released_checkpoint(path)
    params = model_state(state, path)
    args: dict[str, Any] = {}
    if isinstance(state.get("args"), argparse.Namespace):
        args = vars(state["args"]).copy()
    elif isinstance(state.get("cfg"), dict):
        cfg = state["cfg"]
        model_cfg = cfg.get("model")
        if isinstance(model_cfg, argparse.Namespace):
            model_cfg = vars(model_cfg)
        args = dict(model_cfg or {})
        for section in ("task",):  # data-dependent arguments some models read (e.g. input_feat_per_channel)
            if isinstance(cfg.get(section), dict):
                args.update({k: v for k, v in cfg[section].items() if k not in args})
    if not args:
        raise InputError(f"{path}: a fairseq checkpoint needs 'args' or 'cfg.model' (found keys {sorted(state)})")
    return split_in_proj(params), args


def split_in_proj(params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`<prefix>in_proj_weight` (3C, C) / `in_proj_bias` -> q_proj, k_proj, v_proj (fairseq's order q, k, v)."""
    out: dict[str, torch.Tensor] = {}
    for name, value in params.items():
        for kind in ("weight", "bias"):
            suffix = f"in_proj_{kind}"
            if name.endswith(suffix):
                prefix = name[: -len(suffix)]
                for proj, chunk in zip(("q_proj", "k_proj", "v_proj"), value.chunk(3, dim=0)):
                    out[f"{prefix}{proj}.{kind}"] = chunk.clone()
                break
        else:
            out[name] = value
    return out


def arch_arg(args: dict[str, Any], name: str, default: Any) -> Any:
    """An architecture argument, falling back to the arch's default when the checkpoint omits it (old
    fairseq checkpoints store only what differed from the registered architecture)."""
    value = args.get(name)
    return default if value is None else value
