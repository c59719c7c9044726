"""s2t_transformer_s speed: train step and beam-5 decoding, speechkd vs fairseq-fixed (and transformers' Speech2Text).

Goals (../shared/PERFORMANCE.md): train step speechkd / fairseq <= 0.75, beam-5 decoding <= 0.5.
The standard batch: s2t_transformer_s (31.07 M parameters, vocabulary 8000), 8 utterances x 400 frames x 80
features, 30 target tokens (29 + EOS), CPU, float32, 2 threads. Each side runs in its own processes
(>= 3 processes, interleaved, x >= 10 timed steps after 3 warm-ups); min / median / max over all timed steps.
  train_step  model.train(); label-smoothed NLL (0.1) summed over tokens (speechkd.kd.sequence_losses,
              fairseq's formula), divided by the token count (fairseq divides the gradients by sample_size),
              backward, clip_grad_norm 10, Adam (betas 0.9/0.98, lr 2e-3)
  beam5       eval mode, encoder included, beam 5 with min_len = max_len_b = 29: every hypothesis is 29 tokens +
              EOS, i.e. exactly 30 decoder steps per batch
Sides: speechkd (this repository); fairseq (bench/ref_fairseq_s2t.py run by $FAIRSEQ_PYTHON, skipped when unset);
transformers (Speech2TextForConditionalGeneration with the same sizes, if importable; its train step uses
F.cross_entropy(label_smoothing=0.1), its beam search generate(num_beams=5, min/max_new_tokens=30)).

Usage: .venv/bin/python bench/bench_s2t.py [--processes 3] [--steps 10] [--warmup 3] [--threads 2]
       [--sides speechkd fairseq transformers] [--clock wall|cpu] [--measures train_step_s beam5_s]
On a shared, loaded CPU machine 2-thread wall times swing widely: there, `--threads 1 --clock cpu` (process
CPU time, every side alike) gives stable ratios.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VOCAB, BATCH, FRAMES, FEATS, TGT_LEN = 8000, 8, 400, 80, 30
PAD, EOS = 1, 2
MEASURES = ("train_step_s", "beam5_s")


def _batch(seed: int):
    import torch
    g = torch.Generator().manual_seed(seed)
    fbank = torch.randn(BATCH, FRAMES, FEATS, generator=g)
    target = torch.randint(4, VOCAB, (BATCH, TGT_LEN), generator=g)
    target[:, -1] = EOS
    prev = torch.cat([torch.full((BATCH, 1), EOS), target[:, :-1]], dim=1)
    return fbank, torch.full((BATCH,), FRAMES), prev, target


CLOCK = time.perf_counter  # the worker sets time.process_time for --clock cpu
AMP = "none"  # the speechkd worker's train-step autocast (--speechkd-amp)


def _timed(fn, warmup: int, steps: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(steps):
        start = CLOCK()
        fn()
        out.append(CLOCK() - start)
    return out


def _measure(fns: dict, measures: list[str], warmup: int, steps: int) -> dict:
    return {m: _timed(fns[m], warmup, steps) for m in measures}


def worker_speechkd(warmup: int, steps: int, measures: list[str]) -> dict:
    import torch

    from speechkd.decode.search import beam_search
    from speechkd.kd.sequence_losses import label_smoothed_nll
    from speechkd.models.s2t_transformer import S2TTransformerModel
    from speechkd.train.config import TrainConfig
    from speechkd.train.optim import build_optimizer

    torch.manual_seed(0)
    model = S2TTransformerModel.build("s2t_transformer_s", VOCAB)
    assert sum(p.numel() for p in model.parameters()) == 31_072_256
    fbank, lengths, prev, target = _batch(1)
    ntokens = int(target.ne(PAD).sum())
    params = [p for p in model.parameters() if p.requires_grad]
    # the trainer's optimiser (train.optimizer_impl, default fused) and its clipping with foreach ops
    optimizer = build_optimizer(TrainConfig(optimizer="adam", lr=2e-3, betas=[0.9, 0.98], eps=1e-8), params)

    def train_step():
        model.train()
        optimizer.zero_grad(set_to_none=True)
        lprobs = model.get_normalized_probs(model(fbank, lengths, prev))
        loss, _ = label_smoothed_nll(lprobs, target, 0.1, ignore_index=PAD)
        (loss / ntokens).backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0, foreach=True)
        optimizer.step()

    def beam5():
        model.eval()
        with torch.inference_mode():
            enc = model.encode(fbank, lengths)
        hyps = beam_search(model, enc, beam=5, max_len_b=TGT_LEN - 1, min_len=TGT_LEN - 1)
        assert all(h[0].tokens.numel() == TGT_LEN for h in hyps)

    def train_step_amp():  # --speechkd-amp bf16: train.amp = bf16 (an option, never the results' default)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=AMP == "bf16"):
            train_step()

    return _measure({"train_step_s": train_step_amp, "beam5_s": beam5}, measures, warmup, steps)


def worker_transformers(warmup: int, steps: int, measures: list[str]) -> dict:
    import torch
    import torch.nn.functional as F
    import transformers

    torch.manual_seed(0)
    cfg = transformers.Speech2TextConfig(
        vocab_size=VOCAB, d_model=256, encoder_layers=12, decoder_layers=6, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=2048, decoder_ffn_dim=2048, conv_channels=1024,
        conv_kernel_sizes=(5, 5), input_feat_per_channel=FEATS, dropout=0.1, attention_dropout=0.1,
        activation_dropout=0.1, tie_word_embeddings=False)
    model = transformers.Speech2TextForConditionalGeneration(cfg)
    fbank, lengths, prev, target = _batch(1)
    attention_mask = torch.ones(BATCH, FRAMES, dtype=torch.long)
    ntokens = int(target.ne(PAD).sum())
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=2e-3, betas=(0.9, 0.98), eps=1e-8)

    def train_step():
        model.train()
        optimizer.zero_grad(set_to_none=True)
        logits = model(input_features=fbank, attention_mask=attention_mask, decoder_input_ids=prev).logits
        loss = F.cross_entropy(logits.float().view(-1, VOCAB), target.view(-1), ignore_index=PAD,
                               label_smoothing=0.1, reduction="sum")
        (loss / ntokens).backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        optimizer.step()

    def beam5():
        model.eval()
        with torch.inference_mode():
            out = model.generate(input_features=fbank, attention_mask=attention_mask, num_beams=5,
                                 min_new_tokens=TGT_LEN, max_new_tokens=TGT_LEN, early_stopping=True)
        assert out.size(1) == TGT_LEN + 1

    return _measure({"train_step_s": train_step, "beam5_s": beam5}, measures, warmup, steps)


def run_side(side: str, args) -> dict | None:
    """One process of one side -> {"train_step_s": [...], "beam5_s": [...]}, or None when it cannot run."""
    common = ["--warmup", str(args.warmup), "--steps", str(args.steps), "--threads", str(args.threads),
              "--clock", args.clock, "--measures", *args.measures]
    if side == "fairseq":
        python = os.environ.get("FAIRSEQ_PYTHON")
        if not python or not (HERE / "ref_fairseq_s2t.py").exists():
            return None
        cmd = [python, str(HERE / "ref_fairseq_s2t.py"), *common]
        env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
    else:
        cmd = [sys.executable, __file__, "--worker", side, *common, "--speechkd-amp", args.speechkd_amp]
        env = dict(os.environ)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        print(f"[{side}] failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _available(side: str) -> str | None:
    """None when the side can run, else why not."""
    if side == "fairseq":
        if not os.environ.get("FAIRSEQ_PYTHON"):
            return "FAIRSEQ_PYTHON is not set (a python with fairseq-fixed)"
        if not (HERE / "ref_fairseq_s2t.py").exists():
            return "bench/ref_fairseq_s2t.py is missing"
    if side == "transformers":
        try:
            import transformers  # noqa: F401
        except ImportError:
            return "transformers is not importable"
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--processes", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sides", nargs="+", default=["speechkd", "fairseq", "transformers"])
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu = process CPU time: robust on a shared, loaded machine with --threads 1")
    ap.add_argument("--measures", nargs="+", choices=MEASURES, default=list(MEASURES),
                    help="what to time (beam5_s alone skips the train step)")
    ap.add_argument("--speechkd-amp", choices=["none", "bf16"], default="none",
                    help="bf16: speechkd's train step under bf16 autocast (train.amp = bf16; CPUs with native "
                         "bf16); the other sides stay float32")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        import torch
        global CLOCK, AMP
        CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
        AMP = args.speechkd_amp
        torch.set_num_threads(args.threads)
        fn = {"speechkd": worker_speechkd, "transformers": worker_transformers}[args.worker]
        print(json.dumps(fn(args.warmup, args.steps, args.measures)), flush=True)
        return

    sides = []
    for side in args.sides:
        why = _available(side)
        if why:
            print(f"skip {side}: {why}")
        else:
            sides.append(side)
    times: dict[str, dict[str, list[float]]] = {s: {m: [] for m in args.measures} for s in sides}
    for _ in range(args.processes):  # interleaved, so drifting machine load hits every side alike
        for side in sides:
            result = run_side(side, args)
            if result is None:
                continue
            for m in args.measures:
                times[side][m].extend(result[m])
    print(f"s2t_transformer_s, batch {BATCH}x{FRAMES}x{FEATS}, {TGT_LEN} target tokens, vocab {VOCAB}, "
          f"{args.threads} threads, {args.clock} clock, {args.processes} processes x {args.steps} steps after "
          f"{args.warmup} warm-ups; speechkd train step amp {args.speechkd_amp}")
    print(f"{'side':<14}{'measure':<14}{'min':>9}{'median':>9}{'max':>9}")
    medians: dict[str, dict[str, float]] = {}
    for side in sides:
        for m in args.measures:
            t = times[side][m]
            if not t:
                continue
            medians.setdefault(side, {})[m] = statistics.median(t)
            print(f"{side:<14}{m:<14}{min(t):9.3f}{statistics.median(t):9.3f}{max(t):9.3f}")
    ours = medians.get("speechkd", {})
    for ref in ("fairseq", "transformers"):
        for m, goal in (("train_step_s", 0.75), ("beam5_s", 0.5)):
            if m in ours and m in medians.get(ref, {}):
                ratio = ours[m] / medians[ref][m]
                note = f"  (goal <= {goal})" if ref == "fairseq" else ""
                print(f"ratio speechkd/{ref} {m}: {ratio:.3f} (medians){note}")


if __name__ == "__main__":
    main()
