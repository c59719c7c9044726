"""Finished runs in the layout the stages write, with random tiny models instead of trained ones (the export tests):
an st-prep run (data/: bpecodes learned on a few sentences, the joined dict.txt, dict.<lang>.txt, optionally
gcmvn.npz), st-train runs (config.json, checkpoints/checkpoint_{best,last}.pt and epoch checkpoints, DONE) and a
slu-text-finetune run (the teacher files of slu/teacher.py)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from speechkd.features.cmvn import save_global_cmvn
from speechkd.models.roberta import RobertaConfig, RobertaModel, TextClassifier
from speechkd.slu.teacher import save_teacher
from speechkd.st.models import ModelConfig, build_model
from speechkd.stages.st_prep import build_joined_dict
from speechkd.tokenizers.bpe import BPE, learn_bpe, write_codes
from speechkd.tokenizers.dictionary import Dictionary
from speechkd.train.checkpoint import save_checkpoint

PROFILE = "embedded"
SENTENCES = ["the dog sleeps .", "a cat runs home .", "my friend buys bread .", "the cat doesn &apos;t sleep .",
             "der Hund schläft .", "eine Katze läuft nach Hause .", "mein Freund kauft Brot .",
             "die Katze schläft nicht ."]
TINY_S2T = {"encoder_layers": 2, "decoder_layers": 2, "encoder_embed_dim": 32, "encoder_ffn_embed_dim": 64,
            "conv_channels": 48, "encoder_attention_heads": 4, "decoder_attention_heads": 4}
TINY_NMT = {"encoder_layers": 2, "decoder_layers": 2, "encoder_embed_dim": 32, "encoder_ffn_embed_dim": 64,
            "encoder_attention_heads": 4, "decoder_attention_heads": 4, "share_all_embeddings": True}
TINY_BERARD = {"input_layers": "[24, 16]", "conv_layers": "[(4, 3, 2), (4, 3, 2)]", "num_blstm_layers": 2,
               "lstm_size": 12, "decoder_embed_dim": 8, "decoder_num_layers": 2, "decoder_hidden_dim": 24,
               "attention_dim": 10, "output_layer_dim": 8}
INTENTS = ["activate lights kitchen", "deactivate lights kitchen", "increase volume none"]


def finish(run: Path, stage: str, config: dict) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps({"stage": stage, "config_hash": "fixture", "config": config}))
    (run / "DONE").write_text(json.dumps({"config_hash": "fixture", "stage": stage}))
    return run


def write_prep_run(runs: Path, name: str = "prep", global_cmvn: bool = False) -> Dictionary:
    """A finished st-prep run: fastBPE codes (40 merges) and the joined dictionary of SENTENCES."""
    data = runs / PROFILE / name / "data"
    data.mkdir(parents=True)
    merges = learn_bpe(SENTENCES, 40)
    write_codes(data / "bpecodes", merges)
    dictionary = build_joined_dict(BPE(merges).apply(s) for s in SENTENCES)
    for file in ("dict.txt", "dict.en.txt", "dict.de.txt"):
        dictionary.save(data / file)
    if global_cmvn:
        save_global_cmvn(data / "gcmvn.npz", np.linspace(-1, 1, 80), np.linspace(0.5, 2, 80))
    finish(data.parent, "st-prep", {"corpus": "embedded", "global_cmvn": global_cmvn})
    return dictionary


def eos_friendly(model: torch.nn.Module, eos: int = 2, std: float = 0.2, push: float = 4.0) -> None:
    """Larger random weights than the init (outputs depend on the input) and a push towards EOS in the output
    bias or the last layer norm, so that beams end before max length (the HF comparison needs ended rows)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                p.normal_(0.0, std)
        out = model.decoder.output_projection
        if getattr(out, "bias", None) is not None:
            out.bias[eos] += push
        else:  # the norm after the last layer: the stack's (pre-LN) or the last layer's (post-LN)
            norm = model.decoder.layer_norm or model.decoder.layers[-1].final_layer_norm
            row = out.weight[eos]
            norm.bias.add_(push * row / row.dot(row))


def write_st_train_run(runs: Path, name: str, task: str, arch: str, args: dict, dictionary: Dictionary,
                       prep: str = "prep", cmvn: str = "utterance", seed: int = 0, epochs: int = 2,
                       push: float = 4.0) -> Path:
    """A finished st-train run of a random model: epoch checkpoints 1..epochs (slightly different weights),
    checkpoint_last = the last epoch, checkpoint_best = epoch 1; push: eos_friendly's."""
    run = runs / PROFILE / name
    (run / "checkpoints").mkdir(parents=True)
    torch.manual_seed(seed)
    model = build_model(ModelConfig(arch, args), len(dictionary))
    eos_friendly(model, push=push)
    states = []
    for epoch in range(1, epochs + 1):  # epochs: the model plus a little noise each (what an average mixes)
        states.append({k: v + 0.01 * torch.randn_like(v) if v.is_floating_point() else v.clone()
                       for k, v in model.state_dict().items()})
        save_checkpoint(run / "checkpoints" / f"checkpoint{epoch}.pt", {"model": states[-1], "epoch": epoch})
    save_checkpoint(run / "checkpoints" / "checkpoint_last.pt", {"model": states[-1]})
    save_checkpoint(run / "checkpoints" / "checkpoint_best.pt", {"model": states[0]})
    data = {"prep_run": prep, "src_lang": "en", "tgt_lang": "de", "cmvn": cmvn,
            "valid_subset": "valid" if task == "nmt" else "dev"}
    return finish(run, "st-train", {"task": task, "data": data, "model": {"arch": arch, "args": args}})


def write_teacher_run(runs: Path, name: str = "teacher", seed: int = 0) -> TextClassifier:
    """A finished slu-text-finetune run: a random 2-layer RoBERTa teacher over a word dictionary."""
    run = runs / PROFILE / name
    run.mkdir(parents=True)
    dictionary = Dictionary()
    for word in "activate deactivate lights kitchen increase volume the turn on off up".split():
        dictionary.add_symbol(word)
    dictionary.save(run / "words.txt")
    torch.manual_seed(seed)
    roberta = RobertaModel(RobertaConfig(layers=2, embed_dim=32, heads=4, ffn_dim=64, max_positions=40),
                           len(dictionary))
    model = TextClassifier(roberta, len(INTENTS)).eval()
    with torch.no_grad():  # larger than BERT's init, so that the logits depend on the input
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.2)
    save_teacher(run, model, run / "words.txt", "words", ("", ""), INTENTS)
    finish(run, "slu-text-finetune", {"units_run": "slu_units", "corpus": "fsc"})
    return model
