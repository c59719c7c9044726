"""The trainer's progress counters and model-selection bookkeeping, stored in every checkpoint.

Model selection follows fairseq: checkpoint_best.pt moves on ties (a later epoch with an equal metric wins,
as in the SLU code's "if acc >= best"), while patience counts validations without *strict* improvement.
"""
from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class TrainState:
    epoch: int = 1                      # the epoch being trained (1-based)
    batches_done: int = 0               # this rank's batch specs of `epoch` already consumed
    num_updates: int = 0
    best_value: float | None = None     # best_metric at checkpoint_best.pt
    best_epoch: int = 0
    best_metrics: dict = dataclasses.field(default_factory=dict)   # all validation metrics of best_epoch
    strict_best: float | None = None    # what patience compares against
    bad_validations: int = 0
    last_valid: dict = dataclasses.field(default_factory=dict)
    train_metrics: dict = dataclasses.field(default_factory=dict)  # last finished epoch's training averages
    epoch_sums: dict = dataclasses.field(default_factory=dict)     # running sums of the current epoch
    epochs_completed: int = 0
    stopped_early: bool = False
    finished: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainState":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def add_sums(self, sums: dict[str, float]) -> None:
        for key, value in sums.items():
            self.epoch_sums[key] = self.epoch_sums.get(key, 0.0) + value

    def observe(self, metrics: dict[str, float], metric: str, maximize: bool) -> bool:
        """Record a validation of the current epoch; True when it becomes checkpoint_best."""
        value = metrics[metric]
        self.last_valid = dict(metrics)
        at_least = self.best_value is None or (value >= self.best_value if maximize else value <= self.best_value)
        if at_least:
            self.best_value, self.best_epoch, self.best_metrics = value, self.epoch, dict(metrics)
        strictly = self.strict_best is None or (value > self.strict_best if maximize else value < self.strict_best)
        if strictly:
            self.strict_best, self.bad_validations = value, 0
        else:
            self.bad_validations += 1
        return at_least


def averages(sums: dict[str, float], prefix: str) -> dict[str, float]:
    """Logging sums -> per-normaliser averages: every key is divided by sample_size (fairseq's convention for
    loss-like sums), sample_size itself is reported as a total."""
    size = sums.get("sample_size", 0.0)
    out: dict[str, Any] = {f"{prefix}sample_size": size}
    for key, value in sums.items():
        if key != "sample_size":
            out[f"{prefix}{key}"] = value / size if size else None
    return out
