"""Seeding, determinism settings, and RNG states in a form torch.load(weights_only=True) accepts.

States are plain ints/floats/lists/tensors (no pickled numpy or random objects), so they can live inside a
checkpoint and be gathered across DDP ranks.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import random
import sys
from typing import Any, Iterator

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) and switch on the deterministic settings."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    set_deterministic()


def set_deterministic() -> None:
    # cuBLAS needs this before its first use to be deterministic; harmless on CPU
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    # warn_only: a few CUDA kernels (e.g. CTC loss backward) have no deterministic version; CPU ones are.
    # torch.use_deterministic_algorithms also imports torch._inductor to set its flag, 2.3 s per process
    # here; nothing in speechkd compiles, so set inductor's flag only when something already imported it.
    torch._C._set_deterministic_algorithms(True, warn_only=True)
    inductor_config = sys.modules.get("torch._inductor.config")
    if inductor_config is not None:
        inductor_config.deterministic = True


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed from integers and names (seed, epoch, rank, "fsc", split...), stable across runs,
    platforms and Python's hash randomisation."""
    digest = hashlib.sha256(",".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def capture_rng_state() -> dict[str, Any]:
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": {"version": int(version), "state": [int(x) for x in mt], "gauss": gauss},
        "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    npy = state["numpy"]
    keys = npy["keys"].numpy().astype(np.uint32) if torch.is_tensor(npy["keys"]) else np.asarray(npy["keys"],
                                                                                                 np.uint32)
    np.random.set_state((npy["kind"], keys, npy["pos"], npy["has_gauss"], npy["cached_gaussian"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with python/numpy/torch seeded from `seed`, then put the outer RNG states back, so the
    block's randomness depends on `seed` only and the caller's streams are untouched."""
    saved = capture_rng_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        restore_rng_state(saved)


def batch_rng() -> np.random.Generator:
    """The numpy Generator one batch draws its masks from (SLU token/span/embedding masks, ST SpecAugment), itself
    drawn from torch's global RNG: inside `seeded` (the trainer's per-batch context, train.batches.SpecLoader, or
    a seeded evaluation) it depends only on that seed, so masks are reproducible, worker-independent and
    resume-safe."""
    return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
