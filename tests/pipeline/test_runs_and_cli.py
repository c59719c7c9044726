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
from support.paths import REPO


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
    committed = REPO / "configs" / "schemas"
    for path in tmp_path.iterdir():
        assert (committed / path.name).read_text() == path.read_text(), \
            f"configs/schemas/{path.name} is stale: run `speechkd schema`"


def test_stage_entry_modules_are_exactly_the_cli_stages():
    """The modules in cli.STAGES, stages/<command>.py, and no others, are stage entry points (a top-level Config and run(cfg));
    every other module is a helper. Read from the source: importing every stage would load torch."""
    import re
    src = Path(cli.__file__).resolve().parent
    entries = set()
    for path in src.rglob("*.py"):
        text = path.read_text()
        if re.search(r"^def run\(", text, re.M) and re.search(r"^(class Config\b|Config = )", text, re.M):
            entries.add(".".join(("speechkd", *path.relative_to(src).with_suffix("").parts)))
    assert entries == {module for module, _ in cli.STAGES.values()}
    assert all(module == f"speechkd.stages.{name.replace('-', '_')}" for name, (module, _) in cli.STAGES.items())


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


@pytest.mark.parametrize("method, before, upstream, consumer, second", [
    ("slu", (), "slu_units", "slu_vq_bert", "slu_fsc_full_base"),
    ("st", ("st_prep_nmt",), "st_prep_mustc", "asr_mustc", "asr_mustc_eval"),
])
def test_redoing_an_upstream_run_makes_every_run_that_read_it_stale(tmp_path, method, before, upstream, consumer,
                                                                    second):
    """One rule for every stage (runs.Run.is_current): a run is current while DONE with its config and made from
    its upstream runs as they are now; the pipeline also redoes what reads a run it is about to redo."""
    from speechkd.config import load_config
    from speechkd.pipeline import plan

    def finish(name):
        r = next(r for r in plan("embedded", (method,), only=f"^{name}$", runs_dir=str(tmp_path)))
        run = Run(load_config(cli._stage_module(r.stage).Config, r.config, r.overrides), r.stage).start()
        run.finish({"seconds": 1})

    def current():
        return {r.name for r in plan("embedded", (method,), runs_dir=str(tmp_path)) if r.current}

    for name in (*before, upstream, consumer, second):
        finish(name)
    assert {upstream, consumer, second} <= current()
    finish(upstream)  # redone: a new DONE record
    assert upstream in current() and not {consumer, second} & current()
    (tmp_path / "embedded" / upstream / "DONE").unlink()  # about to be redone: everything after it waits
    assert not {upstream, consumer, second} & current()
