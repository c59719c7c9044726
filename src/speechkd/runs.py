"""Run directories: runs/<profile>/<name>/ with config.json, provenance.json, train_log.jsonl,
checkpoints/, metrics.json and DONE (written last, atomically, holding the config hash).

A stage does:
    run = Run(cfg, stage="slu-finetune")
    if run.is_done(): return run.metrics()        # same config already finished: skip
    run.start()                                     # directory, config.json, provenance.json
    ... train, run.log({...}) ...
    run.finish(metrics, save=write_outputs)         # outputs, metrics.json, then DONE

Under torchrun every rank runs the stage; rank 0 alone decides whether the run is done and writes the files
(train.distributed.main_only), the others wait for it and go on with its decision and its metrics.

One process at a time works in a run directory: the first that finds it not done (or starts it) takes an
exclusive flock on <run>/.lock (rank 0 alone under torchrun) and holds it until DONE is written or the process
ends (the kernel releases it on exit, kill -9 included); a second process is refused with the holder's pid.
"""
from __future__ import annotations

import datetime
import fcntl
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from .config import config_hash, run_references, to_dict
from .errors import InputError
from .fileio import remove_stale_temporaries, write_json_atomic

REPO_ROOT = Path(__file__).resolve().parents[2]
_PACKAGES = ("speechkd", "torch", "numpy", "scipy", "soundfile", "kaldi_native_fbank", "sentencepiece",
             "sacrebleu", "sacremoses", "jiwer", "espeakng-loader", "tensorboard", "matplotlib")


LOCK_FILE = ".lock"
UPSTREAM_FILE = "upstream.json"  # the DONE records of the runs this run read, when it started
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_HELD: dict[str, tuple[int, int]] = {}  # lock file -> (pid, fd) of the run locks this process holds


def is_plain_name(value: str) -> bool:
    """A run or profile name is one directory under runs_dir: letters, digits, '_', '-', '.', never '.' or '..'
    (so that `--set name=../../x` cannot write outside runs_dir)."""
    return bool(_PLAIN_NAME.match(value)) and value not in (".", "..")


def check_plain_name(value: str, key: str) -> str:
    if not is_plain_name(value):
        raise InputError(f"{key}: {value!r} is not a plain directory name (expected letters, digits, '_', '-' "
                         f"and '.', not '.' or '..', no '/')")
    return value


class Run:
    def __init__(self, cfg: Any, stage: str):
        self.cfg, self.stage = cfg, stage
        self.name = check_plain_name(cfg.name or stage, "name")
        check_plain_name(cfg.profile, "profile")
        self.dir = run_dir(cfg, self.name)
        self.hash = config_hash(cfg)

    # paths
    @property
    def checkpoint_dir(self) -> Path:
        return self.dir / "checkpoints"

    @property
    def log_path(self) -> Path:
        return self.dir / "train_log.jsonl"

    @property
    def done_path(self) -> Path:
        return self.dir / "DONE"

    # state
    def is_done(self) -> bool:
        try:
            return json.loads(self.done_path.read_text())["config_hash"] == self.hash
        except (OSError, ValueError, KeyError):
            return False

    def metrics(self) -> dict:
        return json.loads((self.dir / "metrics.json").read_text())

    def upstream_state(self) -> dict[str, str]:
        """The DONE record of every run this run's config names (its run references, option(run_ref=True)), ''
        for one not finished: what the run is made from. A reference that is a file path is not a run."""
        state = {}
        for _, name in run_references(self.cfg):
            if is_plain_name(name) and not name.endswith(".pt"):
                done = self.dir.parent / name / "DONE"
                state[name] = done.read_text(encoding="utf-8") if done.is_file() else ""
        return state

    def is_current(self) -> bool:
        """The one rule for every stage: DONE with this config's hash and made from its upstream runs as they are
        now (upstream.json, written at start, holds their DONE records then): redoing an upstream run makes every
        run that read it stale, whichever method it belongs to."""
        if not self.is_done():
            return False
        try:
            return json.loads((self.dir / UPSTREAM_FILE).read_text(encoding="utf-8")) == self.upstream_state()
        except (OSError, ValueError):
            return False

    def metrics_if_done(self) -> dict | None:
        """The finished run's metrics when it is current (the stage then returns them and does nothing else),
        else None. Under torchrun rank 0 decides for all ranks: all skip or none does."""
        return self._distributed().main_only(self._done_metrics, self.is_current)

    def _done_metrics(self, is_done: Callable[[], bool]) -> dict | None:
        if not is_done():
            if self.dir.is_dir():  # this process will redo or resume it: a second one is refused from here on
                self._lock()
            return None
        print(f"[{self.stage}] {self.dir} is done", file=sys.stderr)
        return self.metrics()

    def start(self) -> "Run":
        """Create the directory. A directory left by a *different* config is moved aside (never mixed
        with, never deleted); one left by the same config is kept so that training resumes.
        Under torchrun only rank 0 touches the file system; the other ranks wait for it."""
        self._distributed().main_only(self._prepare)
        return self

    def _distributed(self):
        """train.distributed, with torchrun's process group joined (idempotent), so that the decisions and the
        writes before training are already shared by all ranks."""
        from .train import distributed
        distributed.init(getattr(getattr(self.cfg, "train", None), "device", "auto"))
        return distributed

    # the run lock
    def _lock(self) -> None:
        """Take (or keep) the exclusive flock on <run>/.lock; InputError naming the directory and the holder's pid
        when another process has it. A lock this process took on a directory since moved aside is retaken."""
        path = self.dir / LOCK_FILE
        key = str(path.absolute())
        held = _HELD.get(key)
        if held is not None:
            pid, fd = held
            try:
                same_file = pid == os.getpid() and os.path.samestat(os.fstat(fd), os.stat(path))
            except OSError:
                same_file = False
            if same_file:
                return
            self._unlock()
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise InputError(f"{self.dir}: run directory in use by another process (pid {holder}, lock {path}); "
                             f"wait for it to finish, or give this run another name") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _HELD[key] = (os.getpid(), fd)

    def _unlock(self) -> None:
        held = _HELD.pop(str((self.dir / LOCK_FILE).absolute()), None)
        if held is not None and held[0] == os.getpid():
            os.close(held[1])  # closing the descriptor releases the flock

    def _prepare(self) -> None:
        self._lock()
        old = self.dir / "config.json"
        if old.exists():
            try:
                old_hash = config_hash_of_file(old)
            except (OSError, ValueError):
                old_hash = None
            if old_hash != self.hash:
                self._move_aside(f"stale-{(old_hash or 'unknown')[:8]}", "config changed")
        upstream = self.upstream_state()
        recorded = self.dir / UPSTREAM_FILE
        if recorded.exists() and _read_json_or_none(recorded) != upstream:
            # an upstream run was redone since this one started: retrain from scratch, do not resume or mix
            self._move_aside("stale-upstream", "an upstream run changed")
        stale = remove_stale_temporaries(self.dir)  # we hold the lock: no other writer is mid-write here
        if stale:
            print(f"[{self.stage}] removed {len(stale)} temporary file(s) of an interrupted write: "
                  f"{', '.join(str(p.relative_to(self.dir)) for p in stale[:5])}", file=sys.stderr)
        self.done_path.unlink(missing_ok=True)
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.dir / "config.json", {"stage": self.stage, "config_hash": self.hash,
                                                     "config": to_dict(self.cfg)})
        write_json_atomic(self.dir / "provenance.json", provenance())
        write_json_atomic(recorded, upstream)
        _drop_partial_last_line(self.log_path)

    def _move_aside(self, suffix: str, why: str) -> None:
        """Move a previous attempt that must not be resumed to <run>.<suffix> (never mixed with, never deleted)."""
        aside = self.dir.with_name(f"{self.dir.name}.{suffix}")
        shutil.rmtree(aside, ignore_errors=True)
        self.dir.rename(aside)
        print(f"[{self.stage}] {why}: previous run moved to {aside}", file=sys.stderr)
        self._lock()  # the lock went aside with the old directory: take the new one's

    def log(self, record: dict) -> None:
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")

    def finish(self, metrics: dict, save: Callable[[], None] | None = None) -> dict:
        """`save()` (the run's outputs: bundle, encoder files, ...), then metrics.json, then DONE: on rank 0
        only, the other ranks waiting for them. Returns the flat metrics (rank 0's on every rank)."""
        flat = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool)) or v is None}
        if len(flat) != len(metrics):
            raise ValueError(f"metrics.json must be one flat object; nested keys: {set(metrics) - set(flat)}")
        return self._distributed().main_only(self._write_finish, flat, save)

    def _write_finish(self, flat: dict, save: Callable[[], None] | None) -> dict:
        if save is not None:
            save()
        write_json_atomic(self.dir / "metrics.json", flat)
        shown = ", ".join(f"{k} {v:.4g}" for k, v in flat.items()
                          if isinstance(v, float) and k.startswith(("test_", "dev_", "valid_", "best_")))[:300]
        print(f"[{self.stage}] {self.name} finished{': ' + shown if shown else ''} (all of it in "
              f"{self.dir / 'metrics.json'})", file=sys.stderr, flush=True)
        write_json_atomic(self.done_path, {"config_hash": self.hash, "stage": self.stage,
                                           "finished": _now("microseconds")})  # tells two finishes apart
        self._unlock()
        return flat


def _read_json_or_none(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _drop_partial_last_line(path: Path) -> None:
    """A run killed mid-write can leave half a JSON line at the end of the log: cut it before appending."""
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with open(path, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


def config_hash_of_file(path: Path) -> str:
    return json.loads(Path(path).read_text())["config_hash"]


def _now(timespec: str = "seconds") -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec=timespec)


def git_commit() -> dict:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        commit, dirty = "", False
    return {"commit": commit or "unknown", "dirty": dirty}


def device_info() -> dict:
    import torch
    info = {"torch_threads": torch.get_num_threads(), "cuda": torch.version.cuda}
    if torch.cuda.is_available():
        info["device"] = torch.cuda.get_device_name(0)
        info["gpus"] = torch.cuda.device_count()
    else:
        info["device"] = "cpu: " + _cpu_model()
    info["cpus"] = os.cpu_count()
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_versions() -> dict:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def provenance() -> dict:
    return {"date": _now(), "git": git_commit(), "python": sys.version.split()[0],
            "platform": platform.platform(), "host": socket.gethostname(), "argv": sys.argv,
            "packages": package_versions(), **device_info()}


# ---------------------------------------------------------- how a run refers to other runs and to external inputs
# Runs name each other by RUN NAME (resolved as <runs_dir>/<profile>/<name>, so `--set runs_dir=...` moves a whole
# pipeline) and external inputs (corpora, released checkpoints) by PATH, relative ones under the config's
# `data_root` (the paper configs hold paths relative to the directory the real corpora were unpacked to).

def run_dir(cfg: Any, name: str) -> Path:
    """<runs_dir>/<profile>/<name>: another run of the same profile."""
    return Path(cfg.runs_dir) / cfg.profile / name


def finished_run(cfg: Any, name: str, field: str, stage: str | None = None) -> Path:
    """The directory of a finished (DONE) run, or an InputError naming the config field that points at it;
    with `stage`, the run must also have been written by that stage."""
    if not name:
        raise InputError(f"{field}: no run name given")
    path = run_dir(cfg, name)
    done = path / "DONE"
    if not done.is_file():
        hint = f"the `speechkd {stage}` stage that writes it" if stage else "its stage"
        raise InputError(f"{field}: run '{name}' is not finished ({done} is missing): run {hint} first")
    written_by = (_read_json_or_none(done) or {}).get("stage")
    if stage and written_by not in (None, stage):
        raise InputError(f"{field}: run '{name}' was written by `speechkd {written_by}`, expected `speechkd {stage}`")
    return path


def run_config(path: Path) -> dict:
    """The resolved config (and stage) a run was started with: {"stage": ..., "config": {...}}."""
    try:
        return json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"{path}/config.json: cannot read the run's config ({e})") from None


def data_path(data_root: str, path: str) -> Path:
    """An external input path: as given when absolute (or when data_root is empty), else under data_root."""
    p = Path(path)
    return p if p.is_absolute() or not data_root else Path(data_root) / p


def require_file(path: Path, field: str, what: str) -> Path:
    """`path` when it is a file, else an InputError naming the config field, what was expected and the path."""
    if not path.is_file():
        raise InputError(f"{field}: {what} not found: {path}")
    return path

