"""The one trainer of every stage: gradient accumulation, DDP, bf16 autocast, clipping, schedules, validation,
early stopping, checkpoints and exact resume.

The task object supplies the data and the loss (TrainTask). Update semantics are fairseq's: the
summed loss of update_freq batches is back-propagated batch by batch (DDP syncs only on the last, via
no_sync), then the gradient is scaled to sum_grad / total sample_size over all batches and all ranks.

Validation runs on rank 0 only (on the unwrapped model, in eval mode, under no_grad) and its metrics are
broadcast, so every rank takes the same early-stopping decision. Checkpoints are written by rank 0 only, the
other ranks waiting until the files are there (distributed.main_only), and hold everything a rerun needs to
continue bit-identically: the model (frozen parameters included; modules held by the task, such as a KD expert,
are not part of it), optimiser, counters, position in the epoch, the RNG states of every rank, and the task's
state_dict() when it has one.
"""
from __future__ import annotations

import contextlib
import dataclasses
import shutil
import sys
from typing import Any, Protocol, Sequence

import torch

from ..errors import InputError
from ..fileio import atomic_path
from ..runs import Run
from . import distributed as dist
from .batches import BatchSource, SpecLoader, iterate, to_device
from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .optim import LRSchedule, build_optimizer
from .progress import TrainLogger
from .reproducibility import capture_rng_state, derive_seed, restore_rng_state
from .state import TrainState, averages

LAST, BEST = "checkpoint_last.pt", "checkpoint_best.pt"


class TrainTask(BatchSource, Protocol):
    """What the Trainer needs of a task (a plain object, never an nn.Module): load_batch (BatchSource) and these.

    Optional hooks, called when the task has them: set_device(device), on_update(num_updates, model) after every
    optimizer update, state_dict() and load_state_dict(state) (weights_only-safe values, in every checkpoint)."""

    def train_batches(self, epoch: int, rank: int, world_size: int) -> Sequence[Any]:
        """This rank's batch specs of the epoch ([] = a dummy step), deterministic given the epoch."""
        ...

    def loss(self, model: Any, batch: dict) -> tuple[torch.Tensor, float, dict[str, float]]:
        """(summed loss tensor, sample_size, dict of logging sums), calling model(...) once so that DDP sees the
        forward. Logging sums are reported divided by sample_size."""
        ...

    def validate(self, model: Any) -> dict[str, float]:
        """Validation metrics (rank 0 only, the unwrapped model in eval mode, under no_grad)."""
        ...


class Trainer:
    """Trains `model` on `task` (TrainTask) under `cfg`, writing checkpoints and logs into `run`."""

    def __init__(self, cfg: TrainConfig, run: Run, model: torch.nn.Module, task: TrainTask):
        if isinstance(task, torch.nn.Module):  # its state_dict() would put e.g. a KD expert into every checkpoint
            raise TypeError("the task must not be an nn.Module: hold modules (an expert) as attributes of a plain "
                            "object, and return only task state from state_dict()")
        dist.init(cfg.device)
        self.cfg, self.run, self.task = cfg, run, task
        self.rank, self.world = dist.rank(), dist.world_size()
        self.device = dist.device(cfg.device)
        self.model = model.to(self.device)
        if hasattr(task, "set_device"):
            task.set_device(self.device)
        self.optimizer = build_optimizer(cfg, self.model.parameters())
        self.schedule = LRSchedule(cfg)
        self.seed = int(getattr(run.cfg, "seed", 1))
        self.amp = self._amp_enabled()
        self.state = TrainState()
        self.logger = TrainLogger(run, enabled=dist.is_main(), tensorboard=cfg.tensorboard, progress=cfg.progress)
        self.wrapped: torch.nn.Module = self.model
        self.lr = self.schedule.lr_at(0, 0)

    def _amp_enabled(self) -> bool:
        if self.cfg.amp == "none":
            return False
        supported = self.device.type == "cpu" or torch.cuda.is_bf16_supported()
        if self.cfg.amp == "bf16":
            if not supported:
                raise InputError(f"train.amp: bf16 requested but {torch.cuda.get_device_name()} does not support it")
            return True
        return self.device.type == "cuda" and supported  # auto: bf16 on capable GPUs, full precision on CPU

    def _autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp)

    # ------------------------------------------------------------------------------------------ loop
    def fit(self) -> dict:
        self._resume()
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.wrapped = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=ids, find_unused_parameters=self.cfg.find_unused_parameters)
        try:
            while not self.state.finished:
                self._train_epoch()
        finally:
            self.logger.close()
        return self.final_metrics()

    def _train_epoch(self) -> None:
        st, cfg = self.state, self.cfg
        specs = list(self.task.train_batches(st.epoch, self.rank, self.world))
        total = int(dist.all_reduce_floats([len(specs)], op="max")[0])
        specs += [[] for _ in range(total - len(specs))]  # every rank must make the same number of steps
        loader = SpecLoader(self.task, specs, self.seed, st.epoch, self.rank, self.world)
        self._dummy: Any = None
        self._loader = loader
        self.lr = self.schedule.apply(self.optimizer, st.num_updates, st.epoch - 1)
        num_groups = -(-total // cfg.update_freq)
        self.logger.start_epoch(st.epoch, num_groups, st.batches_done // cfg.update_freq)
        self.model.train()
        batches = iterate(loader, st.batches_done, cfg.num_workers, pin_memory=self.device.type == "cuda")
        interval: dict[str, float] = {}
        while st.batches_done < total:
            group = [next(batches) for _ in range(min(cfg.update_freq, total - st.batches_done))]
            sums = self._update(group)
            st.batches_done += len(group)
            if sums is not None:
                st.add_sums(sums)
                for key, value in sums.items():
                    interval[key] = interval.get(key, 0.0) + value
                self.logger.advance({"loss": sums["loss"] / max(sums["sample_size"], 1e-12), "lr": self.lr})
                if st.num_updates % cfg.log_interval == 0:
                    self._log_interval(interval)
                    interval = {}
            if cfg.max_updates and st.num_updates >= cfg.max_updates:
                break
            if cfg.save_interval_updates and sums is not None and st.batches_done < total \
                    and st.num_updates % cfg.save_interval_updates == 0:
                self._save([LAST], mid_epoch=True)
        self.logger.end_epoch()
        self._end_epoch()

    def _update(self, group: list[Any]) -> dict[str, float] | None:
        """One optimiser update from a group of collated batches (None = dummy). Returns the all-reduced
        sums (loss, sample_size, gnorm, logging sums), or None when the group held no samples on any rank."""
        loss_sum, size_sum, logs_sum = 0.0, 0.0, {}
        for i, batch in enumerate(group):
            dummy = batch is None
            if dummy:
                if self.world == 1:
                    continue
                batch = self._dummy_batch()
            last = i == len(group) - 1
            sync = self.wrapped.no_sync() if self.world > 1 and not last else contextlib.nullcontext()
            with sync:
                with self._autocast():
                    loss, size, logs = self.task.loss(self.wrapped, to_device(batch, self.device))
                if dummy:  # runs the forward/backward so DDP's all-reduce matches, contributes nothing
                    loss, size, logs = loss * 0.0, 0.0, {k: 0.0 for k in logs}
                loss.backward()
            loss_sum += float(loss.detach())
            size_sum += float(size)
            for key, value in logs.items():
                logs_sum[key] = logs_sum.get(key, 0.0) + float(value)
        keys = sorted(logs_sum)
        reduced = dist.all_reduce_floats([loss_sum, size_sum, *(logs_sum[k] for k in keys)])
        loss_sum, size_sum = reduced[0], reduced[1]
        params = [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]
        if size_sum == 0 or not params:
            self.optimizer.zero_grad(set_to_none=True)
            return None
        # DDP averaged the gradients over ranks: world/size turns that into sum_grad / total sample_size
        scale = self.world / size_sum
        grads = [p.grad for p in params]
        torch._foreach_mul_(grads, scale)  # multi-tensor ops: one call for all parameters, same values
        gnorm = torch.nn.utils.get_total_norm(grads, foreach=True)
        if not torch.isfinite(gnorm):
            raise FloatingPointError(f"gradient norm is {float(gnorm)} at update {self.state.num_updates + 1} "
                                     f"(epoch {self.state.epoch}); lower the lr or set train.clip_norm")
        if self.cfg.clip_norm > 0:
            torch.nn.utils.clip_grads_with_norm_(params, self.cfg.clip_norm, gnorm, foreach=True)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.state.num_updates += 1
        self.lr = self.schedule.apply(self.optimizer, self.state.num_updates, self.state.epoch - 1)
        if hasattr(self.task, "on_update"):
            self.task.on_update(self.state.num_updates, self.model)
        # gnorm is weighted by sample_size so that averages() reports a size-weighted mean over an interval
        return {"loss": loss_sum, "sample_size": size_sum, "gnorm": float(gnorm) * size_sum,
                **{k: v for k, v in zip(keys, reduced[2:])}}

    def _dummy_batch(self) -> Any:
        if self._dummy is None:
            self._dummy = self._loader.first_real()
            if self._dummy is None:
                raise RuntimeError(f"rank {self.rank} has no batch at all in epoch {self.state.epoch}: "
                                   f"too little training data for {self.world} processes")
        return self._dummy

    def _log_interval(self, sums: dict[str, float]) -> None:
        st = self.state
        record = {"epoch": st.epoch, "update": st.num_updates, "lr": self.lr, **averages(sums, "")}
        self.logger.record(record, tb_prefix="train", step=st.num_updates)

    # ------------------------------------------------------------------------------ epoch end, stopping
    def _end_epoch(self) -> None:
        st, cfg = self.state, self.cfg
        metrics = self._validate()
        if cfg.best_metric not in metrics:
            raise InputError(f"train.best_metric: '{cfg.best_metric}' is not a validation metric of this stage "
                             f"(it reports: {', '.join(sorted(metrics))})")
        st.train_metrics = {k: v for k, v in averages(st.epoch_sums, "train_").items() if k != "train_gnorm"}
        is_best = st.observe(metrics, cfg.best_metric, cfg.maximize)
        completed = st.epoch
        self.logger.record({"epoch": completed, "update": st.num_updates, **st.train_metrics, **metrics,
                            f"best_{cfg.best_metric}": st.best_value, "best_epoch": st.best_epoch},
                           tb_prefix="valid", step=st.num_updates)
        if self.rank == 0:  # one console line per validation: the metric that selects the best checkpoint
            print(f"[{self.run.stage}] {self.run.name} epoch {completed} (update {st.num_updates}): "
                  f"{cfg.best_metric} {metrics[cfg.best_metric]:.4g} (best {st.best_value:.4g}, epoch "
                  f"{st.best_epoch})", file=sys.stderr, flush=True)
        st.stopped_early = cfg.patience > 0 and st.bad_validations >= cfg.patience
        st.epochs_completed, st.epoch, st.batches_done, st.epoch_sums = completed, completed + 1, 0, {}
        st.finished = self._should_stop()
        names = ([f"checkpoint{completed}.pt"] if cfg.keep_last_epochs != 0 else []) + \
                ([BEST] if is_best else []) + [LAST]
        self._save(names, mid_epoch=False)
        self._prune_epoch_checkpoints(completed)

    def _should_stop(self) -> bool:
        st, cfg = self.state, self.cfg
        return st.stopped_early or (bool(cfg.max_updates) and st.num_updates >= cfg.max_updates) \
            or st.epochs_completed >= cfg.max_epochs

    def _validate(self) -> dict[str, float]:
        metrics = None
        if dist.is_main():
            self.model.eval()
            with torch.no_grad(), self._autocast():
                metrics = {k: float(v) for k, v in self.task.validate(self.model).items()}
            self.model.train()
        return dist.broadcast_object(metrics)

    def final_metrics(self) -> dict:
        st = self.state
        out: dict[str, Any] = {"num_updates": st.num_updates, "epochs": st.epochs_completed,
                               "best_epoch": st.best_epoch, "stopped_early": st.stopped_early}
        out.update(st.train_metrics)
        out.update(st.last_valid)
        out.update({f"best_{k}": v for k, v in st.best_metrics.items()})
        return out

    # ----------------------------------------------------------------------------------- checkpoints
    def _save(self, names: list[str], mid_epoch: bool) -> None:
        rngs = dist.all_gather_object(capture_rng_state())  # collective: every rank gets here
        # every rank waits for the files: after fit() any rank may read checkpoint_best.pt
        dist.main_only(self._write_checkpoint, names, rngs, mid_epoch)

    def _write_checkpoint(self, names: list[str], rngs: list, mid_epoch: bool) -> None:
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "train_state": self.state.to_dict(), "rng": rngs, "world_size": self.world,
                 "train_config": dataclasses.asdict(self.cfg),
                 "lr": self.lr, "task": self.task.state_dict() if hasattr(self.task, "state_dict") else None}
        first = self.run.checkpoint_dir / names[0]
        save_checkpoint(first, state)
        for name in names[1:]:  # same bytes: copy rather than serialise again (still temp file + rename)
            with atomic_path(self.run.checkpoint_dir / name) as tmp:
                shutil.copyfile(first, tmp)
        self.logger.record({"event": "checkpoint", "epoch": self.state.epoch, "update": self.state.num_updates,
                            "mid_epoch": mid_epoch, "files": names})

    def _prune_epoch_checkpoints(self, completed: int) -> None:
        keep = self.cfg.keep_last_epochs
        if not dist.is_main() or keep <= 0:
            return
        for path in self.run.checkpoint_dir.glob("checkpoint*.pt"):
            number = path.stem[len("checkpoint"):]
            if number.isdigit() and int(number) <= completed - keep:
                path.unlink(missing_ok=True)

    def _resume_candidates(self) -> list:
        """The checkpoints a resume may start from, newest first: checkpoint_last.pt, then checkpoint<N>.pt by
        descending N (checkpoint_best.pt is not the latest state, so never one)."""
        directory = self.run.checkpoint_dir
        epochs = [p for p in directory.glob("checkpoint*.pt") if p.stem[len("checkpoint"):].isdigit()]
        epochs.sort(key=lambda p: int(p.stem[len("checkpoint"):]), reverse=True)
        return [p for p in [directory / LAST, *epochs] if p.is_file()]

    def _load_resume_checkpoint(self) -> tuple[Any, dict] | None:
        """The newest readable checkpoint (a truncated checkpoint_last.pt, e.g. from a full disk, falls back to the
        epoch checkpoint beside it), saying which one; None when there is none; InputError when none is readable."""
        candidates = self._resume_candidates()
        failures = []
        for path in candidates:
            try:
                ckpt = load_checkpoint(path)
                for key in ("model", "optimizer", "train_state", "rng", "world_size"):
                    if key not in ckpt:
                        raise InputError(f"{path}: not a training checkpoint (no '{key}')")
            except InputError as e:
                failures.append(str(e))
                if dist.is_main():
                    print(f"[train] cannot resume from {path.name}: {e}", file=sys.stderr)
                continue
            if dist.is_main():
                note = f" ({len(failures)} newer checkpoint(s) unreadable)" if failures else ""
                print(f"[train] resuming from {path}{note}", file=sys.stderr)
            return path, ckpt
        if failures:
            raise InputError(f"{self.run.checkpoint_dir}: no readable checkpoint to resume from:\n  "
                             + "\n  ".join(failures) + "\nremove the run directory to start over")
        return None

    def _resume(self) -> None:
        found = self._load_resume_checkpoint()
        if found is None:
            self.optimizer.zero_grad(set_to_none=True)
            return
        path, ckpt = found
        self.model.load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.state = TrainState.from_dict(ckpt["train_state"])
        if ckpt.get("task") is not None and hasattr(self.task, "load_state_dict"):
            self.task.load_state_dict(ckpt["task"])
        rngs, saved_world = ckpt["rng"], int(ckpt["world_size"])
        if saved_world == self.world:
            restore_rng_state(rngs[self.rank])
        else:  # still a valid continuation, no longer identical to an uninterrupted run
            print(f"[train] resuming a {saved_world}-process checkpoint with {self.world} processes: "
                  f"RNG streams and the position in the epoch are approximated", file=sys.stderr)
            restore_rng_state(rngs[min(self.rank, len(rngs) - 1)])
            torch.manual_seed(derive_seed(self.seed, self.rank, self.state.num_updates))
            self.state.batches_done = -(-self.state.batches_done * saved_world // self.world)
        self.state.finished = self._should_stop()  # the limits of this config (e.g. a raised max_epochs)
        self.lr = self.schedule.apply(self.optimizer, self.state.num_updates, self.state.epoch - 1)
        self.logger.record({"event": "resume", "checkpoint": path.name, "epoch": self.state.epoch,
                            "update": self.state.num_updates,
                            "batches_done": self.state.batches_done, "finished": self.state.finished})
