"""torchrun with 2 CPU processes (gloo) against 1 process accumulating 2 batches per update: the same updates,
including the dummy batch a rank gets when the batch count is odd; and an exact resume after kill -9 of a
2-process run (every rank's RNG state is in the checkpoint)."""
from __future__ import annotations


import pytest
import torch
import torch.distributed

from support.toy_runs import (assert_same_run, final_state, finish, kill_after_mid_epoch_checkpoint,  # noqa: E402
                         start, toy_command)

pytestmark = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="torch.distributed with the gloo backend is not available in this torch build")

# 990 examples / 32 = 31 batches per epoch: odd, so rank 1 runs one batch short and steps a dummy batch
DATA = ("--n-train", "990", "--epochs", "2", "--dropout", "0")


def test_two_processes_equal_one_process_with_update_freq_two(tmp_path):
    ddp_dir, acc_dir = tmp_path / "p" / "ddp", tmp_path / "p" / "acc"
    ddp = start(toy_command(ddp_dir, *DATA, "--update-freq", "1", nproc=2))
    acc = start(toy_command(acc_dir, *DATA, "--update-freq", "2"))
    finish(ddp)
    finish(acc)
    ddp_metrics, ddp_params = final_state(ddp_dir)
    acc_metrics, acc_params = final_state(acc_dir)
    assert ddp_metrics["num_updates"] == acc_metrics["num_updates"] == 2 * 16
    assert ddp_metrics["train_sample_size"] == acc_metrics["train_sample_size"] == 990
    for name in acc_params:
        assert torch.allclose(ddp_params[name], acc_params[name], atol=1e-5), name
    assert ddp_metrics["valid_loss"] == pytest.approx(acc_metrics["valid_loss"], abs=1e-5)


def test_kill9_of_a_two_process_run_resumes_exactly(tmp_path):
    ref_dir, killed_dir = tmp_path / "p" / "ref", tmp_path / "p" / "killed"
    extra = ("--n-train", "1600", "--epochs", "3", "--dropout", "0.1")  # dropout: per-rank RNG streams matter
    reference = start(toy_command(ref_dir, *extra, nproc=2))
    cmd = toy_command(killed_dir, *extra, nproc=2)
    kill_after_mid_epoch_checkpoint(start(cmd), killed_dir, min_update=30)
    finish(start(cmd))
    finish(reference)
    assert_same_run(ref_dir, killed_dir)
