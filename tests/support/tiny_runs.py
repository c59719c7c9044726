"""The smallest finished runs the inference commands and the Python API load: trained for real by the stages, in
seconds, on tiny inputs (tone clips for ST, a 31-utterance espeak FSC for SLU)."""
from __future__ import annotations

import json
from pathlib import Path

from speechkd import cli
from speechkd.config import load_config
from speechkd.stages import synth

from .paths import CONFIGS
from .st_corpora import write_embedded_corpus, write_parallel_text

TINY_T = {"encoder_layers": 1, "decoder_layers": 1, "encoder_embed_dim": 16, "encoder_ffn_embed_dim": 32,
          "encoder_attention_heads": 2, "decoder_attention_heads": 2}
SPEECH_MODEL = {"arch": "s2t_transformer_s", "args": {**TINY_T, "conv_channels": 16, "conv_kernel_sizes": "5,5"}}
TRAIN = {"optimizer": "adamw", "lr": 0.003, "scheduler": "inverse_sqrt", "warmup_updates": 2, "max_epochs": 2,
         "progress": False, "tensorboard": False}
SEARCH = {"beam": 2, "max_len_b": 12}  # the st-eval runs' settings, which st-translate takes over
TINY_ROBERTA = {"layers": 1, "embed_dim": 16, "heads": 2, "ffn_dim": 32, "max_positions": 512}
QUIET = {"train.progress": False, "train.tensorboard": False}


def stage(args: list[str], **settings) -> None:
    for key, value in settings.items():
        args += ["--set", f"{key}={json.dumps(value)}"]
    assert cli.main(args) == 0, f"speechkd {' '.join(args[:1])} failed"


def st_runs(root: Path, profile: str, st_name: str = "st", cascade: bool = False) -> Path:
    """<root>/runs/<profile>/: prep_nmt, prep (speech, global CMVN), `st_name` (task st) and asr with their st-eval
    runs <name>_eval (dev, SEARCH); with `cascade`, also an NMT expert and a cascade NMT run (cascade, cascade_eval).
    The speech corpus is support.st_corpora's (train: u0, u2, u4 kept by st-prep; dev: d0) at <root>/st."""
    runs = root / "runs"

    def st(stage_name: str, **settings) -> None:
        stage([stage_name, "--set", f"runs_dir={runs}", "--set", f"profile={profile}"], **settings)

    corpus, text = write_embedded_corpus(root), write_parallel_text(root)
    st("st-prep", name="prep_nmt", corpus="parallel_text", corpus_dir=str(text), bpe={"learn_merges": 60}, workers=1)
    st("st-prep", name="prep", corpus="embedded", corpus_dir=str(corpus), splits=["train", "dev"],
       bpe={"from_run": "prep_nmt"}, global_cmvn=True, workers=1)
    data = {"prep_run": "prep", "max_tokens": 4000, "cmvn": "global", "specaugment": "none"}
    for name, task in ((st_name, "st"), ("asr", "asr")):
        st("st-train", name=name, task=task, data=data, model=SPEECH_MODEL, train=TRAIN)
        st("st-eval", name=f"{name}_eval", model_run=name, splits={"dev": "dev"}, generation=SEARCH)
    if cascade:
        nmt = {"arch": "transformer", "args": {**TINY_T, "share_all_embeddings": True}}
        st("st-train", name="expert", task="nmt", model=nmt, train={**TRAIN, "max_epochs": 1},
           data={"prep_run": "prep_nmt", "valid_subset": "valid", "max_tokens": 1000})
        st("st-train", name="cascade", task="nmt", model=nmt, train={**TRAIN, "max_epochs": 1, "max_updates": 2},
           data={**data, "source": "audio"},
           criterion={"name": "cascade_nmt_imitkd", "expert": {"run": "expert"}, "asr_run": "asr"})
        st("st-eval", name="cascade_eval", model_run="cascade", splits={"dev": "dev"}, generation=SEARCH)
    return runs


def slu_runs(root: Path, finetune_name: str = "slu_fsc_full_ampt") -> Path:
    """<root>/runs/embedded/: an espeak FSC of 31 utterances per split at <root>/data/embedded/fsc (and 4 read
    sentences for the k-means units), k-means units,
    a 1-layer VQ-BERT and text RoBERTa, the text teacher slu_text_fsc and a speech model `finetune_name` (one
    epoch each)."""
    synth.run(load_config(synth.Config, overrides=[
        'corpora=["fsc","read"]', "fsc.train_speakers=1", "fsc.valid_speakers=1", "fsc.test_speakers=1",
        "fsc.utts_per_speaker=31", "read.train_speakers=1", "read.dev_speakers=1", "read.test_speakers=1",
        "read.utts_per_speaker=4", "read.text_only_lines=50", f"output_dir={root / 'data' / 'embedded'}", f"runs_dir={root / 'synth_runs'}",
        "workers=1"]))
    runs = root / "runs"

    def slu(config: str, **settings) -> None:
        path = CONFIGS / "embedded" / "slu" / f"{config}.json"
        name = json.loads(path.read_text())["$schema"].split("/")[-1].split(".")[0]
        stage([name, "--config", str(path), "--set", f"runs_dir={runs}", "--set", f"data_root={root}"], **settings)

    slu("slu_units", corpora={"fsc": "data/embedded/fsc"}, num_codes=8, fit_max_frames=2000,
        kmeans_iters=3, workers=1)
    slu("slu_vq_bert", arch=TINY_ROBERTA, **{"train.max_epochs": 1}, **QUIET)
    slu("slu_text_roberta", arch=TINY_ROBERTA, **{"train.max_epochs": 1}, **QUIET)
    slu("slu_text_fsc", **{"train.max_epochs": 1}, **QUIET)
    slu("slu_fsc_full_ampt", name=finetune_name, ds2={"hidden_size": 8, "num_layers": 1, "conv_channels": 2},
        pt_kd_checkpoint={}, am_pt_checkpoint={}, ft_kd="none", teacher_run="", **{"train.max_epochs": 1}, **QUIET)
    return runs
