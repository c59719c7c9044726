"""fbank extraction speed: x real time on one core (goal >= 1000x, see ../shared/PERFORMANCE.md).

Side by side on the same 60 s of deterministic audio, each side in its own single-threaded process
(>= 3 processes x >= 10 timed calls after 3 warm-ups):
  speechkd   speechkd.features.fbank.fbank
  knf-naive  kaldi-native-fbank called the obvious way (numpy array in, np.stack of get_frame out)
Usage: .venv/bin/python bench/bench_fbank.py [--processes 3] [--steps 10] [--seconds 60]
"""
from __future__ import annotations

from sides import emit, parser, print_times, run_alternately, time_calls

SAMPLE_RATE = 16000


def _audio(seconds: float):
    import numpy as np
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    rng = np.random.default_rng(0)
    wave = 0.2 * np.sin(2 * np.pi * (200 + 50 * np.sin(2 * np.pi * 0.5 * t)) * t) + 0.02 * rng.standard_normal(len(t))
    return wave.astype(np.float32)


def _side(name: str):
    if name == "speechkd":
        from speechkd.features.fbank import fbank
        return fbank
    if name == "knf-naive":
        import kaldi_native_fbank as knf
        import numpy as np
        opts = knf.FbankOptions()
        opts.frame_opts.dither = 0.0
        opts.mel_opts.num_bins = 80

        def naive(wave):
            computer = knf.OnlineFbank(opts)
            computer.accept_waveform(SAMPLE_RATE, wave * 32768.0)
            computer.input_finished()
            return np.stack([computer.get_frame(i) for i in range(computer.num_frames_ready)])
        return naive
    raise SystemExit(f"unknown side {name}")


def worker(name: str, steps: int, seconds: float) -> None:
    fn, wave = _side(name), _audio(seconds)
    assert fn(wave).shape == (1 + (len(wave) - 400) // 160, 80)
    emit(name, time_calls(lambda: fn(wave), steps))


def main() -> None:
    ap = parser(__doc__, steps=10)
    ap.add_argument("--seconds", type=float, default=60.0)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.steps, args.seconds)
    results = run_alternately(__file__, ["speechkd", "knf-naive"], ["--steps", str(args.steps), "--seconds",
                                                                     str(args.seconds)], args.processes,
                              pin_one_core=True)
    print(f"fbank 80-dim on {args.seconds:.0f} s of 16 kHz audio, one core, "
          f"{args.processes} processes x {args.steps} calls")
    medians = print_times(results)
    for side, times in results.items():
        print(f"  {side:10s} x real time: median {args.seconds / medians[side]:7.0f}  "
              f"(best {args.seconds / min(times):.0f}, worst {args.seconds / max(times):.0f})")
    print(f"  speechkd / knf-naive time ratio (median): {medians['speechkd'] / medians['knf-naive']:.2f}")
    print(f"  goal >= 1000x real time per core: {'MET' if args.seconds / medians['speechkd'] >= 1000 else 'NOT MET'}")


if __name__ == "__main__":
    main()
