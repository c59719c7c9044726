"""kill -9 a real training run (twice, at moments chosen by watching its log), rerun the same command, and
get exactly what an uninterrupted run gets: the same metrics.json and bit-identical parameters (CPU)."""
from __future__ import annotations

import json

from support.toy_runs import assert_same_run, finish, kill_after_mid_epoch_checkpoint, log_records, start, toy_command


def test_kill9_twice_then_rerun_matches_uninterrupted_run(tmp_path):
    ref_dir, killed_dir = tmp_path / "p" / "ref", tmp_path / "p" / "killed"
    reference = start(toy_command(ref_dir))  # runs alongside, on the other core
    cmd = toy_command(killed_dir)
    first = kill_after_mid_epoch_checkpoint(start(cmd), killed_dir, min_update=20)
    # second kill in a later epoch, while running from the first resume
    second = kill_after_mid_epoch_checkpoint(start(cmd), killed_dir, min_update=200)
    assert first < 94 < 188 < second  # 94 updates per epoch: killed in epoch 1, then in epoch 3 or later
    out = finish(start(cmd))
    finish(reference)
    assert json.loads(out.strip().splitlines()[-1]) == json.loads((ref_dir / "metrics.json").read_text())
    events = [r.get("event") for r in log_records(killed_dir)]
    assert events.count("resume") == 2
    assert_same_run(ref_dir, killed_dir)
    assert (killed_dir / "DONE").exists()
    # a rerun of a finished run trains nothing and reports the same metrics
    assert json.loads(finish(start(cmd)).strip()) == json.loads((ref_dir / "metrics.json").read_text())
