"""export: a trained model of this project -> a fairseq checkpoint directory or a Hugging Face model directory.

    speechkd export --set run=st_covost_imitkd --set out_dir=exports/st_fairseq
    speechkd export --set run=expert --set format=hf --set checkpoint=average_last_5 --set out_dir=exports/expert_hf
    speechkd export --set run_dir=runs/embedded/slu_text_fsc --set format=hf --set out_dir=exports/teacher

What is written (interop/export_fairseq.py, interop/export_hf.py):
- st-train asr / st (s2t_transformer*, s2t_berard*), format fairseq: checkpoint.pt (fairseq 0.12 `cfg`, task
  speech_to_text), config.yaml (the S2T data config st-prep writes, with the run's feature normalisation),
  dict.txt (the target dictionary), bpecodes (the fastBPE codes of the prep run), gcmvn.npz (global CMVN only);
- st-train nmt (transformer*), format fairseq: checkpoint.pt (task translation), dict.<src>.txt, dict.<tgt>.txt
  (the joined dictionary), bpecodes;
- format hf: s2t_transformer -> Speech2TextForConditionalGeneration (config.json, model.safetensors,
  preprocessor_config.json unless global CMVN, then gcmvn.npz; dict.txt + bpecodes to map ids to text), transformer ->
  FSMTForConditionalGeneration (+ vocab-src.json, vocab-tgt.json, merges.txt, tokenizer_config.json),
  slu-text-finetune -> RobertaForTokenClassification (the intent logits are those at position 0; + dict.txt,
  intent_dict);
- export.json: what was exported from where (run, stage, task, architecture, checkpoint files).
The checkpoint is checkpoint_best.pt, checkpoint_last.pt or the average of the last N epoch checkpoints (an
st-train run; a slu-text-finetune run keeps its best epoch only). An export writes no run directory: it writes
out_dir, atomically (into a temporary directory beside it, then renamed), and refuses a non-empty out_dir unless
overwrite is set; nothing else is moved or kept.
"""
from __future__ import annotations

import dataclasses
import json
import secrets
import shutil
import types
from pathlib import Path
from typing import Any, Literal

from ..config import option
from ..errors import InputError
from ..fileio import write_json_atomic, write_text_atomic
from ..runs import finished_run, run_config
from ..st.vocab import CODES_FILE, DICT_FILE, LANG_DICT_FILE

GCMVN_FILE = "gcmvn.npz"
STAGES = ("st-train", "slu-text-finetune")


@dataclasses.dataclass
class Config:
    run: str = option("", "the finished run to export, by name (<runs_dir>/<profile>/<run>): st-train (task asr, "
                          "nmt or st) or slu-text-finetune", run_ref=True)
    run_dir: str = option("", "or the run's directory (its prep run is looked up beside it)")
    runs_dir: str = option("runs", "root of all run directories")
    profile: str = option("embedded", "the profile of run")
    checkpoint: str = option("best", "best, last, or average_last_N (the mean of the last N epoch checkpoints)")
    format: Literal["fairseq", "hf"] = option("fairseq", "fairseq: a fairseq 0.12 checkpoint directory; hf: a "
                                                         "Hugging Face model directory")
    out_dir: str = option("", "the directory to write", required=True)
    overwrite: bool = option(False, "replace a non-empty out_dir (else refused)")

    def __post_init__(self) -> None:
        if bool(self.run) == bool(self.run_dir):
            raise ValueError("set run or run_dir (one of them)")
        if not self.out_dir:
            raise ValueError("out_dir: the directory to write is required")


def check_out_dir(cfg: Config) -> Path:
    out = Path(cfg.out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"out_dir: {out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not cfg.overwrite:
        raise InputError(f"out_dir: {out} is not empty; choose another directory or set overwrite: true")
    return out


def source_run(cfg: Config) -> tuple[Any, str, str, Path, dict]:
    """(a config locating the run's siblings, the run's name, the field naming it, its directory, its saved
    config.json)."""
    if cfg.run:
        where: Any = cfg
        name, field = cfg.run, "run"
    else:
        path = Path(cfg.run_dir)
        if not path.is_dir():
            raise InputError(f"run_dir: directory not found: {path}")
        path = path.resolve()
        where = types.SimpleNamespace(runs_dir=str(path.parent.parent), profile=path.parent.name)
        name, field = path.name, "run_dir"
    path = finished_run(where, name, field)
    saved = run_config(path)
    if saved.get("stage") not in STAGES:
        raise InputError(f"{field}: run '{name}' is a {saved.get('stage')} run; export takes {' or '.join(STAGES)} "
                         "runs")
    return where, name, field, path, saved


def _copy(src: Path, dst: Path) -> None:
    if not src.is_file():
        raise InputError(f"{src}: not found (a file the export copies from the model's runs)")
    shutil.copyfile(src, dst)


def export_st_train(where: Any, name: str, field: str, cfg: Config, out: Path) -> dict:
    """An st-train run's model into `out` (a fresh directory); returns the export.json facts."""
    from ..interop.export_fairseq import (CHECKPOINT_FILE, S2T_CONFIG_FILE, speech_to_text_task,
                                          translation_task, write_fairseq_checkpoint)
    from ..st.decoding import model_data
    from ..st.models import load_trained_model, model_family
    from .st_prep import fairseq_data_config

    trained = load_trained_model(where, name, field, cfg.checkpoint)
    arch = trained.config["model"]["arch"]
    family, data = model_family(arch), model_data(trained)
    what = f"{field}: run '{name}' ({arch})"
    prep = trained.prep_dir
    if cfg.format == "fairseq":
        note = {"run": name, "checkpoint": trained.checkpoint}
        if family == "transformer":
            task = translation_task(trained.model, data.src_lang, data.tgt_lang)  # type: ignore[arg-type]
            for lang in (data.src_lang, data.tgt_lang):
                _copy(prep / DICT_FILE, out / LANG_DICT_FILE.format(lang=lang))
        else:
            task = speech_to_text_task(trained.model)
            _copy(prep / DICT_FILE, out / DICT_FILE)
            target = "ASR (target: src_text)" if trained.task == "asr" else "ST (tgt_text)"
            write_text_atomic(out / S2T_CONFIG_FILE, fairseq_data_config(target, data.cmvn))
            if data.cmvn == "global":
                _copy(prep / GCMVN_FILE, out / GCMVN_FILE)
        write_fairseq_checkpoint(out / CHECKPOINT_FILE, trained.model, arch, task, note=note)
        _copy(prep / CODES_FILE, out / CODES_FILE)
    else:
        from ..interop.export_hf import write_hf_fsmt, write_hf_speech2text
        if family == "transformer":
            write_hf_fsmt(out, trained.model, trained.dictionary, prep / CODES_FILE,  # type: ignore[arg-type]
                          (data.src_lang, data.tgt_lang), what)
        elif family == "s2t_transformer":
            write_hf_speech2text(out, trained.model, data.cmvn, what)  # type: ignore[arg-type]
            _copy(prep / DICT_FILE, out / DICT_FILE)
            _copy(prep / CODES_FILE, out / CODES_FILE)
            if data.cmvn == "global":  # the feature extractor cannot apply it: st-translate / api.load_st do
                _copy(prep / GCMVN_FILE, out / GCMVN_FILE)
        else:
            raise InputError(f"{what}: Hugging Face has no {family} model; export it with format fairseq")
    return {"task": trained.task, "arch": arch, "checkpoint": trained.checkpoint}


def export_text_teacher(path: Path, field: str, name: str, cfg: Config, out: Path) -> dict:
    from ..interop.export_hf import write_hf_text_classifier
    from ..slu.teacher import load_teacher

    if cfg.format != "hf":
        raise InputError(f"{field}: run '{name}' is a slu-text-finetune run (a RoBERTa teacher): export it with "
                         "format hf")
    if cfg.checkpoint != "best":
        raise InputError(f"checkpoint: a slu-text-finetune run keeps its best epoch only (got {cfg.checkpoint!r})")
    model, _, intents = load_teacher(path)
    write_hf_text_classifier(out, model, intents, f"{field}: run '{name}'")
    for file in (DICT_FILE, "intent_dict"):
        _copy(path / file, out / file)
    meta = json.loads((path / "teacher.json").read_text(encoding="utf-8"))
    if meta["bpe"] == "gpt2":  # the text's GPT-2 BPE, so that the directory alone encodes text
        _copy(Path(meta["gpt2_encoder_json"]), out / "encoder.json")
        _copy(Path(meta["gpt2_vocab_bpe"]), out / "vocab.bpe")
    return {"task": "text-classification", "arch": "roberta", "checkpoint": "teacher.pt"}


def _temporary_beside(out: Path) -> Path:
    """A new directory next to `out`, named as fileio's atomic temporaries (a killed export's leftovers are
    recognisable), with the usual permissions."""
    tmp = out.parent / f".{out.name}.{secrets.token_hex(4)}.tmp"
    tmp.mkdir()
    return tmp


def run(cfg: Config) -> dict:
    out = check_out_dir(cfg)
    where, name, field, path, saved = source_run(cfg)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_beside(out)
    try:
        if saved["stage"] == "st-train":
            facts = export_st_train(where, name, field, cfg, tmp)
        else:
            facts = export_text_teacher(path, field, name, cfg, tmp)
        facts = {"run": name, "stage": saved["stage"], "format": cfg.format, **facts}
        write_json_atomic(tmp / "export.json", facts)
        check_out_dir(cfg)  # still empty (or overwrite): nobody wrote there meanwhile
        if out.exists():
            old = _temporary_beside(out)
            out.rename(old / "previous")
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"[export] {name} -> {out} ({cfg.format}: {', '.join(sorted(p.name for p in out.iterdir()))})")
    return facts
