"""Run the sides of a benchmark alternately, each in its own single-threaded process, and summarise them.

A side's process is `python SCRIPT --worker SIDE ARGS...` and prints, last, one JSON line {"side", "times"}.
Alternating the sides process by process lets machine noise hit both alike.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Callable


def parser(doc: str, steps: int) -> argparse.ArgumentParser:
    """--processes, --steps and the hidden --worker SIDE that every benchmark of this harness takes."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--processes", type=int, default=3)
    ap.add_argument("--steps", type=int, default=steps)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    return ap


def time_calls(fn: Callable[[], object], steps: int, warmup: int = 3,
               clock: Callable[[], float] = time.perf_counter) -> list[float]:
    """Seconds per call of `fn` over `steps` calls after `warmup` untimed ones; clock=time.process_time counts
    the process's CPU time (steady on a loaded machine for one-thread work)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(steps):
        start = clock()
        fn()
        times.append(clock() - start)
    return times


def emit(side: str, times: list[float]) -> None:
    """A worker's last line, read back by run_alternately."""
    print(json.dumps({"side": side, "times": times}))


def run_alternately(script: str, sides: list[str], args: list[str], processes: int,
                    pin_one_core: bool = False) -> dict[str, list[float]]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    results: dict[str, list[float]] = {side: [] for side in sides}
    for _ in range(processes):
        for side in sides:
            cmd = [sys.executable, script, "--worker", side, *args]
            if pin_one_core and sys.platform.startswith("linux"):
                cmd = ["taskset", "-c", "0"] + cmd
            out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
            results[side] += json.loads(out.strip().splitlines()[-1])["times"]
    return results


def print_times(results: dict[str, list[float]], width: int = 10) -> dict[str, float]:
    """One line per side (min, median, max in ms); returns the medians in seconds."""
    medians = {}
    for side, times in results.items():
        medians[side] = statistics.median(times)
        print(f"  {side:{width}s} min {min(times) * 1e3:7.1f} ms  median {medians[side] * 1e3:7.1f} ms  "
              f"max {max(times) * 1e3:7.1f} ms")
    return medians
