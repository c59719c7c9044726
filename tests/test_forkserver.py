"""`speechkd forkserver` + scripts/lib/forkrun.py: a run started as a fork behaves as `speechkd ARGV` would
(its directory, its log, its exit code, its error message), and the server cleans up after itself."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORKRUN = ROOT / "scripts" / "lib" / "forkrun.py"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    sock = tmp_path_factory.mktemp("fs") / "sock"
    proc = subprocess.Popen([sys.executable, "-m", "speechkd.cli", "forkserver", "--socket", str(sock)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not sock.exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() < deadline, "the fork server did not start"
        time.sleep(0.05)
    yield sock, proc
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert proc.returncode == 0 and not sock.exists()


def forkrun(sock: Path, cwd: Path, log: str, *argv: str) -> int:
    return subprocess.run([sys.executable, "-S", str(FORKRUN), str(sock), log, *argv], cwd=cwd,
                          timeout=120).returncode


def test_a_forked_run_works_in_the_clients_directory_and_logs_there(server, tmp_path):
    sock, _ = server
    assert forkrun(sock, tmp_path, "schema.log", "schema", "--out", "schemas") == 0
    written = sorted(p.name for p in (tmp_path / "schemas").iterdir())
    assert "st-train.schema.json" in written
    assert "st-train.schema.json" in (tmp_path / "schema.log").read_text()  # its stdout went to the log
    json.loads((tmp_path / "schemas" / "st-train.schema.json").read_text())


def test_a_bad_config_gives_exit_2_and_the_message_in_the_log(server, tmp_path):
    sock, _ = server
    assert forkrun(sock, tmp_path, "bad.log", "st-train", "--config", "missing.json") == 2
    assert "speechkd: error" in (tmp_path / "bad.log").read_text()


def test_runs_side_by_side(server, tmp_path):
    sock, _ = server
    procs = [subprocess.Popen([sys.executable, "-S", str(FORKRUN), str(sock), f"{k}.log", "schema", "--out",
                               f"out{k}"], cwd=tmp_path) for k in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    assert all((tmp_path / f"out{k}" / "st-train.schema.json").exists() for k in range(3))


def test_no_server_is_a_failure_with_a_message_in_the_log(tmp_path):
    assert forkrun(tmp_path / "nosock", tmp_path, "x.log", "schema") == 1
    assert "no fork server" in (tmp_path / "x.log").read_text()
