"""Process-group setup from torchrun's environment, and the few collectives the trainer needs.

Without torchrun's variables (or with WORLD_SIZE=1) everything runs as a single process and the
collectives are identities, so the same code path serves `python x.py` and `torchrun --nproc_per_node N x.py`.
"""
from __future__ import annotations

import datetime
import os
from typing import Any, Callable, Sequence, TypeVar

import torch
import torch.distributed as dist

from ..errors import InputError

_TIMEOUT = datetime.timedelta(hours=2)  # rank 0 validates alone while the others wait in a collective
T = TypeVar("T")
_in_main_only = False  # set while rank 0 runs a main_only body


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init(device_kind: str = "auto") -> None:
    """Join the process group if torchrun started us (idempotent). Backend: nccl on CUDA, else gloo."""
    check_device(device_kind)
    if env_world_size() <= 1 or is_initialized():
        return
    for name in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise RuntimeError(f"WORLD_SIZE={env_world_size()} but {name} is not set: start with torchrun")
    use_cuda = device_kind != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank())
    dist.init_process_group(backend="nccl" if use_cuda else "gloo", timeout=_TIMEOUT)


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if is_initialized() else 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def check_device(kind: str, key: str = "train.device") -> None:
    """InputError (exit status 2, naming the config key) when `kind` asks for CUDA on a machine without it."""
    if kind == "cuda" and not torch.cuda.is_available():
        raise InputError(f"{key}: 'cuda' requested but CUDA is not available on this machine "
                         f"(torch.cuda.is_available() is False); use 'auto' or 'cpu'")


def device(kind: str = "auto", key: str = "train.device") -> torch.device:
    """cuda:LOCAL_RANK when CUDA is wanted and available, else cpu."""
    check_device(kind, key)
    if kind != "cpu" and torch.cuda.is_available():
        return torch.device("cuda", local_rank())
    return torch.device("cpu")


def _collective_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" \
        else torch.device("cpu")


def all_reduce_floats(values: Sequence[float], op: str = "sum") -> list[float]:
    """Sum (or max) a list of Python floats over all ranks, in float64."""
    if not is_initialized():
        return [float(v) for v in values]
    t = torch.tensor(list(values), dtype=torch.float64, device=_collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return t.cpu().tolist()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank `src`'s object on every rank."""
    if not is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src, device=_collective_device())
    return box[0]


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's object, in rank order, on every rank."""
    if not is_initialized():
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if is_initialized():
        dist.barrier()


def main_only(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """The one rule for files under torchrun: rank 0 runs `fn` (writing checkpoints, bundles, metrics.json,
    DONE, or deciding from files whether a run is done) while the other ranks wait; then every rank returns rank
    0's result (picklable), so all of them go on from the same files and the same decision.

    If `fn` raises on rank 0, every rank raises (an InputError stays one, for exit status 2) instead of the others
    waiting for a writer that died until the process-group timeout. A call made inside `fn` runs directly: only
    rank 0 is there, so a collective would never be matched. Without a process group this is just fn()."""
    global _in_main_only
    if not is_initialized() or _in_main_only:
        return fn(*args, **kwargs)
    result: Any = None
    error: Exception | None = None
    if is_main():
        _in_main_only = True
        try:
            result = fn(*args, **kwargs)
        except Exception as e:  # noqa: BLE001 - re-raised below, after the other ranks have been told
            error = e
        finally:
            _in_main_only = False
    # a broadcast, not a barrier: it waits for rank 0 and carries its outcome in one collective
    failure = None if error is None else (isinstance(error, InputError), f"{type(error).__name__}: {error}")
    result, failure = broadcast_object((result if error is None else None, failure))
    if error is not None:
        raise error
    if failure is not None:
        is_input_error, message = failure
        if is_input_error:
            raise InputError(message.split(": ", 1)[1])
        raise RuntimeError(f"rank 0 failed, so rank {rank()} stops too: {message}")
    return result


def cleanup() -> None:
    if is_initialized():
        dist.destroy_process_group()


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DistributedDataParallel wrapper (the model itself otherwise)."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
