"""A fine-tuned SLU model with everything inference needs, inside its slu-finetune run directory.

    model.pt        {"model": SpeechIntentModel state dict, "vq_bert": fairseq-style architecture args,
                     "vocab_size", "ds2": DS2 sizes, "num_classes"}
    dict.txt        the VQ-BERT unit dictionary (`<mask>` is appended on load, as fairseq's masked_lm task)
    intent_dict     class order of the logits
    units.json (+ tokenizer.pt)   how wav becomes units (copied from the slu-units run; vq-wav2vec: its path)
The authors' inference.py rebuilt the model from configs and three separate paths; here one directory is enough.
"""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path


from ..data.manifests import read_intent_dict, write_intent_dict
from ..errors import InputError
from ..interop.fairseq_roberta import load_masked_lm_dictionary, roberta_config_from_state
from ..models.roberta import RobertaModel
from ..tokenizers.dictionary import Dictionary
from ..train.checkpoint import load_checkpoint, save_checkpoint
from .encoders import LoadedRoberta, roberta_args
from .speech_model import Ds2Config, SpeechIntentModel
from .unit_source import SOURCE_FILE, UnitSource

BUNDLE_FILE = "model.pt"


def save_bundle(directory: Path, model: SpeechIntentModel, ds2_cfg: Ds2Config, units_dir: Path,
                vq: LoadedRoberta, intents: list[str]) -> None:
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    save_checkpoint(directory / BUNDLE_FILE, {"model": state, "vq_bert": roberta_args(model.vq_bert.cfg),
                                              "vocab_size": model.vq_bert.vocab_size,
                                              "ds2": dataclasses.asdict(ds2_cfg),
                                              "num_classes": len(intents)})
    shutil.copyfile(vq.dict_path, directory / "dict.txt")
    write_intent_dict(directory / "intent_dict", intents)
    shutil.copyfile(units_dir / SOURCE_FILE, directory / SOURCE_FILE)
    if (units_dir / "tokenizer.pt").is_file():
        shutil.copyfile(units_dir / "tokenizer.pt", directory / "tokenizer.pt")


@dataclasses.dataclass
class Bundle:
    model: SpeechIntentModel
    dictionary: Dictionary
    intents: list[str]
    units: UnitSource


def load_bundle(directory: Path, device: str = "cpu") -> Bundle:
    path = directory / BUNDLE_FILE
    if not path.is_file():
        raise InputError(f"{path}: not found; is {directory} a finished slu-finetune run?")
    package = load_checkpoint(path)
    state = package["model"]
    vq_state = {k[len("vq_bert."):]: v for k, v in state.items() if k.startswith("vq_bert.")}
    cfg, vocab = roberta_config_from_state(vq_state, package["vq_bert"], source=str(path))
    ds2_cfg = Ds2Config(**package["ds2"])
    model = SpeechIntentModel(RobertaModel(cfg, vocab), ds2_cfg.build(cfg.embed_dim), int(package["num_classes"]))
    model.load_state_dict(state)
    dictionary = load_masked_lm_dictionary(directory / "dict.txt")
    intents = read_intent_dict(directory / "intent_dict")
    if len(intents) != int(package["num_classes"]) or len(dictionary) != vocab:
        raise InputError(f"{directory}: intent_dict / dict.txt do not match {path}")
    return Bundle(model.to(device).eval(), dictionary, intents, UnitSource.load(directory, device))
