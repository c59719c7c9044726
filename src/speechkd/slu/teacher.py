"""The text teacher as files: what slu-text-finetune writes and slu-finetune (FT-KD) reads.

    teacher.pt      state dict in the authors' TextModel layout (`text_bert.model.<fairseq names>`,
                    `intenter.*`, as text_finetuning.py's best_acc.pt), so interop.fairseq_roberta's
                    load_authors_text_classifier reads ours and theirs alike
    teacher.json    attention heads (the state dict cannot tell them) and how text is encoded
    dict.txt        the text RoBERTa's dictionary;  intent_dict: the class order of the logits
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..data.manifests import read_intent_dict, write_intent_dict
from ..fileio import write_json_atomic
from ..interop.fairseq_roberta import load_authors_text_classifier
from ..models.roberta import TextClassifier
from ..train.checkpoint import save_checkpoint
from .text import TextEncoder, load_text_encoder


def save_teacher(directory: Path, model: TextClassifier, dict_path: Path, bpe: str, gpt2_files: tuple[str, str],
                 intents: list[str]) -> None:
    state = {f"text_bert.model.{k}": v.detach().cpu().clone() for k, v in model.roberta.state_dict().items()}
    state.update({f"intenter.{k}": v.detach().cpu().clone() for k, v in model.intenter.state_dict().items()})
    save_checkpoint(directory / "teacher.pt", state)
    if dict_path.resolve() != (directory / "dict.txt").resolve():
        shutil.copyfile(dict_path, directory / "dict.txt")
    write_intent_dict(directory / "intent_dict", intents)
    write_json_atomic(directory / "teacher.json", {"heads": model.roberta.cfg.heads, "bpe": bpe,
                                                   "gpt2_encoder_json": gpt2_files[0], "gpt2_vocab_bpe": gpt2_files[1]})


def load_teacher(directory: Path) -> tuple[TextClassifier, TextEncoder, list[str]]:
    """(classifier in eval mode, its text encoder, its intent order)."""
    meta = json.loads((directory / "teacher.json").read_text())
    model = load_authors_text_classifier(directory / "teacher.pt", heads=int(meta["heads"]))
    if meta["bpe"] == "gpt2":
        encoder = load_text_encoder("gpt2", directory / "dict.txt", Path(meta["gpt2_encoder_json"]),
                                    Path(meta["gpt2_vocab_bpe"]))
    else:
        encoder = load_text_encoder("words", directory / "dict.txt")
    return model.eval(), encoder, read_intent_dict(directory / "intent_dict")
