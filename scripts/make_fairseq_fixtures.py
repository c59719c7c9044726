"""Write the fairseq reference fixtures of tests/fixtures/fairseq/ with fairseq itself (fairseq-fixed 0.12.3.1).

speechkd loads fairseq checkpoints without fairseq installed; its parity tests compare against the outputs written
here, which fairseq computed. Every model is trained for a few real `fairseq-train` updates on toy data made here
(fixed seeds), so each `<name>.pt` is byte-for-byte the kind of file fairseq writes, and each `<name>.io.pt` holds the
inputs and fairseq's eval-mode float32 outputs as plain tensors/ints/floats/strings/lists (loads with
torch.load(weights_only=True)). tests/fixtures/fairseq/README.md lists every file and key.

This script runs ONLY inside the throwaway fairseq venv (never the project's .venv), built per
../shared/reference/environment.md section 2b:

    FSQ_VENV=<a throwaway directory outside the repository>
    python3 -m venv $FSQ_VENV
    $FSQ_VENV/bin/pip install torch==2.13.0
    $FSQ_VENV/bin/pip install numpy cython setuptools wheel cffi hydra-core==1.3.2 omegaconf==2.3.0 \
        regex sacrebleu tqdm bitarray scikit-learn packaging sentencepiece soundfile
    $FSQ_VENV/bin/pip install --no-deps --no-build-isolation fairseq-fixed==0.12.3.1
    $FSQ_VENV/bin/pip install fastBPE==0.1.0          # python binding: applies codes
    # fastBPE's learner is a C++ binary that the wheel does not ship; build it from the same sdist:
    $FSQ_VENV/bin/pip download --no-deps --no-binary :all: -d /tmp/fbpe fastBPE==0.1.0
    tar xzf /tmp/fbpe/fastBPE-0.1.0.tar.gz -C /tmp/fbpe
    g++ -std=c++11 -pthread -O3 /tmp/fbpe/fastBPE-0.1.0/fastBPE/main.cc -I/tmp/fbpe/fastBPE-0.1.0/fastBPE \
        -o $FSQ_VENV/bin/fastbpe

    cd <repository root> && TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 $FSQ_VENV/bin/python scripts/make_fairseq_fixtures.py
    # options: --only s2t nmt roberta vq   --out DIR   --keep-workdir DIR

TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 is needed because fairseq's checkpoint loader relies on torch.load's old default
(weights_only=False) and torch 2.13 changed it. The script sets it for its fairseq-cli subprocesses itself.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from argparse import Namespace
from pathlib import Path

os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "tests" / "fixtures" / "fairseq"
PY = sys.executable
FASTBPE_BIN = Path(sys.executable).parent / "fastbpe"
SEED = 1


# --------------------------------------------------------------------------------------------------- helpers

def fairseq_version() -> str:
    import fairseq
    return fairseq.__version__


def run_cli(module: str, args: list[str], cwd: Path, capture: bool = False) -> str:
    """Run a fairseq command-line entry point (`python -m fairseq_cli.<module>`) as fairseq's own CLI does."""
    env = dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1", OMP_NUM_THREADS="2", PYTHONHASHSEED="0")
    cmd = [PY, "-m", f"fairseq_cli.{module}", *args]
    res = subprocess.run(cmd, cwd=cwd, env=env, text=True, capture_output=True)
    if res.returncode != 0:
        sys.stderr.write(res.stdout[-4000:] + res.stderr[-8000:])
        raise SystemExit(f"fairseq_cli.{module} failed ({res.returncode}): {' '.join(cmd)}")
    return res.stdout if capture else ""


def load_ensemble(path: Path, data: Path):
    """fairseq's own loader: upgrades old checkpoints, builds the task and the model, loads the weights strictly."""
    from fairseq import checkpoint_utils
    models, cfg, task = checkpoint_utils.load_model_ensemble_and_task([str(path)], arg_overrides={"data": str(data)})
    model = models[0].float().eval()
    return model, cfg, task


def save_io(io: dict, path: Path) -> None:
    """Save a plain dict and prove it needs no pickled classes (what the speechkd tests will do)."""
    torch.save(io, path)
    torch.load(path, weights_only=True)


def set_seeds(seed: int = SEED) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def write_lines(path: Path, lines) -> None:
    path.write_text("".join(line + "\n" for line in lines))


def copy_checkpoint(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)


def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max()) if a.numel() else 0.0


def incremental_logits(decoder, prev_output_tokens: torch.Tensor, encoder_out) -> torch.Tensor:
    """Decoder logits computed one step at a time with fairseq's incremental_state (what beam search does)."""
    state: dict = {}
    steps = []
    for t in range(prev_output_tokens.size(1)):
        out, _ = decoder(prev_output_tokens[:, : t + 1], encoder_out=encoder_out, incremental_state=state)
        steps.append(out[:, -1:, :])
    return torch.cat(steps, dim=1)


def beam_results(task, model, sample: dict, beam: int, max_len_b: int) -> dict:
    """fairseq's generator (task.build_generator, as fairseq-generate builds it) on one batch: best + n-best."""
    from fairseq.dataclass.configs import GenerationConfig
    from omegaconf import OmegaConf
    # fairseq-generate passes cfg.generation, an omegaconf DictConfig of GenerationConfig
    gcfg = OmegaConf.structured(GenerationConfig(beam=beam, max_len_b=max_len_b))
    generator = task.build_generator([model], gcfg)
    with torch.no_grad():
        hypos = task.inference_step(generator, [model], sample)
    return {
        "tokens": [h[0]["tokens"].clone() for h in hypos],
        "scores": torch.tensor([float(h[0]["score"]) for h in hypos]),
        "positional_scores": [h[0]["positional_scores"].clone() for h in hypos],
        "nbest_tokens": [[x["tokens"].clone() for x in h] for h in hypos],
        "nbest_scores": [torch.tensor([float(x["score"]) for x in h]) for h in hypos],
    }


def generator_settings(beam: int, max_len_b: int) -> dict:
    from fairseq.dataclass.configs import GenerationConfig
    g = GenerationConfig(beam=beam, max_len_b=max_len_b)
    return {"beam": g.beam, "max_len_a": float(g.max_len_a), "max_len_b": g.max_len_b, "min_len": g.min_len,
            "lenpen": float(g.lenpen), "unkpen": float(g.unkpen), "normalize_scores": int(not g.unnormalized),
            "temperature": float(g.temperature), "no_repeat_ngram_size": g.no_repeat_ngram_size}


def put_beam(io: dict, prefix: str, res: dict) -> None:
    io[f"{prefix}_tokens"] = res["tokens"]
    io[f"{prefix}_scores"] = res["scores"]
    io[f"{prefix}_positional_scores"] = res["positional_scores"]
    if prefix == "beam":
        io["beam_nbest_tokens"] = res["nbest_tokens"]
        io["beam_nbest_scores"] = res["nbest_scores"]


# --------------------------------------------------------------------------------------------------- a. s2t

S2T_SYMBOLS = list("abcdefghijklmnopqrstuvwxyz") + [str(d) for d in range(10)]  # 36 + 4 specials = 40
S2T_IO_FRAMES = [57, 40, 23]


def make_s2t(work: Path, out: Path, log) -> None:
    """s2t_transformer (tiny s2t_transformer_s) memorising 20 random-fbank utterances; io on 3 of them."""
    rng = np.random.RandomState(SEED)
    data = work / "s2t-data"
    (data / "fbank").mkdir(parents=True)
    # fairseq dict.txt format: "<symbol> <count>"; specials <s> <pad> </s> <unk> are added by fairseq (ids 0-3).
    write_lines(data / "s2t_dict.txt", [f"{s} {1000 - i}" for i, s in enumerate(S2T_SYMBOLS)])
    (data / "config.yaml").write_text(f"audio_root: {data.resolve()}\ninput_channels: 1\ninput_feat_per_channel: 80\n"
                                      "vocab_filename: s2t_dict.txt\n")
    frames = S2T_IO_FRAMES + [int(n) for n in rng.randint(20, 61, size=17)]
    rows = ["id\taudio\tn_frames\ttgt_text\tspeaker"]
    for i, n in enumerate(frames):
        feats = (rng.randn(n, 80) * 2.0 + 8.0).astype(np.float32)  # log-mel-like scale
        np.save(data / "fbank" / f"utt{i:02d}.npy", feats)
        text = " ".join(rng.choice(S2T_SYMBOLS, size=rng.randint(3, 11)))
        rows.append(f"utt{i:02d}\tfbank/utt{i:02d}.npy\t{n}\t{text}\tspk0")
    write_lines(data / "train.tsv", rows)
    save = work / "s2t-ckpt"
    run_cli("train", [
        "s2t-data", "--task", "speech_to_text", "--config-yaml", "config.yaml", "--train-subset", "train",
        "--arch", "s2t_transformer", "--encoder-layers", "2", "--decoder-layers", "2",
        "--encoder-embed-dim", "64", "--decoder-embed-dim", "64",
        "--encoder-ffn-embed-dim", "128", "--decoder-ffn-embed-dim", "128",
        "--encoder-attention-heads", "4", "--decoder-attention-heads", "4",
        "--conv-channels", "64", "--conv-kernel-sizes", "5,5",
        "--dropout", "0.1", "--share-decoder-input-output-embed",
        "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1",
        "--optimizer", "adam", "--adam-betas", "(0.9, 0.98)", "--lr", "3e-3", "--lr-scheduler", "inverse_sqrt",
        "--warmup-updates", "30", "--clip-norm", "10.0", "--max-tokens", "2000", "--max-update", "400",
        "--required-batch-size-multiple", "1", "--seed", str(SEED), "--cpu", "--num-workers", "0",
        "--disable-validation", "--no-epoch-checkpoints", "--no-save-optimizer-state", "--save-dir", "s2t-ckpt",
        "--log-format", "simple", "--log-interval", "100",
    ], cwd=work)
    copy_checkpoint(save / "checkpoint_last.pt", out / "s2t_transformer.pt")
    shutil.copyfile(data / "s2t_dict.txt", out / "s2t_dict.txt")

    model, cfg, task = load_ensemble(out / "s2t_transformer.pt", data)
    task.load_dataset("train")
    ds = task.datasets["train"]
    sample = ds.collater([ds[i] for i in range(3)])  # fairseq's own batching: padded fbank, eos-first prev tokens
    net = sample["net_input"]
    assert net["src_lengths"].tolist() == S2T_IO_FRAMES, net["src_lengths"]
    with torch.no_grad():
        enc = model.encoder(net["src_tokens"], net["src_lengths"])
        full, _ = model.decoder(net["prev_output_tokens"], encoder_out=enc)
        inc = incremental_logits(model.decoder, net["prev_output_tokens"], enc)
    nonpad = net["prev_output_tokens"].ne(task.target_dictionary.pad())
    diff = max_abs(full[nonpad], inc[nonpad])
    assert diff < 1e-4, diff
    io = {
        "fairseq_version": fairseq_version(),
        "fbank": net["src_tokens"].float(), "fbank_lengths": net["src_lengths"],
        "prev_output_tokens": net["prev_output_tokens"], "target": sample["target"],
        "target_lengths": sample["target_lengths"], "nonpad_mask": nonpad,
        "encoder_out": enc["encoder_out"][0], "encoder_padding_mask": enc["encoder_padding_mask"][0],
        "decoder_logits": full, "incremental_logits": inc,
        "incremental_max_abs_diff": diff,
        "generator_settings": generator_settings(5, 20),
        "greedy_settings": generator_settings(1, 20),
    }
    put_beam(io, "beam", beam_results(task, model, sample, beam=5, max_len_b=20))
    put_beam(io, "greedy", beam_results(task, model, sample, beam=1, max_len_b=20))
    exact = [torch.equal(h[:-1], t[t.ne(1)][:-1]) for h, t in zip(io["beam_tokens"], sample["target"])]
    io["beam_matches_target"] = [int(x) for x in exact]
    save_io(io, out / "s2t_transformer.io.pt")
    log["s2t_transformer"] = {"incremental_max_abs_diff": diff, "beam_matches_target": io["beam_matches_target"],
                              "beam_scores": io["beam_scores"].tolist(), "greedy_scores": io["greedy_scores"].tolist(),
                              "num_updates": torch.load(out / "s2t_transformer.pt", weights_only=False)[
                                  "optimizer_history"][-1]["num_updates"]}


# --------------------------------------------------------------------------------------------------- b/c. nmt

EN_DE = {
    "the": "die", "a": "eine", "red": "rote", "blue": "blaue", "green": "gruene", "big": "grosse",
    "small": "kleine", "old": "alte", "new": "neue", "house": "haus", "car": "auto", "dog": "hund",
    "cat": "katze", "tree": "baum", "book": "buch", "garden": "garten", "table": "tisch", "window": "fenster",
    "sees": "sieht", "has": "hat", "likes": "mag", "reads": "liest", "buys": "kauft", "and": "und",
    "with": "mit", "in": "in", "on": "auf", "three": "drei", "four": "vier", "man": "mann", "woman": "frau",
    "child": "kind", "teacher": "lehrer", "yellow": "gelbe", "kitchen": "kueche",
}
NMT_TEST_SIZE = 10


def nmt_sentences(rng, n: int):
    words = sorted(EN_DE)
    pairs = []
    for _ in range(n):
        en = list(rng.choice(words, size=rng.randint(3, 9)))
        pairs.append((" ".join(en), " ".join(EN_DE[w] for w in en)))
    return pairs


def nmt_train_args() -> list[str]:
    return [
        "data-bin", "--task", "translation", "--source-lang", "en", "--target-lang", "de",
        "--arch", "transformer", "--share-all-embeddings",
        "--encoder-layers", "2", "--decoder-layers", "2", "--encoder-embed-dim", "64", "--decoder-embed-dim", "64",
        "--encoder-ffn-embed-dim", "128", "--decoder-ffn-embed-dim", "128",
        "--encoder-attention-heads", "4", "--decoder-attention-heads", "4", "--dropout", "0.1",
        "--criterion", "label_smoothed_cross_entropy", "--label-smoothing", "0.1",
        "--optimizer", "adam", "--adam-betas", "(0.9, 0.98)", "--lr", "5e-3", "--lr-scheduler", "inverse_sqrt",
        "--warmup-updates", "50", "--clip-norm", "0.0", "--max-tokens", "2000", "--max-update", "300",
        "--required-batch-size-multiple", "1", "--seed", str(SEED), "--cpu", "--num-workers", "0",
        "--disable-validation", "--no-epoch-checkpoints", "--no-save-optimizer-state", "--save-dir", "nmt-ckpt",
        "--log-format", "simple", "--log-interval", "100",
    ]


def nmt_io(task, model, sample) -> dict:
    net = sample["net_input"]
    with torch.no_grad():
        enc = model.encoder(net["src_tokens"], src_lengths=net["src_lengths"])
        full, _ = model.decoder(net["prev_output_tokens"], encoder_out=enc)
        inc = incremental_logits(model.decoder, net["prev_output_tokens"], enc)
    nonpad = net["prev_output_tokens"].ne(task.target_dictionary.pad())
    diff = max_abs(full[nonpad], inc[nonpad])
    assert diff < 1e-4, diff
    io = {
        "fairseq_version": fairseq_version(),
        "src_tokens": net["src_tokens"], "src_lengths": net["src_lengths"], "left_pad_source": 1,
        "prev_output_tokens": net["prev_output_tokens"], "target": sample["target"], "nonpad_mask": nonpad,
        "encoder_out": enc["encoder_out"][0], "encoder_padding_mask": enc["encoder_padding_mask"][0],
        "decoder_logits": full, "incremental_logits": inc, "incremental_max_abs_diff": diff,
        "generator_settings": generator_settings(5, 20), "greedy_settings": generator_settings(1, 20),
    }
    put_beam(io, "beam", beam_results(task, model, sample, beam=5, max_len_b=20))
    put_beam(io, "greedy", beam_results(task, model, sample, beam=1, max_len_b=20))
    return io


def to_old_transformer_state(state: dict) -> dict:
    """Rewrite a fairseq 0.12 transformer state dict into the pre-0.9 layout that fairseq's upgrade path reads:
    - every MultiheadAttention: q/k/v_proj.{weight,bias} -> in_proj_weight / in_proj_bias stacked [q; k; v]
      (multihead_attention.py MultiheadAttention.upgrade_state_dict_named splits it back in thirds);
    - encoder layers: self_attn_layer_norm -> layer_norms.0, final_layer_norm -> layer_norms.1
      (transformer_layer.py TransformerEncoderLayerBase.upgrade_state_dict_named); the decoder layers keep
      self_attn_layer_norm / encoder_attn_layer_norm / final_layer_norm, as in fairseq <= 0.6 where only the
      encoder layer used a layer_norms ModuleList;
    - no decoder.output_projection.weight (TransformerDecoderBase.upgrade_state_dict_named re-creates it from
      decoder.embed_tokens.weight for shared embeddings).
    """
    old = {}
    for k, v in state.items():
        if k == "decoder.output_projection.weight":
            continue
        if ".q_proj." in k or ".k_proj." in k or ".v_proj." in k:
            continue
        if k.startswith("encoder.layers."):
            k = k.replace(".self_attn_layer_norm.", ".layer_norms.0.").replace(".final_layer_norm.", ".layer_norms.1.")
        old[k] = v
    for k in state:
        if ".q_proj.weight" in k or ".q_proj.bias" in k:
            prefix, kind = k.split(".q_proj.")
            stacked = torch.cat([state[f"{prefix}.{p}_proj.{kind}"] for p in ("q", "k", "v")], dim=0).clone()
            old[f"{prefix}.in_proj_{kind}"] = stacked
    return old


def old_style_args(cli: list[str], extra: dict) -> Namespace:
    """The argparse.Namespace that fairseq-train builds from `cli` (what pre-hydra fairseq pickled as ckpt['args']),
    with the legacy spellings older fairseq used (float --lr, --min-lr instead of --stop-min-lr)."""
    from fairseq import options
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, input_args=cli)
    args.lr = float(args.lr[0])
    args.min_lr = args.stop_min_lr
    del args.stop_min_lr
    for k, v in extra.items():
        setattr(args, k, v)
    return args


def make_nmt(work: Path, out: Path, log) -> None:
    rng = np.random.RandomState(SEED + 1)
    raw = work / "nmt-raw"
    raw.mkdir()
    pairs = nmt_sentences(rng, 2000 + 100 + NMT_TEST_SIZE)
    splits = {"train": pairs[:2000], "valid": pairs[2000:2100], "test": pairs[2100:]}
    for split, ps in splits.items():
        write_lines(raw / f"{split}.en", [p[0] for p in ps])
        write_lines(raw / f"{split}.de", [p[1] for p in ps])
    # fastBPE joint codes (as WMT19's bpecodes): learned on both sides of the training text.
    codes = subprocess.run([str(FASTBPE_BIN), "learnbpe", "60", str(raw / "train.en"), str(raw / "train.de")],
                           check=True, capture_output=True, text=True).stdout
    (work / "bpecodes").write_text(codes)
    for split in splits:
        for lang in ("en", "de"):
            subprocess.run([str(FASTBPE_BIN), "applybpe", str(raw / f"{split}.bpe.{lang}"), str(raw / f"{split}.{lang}"),
                            str(work / "bpecodes")], check=True, capture_output=True)
    run_cli("preprocess", ["--source-lang", "en", "--target-lang", "de", "--joined-dictionary",
                           "--trainpref", "nmt-raw/train.bpe", "--validpref", "nmt-raw/valid.bpe",
                           "--testpref", "nmt-raw/test.bpe", "--destdir", "data-bin", "--workers", "1"], cwd=work)
    run_cli("train", nmt_train_args(), cwd=work)
    copy_checkpoint(work / "nmt-ckpt" / "checkpoint_last.pt", out / "transformer_nmt.pt")
    shutil.copyfile(work / "data-bin" / "dict.en.txt", out / "nmt_dict.en.txt")
    shutil.copyfile(work / "data-bin" / "dict.de.txt", out / "nmt_dict.de.txt")
    assert (out / "nmt_dict.en.txt").read_bytes() == (out / "nmt_dict.de.txt").read_bytes()
    shutil.copyfile(work / "bpecodes", out / "nmt_bpecodes")

    # BPE reference: raw test lines, fastBPE applied by its python binding and by fairseq's fastbpe encoder.
    import fastBPE
    from fairseq.data import encoders
    raw_lines = (raw / "test.en").read_text().splitlines() + (raw / "test.de").read_text().splitlines()
    raw_lines += ["the yellow teacher reads", "kitchen window and garden", "gruene kueche"]
    binding = fastBPE.fastBPE(str(work / "bpecodes"))
    fs_bpe = encoders.build_bpe(Namespace(bpe="fastbpe", bpe_codes=str(work / "bpecodes")))
    applied = binding.apply(raw_lines)
    assert applied == [fs_bpe.encode(x) for x in raw_lines]
    assert [fs_bpe.decode(x) for x in applied] == raw_lines
    (out / "bpe_ref.json").write_text(json.dumps(
        {"codes": "nmt_bpecodes", "bpe_symbol": "@@ ", "fastBPE": "0.1.0", "raw": raw_lines, "bpe": applied},
        indent=1, ensure_ascii=False) + "\n")

    # Real fairseq-generate on the 10 test sentences (beam 5, --remove-bpe, sacrebleu).
    stdout = run_cli("generate", ["data-bin", "--path", "nmt-ckpt/checkpoint_last.pt", "--task", "translation",
                                  "--source-lang", "en", "--target-lang", "de", "--gen-subset", "test",
                                  "--beam", "5", "--remove-bpe", "--scoring", "sacrebleu", "--batch-size", "16",
                                  "--required-batch-size-multiple", "1", "--cpu", "--num-workers", "0"],
                     cwd=work, capture=True)
    # keep the result lines; logger lines carry timestamps, paths and timings that change every run
    keep = [ln for ln in stdout.splitlines() if ln[:2] in ("S-", "T-", "H-", "D-", "P-") or ln.startswith("Generate ")]
    assert sum(ln.startswith("H-") for ln in keep) == NMT_TEST_SIZE, stdout[-3000:]
    write_lines(out / "nmt_generate.log", keep)

    model, cfg, task = load_ensemble(out / "transformer_nmt.pt", work / "data-bin")
    task.load_dataset("test")
    ds = task.datasets["test"]
    sample = ds.collater([ds[i] for i in (0, 1, 2)])  # left-padded source, eos-first right-padded prev tokens
    io = nmt_io(task, model, sample)
    save_io(io, out / "transformer_nmt.io.pt")

    # c. the same weights in the pre-0.9 layout (argparse args, in_proj, layer_norms.N), loaded by fairseq's upgrade
    ckpt = torch.load(out / "transformer_nmt.pt", weights_only=False)
    args = old_style_args(nmt_train_args(), {"data": "data-bin"})
    old = {
        "args": args,
        "model": to_old_transformer_state(ckpt["model"]),
        "optimizer_history": [{"criterion_name": "LabelSmoothedCrossEntropyCriterion", "optimizer_name": "FairseqAdam",
                               "lr_scheduler_state": {"best": None},
                               "num_updates": ckpt["optimizer_history"][-1]["num_updates"]}],
        "extra_state": {"epoch": ckpt["extra_state"]["train_iterator"]["epoch"], "val_loss": None,
                        "train_iterator": copy.deepcopy(ckpt["extra_state"]["train_iterator"])},
    }
    torch.save(old, out / "transformer_nmt_oldformat.pt")
    m_old, cfg_old, task_old = load_ensemble(out / "transformer_nmt_oldformat.pt", work / "data-bin")
    for k, v in model.state_dict().items():
        assert torch.equal(v, m_old.state_dict()[k]), k
    io_old = nmt_io(task_old, m_old, sample)
    for k in ("encoder_out", "decoder_logits", "incremental_logits", "beam_scores", "greedy_scores"):
        assert torch.equal(io_old[k], io[k]), k
    for a, b in zip(io_old["beam_tokens"], io["beam_tokens"]):
        assert torch.equal(a, b)
    io_old["equals_new_format"] = 1
    save_io(io_old, out / "transformer_nmt_oldformat.io.pt")
    bleu = [ln for ln in keep if ln.startswith("Generate ")]
    log["transformer_nmt"] = {"generate": bleu, "beam_scores": io["beam_scores"].tolist(),
                              "num_updates": ckpt["optimizer_history"][-1]["num_updates"],
                              "oldformat_equal": True, "old_keys_sample": sorted(old["model"])[:8]}


# --------------------------------------------------------------------------------------------------- d. roberta

SLU_ACTIONS = {0: ["turn on", "switch on", "activate", "start"], 1: ["turn off", "switch off", "deactivate", "stop"],
               2: ["increase", "raise", "decrease", "lower"]}
SLU_OBJECTS = ["the lights", "the music", "the heating", "the volume", "the lamp", "the radio"]
SLU_PLACES = ["", "in the kitchen", "in the bedroom", "in the bathroom", "in the hall"]


def roberta_train_args() -> list[str]:
    return [
        "data-bin", "--task", "sentence_prediction", "--num-classes", "3", "--classification-head-name", "slu",
        "--init-token", "0", "--separator-token", "2", "--max-positions", "64",
        "--arch", "roberta", "--encoder-layers", "2", "--encoder-embed-dim", "64", "--encoder-ffn-embed-dim", "128",
        "--encoder-attention-heads", "4", "--activation-fn", "gelu", "--dropout", "0.1", "--attention-dropout", "0.1",
        "--criterion", "sentence_prediction", "--optimizer", "adam", "--adam-betas", "(0.9, 0.98)", "--lr", "1e-3",
        "--lr-scheduler", "polynomial_decay", "--warmup-updates", "10", "--total-num-update", "80",
        "--max-update", "80", "--batch-size", "16", "--required-batch-size-multiple", "1",
        "--seed", str(SEED), "--cpu", "--num-workers", "0", "--disable-validation", "--no-epoch-checkpoints",
        "--no-save-optimizer-state", "--save-dir", "roberta-ckpt", "--log-format", "simple", "--log-interval", "40",
    ]


def to_roberta_v09_state(state: dict) -> dict:
    """fairseq 0.9 RoBERTa names: the encoder was called `decoder` (decoder.sentence_encoder.*, decoder.lm_head.*)
    and the embedding layer norm `emb_layer_norm`; 0.9's TransformerSentenceEncoder had no `version` buffer.
    fairseq 0.12 undoes both in roberta/model.py RobertaModel.upgrade_state_dict_named."""
    old = {}
    for k, v in state.items():
        if k == "encoder.sentence_encoder.version":
            continue
        if k.startswith("encoder."):
            k = "decoder." + k[len("encoder."):]
        old[k.replace(".layernorm_embedding.", ".emb_layer_norm.")] = v
    return old


# 0.12-only RoBERTa args that fairseq 0.9 did not have (roberta base_architecture fills them back in).
ROBERTA_NEW_ARGS = ("layernorm_embedding", "encoder_normalize_before", "untie_weights_roberta",
                    "spectral_norm_classification_head", "min_params_to_wrap", "encoder_learned_pos",
                    "no_scale_embedding", "encoder_layers_to_keep", "quant_noise_pq", "quant_noise_pq_block_size",
                    "quant_noise_scalar", "offload_activations", "checkpoint_activations")


def roberta_io(model, tokens: torch.Tensor) -> dict:
    with torch.no_grad():
        features, extra = model(tokens, features_only=True, return_all_hiddens=True)
        lm_logits, _ = model(tokens)
        head_logits = model.classification_heads["slu"](features)
    return {"features": features, "inner_states": [h.transpose(0, 1).clone() for h in extra["inner_states"]],
            "lm_logits": lm_logits, "head_logits": head_logits}


def make_roberta(work: Path, out: Path, log) -> None:
    rng = np.random.RandomState(SEED + 2)
    raw = work / "roberta-raw"
    raw.mkdir()
    texts, labels = [], []
    for _ in range(400):
        label = int(rng.randint(3))
        words = [SLU_ACTIONS[label][rng.randint(4)], SLU_OBJECTS[rng.randint(len(SLU_OBJECTS))],
                 SLU_PLACES[rng.randint(len(SLU_PLACES))]]
        texts.append(" ".join(w for w in words if w))
        labels.append(str(label))
    write_lines(raw / "train.input0", texts)
    write_lines(raw / "train.label", labels)
    vocab = sorted({w for t in texts for w in t.split()})
    write_lines(work / "roberta_dict.txt", [f"{w} {100 + i}" for i, w in enumerate(vocab)])
    run_cli("preprocess", ["--only-source", "--trainpref", "roberta-raw/train.input0", "--srcdict", "roberta_dict.txt",
                           "--destdir", "data-bin/input0", "--workers", "1"], cwd=work)
    run_cli("preprocess", ["--only-source", "--trainpref", "roberta-raw/train.label",
                           "--destdir", "data-bin/label", "--workers", "1"], cwd=work)
    run_cli("train", roberta_train_args(), cwd=work)
    copy_checkpoint(work / "roberta-ckpt" / "checkpoint_last.pt", out / "roberta.pt")
    shutil.copyfile(work / "roberta_dict.txt", out / "roberta_dict.txt")

    model, cfg, task = load_ensemble(out / "roberta.pt", work / "data-bin")
    d = task.source_dictionary
    sents = ["turn off the music in the kitchen", "raise the volume"]
    rows = [torch.cat([torch.tensor([d.bos()]), d.encode_line(s, add_if_not_exist=False, append_eos=True).long()])
            for s in sents]
    from fairseq.data import data_utils
    tokens = data_utils.collate_tokens(rows, pad_idx=d.pad())  # right-padded with pad=1, as roberta.encode batches
    io = {"fairseq_version": fairseq_version(), "sentences": sents, "tokens": tokens,
          "padding_idx": d.pad(), "bos": d.bos(), "eos": d.eos(), "mask_idx": d.index("<mask>"),
          "vocab_size": len(d), "head_name": "slu",
          # class index i of the head is label_dictionary[i + nspecial] (sentence_prediction.py's label offset)
          "label_names": [task.label_dictionary[i + task.label_dictionary.nspecial] for i in range(3)],
          **roberta_io(model, tokens)}
    io["head_predictions"] = io["head_logits"].argmax(-1)
    save_io(io, out / "roberta.io.pt")

    ckpt = torch.load(out / "roberta.pt", weights_only=False)
    args = old_style_args(roberta_train_args(), {"data": "data-bin"})
    for k in ROBERTA_NEW_ARGS:
        if hasattr(args, k):
            delattr(args, k)
    old = {"args": args, "model": to_roberta_v09_state(ckpt["model"]),
           "optimizer_history": [{"criterion_name": "SentencePredictionCriterion", "optimizer_name": "FairseqAdam",
                                  "lr_scheduler_state": {"best": None},
                                  "num_updates": ckpt["optimizer_history"][-1]["num_updates"]}],
           "extra_state": {"epoch": ckpt["extra_state"]["train_iterator"]["epoch"], "val_loss": None,
                           "train_iterator": copy.deepcopy(ckpt["extra_state"]["train_iterator"])}}
    torch.save(old, out / "roberta_v09.pt")
    m_old, _, _ = load_ensemble(out / "roberta_v09.pt", work / "data-bin")
    io_old = roberta_io(m_old, tokens)
    for k in ("features", "lm_logits", "head_logits"):
        assert torch.equal(io_old[k], io[k]), k
    log["roberta"] = {"head_logits": io["head_logits"].tolist(), "head_predictions": io["head_predictions"].tolist(),
                      "label_names": io["label_names"],
                      "v09_equal": True, "num_updates": ckpt["optimizer_history"][-1]["num_updates"]}


# --------------------------------------------------------------------------------------------------- e. vq-wav2vec

# The released vq-wav2vec_kmeans.pt was trained with the README's gumbel command plus "--vq-type kmeans
# --loss-weights [1]" (examples/wav2vec/README.md): the real conv strides, gelu, offset auto, skip-connections-agg,
# residual-scale 0.5, vq-groups 2, vq-vars 320, --combine-groups, and NO --log-compression (pre-hydra default False).
# Here only the widths shrink (512 -> 32 channels, 320 -> 16 codewords, 12 -> 3 aggregator layers).
VQ_FEATURE_LAYERS = "[(32, 10, 5), (32, 8, 4), (32, 4, 2), (32, 4, 2), (32, 4, 2), (32, 1, 1), (32, 1, 1), (32, 1, 1)]"
VQ_AGG_LAYERS = "[(32, 2, 1), (32, 3, 1), (32, 4, 1)]"
VQ_WAVE_LENGTHS = [16000, 11200]


def synth_wave(rng, n: int) -> np.ndarray:
    """Speech-like toy audio: 50-250 ms segments of voiced harmonics (random f0), noise bursts or near-silence,
    so the quantizer sees varied frames."""
    out, pos = [], 0
    while pos < n:
        m = min(n - pos, int(rng.randint(800, 4001)))
        t = np.arange(m) / 16000.0
        kind = rng.randint(3)
        if kind == 0:
            f0 = rng.uniform(90, 260)
            seg = sum(rng.uniform(0.05, 0.25) / k * np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6))
                      for k in range(1, 9))
        elif kind == 1:
            seg = rng.uniform(0.02, 0.2) * rng.randn(m)
        else:
            seg = 0.002 * rng.randn(m)
        out.append(seg * np.hanning(m) ** 0.25)
        pos += m
    return (np.concatenate(out) + 0.003 * rng.randn(n)).astype(np.float32)


def make_vq(work: Path, out: Path, log) -> None:
    import soundfile as sf
    rng = np.random.RandomState(SEED + 3)
    wav_dir = (work / "wavs").resolve()
    wav_dir.mkdir()
    data = work / "vq-data"
    data.mkdir()
    lengths = VQ_WAVE_LENGTHS + [int(n) for n in rng.randint(12000, 24001, size=22)]
    rows = [str(wav_dir)]
    for i, n in enumerate(lengths):
        sf.write(wav_dir / f"w{i:02d}.wav", synth_wave(rng, n), 16000, subtype="PCM_16")
        rows.append(f"w{i:02d}.wav\t{n}")
    write_lines(data / "train.tsv", rows)
    run_cli("train", [
        "vq-data", "--task", "audio_pretraining", "--arch", "wav2vec", "--criterion", "wav2vec",
        "--conv-feature-layers", VQ_FEATURE_LAYERS, "--conv-aggregator-layers", VQ_AGG_LAYERS,
        "--activation", "gelu", "--offset", "auto", "--residual-scale", "0.5",
        # fairseq 0.12's argparse turns a bool field whose default is True into a store_false flag: passing
        # --log-compression sets log_compression=False (the released model's value); skip_connections_agg keeps
        # its default True by NOT passing --skip-connections-agg. Both are asserted on the loaded cfg below.
        "--log-compression",
        "--vq-type", "kmeans", "--vq-groups", "2", "--vq-vars", "16", "--combine-groups", "--vq-gamma", "0.25",
        "--loss-weights", "[1]", "--prediction-steps", "12", "--num-negatives", "10", "--cross-sample-negatives", "0",
        "--max-sample-size", "16000", "--min-sample-size", "8000", "--max-tokens", "64000",
        "--optimizer", "adam", "--lr", "5e-5", "--lr-scheduler", "fixed", "--max-update", "10",
        "--required-batch-size-multiple", "1", "--seed", str(SEED), "--cpu", "--num-workers", "0",
        "--disable-validation", "--no-epoch-checkpoints", "--no-save-optimizer-state", "--save-dir", "vq-ckpt",
        "--log-format", "simple", "--log-interval", "20",
    ], cwd=work)
    copy_checkpoint(work / "vq-ckpt" / "checkpoint_last.pt", out / "vq_wav2vec_kmeans.pt")
    model, cfg, _ = load_ensemble(out / "vq_wav2vec_kmeans.pt", data)
    m = cfg.model
    assert (m.log_compression, m.skip_connections_agg, m.combine_groups, m.activation, m.vq_type) == \
        (False, True, True, "gelu", "kmeans"), m
    waves, feats, quant, idxs, lines = [], [], [], [], []
    for i in range(len(VQ_WAVE_LENGTHS)):
        wav, sr = sf.read(wav_dir / f"w{i:02d}.wav")  # exactly as vq-wav2vec_featurize.py FilesDataset reads
        assert sr == 16000
        x = torch.from_numpy(wav).float().unsqueeze(0)
        with torch.no_grad():
            z = model.feature_extractor(x)
            q, idx = model.vector_quantizer.forward_idx(z)
        waves.append(x[0])
        feats.append(z)
        quant.append(q)
        idxs.append(idx)
        lines.append(" ".join("-".join(map(str, a.tolist())) for a in idx.squeeze(0)))
    io = {"fairseq_version": fairseq_version(), "wave": waves, "features": feats, "quantized": quant,
          "indices": idxs, "featurize_lines": lines,
          "codebook": model.vector_quantizer.expand_embedding.detach().clone()}
    save_io(io, out / "vq_wav2vec_kmeans.io.pt")
    used = torch.cat([i.reshape(-1, 2) for i in idxs])
    distinct = [int(used[:, g].unique().numel()) for g in range(2)]
    # kmeans VQ collapses to one code when trained long at a high lr on toy audio; a parity fixture needs variety
    assert min(distinct) >= 4, distinct
    log["vq_wav2vec_kmeans"] = {"T": [int(i.shape[1]) for i in idxs], "distinct_codes_per_group": distinct}


BUILDERS = {"s2t": make_s2t, "nmt": make_nmt, "roberta": make_roberta, "vq": make_vq}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--only", nargs="*", choices=sorted(BUILDERS), default=list(BUILDERS))
    ap.add_argument("--keep-workdir", type=Path, default=None, help="build here and keep it (default: a temp dir)")
    a = ap.parse_args()
    torch.set_num_threads(2)
    a.out.mkdir(parents=True, exist_ok=True)
    log: dict = {}
    with tempfile.TemporaryDirectory(prefix="fsq-fixtures-") as tmp:
        base = a.keep_workdir or Path(tmp)
        for name in a.only:
            work = base / name
            if work.exists():
                shutil.rmtree(work)
            work.mkdir(parents=True)
            set_seeds()
            BUILDERS[name](work, a.out.resolve(), log)
            print(f"[fixtures] {name} done", flush=True)
    print(json.dumps(log, indent=1))


if __name__ == "__main__":
    main()
