"""Regenerate bench/README.md: run every benchmark with the settings its measurements are quoted with, and write
the machine, the load before and after each, the command and its output (ratios measured in the same run).

Usage: .venv/bin/python bench/make_readme.py [--skip memory ...]   (FAIRSEQ_PYTHON set for the fairseq sides)
The paper-scale memory benchmark takes about 15 minutes on 2 CPU cores: `--skip memory` leaves it out (its
section then says so).
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CPU = ["--threads", "1", "--clock", "cpu"]
# name -> (what it measures, arguments): one thread, process CPU time (stable on a shared machine)
BENCHES = {
    "fbank": ("80-dim fbank, x real time per core, against kaldi-native-fbank",
              ["bench_fbank.py", "--clock", "cpu", "--processes", "3", "--steps", "10"]),
    "s2t": ("s2t_transformer_s train step and beam-5 decoding, against fairseq-fixed",
            ["bench_s2t.py", *CPU, "--processes", "3", "--steps", "6", "--warmup", "2", "--sides", "speechkd",
             "fairseq"]),
    "s2t_bf16": ("the same train step under bf16 autocast (train.amp = bf16), the reference in float32",
                 ["bench_s2t.py", *CPU, "--processes", "3", "--steps", "6", "--warmup", "2", "--sides", "speechkd",
                  "fairseq", "--measures", "train_step_s", "--speechkd-amp", "bf16"]),
    "imitkd": ("ImitKD-full step / word-KD step (and our NLL step against fairseq's)",
               ["bench_imitkd.py", *CPU, "--processes", "3", "--steps", "6", "--warmup", "2"]),
    "padded_birnn": ("DeepSpeech2-shaped BiLSTM without packing / packed", ["bench_padded_birnn.py"]),
    "memory": ("paper-scale ImitKD-full update: peak host RAM (GPU memory on a GPU)", ["bench_memory.py"]),
}


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _machine() -> list[str]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").is_file() else ""
    import torch
    return [f"- date: {datetime.datetime.now().isoformat(timespec='seconds')}",
            f"- CPU: {model}, {os.cpu_count()} cores; torch {torch.__version__}, CUDA "
            f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}",
            f"- git: {subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True, cwd=HERE).stdout.strip()}",
            f"- FAIRSEQ_PYTHON: {'set' if os.environ.get('FAIRSEQ_PYTHON') else 'not set (fairseq sides skipped)'}"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip", nargs="*", default=[], choices=sorted(BENCHES))
    ap.add_argument("--out", default=str(HERE / "README.md"))
    args = ap.parse_args()
    lines = ["# Benchmarks", "", "Written by `bench/make_readme.py` (rerun it to regenerate). Each benchmark runs every "
             "side in its own processes and prints ratios measured in the same run; goals: ../shared/PERFORMANCE.md. "
             "Load averages (1, 5, 15 min) are printed before and after each: the machine may be shared.", "",
             *_machine(), ""]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for name, (what, argv) in BENCHES.items():
        cmd = [sys.executable, str(HERE / argv[0]), *argv[1:]]
        lines += [f"## {name}: {what}", "", f"`{' '.join(['.venv/bin/python', 'bench/' + argv[0], *argv[1:]])}`", ""]
        if name in args.skip:
            lines += ["Not run in this regeneration (`--skip`).", ""]
            continue
        before = _load()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        out = proc.stdout.strip() or "(no output)"
        if proc.returncode != 0:
            out += f"\n(exit code {proc.returncode})\n" + proc.stderr[-1500:]
        lines += [f"load before {before}, after {_load()}", "", "```", out, "```", ""]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"[bench] wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
