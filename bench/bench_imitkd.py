"""ImitKD training-step cost: ImitKD-full step / word-level KD step on the standard batch (goal <= 1.25,
../shared/PERFORMANCE.md), and our student step against fairseq-fixed's where one is installed.

The standard batch: student s2t_transformer_s (31.07 M parameters with vocabulary 8000, dropout 0.1, train mode),
8 utterances x 400 frames x 80 features, 30 target tokens (29 + EOS); the expert a transformer-base (6 + 6
layers, d 512, 8 heads, FFN 2048, vocabulary 8000) fed 25 source tokens; Adam. Steps, each timed from the
criterion call to the end of optimizer.step():
  nll          label-smoothed NLL (0.1) student step                       (st/criteria/nll.py label_smoothed_nll)
Every step: loss / sample_size backward, gradient norm clipped to 10, Adam (0.9, 0.98) — the trainer's update.
  word_kd      expert pass on the gold prefixes + student step              (st/criteria/kd.py word_kd)
  imitkd_full  β = 0: every sentence rolled in by the student's greedy search over 30 decoder steps (29 + the
               forced EOS), one expert pass on those prefixes + student step (the worst case: late in training);
               the roll-in encodes the audio in a separate eval-mode pass, as the fork does
  imitkd_full_shared_enc  the same with criterion.kd.rollin_encoder = train: the roll-in decodes from the
               training forward's encoder output (one encoder pass less)
The student's EOS output row is zeroed so that its greedy search never stops early (an untrained model would
otherwise stop at a random length and the roll-in would do less work than on a real batch).
Each kind runs in its own process (>= 3 processes, interleaved, x >= 10 timed steps after 3 warm-ups), 2 threads.

With $FAIRSEQ_PYTHON pointing at a python that has fairseq-fixed, bench/ref_fairseq_s2t.py times fairseq's
s2t_transformer_s student step (label-smoothed CE, clip 10, Adam) on the same batch shape and the ratio to our
`nll` step is printed (CPU only; with --clock cpu the fairseq side is timed by CPU time too).

Usage: .venv/bin/python bench/bench_imitkd.py [--processes 3] [--steps 10] [--threads 2] [--kinds ...]
       [--clock cpu] [--device cuda --amp bf16]
On a shared, loaded CPU machine 2-thread wall times swing by 10x or more (OpenMP threads wait on busy cores):
there, `--threads 1 --clock cpu` gives stable ratios.
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
BATCH, FRAMES, FEATS, TARGET_LEN, SOURCE_LEN, VOCAB = 8, 400, 80, 30, 25, 8000
KINDS = ("nll", "word_kd", "imitkd_full", "imitkd_full_shared_enc")


def build(kind: str, device: str):
    import torch

    from speechkd.models.s2t_transformer import S2TTransformerModel
    from speechkd.models.transformer_nmt import TransformerNMTModel
    from speechkd.st.criteria import CRITERIA, CriterionConfig, CriterionContext, KDConfig
    from speechkd.st.data import collate_targets
    from speechkd.st.expert import Expert
    from speechkd.tokenizers.dictionary import Dictionary

    torch.manual_seed(0)
    d = Dictionary()
    for i in range(VOCAB - d.nspecial):
        d.add_symbol(f"w{i}")
    student = S2TTransformerModel.build("s2t_transformer_s", VOCAB)
    with torch.no_grad():
        student.decoder.output_projection.weight[d.eos()].zero_()
    student.to(device).train()
    g = torch.Generator().manual_seed(1)
    targets = [torch.cat([torch.randint(d.nspecial, VOCAB, (TARGET_LEN - 1,), generator=g),
                          torch.tensor([d.eos()])]) for _ in range(BATCH)]
    batch = {"source": torch.randn(BATCH, FRAMES, FEATS, generator=g),
             "source_lengths": torch.full((BATCH,), FRAMES, dtype=torch.long), "nsentences": BATCH,
             "expert_source": torch.cat([torch.randint(d.nspecial, VOCAB, (BATCH, SOURCE_LEN - 1), generator=g),
                                         torch.full((BATCH, 1), d.eos())], dim=1),
             "expert_source_lengths": torch.full((BATCH,), SOURCE_LEN, dtype=torch.long)}
    batch.update(collate_targets(targets, d))
    batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
    expert = None
    if kind != "nll":
        expert_model = TransformerNMTModel.build("transformer", VOCAB, VOCAB)
        expert = Expert(expert_model, "nmt", d, None, "transformer-base").to(device)
    name = {"nll": "label_smoothed_nll", "imitkd_full_shared_enc": "imitkd_full"}.get(kind, kind)
    beta = "zeros" if name == "imitkd_full" else "exponential"
    rollin_encoder = "train" if kind == "imitkd_full_shared_enc" else "eval"
    cfg = CriterionConfig(name=name, kd=KDConfig(beta_schedule=beta, rollin_encoder=rollin_encoder))
    crit = CRITERIA[name](cfg, CriterionContext(tgt_dict=d, max_updates=30000, expert=expert))
    return student, crit, batch


def worker(kind: str, steps: int, warmup: int, threads: int, device: str, amp: str, clock: str) -> None:
    import torch
    torch.set_num_threads(threads)
    student, crit, batch = build(kind, device)
    params = list(student.parameters())
    # the step of the trainer and of ref_fairseq_s2t.py: grads / sample_size, clip 10, Adam (0.9, 0.98)
    optimizer = torch.optim.Adam(params, lr=2e-3, betas=(0.9, 0.98))
    cuda = device.startswith("cuda")
    now = time.process_time if clock == "cpu" else time.perf_counter

    def step() -> float:
        if cuda:
            torch.cuda.synchronize()
        start = now()
        with torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=amp == "bf16"):
            loss, size, _ = crit(student, batch)
        (loss / size).backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        return now() - start

    for _ in range(warmup):
        step()
    times = [step() for _ in range(steps)]
    out = {"side": kind, "times": times}
    if cuda:
        out["peak_mem_gb"] = torch.cuda.max_memory_allocated() / 2**30
    print(json.dumps(out))


def run_side(cmd: list[str], env: dict) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summary(times: list[float]) -> str:
    return f"min {min(times):.3f}  median {statistics.median(times):.3f}  max {max(times):.3f} s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--processes", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--amp", choices=["none", "bf16"], default="none")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu = process CPU time: robust on a shared, loaded machine with --threads 1 (with more "
                         "threads it counts OpenMP spin-waiting); the fairseq side uses the same clock")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.steps, args.warmup, args.threads, args.device, args.amp, args.clock)
        return
    kinds = [k for k in args.kinds.split(",") if k]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    fairseq_python = os.environ.get("FAIRSEQ_PYTHON")
    ref_script = HERE / "ref_fairseq_s2t.py"
    with_fairseq = bool(fairseq_python) and ref_script.is_file() and args.device == "cpu"
    times: dict[str, list[float]] = {k: [] for k in kinds}
    medians: dict[str, list[float]] = {k: [] for k in kinds}
    extra: dict[str, list] = {}
    for rep in range(args.processes):  # interleaved: drift on a shared machine hits every side alike
        for kind in kinds:
            res = run_side([sys.executable, __file__, "--worker", kind, "--steps", str(args.steps), "--warmup",
                            str(args.warmup), "--threads", str(args.threads), "--device", args.device,
                            "--amp", args.amp, "--clock", args.clock], env)
            times[kind] += res["times"]
            medians[kind].append(statistics.median(res["times"]))
            if "peak_mem_gb" in res:
                extra.setdefault(kind, []).append(res["peak_mem_gb"])
        if with_fairseq:
            res = run_side([fairseq_python, str(ref_script), "--steps", str(args.steps), "--warmup",
                            str(args.warmup), "--threads", str(args.threads), "--clock", args.clock],
                           dict(env, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1"))
            times.setdefault("fairseq_nll", []).extend(res["train_step_s"])
            medians.setdefault("fairseq_nll", []).append(statistics.median(res["train_step_s"]))
    print(f"standard batch {BATCH}x{FRAMES}x{FEATS}, {TARGET_LEN} target tokens, vocab {VOCAB}; device {args.device}"
          f" amp {args.amp}; {args.threads} threads; {args.clock} clock; {args.processes} processes x {args.steps} steps "
          f"after {args.warmup} warm-ups")
    for kind, ts in times.items():
        mem = f"  peak {max(extra[kind]):.2f} GiB" if kind in extra else ""
        print(f"  {kind:12s} {summary(ts)}{mem}")

    def ratio(a: str, b: str, goal: str) -> None:
        if a in medians and b in medians:
            per_proc = [x / y for x, y in zip(medians[a], medians[b])]
            overall = statistics.median(times[a]) / statistics.median(times[b])
            print(f"  {a} / {b}: {overall:.3f} (per process: {', '.join(f'{r:.3f}' for r in per_proc)}; "
                  f"goal {goal})")
    ratio("imitkd_full", "word_kd", "<= 1.25")
    ratio("imitkd_full_shared_enc", "word_kd", "<= 1.25")
    ratio("word_kd", "nll", "-")
    ratio("nll", "fairseq_nll", "<= 0.75 on CPU, <= 0.5 on GPU")
    if not with_fairseq:
        why = ("FAIRSEQ_PYTHON is not set" if not fairseq_python else
               f"{ref_script} is missing" if not ref_script.is_file() else "CPU only")
        print(f"  fairseq-fixed reference skipped: {why}")


if __name__ == "__main__":
    main()
