"""st-generate: decode a trained model on manifest splits with fairseq-generate's search and write its log.

Model: checkpoint_best.pt, checkpoint_last.pt or the average of the last N epoch checkpoints (fairseq
scripts/average_checkpoints.py --num-epoch-checkpoints N, what the S2T recipes evaluate). Search: beam 5,
max_len = min(max_len_a·src_len + max_len_b, max positions − 1) with fairseq's defaults a=0, b=200, length
penalty 1 (decode/search.py, fairseq's SequenceGenerator). Batches of up to max_tokens source frames/tokens,
longest first, in the order fairseq's batching would run them.

Outputs per split in the run directory: generate-<split>.txt, a fairseq-generate log (S- for text input, T- the
reference: for translation the corpus's raw text (st-prep's text/<split>.raw.<tgt>), for ASR the transcript from
its token ids with <<unk>> escaped and BPE removed; H- the BPE pieces, D- the BPE-decoded hypothesis, P- base-2
positional scores; scores in base 2; the closing line: sacreBLEU of the detokenised hypotheses against the raw
references, or WER), and hyps/<split>.txt, the D- hypotheses in manifest order (Moses-tokenised text, one per
line). Translation references are never rebuilt from token ids: that turns every word outside the vocabulary
into <unk> (9.7 instead of 17.0 BLEU on the expert's OOV-heavy sentences).

A cascade (an NMT model trained on audio batches with an ASR run, criterion cascade_nmt_imitkd) is decoded as the
fork's generate_with_pipeline.py: its ASR transcribes, the NMT model translates the transcripts.
"""
from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import torch

from ..config import RunConfig, option
from ..errors import InputError
from ..fileio import write_text_atomic
from ..interop.fairseq_generate import (GenerateHypothesis, GenerateRecord, sacrebleu_result_string,
                                        wer_result_string, write_generate_log)
from ..runs import Run, finished_run, require_file
from ..tokenizers.dictionary import Dictionary
from ..st.data import SpeechDataset, TextDataset, raw_references, resolve_source, resolve_target_field
from ..st.decoding import Decoded, GenerationConfig, decode_dataset, is_cascade, model_data, pick_device
from ..st.models import TrainedModel, load_trained_model, trained_run
from ..st.vocab import CODES_FILE, DICT_FILE, RAW_REFERENCES, TextEncoder


def translates(model: TrainedModel) -> bool:
    """Scored by BLEU against the corpus's raw target text (st, nmt); ASR keeps its transcript references."""
    return model.task != "asr"


def generation_dataset(model: TrainedModel, data_dir: Path, split: str) -> Any:
    """The split of an st-prep run's data dir as the model reads it (audio or BPE'd text)."""
    data_dict = Dictionary.load(data_dir / DICT_FILE)
    if data_dict != model.dictionary:
        raise InputError(f"{data_dir}: its dict.txt differs from the model's (prep run "
                         f"{model.config['data']['prep_run']}): generate on data prepared with the same BPE codes "
                         "and dictionary")
    data_cfg = model_data(model)
    if resolve_source(data_cfg, model.task) == "text":
        text = data_dir / "text"
        return TextDataset.from_files(text / f"{split}.bpe.{data_cfg.src_lang}", text / f"{split}.bpe.{data_cfg.tgt_lang}",
                                      model.dictionary)
    target = TextEncoder.load(data_dir / CODES_FILE, data_dir / DICT_FILE)
    gcmvn = data_dir / "gcmvn.npz" if data_cfg.cmvn == "global" else None
    return SpeechDataset(data_dir / f"{split}.tsv", data_dir, target, resolve_target_field(data_cfg, model.task),
                         data_cfg.cmvn, gcmvn)


def reference_string(dataset: Any, index: int, dictionary: Dictionary) -> str | None:
    """fairseq-generate's T- text: tgt_dict.string(target, escape_unk=True), BPE removed (ASR transcripts, and
    the keys st-synthetic matches its manifests' tokenised text with; never a BLEU reference)."""
    tokens = dataset.target_tokens(index) if isinstance(dataset, SpeechDataset) else \
        (dataset.targets[index] if dataset.targets is not None else None)
    if tokens is None:
        return None
    return dictionary.string(tokens, bpe_symbol="@@ ", escape_unk=True)


def to_records(decoded: list[Decoded], dataset: Any, dictionary: Dictionary,
               raw_refs: list[str] | None = None) -> list[GenerateRecord]:
    """raw_refs: the corpus's text per dataset index, the T- lines of a translation log."""
    records = []
    ln2 = math.log(2)
    for d in decoded:
        source = None
        if isinstance(dataset, TextDataset):
            source = dictionary.string(dataset.sources[d.index])
        hyp = GenerateHypothesis(score=d.score / ln2, tokens=dictionary.string(d.tokens),
                                 detok=dictionary.string(d.tokens, bpe_symbol="@@ "),
                                 positional_scores=(d.positional_scores / ln2).tolist())
        target = raw_refs[d.index] if raw_refs is not None else reference_string(dataset, d.index, dictionary)
        records.append(GenerateRecord(d.index, source, target, [hyp]))
    return records


def write_split_outputs(out_dir: Path, split: str, records: list[GenerateRecord], task: str, beam: int,
                        n_items: int, raw_lang: str | None = None) -> tuple[list[str], list[str]]:
    """generate-<split>.txt and hyps/<split>.txt; returns (references, hypotheses) in log order. raw_lang: the
    references are the corpus's raw text in this language, and the closing line scores the detokenised
    hypotheses against them (what st-eval reports); else fairseq's sacreBLEU of T- against D-."""
    refs = [r.target for r in records if r.target is not None]
    hyps = [r.hypotheses[0].detok for r in records]
    result = None
    if len(refs) == len(records):
        if task == "asr":
            from ..metrics.asr import FAIRSEQ_S2T_RECIPE, wer
            result = wer_result_string(wer(refs, hyps, **FAIRSEQ_S2T_RECIPE).score)
        elif raw_lang is not None:
            from ..metrics.translation import score_translations
            result = score_translations(hyps, refs, detok_lang=raw_lang, refs_raw=True)["bleu"].formatted
        else:
            result = sacrebleu_result_string(refs, hyps)
    write_generate_log(out_dir / f"generate-{split}.txt", records, subset=split, beam=beam, result=result)
    by_index = {r.sample_id: r.hypotheses[0].detok for r in records}
    write_text_atomic(out_dir / "hyps" / f"{split}.txt", "".join(by_index[i] + "\n" for i in range(n_items)))
    return refs, hyps


def cascade_dataset(cfg: Any, model: TrainedModel, data_dir: Path, split: str, gen: GenerationConfig,
                    device: torch.device) -> TextDataset:
    """The fork's generate_with_pipeline.py: the cascade's ASR model (criterion.asr_run of the NMT run) decodes the
    audio with the configured beam, its BPE-decoded transcripts are BPE'd again with the NMT model's codes and
    translated; the references are the split's tgt_text."""
    asr_run = model.config.get("criterion", {}).get("asr_run", "")
    asr = load_trained_model(cfg, asr_run, "model_run -> criterion.asr_run", gen.checkpoint)
    speech = generation_dataset(asr, data_dir, split)
    decoded, _ = decode_dataset(asr.model, speech, asr.dictionary, gen, device)
    transcripts = {d.index: asr.dictionary.string(d.tokens, bpe_symbol="@@ ") for d in decoded}
    bpe = TextEncoder.load(model.prep_dir / CODES_FILE, model.prep_dir / DICT_FILE).bpe
    return TextDataset([bpe.apply(transcripts[i]) for i in range(len(speech))],
                       [bpe.apply(row["tgt_text"]) for row in speech.rows], model.dictionary, name=f"{split} (ASR)")


def generate_split(model: TrainedModel, data_dir: Path, split: str, gen: GenerationConfig, out_dir: Path,
                   device: torch.device, cfg: Any = None) -> tuple[list[str], list[str], float]:
    """Decode one split and write its outputs; cfg (the caller's config) locates a cascade's ASR run."""
    start = time.perf_counter()
    if is_cascade(model):
        dataset = cascade_dataset(cfg, model, data_dir, split, gen, device)
    else:
        dataset = generation_dataset(model, data_dir, split)
    lang = model_data(model).tgt_lang if translates(model) else None
    raw = raw_references(data_dir, split, lang, len(dataset)) if lang else None
    decoded, _ = decode_dataset(model.model, dataset, model.dictionary, gen, device)
    seconds = time.perf_counter() - start
    records = to_records(decoded, dataset, model.dictionary, raw)
    refs, hyps = write_split_outputs(out_dir, split, records, model.task, gen.beam, len(dataset), lang)
    return refs, hyps, seconds


def reference_kind(model: TrainedModel) -> dict:
    return {"references": RAW_REFERENCES} if translates(model) else {}


def check_split_inputs(cfg: Any, model: TrainedModel, data_dir: Path, splits: list[str]) -> None:
    """Every file decoding and scoring the splits reads, checked before the first batch: a missing test manifest
    or reference file must fail at once, not after the dev set was decoded."""
    from ..data.manifests import read_tsv
    require_file(data_dir / DICT_FILE, "data_run", "dictionary")
    data_cfg = model_data(model)
    text = resolve_source(data_cfg, model.task) == "text"
    if not text:
        require_file(data_dir / CODES_FILE, "data_run", "BPE codes")
    columns = ("id", "audio", "n_frames", resolve_target_field(data_cfg, model.task))
    if is_cascade(model):
        columns += ("src_text",)
        trained_run(cfg, model.config.get("criterion", {}).get("asr_run", ""), "model_run -> criterion.asr_run",
                    cfg.generation.checkpoint)
    for split in splits:
        if text:
            for lang in (data_cfg.src_lang, data_cfg.tgt_lang):
                require_file(data_dir / "text" / f"{split}.bpe.{lang}", "splits", "BPE'd text")
        else:
            read_tsv(data_dir / f"{split}.tsv", required=columns)
        if translates(model):
            raw_references(data_dir, split, data_cfg.tgt_lang)


@dataclasses.dataclass
class Config(RunConfig):
    model_run: str = option("", "the st-train run to decode with", run_ref=True)
    data_run: str = option("", "the st-prep run whose splits are decoded (default: the model's prep run); its "
                               "dictionary must be the model's", run_ref=True)
    splits: list[str] = option(["dev", "test"], "manifest splits (speech: <split>.tsv; text: text/<split>.bpe.*)")
    generation: GenerationConfig = option(GenerationConfig, "search and checkpoint")


@dataclasses.dataclass
class DecodingRun:
    run: Run
    model: TrainedModel
    data_dir: Path
    device: torch.device


def open_decoding_run(cfg: Any, stage: str) -> DecodingRun | dict:
    """What st-generate and st-eval share: the finished run's metrics when it is current (same config, made from
    the same model and data runs), else the started run with the model loaded and where its data are."""
    run_ = Run(cfg, stage=stage)
    if (done := run_.metrics_if_done()) is not None:
        return done
    model = load_trained_model(cfg, cfg.model_run, "model_run", cfg.generation.checkpoint)
    data_dir = finished_run(cfg, cfg.data_run, "data_run") / "data" if cfg.data_run else model.prep_dir
    split_names = cfg.splits.values() if isinstance(cfg.splits, dict) else cfg.splits  # st-eval: prefix -> split
    check_split_inputs(cfg, model, data_dir, list(split_names))
    run_.start()
    return DecodingRun(run_, model, data_dir, pick_device(cfg.generation.device))


def run(cfg: Config) -> dict:
    opened = open_decoding_run(cfg, "st-generate")
    if isinstance(opened, dict):
        return opened
    run_, model, data_dir, device = opened.run, opened.model, opened.data_dir, opened.device
    metrics: dict = {"model_run": cfg.model_run, "task": model.task, "checkpoint": model.checkpoint,
                     "beam": cfg.generation.beam, **reference_kind(model)}
    for split in cfg.splits:
        _, hyps, seconds = generate_split(model, data_dir, split, cfg.generation, run_.dir, device, cfg)
        metrics[f"{split}_sentences"] = len(hyps)
        metrics[f"{split}_seconds"] = round(seconds, 2)
    return run_.finish(metrics)
