"""scripts/lib/stages.sh `pool`: the pipelines' scheduler. A run starts once the pending runs its config names
(DEPS, from `speechkd pending`) have finished, at most JOBS at a time, the first listed first among the ready
ones; what depends on a failed run does not start, and the pool reports failure."""
from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_pool(jobs: int, tokens: str, deps: str, fail: str = "") -> tuple[int, list[str], str]:
    script = f"""
set -euo pipefail
cd {ROOT}
. scripts/lib/stages.sh
LOG_DIR=/tmp
stage_of() {{ echo st-train; }}
run_name() {{ echo "$1"; }}
launch_run() {{  # a stand-in for one speechkd process: records its start and end
  echo "start $1"; sleep 0.$(( ${{#1}} % 3 + 1 )); [ "$1" = "{fail}" ] && return 1; echo "end $1"
}}
DEPS=({deps})
pool {jobs} {tokens}
"""
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    return out.returncode, out.stdout.split("\n")[:-1], out.stderr


def test_runs_wait_for_what_their_config_names_and_never_exceed_jobs():
    rc, events, _ = run_pool(2, "prep asr expert student eval", 
                             '[prep]="" [asr]="prep" [expert]="" [student]="asr expert" [eval]="student"')
    assert rc == 0
    at = {e: i for i, e in enumerate(events)}
    assert at["end prep"] < at["start asr"]
    assert max(at["end asr"], at["end expert"]) < at["start student"] < at["end student"] < at["start eval"]
    running = peak = 0
    for e in events:
        running += 1 if e.startswith("start") else -1
        peak = max(peak, running)
    assert peak == 2 and sorted(e.split()[1] for e in events if e.startswith("end")) == sorted(
        ["prep", "asr", "expert", "student", "eval"])


def test_what_needs_a_failed_run_does_not_start_and_the_pool_fails():
    rc, events, err = run_pool(1, "a b c", '[a]="" [b]="a" [c]=""', fail="a")
    assert rc == 1
    assert "start b" not in events and "end c" in events  # c does not need a: it still runs
    assert "b not started: it needs a" in err


def test_done_runs_are_not_in_deps_and_do_not_hold_anything_back():
    rc, events, _ = run_pool(2, "done todo", '[todo]=""')  # `done` is DONE: speechkd pending did not list it
    assert rc == 0 and "end todo" in events
