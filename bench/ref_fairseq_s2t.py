"""fairseq reference side of the s2t benchmarks: train step and beam-5 decoding of s2t_transformer_s (fairseq-fixed).

Runs INSIDE the throwaway fairseq venv (built by scripts/install_fairseq_reference.sh, which prints the python);
speechkd's benchmarks call it through the interpreter named by $FAIRSEQ_PYTHON, one process per repetition:

    TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 $FAIRSEQ_PYTHON bench/ref_fairseq_s2t.py [--warmup 3] [--steps 10] [--threads 2]
        [--clock wall|cpu]   (cpu = process CPU time: stable on a shared, loaded machine with --threads 1)
        [--measures train_step_s beam5_s]   (what to time)

Standard batch of ../shared/PERFORMANCE.md: s2t_transformer_s (12 enc / 6 dec layers, d 256, 4 heads, FFN 2048,
conv subsampler 2 x k5 s2, 1024 channels), vocabulary 8000 (fairseq Dictionary: 4 specials + 7996 symbols), separate
decoder output projection (the arch default; 31.07 M parameters as PERFORMANCE.md counts), 8 utterances x 400 x 80,
30 target tokens per utterance (29 + eos), CPU, float32.
  train_step_s: one update as fairseq's Trainer.train_step does it: model.train(), label_smoothed_cross_entropy
                (label_smoothing 0.1, fairseq criterion) forward, backward, grads divided by sample_size,
                clip_grad_norm 10 (the recipe's --clip-norm), FairseqAdam step (betas 0.9/0.98, lr 2e-3).
  beam5_s:      fairseq SequenceGenerator, beam 5, eval mode, no_grad, encoder included; min_len = max_len_b = 29
                so every hypothesis is exactly 29 tokens + eos: 30 incremental decoder steps per batch.
Prints ONE JSON line on stdout: {"train_step_s": [...], "beam5_s": [...]} (seconds per timed step; the measures
asked for).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from argparse import Namespace

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

import torch  # noqa: E402

VOCAB, BATCH, FRAMES, FEATS, TGT_LEN = 8000, 8, 400, 80, 30


class _Task:
    """The two things S2TTransformerModel.build_model and the criterion read from a task."""

    def __init__(self, dictionary):
        self.target_dictionary = dictionary
        self.source_dictionary = None


def build(seed: int):
    from fairseq.data import Dictionary
    from fairseq.models import ARCH_CONFIG_REGISTRY
    from fairseq.models.speech_to_text.s2t_transformer import S2TTransformerModel

    d = Dictionary()
    for i in range(VOCAB - d.nspecial):
        d.add_symbol(f"w{i}")
    assert len(d) == VOCAB, len(d)
    args = Namespace(input_feat_per_channel=FEATS, input_channels=1, max_source_positions=6000,
                     max_target_positions=1024)
    ARCH_CONFIG_REGISTRY["s2t_transformer_s"](args)
    torch.manual_seed(seed)
    task = _Task(d)
    model = S2TTransformerModel.build_model(args, task)
    return model, task, d


def batch(d, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    fbank = torch.randn(BATCH, FRAMES, FEATS, generator=g)
    target = torch.randint(d.nspecial, len(d), (BATCH, TGT_LEN), generator=g)
    target[:, -1] = d.eos()
    prev = torch.cat([torch.full((BATCH, 1), d.eos()), target[:, :-1]], dim=1)  # fairseq: eos moved to the front
    return {"id": torch.arange(BATCH), "nsentences": BATCH, "ntokens": BATCH * TGT_LEN, "target": target,
            "net_input": {"src_tokens": fbank, "src_lengths": torch.full((BATCH,), FRAMES),
                          "prev_output_tokens": prev}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall")
    ap.add_argument("--measures", nargs="+", choices=["train_step_s", "beam5_s"], default=["train_step_s", "beam5_s"])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    from fairseq.criterions.label_smoothed_cross_entropy import LabelSmoothedCrossEntropyCriterion
    from fairseq.optim.adam import FairseqAdam
    from fairseq.sequence_generator import SequenceGenerator
    from omegaconf import OmegaConf

    model, task, d = build(a.seed)
    n_params = sum(p.numel() for p in model.parameters())
    sample = batch(d, a.seed + 1)
    criterion = LabelSmoothedCrossEntropyCriterion(task, sentence_avg=False, label_smoothing=0.1)
    opt_cfg = OmegaConf.create({"lr": [2e-3], "adam_betas": "(0.9, 0.98)", "adam_eps": 1e-8, "weight_decay": 0.0,
                                "use_old_adam": False, "fp16_adam_stats": False, "tpu": False})
    optimizer = FairseqAdam(opt_cfg, [p for p in model.parameters() if p.requires_grad])

    def train_step():
        model.train()
        criterion.train()
        optimizer.zero_grad()
        loss, sample_size, _ = criterion(model, sample)
        optimizer.backward(loss)
        optimizer.multiply_grads(1.0 / float(sample_size))
        optimizer.clip_grad_norm(10.0)
        optimizer.step()

    generator = SequenceGenerator([model], d, beam_size=5, max_len_a=0, max_len_b=TGT_LEN - 1, min_len=TGT_LEN - 1)
    gen_sample = {"id": sample["id"], "net_input": {k: sample["net_input"][k] for k in ("src_tokens", "src_lengths")}}

    def beam5():
        model.eval()
        with torch.no_grad():
            hypos = generator.generate([model], gen_sample)
        assert all(h[0]["tokens"].numel() == TGT_LEN for h in hypos)

    now = time.process_time if a.clock == "cpu" else time.perf_counter

    def timed(fn):
        for _ in range(a.warmup):
            fn()
        out = []
        for _ in range(a.steps):
            t0 = now()
            fn()
            out.append(now() - t0)
        return out

    fns = {"train_step_s": train_step, "beam5_s": beam5}
    times = {m: timed(fns[m]) for m in a.measures}
    print(f"[ref_fairseq_s2t] fairseq {__import__('fairseq').__version__}, torch {torch.__version__}, "
          f"{n_params / 1e6:.2f} M params, {a.threads} threads, {a.clock} clock", file=sys.stderr)
    print(json.dumps(times), flush=True)


if __name__ == "__main__":
    main()
