"""TrainConfig: the "train" section every training stage nests (optimiser, schedule, stopping, checkpoints).

Options marked hashed=False never change results (resume is exact, so even the checkpoint interval is one),
so changing them keeps the run directory and its config hash.
"""
from __future__ import annotations

import dataclasses
from typing import Literal

from ..config import option


@dataclasses.dataclass
class TrainConfig:
    # optimiser
    optimizer: Literal["adam", "adamw", "sgd_nesterov"] = option(
        "adam", "adam: torch Adam, weight decay as L2 (the SLU code); adamw: decoupled weight decay "
        "(fairseq's 'adam' is this one); sgd_nesterov: SGD with Nesterov momentum (the SLU AM pre-training)")
    lr: float = option(1e-4, "peak learning rate (after warmup)")
    betas: list[float] = option([0.9, 0.999], "Adam betas")
    eps: float = option(1e-8, "Adam epsilon")
    weight_decay: float = option(0.0, "weight decay")
    momentum: float = option(0.9, "SGD momentum")
    optimizer_impl: Literal["fused", "foreach", "for_loop"] = option(
        "fused", "torch's implementation of the update: fused (one kernel over all parameters, CPU and CUDA), "
        "foreach (multi-tensor ops) or for_loop (one parameter at a time); the same arithmetic, equal up to "
        "float rounding; SGD has no fused CPU kernel and uses foreach")
    # schedule
    scheduler: Literal["fixed", "inverse_sqrt", "exponential"] = option(
        "fixed", "fixed: constant lr; inverse_sqrt: fairseq's (linear warmup, then lr*sqrt(warmup/update)); "
        "exponential: lr *= lr_decay after every epoch while lr >= min_lr")
    warmup_updates: int = option(0, "linear warmup updates (inverse_sqrt needs > 0; fixed/exponential: "
                                    "fairseq's fixed-schedule warmup, lr*(update+1)/warmup)")
    warmup_init_lr: float = option(-1.0, "inverse_sqrt: lr at update 0; -1 = 0 when warmup_updates > 0 (fairseq)")
    lr_decay: float = option(1.0, "exponential: multiplicative lr factor after every epoch "
                                  "(SLU: 1/1.1 = 0.9090909090909091 text teacher, 1/1.05 = 0.9523809523809523 AM/SLU)")
    min_lr: float = option(0.0, "exponential: no further decay once lr < min_lr (SLU code: 1e-8)")
    # length and batching
    max_epochs: int = option(100, "maximum number of epochs")
    max_updates: int = option(0, "stop after this many updates (0 = no limit)")
    update_freq: int = option(1, "accumulate gradients over this many batches per update (per process)")
    clip_norm: float = option(0.0, "clip the global gradient norm to this value (0 = off)")
    amp: Literal["auto", "bf16", "none"] = option(
        "auto", "mixed precision: auto = bf16 autocast on a CUDA device that supports it, none on CPU")
    device: Literal["auto", "cpu", "cuda"] = option("auto", "auto = cuda:LOCAL_RANK when CUDA is available, else cpu")
    # model selection
    best_metric: str = option("valid_loss", "validation metric that selects checkpoint_best.pt and drives patience")
    maximize: bool = option(False, "true when a larger best_metric is better (accuracy, BLEU)")
    patience: int = option(0, "stop after this many validations without strict improvement (0 = off)")
    # checkpoints and logging (results do not depend on these)
    save_interval_updates: int = option(0, "also write checkpoint_last.pt every N updates inside an epoch "
                                           "(0 = only at epoch ends)", hashed=False)
    keep_last_epochs: int = option(0, "keep checkpoint<epoch>.pt for the last N epochs (for averaging); "
                                      "0 = none, -1 = all", hashed=False)
    log_interval: int = option(100, "log training statistics every N updates", hashed=False)
    num_workers: int = option(0, "DataLoader worker processes that collate batches (0 = in the main process)",
                              hashed=False)
    progress: bool = option(True, "show a tqdm progress bar (rank 0)", hashed=False)
    tensorboard: bool = option(True, "write TensorBoard scalars to <run dir>/tensorboard", hashed=False)
    find_unused_parameters: bool = option(
        True, "DDP: allow parameters without gradient in an update (e.g. an encoder run under no_grad "
              "for its first N updates)", hashed=False)

    def __post_init__(self) -> None:  # ValueError -> load_config reports it as an InputError
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if len(self.betas) != 2:
            raise ValueError(f"betas must have 2 values, got {self.betas}")
        if self.scheduler == "inverse_sqrt" and self.warmup_updates <= 0:
            raise ValueError("scheduler inverse_sqrt needs warmup_updates > 0 (its decay factor is "
                             "lr*sqrt(warmup_updates))")
        if self.scheduler == "exponential" and not 0 < self.lr_decay <= 1:
            raise ValueError(f"lr_decay must be in (0, 1] (a multiplicative factor), got {self.lr_decay}")
        for name in ("warmup_updates", "max_updates", "patience", "save_interval_updates", "num_workers"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("max_epochs", "update_freq", "log_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.clip_norm < 0:
            raise ValueError(f"clip_norm must be >= 0, got {self.clip_norm}")
        if self.keep_last_epochs < -1:
            raise ValueError(f"keep_last_epochs must be -1 (all), 0 (none) or N > 0, got {self.keep_last_epochs}")
