"""Checkpoint files: atomic save, weights_only load with clear errors, and fairseq-style averaging."""
from __future__ import annotations

import argparse
import os
import pickle
import zipfile
from pathlib import Path
from typing import Any, Sequence

import torch

from ..errors import InputError
from ..fileio import atomic_path

# fairseq <= 0.10 checkpoints carry their arguments as an argparse.Namespace: a known, harmless class
SAFE_GLOBALS: tuple = (argparse.Namespace,)


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write `state` with torch.save to a temp file, fsync, rename: readers see the old file or the new one.
    The temp file is always named "archive" (in a private temp folder): torch.save names the archive's root folder
    after the file, so a random temp name would make identical states differ byte-wise."""
    with atomic_path(path, fixed_name="archive") as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu",
                    extra_safe_globals: Sequence[Any] = ()) -> dict:
    """torch.load(weights_only=True); InputError naming the file when it is missing, truncated, not a torch
    checkpoint, or holds objects outside the allowlist."""
    p = _existing(path)
    try:
        with torch.serialization.safe_globals([*SAFE_GLOBALS, *extra_safe_globals]):
            state = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise InputError(f"{p}: not loadable with weights_only=True (corrupt, or holds pickled objects): "
                         f"{_first_line(e)}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as e:
        raise InputError(f"{p}: not a readable torch checkpoint ({_first_line(e)})") from None
    return _checkpoint_dict(p, state)


def load_released_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """A checkpoint written by someone else (the released fairseq 0.6-0.10 files of 2019-2020, numpy 1.x), loaded
    without ever running code from its pickle.

    First torch.load(weights_only=True) with safe_unpickle.RELEASED_SAFE_GLOBALS added (argparse.Namespace,
    numpy scalars / dtypes / arrays under numpy.core and numpy._core names, collections containers). When torch
    refuses a global, the file is read again through the restricted pickle module safe_unpickle: a global of a
    module that can run code (os, subprocess, builtins.eval, functools.partial, ...) stops the load with an
    InputError naming the file and the global; any other unknown class becomes an inert stand-in
    (safe_unpickle.PickledObject), so bookkeeping we do not need never fails the load. Our own checkpoints keep
    load_checkpoint (weights_only, strict)."""
    from . import safe_unpickle

    p = _existing(path)
    try:
        try:
            with torch.serialization.safe_globals(safe_unpickle.RELEASED_SAFE_GLOBALS):
                state = torch.load(p, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError:
            # a class torch does not know (or a refused global): the restricted module decides, never importing
            state = torch.load(p, map_location=map_location, weights_only=False, pickle_module=safe_unpickle)
    except safe_unpickle.RefusedGlobal as e:
        raise InputError(f"{p}: refused to load: its pickle names {e.name}, a global that can run code; "
                         f"checkpoints are read without running code from them (nothing was executed)") from None
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, TypeError,
            AttributeError, KeyError, IndexError) as e:
        raise InputError(f"{p}: not a readable torch checkpoint ({_first_line(e)})") from None
    return _checkpoint_dict(p, state)


def _existing(path: str | os.PathLike) -> Path:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: checkpoint not found")
    return p


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _checkpoint_dict(p: Path, state: Any) -> dict:
    if not isinstance(state, dict):
        raise InputError(f"{p}: not a checkpoint (expected a dict, got {type(state).__name__})")
    return state


def model_state(state: dict, path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The model's state_dict inside a checkpoint (ours and fairseq's keep it under "model")."""
    model = state.get("model")
    if not isinstance(model, dict):
        raise InputError(f"{path}: not a model checkpoint (no 'model' state dict; keys: {sorted(state)[:8]})")
    return model


def average_checkpoints(paths: Sequence[str | os.PathLike]) -> dict[str, torch.Tensor]:
    """Mean of the model parameters of several checkpoints (fairseq scripts/average_checkpoints.py):
    summed in file order, half precision promoted to float, floating tensors divided by N, integer
    tensors (counters) floor-divided. Returns the averaged model state_dict."""
    if not paths:
        raise InputError("average_checkpoints: no checkpoint paths given")
    total: dict[str, torch.Tensor] = {}
    keys: list[str] | None = None
    for path in paths:
        params = model_state(load_checkpoint(path), path)
        if keys is None:
            keys = list(params)
        elif list(params) != keys:
            missing = sorted(set(keys) ^ set(params))[:5]
            raise InputError(f"{path}: parameters differ from {paths[0]} (e.g. {missing}); "
                             f"only checkpoints of the same model can be averaged")
        for name, value in params.items():
            value = value.float() if value.dtype == torch.half else value
            if name in total:
                total[name] = total[name] + value
            else:
                total[name] = value.clone()
    n = len(paths)
    for name, value in total.items():
        total[name] = value.div_(n) if value.is_floating_point() else value // n
    return total
