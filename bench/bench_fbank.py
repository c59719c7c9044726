"""fbank extraction speed: x real time on one core (goal >= 1000x, see ../shared/PERFORMANCE.md).

Side by side on the same 60 s of deterministic 16 kHz audio, each side in its own single-threaded process
pinned to one core (>= 3 processes per side, alternating, x >= 10 timed calls after 3 warm-ups):
  speechkd  speechkd.features.fbank.fbank (numpy, vectorised over frames)
  knf       kaldi-native-fbank, the extractor it reproduces, called the fast way (a memoryview in, frames copied
            into one preallocated array); left out, with a note, when it is not installed
Usage: .venv/bin/python bench/bench_fbank.py [--processes 3] [--steps 10] [--seconds 60] [--clock wall|cpu]
--clock cpu times each call by process CPU time: on a shared, loaded machine that is what "per core" means.
"""
from __future__ import annotations

import importlib.util
import time

from sides import emit, parser, print_times, run_alternately, time_calls

SAMPLE_RATE = 16000


def _audio(seconds: float):
    import numpy as np
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    rng = np.random.default_rng(0)
    wave = 0.2 * np.sin(2 * np.pi * (200 + 50 * np.sin(2 * np.pi * 0.5 * t)) * t) + 0.02 * rng.standard_normal(len(t))
    return wave.astype(np.float32)


def _knf_fbank():
    import kaldi_native_fbank as knf
    import numpy as np
    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.mel_opts.num_bins = 80

    def extract(wave):
        samples = np.ascontiguousarray(wave * 32768.0, dtype=np.float32)
        computer = knf.OnlineFbank(opts)
        computer.accept_waveform(float(SAMPLE_RATE), memoryview(samples))
        computer.input_finished()
        out = np.empty((computer.num_frames_ready, 80), dtype=np.float32)
        for i in range(len(out)):
            out[i] = computer.get_frame(i)
        return out
    return extract


def _side(name: str):
    if name == "speechkd":
        from speechkd.features.fbank import fbank
        return fbank
    if name == "knf":
        return _knf_fbank()
    raise SystemExit(f"unknown side {name}")


def worker(name: str, steps: int, seconds: float, clock: str) -> None:
    fn, wave = _side(name), _audio(seconds)
    assert fn(wave).shape == (1 + (len(wave) - 400) // 160, 80)
    emit(name, time_calls(lambda: fn(wave), steps, clock=time.process_time if clock == "cpu" else time.perf_counter))


def main() -> None:
    ap = parser(__doc__, steps=10)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu = process CPU time per call (steady on a shared, loaded machine)")
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.steps, args.seconds, args.clock)
    sides = ["speechkd"]
    if importlib.util.find_spec("kaldi_native_fbank"):
        sides.append("knf")
    else:
        print("kaldi-native-fbank is not installed: timing speechkd alone (scripts/install.sh --test adds it)")
    results = run_alternately(__file__, sides, ["--steps", str(args.steps), "--seconds", str(args.seconds),
                                                "--clock", args.clock], args.processes, pin_one_core=True)
    print(f"fbank 80-dim on {args.seconds:.0f} s of 16 kHz audio, one thread pinned to one core, {args.clock} clock, "
          f"{args.processes} processes x {args.steps} calls")
    medians = print_times(results)
    for side, times in results.items():
        print(f"  {side:10s} x real time per core: median {args.seconds / medians[side]:7.0f}  "
              f"(best {args.seconds / min(times):.0f}, worst {args.seconds / max(times):.0f})")
    if "knf" in medians:
        print(f"  speechkd / knf time ratio (median): {medians['speechkd'] / medians['knf']:.3f} "
              f"(speechkd {medians['knf'] / medians['speechkd']:.1f}x faster)")
    print(f"  goal >= 1000x real time per core: {'MET' if args.seconds / medians['speechkd'] >= 1000 else 'NOT MET'}")


if __name__ == "__main__":
    main()
