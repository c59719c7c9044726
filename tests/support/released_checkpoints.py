"""Write checkpoints laid out as the released fairseq files of 2019-2020 (vq-wav2vec_kmeans.pt, bert_kmeans.pt,
roberta.base/model.pt, wmt19.en-de model1.pt) were: fairseq 0.6-0.10, numpy 1.x, torch.save.

    from released_checkpoints import write_released_checkpoint
    write_released_checkpoint(tmp_path / "model1.pt", model.state_dict(), argparse.Namespace(arch="transformer", ...))

The file is what torch.save writes (zip format by default; the pre-1.6 legacy format with zipfile=False), but
its pickle names numpy with the numpy 1.x module names (numpy.core.multiarray.scalar / _reconstruct) even under
numpy 2, and its bookkeeping holds what fairseq of that era left there: numpy float64 scalars, small numpy
arrays, Adam state, and (fairseq_meters=True) objects of fairseq classes (fairseq.meters.AverageMeter /
TimeMeter) that a loader without fairseq does not have.
"""
from __future__ import annotations

import argparse
import io
import os
import pickle
import pickletools
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

# numpy 2 pickles numpy._core.*; numpy 1.x (what fairseq 0.6-0.10 ran with) wrote numpy.core.*
NUMPY1_MODULES = {"numpy._core": "numpy.core"}


class _AverageMeter:
    """fairseq 0.6-0.8 fairseq/meters.py AverageMeter (pickled as fairseq.meters.AverageMeter)."""

    def __init__(self, val: float = 0.0, count: int = 0):
        self.val, self.avg, self.sum, self.count = val, val, val * count, count


class _TimeMeter:
    """fairseq 0.6-0.8 fairseq/meters.py TimeMeter (pickled as fairseq.meters.TimeMeter)."""

    def __init__(self, n: int = 0):
        self.init, self.start, self.n = 0, 1.6e9, n


_RENAMED_CLASSES = {_AverageMeter: ("fairseq.meters", "AverageMeter"), _TimeMeter: ("fairseq.meters", "TimeMeter")}


def rewrite_globals(data: bytes, modules: Mapping[str, str] = NUMPY1_MODULES,
                    names: Mapping[tuple[str, str], tuple[str, str]] | None = None) -> bytes:
    """A protocol <= 3 pickle with its GLOBAL opcodes renamed: `names` maps (module, name) exactly, `modules`
    maps a module prefix (numpy._core -> numpy.core). Only GLOBAL opcodes change; strings in the data do not."""
    names = dict(names or {})
    out = bytearray()
    last = 0
    ops = list(pickletools.genops(data))
    for i, (op, arg, pos) in enumerate(ops):
        if op.name == "STACK_GLOBAL":
            raise ValueError("rewrite_globals handles pickle protocol <= 3 (torch.save writes protocol 2)")
        if op.name != "GLOBAL":
            continue
        module, name = arg.split(" ", 1)
        if (module, name) in names:
            module, name = names[(module, name)]
        else:
            for old, new in modules.items():
                if module == old or module.startswith(old + "."):
                    module = new + module[len(old):]
                    break
        end = ops[i + 1][2] if i + 1 < len(ops) else len(data)
        out += data[last:pos]
        out += b"c" + module.encode("utf-8") + b"\n" + name.encode("utf-8") + b"\n"
        last = end
    out += data[last:]
    return bytes(out)


class _Fairseq2019Pickler(pickle.Pickler):
    """Pickles into a buffer, then writes the bytes with the GLOBALs renamed (numpy 1.x names, fairseq classes)
    to the real file. torch.save subclasses it (persistent_id for storages), so the archive is torch's own."""

    def __init__(self, file: Any, protocol: int | None = None, **kwargs: Any):
        self._target = file
        self._buffer = io.BytesIO()
        super().__init__(self._buffer, protocol, **kwargs)

    def dump(self, obj: Any) -> None:
        super().dump(obj)
        names = {(c.__module__, c.__qualname__): new for c, new in _RENAMED_CLASSES.items()}
        self._target.write(rewrite_globals(self._buffer.getvalue(), NUMPY1_MODULES, names))


class _Fairseq2019PickleModule:
    """The pickle_module handed to torch.save."""

    __name__ = "released_checkpoints_pickle"
    Pickler = _Fairseq2019Pickler
    Unpickler = pickle.Unpickler
    UnpicklingError = pickle.UnpicklingError

    @staticmethod
    def dump(obj: Any, file: Any, protocol: int | None = None, **kwargs: Any) -> None:
        _Fairseq2019Pickler(file, protocol, **kwargs).dump(obj)


def fairseq_bookkeeping(model_state: Mapping[str, torch.Tensor], *, num_updates: int = 1000, epoch: int = 3,
                        val_loss: float = 4.25, optimizer_state: bool = True, fairseq_meters: bool = True
                        ) -> dict[str, Any]:
    """The non-model keys of a fairseq 0.6-0.10 checkpoint (checkpoint_utils.save_state / trainer.save_checkpoint):
    `optimizer_history` (criterion_name, optimizer_name, lr_scheduler_state {"best": numpy float64},
    num_updates), `extra_state` (epoch, numpy float64 val_loss / best, train_iterator, a small numpy array,
    and with fairseq_meters the 0.6-0.8 `train_meters` of fairseq.meters objects) and, with optimizer_state,
    `last_optimizer_state` (Adam state: a zero exp_avg / exp_avg_sq per parameter, numpy step counts)."""
    best = np.float64(val_loss)
    extra: dict[str, Any] = {
        "epoch": epoch,
        "val_loss": np.float64(val_loss),
        "best": best,
        "train_iterator": {"epoch": epoch, "iterations_in_epoch": 0, "shuffle": True},
        "val_loss_history": np.array([val_loss + 1.0, val_loss + 0.5, val_loss], dtype=np.float64),
    }
    if fairseq_meters:
        extra["train_meters"] = {"train_loss": _AverageMeter(val_loss, 10), "wps": _TimeMeter(12345),
                                 "clip": _AverageMeter(0.0, 10)}
    out: dict[str, Any] = {
        "optimizer_history": [{"criterion_name": "LabelSmoothedCrossEntropyCriterion",
                               "optimizer_name": "FairseqAdam",
                               "lr_scheduler_state": {"best": best},
                               "num_updates": num_updates}],
        "extra_state": extra,
    }
    if optimizer_state:
        params = [v for v in model_state.values() if torch.is_tensor(v) and v.is_floating_point()]
        out["last_optimizer_state"] = {
            "state": {i: {"step": np.int64(num_updates), "exp_avg": torch.zeros_like(v),
                          "exp_avg_sq": torch.zeros_like(v)} for i, v in enumerate(params)},
            "param_groups": [{"lr": [np.float64(5e-4)], "betas": (0.9, 0.98), "eps": 1e-08, "weight_decay": 0.0,
                              "amsgrad": False, "params": list(range(len(params)))}],
            "loss_scale": np.float32(128.0),
        }
    return out


def write_released_checkpoint(path: str | os.PathLike, model_state: Mapping[str, torch.Tensor],
                              args: argparse.Namespace, *, zipfile: bool = True, optimizer_state: bool = True,
                              fairseq_meters: bool = True, num_updates: int = 1000, epoch: int = 3,
                              val_loss: float = 4.25, extra: Mapping[str, Any] | None = None) -> Path:
    """Write `model_state` + `args` at `path` as fairseq 0.6-0.10 stored a checkpoint; returns the path.

    Keys: `args` (the Namespace as given), `model` (the state dict, tensors as given), `optimizer_history`,
    `extra_state`, and with optimizer_state `last_optimizer_state` (see fairseq_bookkeeping); no `cfg`.
    `extra` adds or replaces top-level keys (e.g. {"extra_state": {...}} or an object to test a loader).
    zipfile=False writes torch's legacy (pre-1.6) format, which the 2019 files use. numpy objects are pickled
    under the numpy 1.x names (numpy.core.multiarray.*), fairseq meters as fairseq.meters.*; everything else is
    torch.save's own output (protocol 2)."""
    if not isinstance(args, argparse.Namespace):
        raise TypeError(f"args must be an argparse.Namespace, got {type(args).__name__}")
    state: dict[str, Any] = {"args": args, "model": dict(model_state)}
    state.update(fairseq_bookkeeping(model_state, num_updates=num_updates, epoch=epoch, val_loss=val_loss,
                                     optimizer_state=optimizer_state, fairseq_meters=fairseq_meters))
    state.update(extra or {})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path, pickle_module=_Fairseq2019PickleModule, pickle_protocol=2,
               _use_new_zipfile_serialization=zipfile)
    return path
