"""Start, watch, kill -9 and compare runs of tests/support/train_toy.py (the resume and DDP tests)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from support.paths import REPO

TOY = REPO / "tests" / "support" / "train_toy.py"
TIMEOUT_S = 50


def toy_command(run_dir: Path, *extra: str, nproc: int = 1) -> list[str]:
    launcher = [sys.executable] if nproc == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)]
    return [*launcher, str(TOY), "--run-dir", str(run_dir), *extra]


def start(cmd: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # own session: a kill reaches torchrun's workers too
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=TIMEOUT_S)
    assert proc.returncode == 0, f"training failed ({proc.returncode}):\n{err[-3000:]}"
    return out


def log_records(run_dir: Path) -> list[dict]:
    """Complete JSON lines of train_log.jsonl (a line being written, or cut by a kill, is skipped)."""
    try:
        text = (run_dir / "train_log.jsonl").read_text()
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return records


def kill_after_mid_epoch_checkpoint(proc: subprocess.Popen, run_dir: Path, min_update: int,
                                    updates_past: int = 3) -> int:
    """Poll the log of this attempt (records after its last 'resume' event) until it shows `updates_past`
    updates beyond a mid-epoch checkpoint at or after `min_update`; then SIGKILL. Returns the last update seen."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        records = log_records(run_dir)
        resumes = [i for i, r in enumerate(records) if r.get("event") == "resume"]
        records = records[resumes[-1] + 1:] if resumes else records
        marks = [r["update"] for r in records if r.get("event") == "checkpoint" and r.get("mid_epoch")
                 and r["update"] >= min_update]
        latest = max((r["update"] for r in records if "loss" in r), default=0)
        if marks and latest >= marks[0] + updates_past:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=TIMEOUT_S)
            assert proc.returncode == -signal.SIGKILL, \
                f"the run ended ({proc.returncode}) before it could be killed: make the toy run longer"
            return latest
        assert proc.poll() is None, f"the run ended ({proc.returncode}) before it could be killed"
        time.sleep(0.01)
    raise AssertionError("no mid-epoch checkpoint appeared in train_log.jsonl in time")


def final_state(run_dir: Path) -> tuple[dict, dict]:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    ckpt = torch.load(run_dir / "checkpoints" / "checkpoint_last.pt", weights_only=True)
    return metrics, ckpt["model"]


def assert_same_run(a: Path, b: Path) -> None:
    metrics_a, params_a = final_state(a)
    metrics_b, params_b = final_state(b)
    assert metrics_a == metrics_b
    assert list(params_a) == list(params_b)
    for name in params_a:
        assert torch.equal(params_a[name], params_b[name]), name
    best_a = torch.load(a / "checkpoints" / "checkpoint_best.pt", weights_only=True)["model"]
    best_b = torch.load(b / "checkpoints" / "checkpoint_best.pt", weights_only=True)["model"]
    assert all(torch.equal(best_a[k], best_b[k]) for k in best_a)


