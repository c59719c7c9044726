"""Training stages under torchrun (2 CPU processes, gloo) against 1 process accumulating 2 batches per update (the
same global batch): the run exits 0, rank 0 alone writes checkpoints, outputs, metrics.json and DONE, every rank
reads the same best weights, the metrics match, and a rerun of the finished run is skipped by every rank.

The upstream runs (a slu-units corpus of unit tokens, a tiny VQ-BERT, an st-prep text corpus) are written directly
here, without audio: these tests are about the stage's process handling, the smoke tests cover the data. Dropout
is 0 everywhere because each rank draws it from its own RNG stream, which 1 process cannot reproduce."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed

from speechkd.data.manifests import SluExample, write_intent_dict, write_slu_csv
from speechkd.models.roberta import RobertaConfig, RobertaModel
from speechkd.slu.encoders import save_roberta
from speechkd.tokenizers.dictionary import Dictionary

pytestmark = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="torch.distributed with the gloo backend is not available in this torch build")

PROFILE = "embedded"
TIMEOUT_S = 240
NO_DROPOUT = {"dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0, "pooler_dropout": 0.0}
ARCH = {"layers": 1, "embed_dim": 16, "heads": 2, "ffn_dim": 32, "max_positions": 64, **NO_DROPOUT}
UNITS = [f"{a}-{b}" for a in range(4) for b in range(4)]
INTENTS = ["activate lights kitchen", "deactivate lights kitchen", "increase volume none"]
QUIET = {"train.progress": False, "train.tensorboard": False}


# ------------------------------------------------------------------------------------ upstream runs

def done(directory: Path, stage: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "DONE").write_text(json.dumps({"config_hash": "fixture", "stage": stage}))


def unit_line(rng: torch.Generator, label: int) -> str:
    """8-15 units, the first few telling the intent apart (so the tiny model has something to learn)."""
    n = int(torch.randint(8, 16, (1,), generator=rng))
    body = torch.randint(0, len(UNITS), (n,), generator=rng).tolist()
    body[:3] = [label * 5 % len(UNITS)] * 3
    return " ".join(UNITS[i] for i in body)


def write_units_run(root: Path) -> None:
    """A slu-units run: dict.txt, corpus fsc (train/valid/test + intent_dict, units.json) and read/{train,dev}."""
    out = root / "slu_units"
    rng = torch.Generator().manual_seed(3)
    dictionary = Dictionary()
    for unit in UNITS:
        dictionary.add_symbol(unit)
    out.mkdir(parents=True)
    dictionary.save(out / "dict.txt")
    corpus = out / "fsc"
    (corpus / "tokens").mkdir(parents=True)
    for split, n in (("train", 19), ("valid", 6), ("test", 6)):  # 19 / batch 4: odd batch count, a dummy step
        examples = []
        for i in range(n):
            label = i % len(INTENTS)
            path = corpus / "tokens" / f"{split}{i}.txt"
            path.write_text(unit_line(rng, label) + "\n")
            action, obj, location = INTENTS[label].split()
            examples.append(SluExample(f"{split}{i}", f"tokens/{path.name}", "spk", action, obj, location,
                                       f"{action} the {obj}"))
        write_slu_csv(corpus / f"{split}.csv", examples)
    write_intent_dict(corpus / "intent_dict", INTENTS)
    (out / "units.json").write_text("{}")  # copied into the bundle; inference is not run here
    read = out / "read"
    (read / "tokens").mkdir(parents=True)
    for split, n in (("train", 21), ("dev", 6)):
        rows = []
        for i in range(n):
            (read / "tokens" / f"{split}{i}.txt").write_text(unit_line(rng, i % 3) + "\n")
            (read / "tokens" / f"{split}{i}.trn").write_text(f"utterance {i}\n")
            rows.append(f"tokens/{split}{i}.txt,tokens/{split}{i}.trn\n")
        (read / f"{split}.csv").write_text("".join(rows))
    done(out, "slu-units")


def write_roberta_run(root: Path, name: str, dictionary: Dictionary, seed: int) -> None:
    """A finished slu-mlm-pretrain run holding a random tiny RoBERTa (without dropout) over `dictionary`."""
    out = root / name
    out.mkdir(parents=True)
    dictionary.add_symbol("<mask>")
    torch.manual_seed(seed)
    save_roberta(out, RobertaModel(RobertaConfig(**ARCH), len(dictionary), dictionary.pad()), dictionary)
    done(out, "slu-mlm-pretrain")


def write_vq_bert_run(root: Path) -> None:
    """The VQ-BERT: a RoBERTa over the unit dictionary of slu_units."""
    write_roberta_run(root, "slu_vq_bert", Dictionary.load(root / "slu_units" / "dict.txt"), seed=0)


def write_text_roberta_run(root: Path) -> None:
    """The text RoBERTa (slu-mlm-pretrain of kind text): word-level, over the read transcripts' words."""
    dictionary = Dictionary()
    for word in ["utterance", *map(str, range(30))]:
        dictionary.add_symbol(word)
    write_roberta_run(root, "slu_text_roberta", dictionary, seed=1)


def write_text_prep_run(root: Path) -> None:
    """A finished st-prep run of parallel text: data/dict.txt and data/text/{train,valid}.bpe.{en,de}."""
    out = root / "prep_text"
    text = out / "data" / "text"
    text.mkdir(parents=True)
    rng = torch.Generator().manual_seed(5)
    words = [f"w{i}" for i in range(20)]
    dictionary = Dictionary()
    for w in words + [f"x{i}" for i in range(20)]:
        dictionary.add_symbol(w)
    dictionary.save(out / "data" / "dict.txt")
    for split, n in (("train", 45), ("valid", 8)):
        src, tgt = [], []
        for _ in range(n):
            ids = torch.randint(0, len(words), (int(torch.randint(3, 9, (1,), generator=rng)),), generator=rng)
            src.append(" ".join(words[i] for i in ids.tolist()))
            tgt.append(" ".join(f"x{i}" for i in reversed(ids.tolist())))  # a learnable "translation"
        (text / f"{split}.bpe.en").write_text("\n".join(src) + "\n")
        (text / f"{split}.bpe.de").write_text("\n".join(tgt) + "\n")
    done(out, "st-prep")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    runs_dir = tmp_path_factory.mktemp("stage_ddp") / "runs"
    root = runs_dir / PROFILE
    write_units_run(root)
    write_vq_bert_run(root)
    write_text_roberta_run(root)
    write_text_prep_run(root)
    return runs_dir


# ------------------------------------------------------------------------------------------ launching

def launch(runs_dir: Path, stage: str, name: str, settings: dict, nproc: int) -> subprocess.CompletedProcess:
    launcher = [sys.executable] if nproc == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc)]
    args = [stage, "--set", f"runs_dir={runs_dir}", "--set", f"profile={PROFILE}", "--set", f"name={name}"]
    for key, value in settings.items():
        args += ["--set", f"{key}={json.dumps(value)}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([*launcher, "-m", "speechkd.cli", *args], env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S)


def run_ok(runs_dir: Path, stage: str, name: str, settings: dict, nproc: int) -> str:
    proc = launch(runs_dir, stage, name, settings, nproc)
    assert proc.returncode == 0, f"{stage} with {nproc} processes exited {proc.returncode}:\n{proc.stderr[-4000:]}"
    return proc.stderr


def check_written_once(run: Path, outputs: set[str]) -> dict:
    """DONE, metrics.json and the outputs exist, no temp file of a second writer is left, and the log holds each
    epoch's validation once (only rank 0 logs)."""
    names = {p.name for p in run.iterdir()}
    assert {"DONE", "metrics.json", "config.json", *outputs} <= names, names
    assert not [p for p in run.rglob(".*.tmp")], "a temp file was left behind"
    assert json.loads((run / "DONE").read_text())["config_hash"]
    records = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    epochs = [r["epoch"] for r in records if "best_epoch" in r]
    assert epochs == sorted(set(epochs)) and epochs, epochs
    return json.loads((run / "metrics.json").read_text())


def assert_same_metrics(ddp: dict, acc: dict, keys: list[str] | None = None, skip: tuple = ()) -> None:
    keys = keys if keys is not None else [k for k in acc if k not in skip]
    for key in keys:
        a, b = ddp[key], acc[key]
        if isinstance(a, float) or isinstance(b, float):
            assert a == pytest.approx(b, rel=1e-4, abs=1e-5), (key, a, b)
        else:
            assert a == b, (key, a, b)


def ddp_against_accumulation(runs_dir: Path, stage: str, name: str, settings: dict,
                             outputs: set[str]) -> tuple[dict, dict]:
    """(metrics of 2 processes x update_freq 1, of 1 process x update_freq 2); then the finished 2-process run
    is run again and skipped."""
    run_ok(runs_dir, stage, f"{name}_ddp", {**settings, "train.update_freq": 1}, nproc=2)
    run_ok(runs_dir, stage, f"{name}_acc", {**settings, "train.update_freq": 2}, nproc=1)
    root = runs_dir / PROFILE
    ddp = check_written_once(root / f"{name}_ddp", outputs)
    acc = check_written_once(root / f"{name}_acc", outputs)
    log = (root / f"{name}_ddp" / "train_log.jsonl").read_text()
    again = run_ok(runs_dir, stage, f"{name}_ddp", {**settings, "train.update_freq": 1}, nproc=2)
    assert "is done" in again
    assert (root / f"{name}_ddp" / "train_log.jsonl").read_text() == log, "the skipped rerun trained"
    assert json.loads((root / f"{name}_ddp" / "metrics.json").read_text()) == ddp
    return ddp, acc


def params(run: Path, checkpoint: str = "checkpoint_last.pt") -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / checkpoint, weights_only=True)["model"]


# ------------------------------------------------------------------------------------------------ cases

def test_slu_mlm_pretrain_under_torchrun(runs):
    settings = {"kind": "units", "arch": ARCH, "batching": {"batch_size": 4}, "train.max_epochs": 2,
                "train.warmup_updates": 2, **QUIET}
    ddp, acc = ddp_against_accumulation(runs, "slu-mlm-pretrain", "mlm", settings, {"encoder.pt", "dict.txt"})
    assert ddp["num_updates"] == acc["num_updates"] == 2 * 3  # 21 sentences / 4 = 6 batches, 3 global ones
    assert_same_metrics(ddp, acc)
    root = runs / PROFILE
    for name, value in params(root / "mlm_acc").items():
        assert torch.allclose(params(root / "mlm_ddp")[name], value, atol=1e-5), name


def test_slu_pt_kd_under_torchrun(runs):
    settings = {"batching": {"batch_size": 4}, "span_seqfreq": 0.2, "span": 2, "train.max_epochs": 2,
                "train.lr": 1e-3, **QUIET}
    ddp, acc = ddp_against_accumulation(runs, "slu-pt-kd", "ptkd", settings, {"encoder.pt", "dict.txt"})
    assert ddp["num_updates"] == acc["num_updates"] == 2 * 3
    assert_same_metrics(ddp, acc)
    root = runs / PROFILE
    for name, value in params(root / "ptkd_acc").items():
        assert torch.allclose(params(root / "ptkd_ddp")[name], value, atol=1e-5), name


def test_slu_finetune_under_torchrun(runs):
    """DS2 has BatchNorm: under DDP its running statistics are rank 0's (broadcast_buffers), under accumulation
    they follow every batch, so the eval-mode numbers (valid_/test_) can differ slightly; the trained parameters
    and everything measured in train mode must match."""
    settings = {"corpus": "fsc", "ds2": {"hidden_size": 16, "num_layers": 1, "conv_channels": 2},
                "batching": {"batch_size": 4}, "vq_bert_train_mode": False, "train.max_epochs": 2,
                "train.lr": 3e-3, **QUIET}
    ddp, acc = ddp_against_accumulation(runs, "slu-finetune", "ft", settings,
                                        {"model.pt", "dict.txt", "intent_dict", "units.json"})
    assert ddp["num_updates"] == acc["num_updates"] == 2 * 3  # 5 batches: the odd one pairs with a dummy
    train_keys = ["num_updates", "epochs", "train_loss", "train_ce", "train_accuracy", "train_sample_size",
                  "train_utterances", "trainable_parameters"]
    assert_same_metrics(ddp, acc, [k for k in train_keys if k in acc])
    for key in ("valid_accuracy", "test_accuracy"):
        assert 0 <= ddp[key] <= 100
    root = runs / PROFILE
    ddp_params, acc_params = params(root / "ft_ddp"), params(root / "ft_acc")
    for name, value in acc_params.items():
        if not name.endswith(("running_mean", "running_var", "num_batches_tracked")):
            assert torch.allclose(ddp_params[name], value, atol=1e-5), name
    # the bundle holds the best epoch's weights, the ones every rank scored
    best = params(root / "ft_ddp", "checkpoint_best.pt")
    bundle = torch.load(root / "ft_ddp" / "model.pt", weights_only=True)["model"]
    assert all(torch.equal(bundle[k], best[k]) for k in best)


def test_st_train_nmt_under_torchrun(runs):
    model = {"arch": "transformer", "args": {"encoder_layers": 1, "decoder_layers": 1, "encoder_embed_dim": 16,
                                             "encoder_ffn_embed_dim": 32, "encoder_attention_heads": 2,
                                             "decoder_attention_heads": 2, "share_all_embeddings": True,
                                             "dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0}}
    settings = {"task": "nmt", "data": {"prep_run": "prep_text", "valid_subset": "valid", "max_tokens": 60},
                "model": model, "required_batch_size_multiple": 1,
                "train": {"optimizer": "adamw", "lr": 0.003, "max_epochs": 2, "progress": False,
                          "tensorboard": False}}
    ddp, acc = ddp_against_accumulation(runs, "st-train", "nmt", settings, set())
    assert ddp["num_updates"] == acc["num_updates"] > 0
    assert_same_metrics(ddp, acc, skip=("seconds",))
    root = runs / PROFILE
    for name, value in params(root / "nmt_acc").items():
        assert torch.allclose(params(root / "nmt_ddp")[name], value, atol=1e-5), name


def test_pt_kd_single_forward_gives_extract_features_and_lm_logits():
    """PT-KD takes features and LM logits from one model(...) call (DDP); they are what the two calls gave."""
    from speechkd.stages.slu_pt_kd import mlm_logits_and_features
    torch.manual_seed(0)
    model = RobertaModel(RobertaConfig(**ARCH), 30, 1).eval()
    source = torch.randint(4, 30, (3, 9))
    masked = torch.rand(3, 9) < 0.3
    logits, feats = mlm_logits_and_features(model, source, masked)
    assert torch.allclose(feats, model.extract_features(source))
    assert torch.allclose(logits, model.lm_logits(model.extract_features(source), masked))
