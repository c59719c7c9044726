"""Process-group setup from torchrun's environment, and the few collectives the trainer needs.

Without torchrun's variables (or with WORLD_SIZE=1) everything runs as a single process and the
collectives are identities, so the same code path serves `python x.py` and `torchrun --nproc_per_node N x.py`.
"""
from __future__ import annotations

import datetime
import os
from typing import Any, Sequence

import torch
import torch.distributed as dist

_TIMEOUT = datetime.timedelta(hours=2)  # rank 0 validates alone while the others wait in a collective


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def init(device_kind: str = "auto") -> None:
    """Join the process group if torchrun started us (idempotent). Backend: nccl on CUDA, else gloo."""
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


def device(kind: str = "auto") -> torch.device:
    """cuda:LOCAL_RANK when CUDA is wanted and available, else cpu."""
    if kind == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but CUDA is not available")
    if kind != "cpu" and torch.cuda.is_available():
        return torch.device("cuda", local_rank())
    return torch.device("cpu")


def _collective_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" \
        else torch.device("cpu")


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum `tensor` over all ranks, in place (returned for convenience)."""
    if is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


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


def cleanup() -> None:
    if is_initialized():
        dist.destroy_process_group()


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DistributedDataParallel wrapper (the model itself otherwise)."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
