"""Run directories (config.json, provenance, DONE with hash, stale dirs moved aside) and the CLI contract."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from speechkd import cli
from speechkd.config import RunConfig
from speechkd.fileio import atomic_path, write_json_atomic
from speechkd.runs import Run

import pytest


def test_run_lifecycle(tmp_path):
    cfg = RunConfig(name="r1", runs_dir=str(tmp_path))
    run = Run(cfg, stage="toy")
    assert not run.is_done()
    run.start()
    assert run.dir == tmp_path / "embedded" / "r1"
    conf = json.loads((run.dir / "config.json").read_text())
    assert conf["config_hash"] == run.hash and conf["config"]["name"] == "r1"
    prov = json.loads((run.dir / "provenance.json").read_text())
    assert prov["packages"]["torch"].startswith("2.13") and "commit" in prov["git"] and prov["device"]
    run.log({"update": 1, "loss": 2.0})
    assert json.loads(run.log_path.read_text().splitlines()[0])["loss"] == 2.0
    assert not run.is_done()  # nothing is complete before finish()
    run.finish({"acc": 0.5})
    assert run.is_done() and run.metrics() == {"acc": 0.5}
    assert json.loads(run.done_path.read_text())["config_hash"] == run.hash
    # same config: restarting keeps the directory (resume), different config: old dir moved aside
    assert not Run(RunConfig(name="r1", runs_dir=str(tmp_path), seed=2), "toy").is_done()
    Run(RunConfig(name="r1", runs_dir=str(tmp_path), seed=2), "toy").start()
    stale = list((tmp_path / "embedded").glob("r1.stale-*"))
    assert len(stale) == 1 and (stale[0] / "metrics.json").exists()


def test_metrics_must_be_flat(tmp_path):
    run = Run(RunConfig(name="r", runs_dir=str(tmp_path)), "toy").start()
    with pytest.raises(ValueError, match="flat"):
        run.finish({"a": {"b": 1}})
    assert not run.done_path.exists()


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "x.json"
    write_json_atomic(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def _speechkd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "speechkd.cli", *args], capture_output=True, text=True)


def test_cli_lists_stages_and_stage_help():
    out = _speechkd("--help")
    assert out.returncode == 0 and "synth" in out.stdout
    out = _speechkd("synth", "--help")
    assert out.returncode == 0 and "config options" in out.stdout and "seed (integer" in out.stdout


def test_cli_bad_config_exits_2_with_one_message(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"no_such_key": 1}')
    out = _speechkd("synth", "--config", str(bad))
    assert out.returncode == 2
    assert "bad.json: key 'no_such_key': unknown key" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
    out = _speechkd("synth", "--config", str(tmp_path / "nope.json"))
    assert out.returncode == 2 and "config file not found" in out.stderr


def test_committed_schemas_are_current(tmp_path):
    cli.write_schemas(tmp_path)
    committed = Path(__file__).resolve().parents[1] / "configs" / "schemas"
    for path in tmp_path.iterdir():
        assert (committed / path.name).read_text() == path.read_text(), \
            f"configs/schemas/{path.name} is stale: run `speechkd schema`"


def test_atomic_files_get_normal_permissions(tmp_path):
    import os
    write_json_atomic(tmp_path / "p.json", {})
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "p.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_restart_cuts_a_half_written_log_line(tmp_path):
    run = Run(RunConfig(name="r", runs_dir=str(tmp_path)), "toy").start()
    run.log({"update": 1})
    with open(run.log_path, "a") as f:
        f.write('{"update": 2, "lo')  # what kill -9 in the middle of a write leaves
    Run(RunConfig(name="r", runs_dir=str(tmp_path)), "toy").start().log({"update": 2})
    assert [json.loads(l)["update"] for l in run.log_path.read_text().splitlines()] == [1, 2]


def test_pending_lists_runs_not_done_and_what_reads_them(tmp_path):
    """`speechkd pending` (the pipelines' one-process skip check): a run is pending unless DONE with its config's
    hash; a run that recorded what it read (upstream.json) is pending when that changed or is itself pending."""
    from speechkd.data.synth import stage as synth
    from speechkd.config import load_config
    config = Path(cli.__file__).resolve().parents[2] / "configs" / "embedded" / "synth.json"
    runs = f"runs_dir={tmp_path}"

    def line(token, *overrides):
        return "\t".join([token, "synth", str(config), runs, *overrides]) + "\n"

    def finish(*overrides):
        run = Run(load_config(synth.Config, config, [runs, *overrides]), "synth")
        run.dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(run.done_path, {"config_hash": run.hash, "stage": "synth"})
        return run

    up = finish("name=up")
    down = finish("name=down")
    write_json_atomic(down.dir / "upstream.json", {"up": up.done_path.read_text()})
    finish("name=other", "seed=3")
    lines = [line("up", "name=up"), line("down", "name=down"), line("other", "name=other", "seed=4")]
    assert cli.pending_runs(lines) == [("other", [])]  # other: DONE, but with another config (seed 3)
    write_json_atomic(up.done_path, {"config_hash": up.hash, "stage": "synth", "finished": "again"})
    assert cli.pending_runs(lines) == [("down", []), ("other", [])]  # up was redone since down read it
    up.done_path.unlink()
    assert cli.pending_runs(lines) == [("up", []), ("down", []), ("other", [])]  # up will be redone: down after it
    with pytest.raises(cli.InputError, match="<stdin>:1"):
        cli.pending_runs(["just-a-token\n"])


def test_pending_runs_wait_for_the_pending_runs_their_config_names(tmp_path):
    """The pipelines' pool starts a run once every pending run named in its config (model_run, asr_run, ...) is
    done: an evaluation waits for its model, a seed's evaluation for that seed's model."""
    st = Path(cli.__file__).resolve().parents[2] / "configs" / "embedded" / "st"
    runs = f"runs_dir={tmp_path}"

    def line(token, stage, config, *overrides):
        return "\t".join([token, stage, str(st / f"{config}.json"), runs, *overrides]) + "\n"

    lines = [line("st_prep_mustc", "st-prep", "st_prep_mustc"),
             line("asr_mustc", "st-train", "asr_mustc"),
             line("st_mustc_rnn_nll#2", "st-train", "st_mustc_rnn_nll", "seed=2", "name=st_mustc_rnn_nll_seed2"),
             line("st_mustc_rnn_nll_eval#2", "st-eval", "st_mustc_rnn_nll_eval", "seed=2",
                  "name=st_mustc_rnn_nll_eval_seed2", "model_run=st_mustc_rnn_nll_seed2"),
             line("synthetic_mustc", "st-synthetic", "synthetic_mustc")]
    assert cli.pending_runs(lines) == [
        ("st_prep_mustc", []), ("asr_mustc", ["st_prep_mustc"]), ("st_mustc_rnn_nll#2", ["st_prep_mustc"]),
        ("st_mustc_rnn_nll_eval#2", ["st_mustc_rnn_nll#2"]), ("synthetic_mustc", ["asr_mustc", "st_prep_mustc"])]
