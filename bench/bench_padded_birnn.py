"""Bidirectional LSTM forward+backward over a padded batch: speechkd's bidirectional_without_packing against packing.

Side by side, each side in its own single-threaded process (>= 3 processes x >= 20 timed steps after 3 warm-ups),
on the embedded SLU DeepSpeech2's shape (batch 32, 60 frames after the convolutions, lengths 30-60, input 64,
2 layers of BiLSTM 64; --hidden/--frames/--layers for others):
  padded  speechkd.models.padded_birnn.bidirectional_without_packing (what DeepSpeech2 and Bérard run on CPU)
  packed  pack_padded_sequence -> nn.LSTM -> pad_packed_sequence (the authors' and fairseq's code)
Usage: .venv/bin/python bench/bench_padded_birnn.py [--processes 3] [--steps 20]
"""
from __future__ import annotations

from sides import emit, parser, print_times, run_alternately, time_calls


def worker(side: str, steps: int, frames: int, hidden: int, layers: int) -> None:
    import torch
    from torch import nn

    from speechkd.models.padded_birnn import bidirectional_without_packing

    torch.manual_seed(0)
    rnn = nn.LSTM(hidden, hidden, num_layers=layers, bidirectional=True)
    x = torch.randn(frames, 32, hidden, requires_grad=True)
    lengths = torch.randint(frames // 2, frames + 1, (32,))
    lengths[0] = frames

    def step() -> None:
        if side == "padded":
            out = bidirectional_without_packing(rnn, x, lengths)
        else:
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
            out = nn.utils.rnn.pad_packed_sequence(rnn(packed)[0], total_length=frames)[0]
        out.sum().backward()

    emit(side, time_calls(step, steps))


def main() -> None:
    ap = parser(__doc__, steps=20)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    args = ap.parse_args()
    if args.worker:
        return worker(args.worker, args.steps, args.frames, args.hidden, args.layers)
    results = run_alternately(__file__, ["padded", "packed"], [
        f"--{k}={getattr(args, k)}" for k in ("steps", "frames", "hidden", "layers")], args.processes)
    print(f"BiLSTM {args.layers} x {args.hidden}, batch 32 x {args.frames} frames, forward+backward, one thread, "
          f"{args.processes} processes x {args.steps} steps")
    medians = print_times(results, width=7)
    print(f"  padded / packed time ratio (median): {medians['padded'] / medians['packed']:.2f}")


if __name__ == "__main__":
    main()
