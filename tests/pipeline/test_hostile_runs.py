"""Hostile input to configs and run directories (issue 13): each mistake is one clear message and exit status 2,
no traceback, and nothing half-written is left marked complete.

Configs: a missing field that decides what a run is (st-train task, criterion.name, model.arch), NaN / Infinity
for a float, device=cuda without CUDA. Run directories: a second process on a locked run, names that leave
runs_dir, stale temporaries of a killed writer, a truncated checkpoint_last.pt, byte-identical saves.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from speechkd import cli
from speechkd.config import RunConfig
from speechkd.errors import InputError
from speechkd.runs import Run
from speechkd.train.checkpoint import save_checkpoint
from speechkd.train.config import TrainConfig
from speechkd.train.reproducibility import seed_everything
from speechkd.train.trainer import Trainer

from support import train_toy
from support.paths import REPO

ASR = REPO / "configs" / "embedded" / "st" / "asr_mustc.json"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def without(obj: dict, dotted: str) -> dict:
    out = json.loads(json.dumps(obj))
    node = out
    *parents, leaf = dotted.split(".")
    for part in parents:
        node = node[part]
    del node[leaf]
    return out


# ------------------------------------------------------------------------------------------ configs

@pytest.mark.parametrize("key", ["task", "criterion.name", "model.arch"])
def test_a_missing_required_key_is_exit_2_naming_file_and_key(tmp_path, capsys, key):
    config = tmp_path / "asr.json"
    config.write_text(json.dumps(without(json.loads(ASR.read_text()), key)))
    assert cli.main(["st-train", "--config", str(config), "--set", f"runs_dir={tmp_path / 'runs'}"]) == 2
    err = capsys.readouterr().err
    assert f"{config}: key '{key}': missing required key" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("how, value", [("--set", "NaN"), ("--set", "Infinity"), ("--set", "-Infinity"),
                                        ("json", float("nan")), ("json", float("inf"))])
def test_nan_and_infinity_are_refused_for_float_fields(tmp_path, capsys, how, value):
    raw = json.loads(ASR.read_text())
    args = ["--set", f"runs_dir={tmp_path / 'runs'}"]
    if how == "--set":
        args += ["--set", f"train.lr={value}"]
    else:
        raw["train"]["lr"] = value  # json.dumps writes NaN / Infinity literals, which json.loads reads back
    config = tmp_path / "asr.json"
    config.write_text(json.dumps(raw))
    assert cli.main(["st-train", "--config", str(config), *args]) == 2
    err = capsys.readouterr().err
    assert "train.lr" in err and "expected a finite number" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_cuda_is_exit_2_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "speechkd.cli", "st-train", "--config", str(ASR),
                           "--set", f"runs_dir={tmp_path / 'runs'}", "--set", "train.device=cuda"],
                          env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "train.device" in proc.stderr and "CUDA is not available" in proc.stderr
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------------------------- run directories

@pytest.mark.parametrize("key, value", [("name", "../../x"), ("name", ".."), ("name", "."), ("name", "a/b"),
                                        ("name", "/abs"), ("name", "sp ace"), ("profile", "../p"),
                                        ("profile", "..")])
def test_run_and_profile_names_must_be_plain_directory_names(tmp_path, capsys, key, value):
    runs = tmp_path / "deep" / "runs"
    assert cli.main(["st-train", "--config", str(ASR), "--set", f"runs_dir={runs}", "--set", f"{key}={value}"]) == 2
    err = capsys.readouterr().err
    assert f"{key}: {value!r} is not a plain directory name" in err
    assert not list(tmp_path.rglob("*"))  # refused before anything was created, inside runs_dir or outside


@pytest.mark.parametrize("name", ["asr_mustc", "st.v2-seed_3", "x.stale-1234abcd"])
def test_plain_names_are_accepted(tmp_path, name):
    assert Run(RunConfig(name=name, profile="embedded", runs_dir=str(tmp_path)), "s").dir == tmp_path / "embedded" / name


HOLDER = """
import sys, time
from speechkd.config import RunConfig
from speechkd.runs import Run
Run(RunConfig(name="r", profile="p", runs_dir=sys.argv[1]), stage="holder").start()
print("locked", flush=True)
time.sleep(120)
"""


def test_a_second_process_on_a_running_run_is_refused(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], env=ENV, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        run = Run(RunConfig(name="r", profile="p", runs_dir=str(tmp_path)), stage="second")
        for attempt in (run.start, run.metrics_if_done):
            with pytest.raises(InputError) as e:
                attempt()
            assert str(run.dir) in str(e.value) and f"pid {holder.pid}" in str(e.value)
        # the same through the CLI, in another process: exit status 2, no traceback
        proc = subprocess.run([sys.executable, "-m", "speechkd.cli", "synth", "--set", f"runs_dir={tmp_path}",
                               "--set", "profile=p", "--set", "name=r"], env=ENV, capture_output=True, text=True,
                              timeout=120)
        assert proc.returncode == 2 and f"pid {holder.pid}" in proc.stderr and "Traceback" not in proc.stderr
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    # kill -9 released it: the run can be started (resumed) now
    Run(RunConfig(name="r", profile="p", runs_dir=str(tmp_path)), stage="holder").start()


def test_a_resume_removes_stale_temporaries_of_atomic_writes(tmp_path, capsys):
    cfg = RunConfig(name="r", profile="p", runs_dir=str(tmp_path))
    run = Run(cfg, stage="s").start()
    stale = [run.dir / "data" / ".fbank80.zip.k3j_9x2a.tmp", run.checkpoint_dir / ".checkpoint_last.pt.a1b2c3d4.tmp",
             run.dir / ".metrics.json.zz99yy88.tmp", run.checkpoint_dir / ".checkpoint3.pt.q7w8e9r0.tmp" / "archive"]
    kept = [run.dir / "data" / "notes.tmp", run.dir / ".hidden", run.checkpoint_dir / "checkpoint1.pt"]
    for path in stale + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")
    Run(cfg, stage="s").start()
    assert [p for p in stale if p.exists()] == [] and all(p.exists() for p in kept)
    assert not (run.checkpoint_dir / ".checkpoint3.pt.q7w8e9r0.tmp").exists()  # save_checkpoint's private folder
    assert "removed 4 temporary file(s)" in capsys.readouterr().err


def toy_trainer(run: Run, epochs: int) -> Trainer:
    train = TrainConfig(optimizer="adam", lr=2e-3, max_epochs=epochs, keep_last_epochs=-1, best_metric="valid_loss",
                        device="cpu", amp="none", progress=False, tensorboard=False, log_interval=1)
    cfg = train_toy.ToyConfig(name=run.name, profile="p", runs_dir=str(run.dir.parent.parent), n_train=64,
                              n_valid=16, batch_size=16, hidden=8, train=train)
    seed_everything(cfg.seed)
    return Trainer(train, run, train_toy.build_model(cfg), train_toy.ToyTask(cfg))


@pytest.mark.parametrize("truncated, resumed_from", [
    (["checkpoint_last.pt"], "checkpoint2.pt"),
    (["checkpoint_last.pt", "checkpoint2.pt"], "checkpoint1.pt"),
    (["checkpoint_last.pt", "checkpoint2.pt", "checkpoint1.pt"], None),
])
def test_a_truncated_checkpoint_last_falls_back_to_the_newest_readable_one(tmp_path, capsys, truncated,
                                                                          resumed_from):
    run = Run(RunConfig(name="r", profile="p", runs_dir=str(tmp_path)), stage="toy").start()
    assert toy_trainer(run, epochs=2).fit()["epochs"] == 2
    for name in truncated:
        path = run.checkpoint_dir / name
        path.write_bytes(path.read_bytes()[:1000])
    capsys.readouterr()
    if resumed_from is None:
        with pytest.raises(InputError, match="no readable checkpoint to resume from"):
            toy_trainer(run, epochs=3).fit()
        return
    metrics = toy_trainer(run, epochs=3).fit()
    assert f"resuming from {run.checkpoint_dir / resumed_from}" in capsys.readouterr().err
    assert metrics["epochs"] == 3
    resumes = [json.loads(line) for line in run.log_path.read_text().splitlines() if '"resume"' in line]
    assert resumes[-1]["checkpoint"] == resumed_from and resumes[-1]["epoch"] == int(resumed_from[10]) + 1


def test_identical_saves_are_byte_identical(tmp_path):
    torch.manual_seed(0)
    state = {"model": torch.nn.Linear(4, 3).state_dict(), "train_state": {"epoch": 2}, "lr": 1e-3}
    paths = [tmp_path / "a" / "checkpoint_last.pt", tmp_path / "b" / "checkpoint_last.pt",
             tmp_path / "a" / "checkpoint3.pt"]
    for path in paths:
        save_checkpoint(path, state)
    blobs = {p.read_bytes() for p in paths}
    assert len(blobs) == 1
    assert not list(tmp_path.rglob(".*.tmp"))  # neither the temp file nor its private folder is left
