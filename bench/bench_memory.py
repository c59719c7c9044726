"""Paper-scale memory of one ImitKD-full update: peak host RAM (and peak GPU memory on a GPU), time per update.

The paper's setting (ast_paper.md §2.2; ../shared/PERFORMANCE.md: <= 16 GB each, the authors ask >= 20 GB GPU,
advise 48, and >= 40 GB host RAM): the expert is FAIR's WMT19 en-de single model (transformer_wmt_en_de_big,
FFN 8192, 42,024 joined symbols, ≈270 M parameters), the student s2t_transformer_s on the expert's vocabulary,
max_tokens 50000 fbank frames per batch (fairseq counts the padded max length × batch size), update_freq 8.
Weights are random (memory and time do not depend on their values); so is the batch, with realistic lengths:
utterance durations log-normal around MuST-C's (median ≈ 5 s, at most 30 s), targets ≈ 6 subwords per second.
Worst case for the roll-in: β = 0 (every sentence rolled in by the student) and the student's EOS row zeroed, so
its greedy search always runs to its max length.

One update = update_freq micro-batches, each: the criterion (eval-mode roll-in encoder pass + greedy decode, one
expert pass over the mixed prefixes, the student's training forward) and backward; then clip 10 and Adam.
Peak host RAM is the process's ru_maxrss (everything: weights, Adam state, activations, allocator caches).

Options that trade expert precision for memory: --expert-dtype bf16 (expert weights stored in bf16, run under
bf16 autocast, see st/expert.py _precision).

Usage: .venv/bin/python bench/bench_memory.py [--max-tokens 50000] [--update-freq 8] [--device cpu|cuda]
       [--expert-dtype fp32|bf16] [--threads 2]
Each configuration runs in its own process (a fresh process is the only honest peak-RSS measurement).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

FEATS = 80
FRAMES_PER_SECOND = 100
SUBWORDS_PER_SECOND = 6.0


def micro_batches(max_tokens: int, count: int, seed: int, eos: int, nspecial: int, vocab: int):
    """`count` batches of random utterances packed as fairseq's batch_by_size packs length-sorted ones:
    as many as fit with (longest frames) × (batch size) <= max_tokens."""
    import numpy as np
    import torch

    from speechkd.st.data import collate_targets

    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(count):
        secs = np.clip(rng.lognormal(mean=np.log(5.0), sigma=0.5, size=400), 1.0, 30.0)
        longest = int(np.quantile(secs, 0.9) * FRAMES_PER_SECOND)  # a batch of similar lengths, long-ish
        size = max(1, max_tokens // longest)
        frames = np.minimum((secs[:size] * FRAMES_PER_SECOND).astype(int), longest)
        frames[0] = longest
        g = torch.Generator().manual_seed(int(rng.integers(2**31)))
        targets, sources = [], []
        for n in frames:
            tgt_len = max(2, int(n / FRAMES_PER_SECOND * SUBWORDS_PER_SECOND))
            targets.append(torch.cat([torch.randint(nspecial, vocab, (tgt_len - 1,), generator=g),
                                      torch.tensor([eos])]))
            sources.append(torch.cat([torch.randint(nspecial, vocab, (max(1, tgt_len - 2),), generator=g),
                                      torch.tensor([eos])]))
        src_len = max(len(s) for s in sources)
        expert_source = torch.full((size, src_len), 1, dtype=torch.long)  # pad = 1
        for i, s in enumerate(sources):
            expert_source[i, :len(s)] = s
        source = torch.randn(size, longest, FEATS, generator=g)
        for i, n in enumerate(frames):
            source[i, n:] = 0
        batch = {"source": source, "source_lengths": torch.as_tensor(frames, dtype=torch.long),
                 "nsentences": size, "expert_source": expert_source,
                 "expert_source_lengths": torch.tensor([len(s) for s in sources], dtype=torch.long)}
        batches.append(batch)
        batch.update(collate_targets(targets, _dictionary(vocab)))
    return batches


_DICT = {}


def _dictionary(vocab: int):
    from speechkd.tokenizers.dictionary import Dictionary
    if vocab not in _DICT:
        d = Dictionary()
        for i in range(vocab - d.nspecial):
            d.add_symbol(f"w{i}")
        _DICT[vocab] = d
    return _DICT[vocab]


def worker(args: argparse.Namespace) -> dict:
    import torch

    from speechkd.models.s2t_transformer import S2TTransformerModel
    from speechkd.models.transformer_nmt import WMT19_EN_DE_VOCAB, TransformerNMTModel
    from speechkd.st.criteria import CRITERIA, CriterionConfig, CriterionContext, KDConfig
    from speechkd.st.expert import Expert

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    d = _dictionary(WMT19_EN_DE_VOCAB)
    student = S2TTransformerModel.build("s2t_transformer_s", len(d))
    with torch.no_grad():
        student.decoder.output_projection.weight[d.eos()].zero_()
    student.to(device).train()
    expert_model = TransformerNMTModel.wmt19_en_de(len(d))
    expert_params = sum(p.numel() for p in expert_model.parameters())
    bf16 = args.expert_dtype == "bf16"
    expert = Expert(expert_model, "nmt", d, None, "wmt19 en-de (random weights)").to(
        device, torch.bfloat16 if bf16 else None)
    cfg = CriterionConfig(name="imitkd_full", kd=KDConfig(beta_schedule="zeros"))
    crit = CRITERIA["imitkd_full"](cfg, CriterionContext(tgt_dict=d, max_updates=30000, expert=expert))
    params = list(student.parameters())
    optimizer = torch.optim.Adam(params, lr=2e-3, betas=(0.9, 0.98))
    batches = micro_batches(args.max_tokens, args.update_freq, 1, d.eos(), d.nspecial, len(d))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
    start, per_micro = time.perf_counter(), []
    for batch in batches:
        t0 = time.perf_counter()
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss, size, _ = crit(student, batch)
        (loss / size).backward()
        per_micro.append(time.perf_counter() - t0)
        print(f"  micro-batch {len(per_micro)}/{len(batches)}: {batch['nsentences']} utterances x "
              f"{batch['source'].size(1)} frames, {per_micro[-1]:.1f} s, peak RSS so far "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB", file=sys.stderr, flush=True)
    torch.nn.utils.clip_grad_norm_(params, 10.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if cuda:
        torch.cuda.synchronize()
    out = {"expert_params_m": expert_params / 1e6, "student_params_m": sum(p.numel() for p in params) / 1e6,
           "utterances": [b["nsentences"] for b in batches], "frames": [int(b["source"].size(1)) for b in batches],
           "update_s": time.perf_counter() - start, "micro_batch_s": per_micro,
           "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
           "rss_before_update_gib": rss_before}
    if cuda:
        out["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
        out["gpu"] = torch.cuda.get_device_name()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--max-tokens", type=int, default=50000)
    ap.add_argument("--update-freq", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--expert-dtype", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return
    cmd = [sys.executable, __file__, "--worker", "--max-tokens", str(args.max_tokens), "--update-freq",
           str(args.update_freq), "--device", args.device, "--expert-dtype", args.expert_dtype,
           "--threads", str(args.threads)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"worker failed with exit code {proc.returncode}")
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"ImitKD-full, expert wmt19 en-de {r['expert_params_m']:.1f} M ({args.expert_dtype}), student "
          f"s2t_transformer_s {r['student_params_m']:.1f} M, max_tokens {args.max_tokens}, update_freq "
          f"{args.update_freq}, device {args.device}{' ' + r['gpu'] if 'gpu' in r else ''}, {args.threads} threads")
    print(f"  micro-batches: {', '.join(f'{u} x {f}' for u, f in zip(r['utterances'], r['frames']))} "
          f"(utterances x frames)")
    print(f"  peak host RAM {r['peak_rss_gib']:.2f} GiB (before the update: {r['rss_before_update_gib']:.2f}; "
          f"goal <= 16)")
    if "peak_gpu_gib" in r:
        print(f"  peak GPU memory {r['peak_gpu_gib']:.2f} GiB (goal <= 16)")
    elif args.device == "cpu":
        print("  peak GPU memory: not measured (no GPU in this run)")
    print(f"  one update {r['update_s']:.1f} s wall (micro-batches {', '.join(f'{t:.1f}' for t in r['micro_batch_s'])} s)")


if __name__ == "__main__":
    main()
