"""Where training statistics go on rank 0: train_log.jsonl (via Run.log), TensorBoard scalars, a tqdm bar.
Other ranks get a logger that does nothing."""
from __future__ import annotations

import math
import sys
from typing import Any

from ..runs import Run


class TrainLogger:
    def __init__(self, run: Run, enabled: bool, tensorboard: bool, progress: bool):
        self.run, self.enabled = run, enabled
        self.progress = enabled and progress
        self._writer: Any = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:  # tensorboard is a declared dependency; say so rather than crash
                print(f"[train] TensorBoard disabled: {e}", file=sys.stderr)
            else:
                self._writer = SummaryWriter(log_dir=str(run.dir / "tensorboard"))
        self._bar: Any = None

    # ------------------------------------------------------------------------------------ records
    def record(self, record: dict, tb_prefix: str | None = None, step: int | None = None) -> None:
        """One JSON line; numeric fields also go to TensorBoard as <tb_prefix>/<key> at `step`."""
        if not self.enabled:
            return
        self.run.log(record)
        if self._writer is not None and tb_prefix is not None and step is not None:
            for key, value in record.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
                        and key not in ("epoch", "update"):
                    self._writer.add_scalar(f"{tb_prefix}/{key}", value, step)
            self._writer.flush()

    # ------------------------------------------------------------------------------------ progress bar
    def start_epoch(self, epoch: int, total: int, done: int) -> None:
        if not self.progress:
            return
        from tqdm import tqdm
        self._bar = tqdm(total=total, initial=done, desc=f"epoch {epoch}", unit="upd", leave=False,
                         dynamic_ncols=True, file=sys.stderr)

    def advance(self, postfix: dict | None = None) -> None:
        if self._bar is not None:
            self._bar.update(1)
            if postfix:
                self._bar.set_postfix({k: f"{v:.4g}" if isinstance(v, float) else v for k, v in postfix.items()},
                                      refresh=False)

    def end_epoch(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def close(self) -> None:
        self.end_epoch()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
