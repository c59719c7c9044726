"""st-synthetic: the synthetic-transcript dataset of the "T" rows (KDT, ImitKDT), as the fork's README recipe:

1. the ASR model transcribes the training audio (fairseq-generate, not --quiet) -> an ASR log;
2. optionally the NMT expert translates those transcripts (fastBPE applybpe with the expert's codes and dict,
   beam 5, the gold translations as references) -> an NMT log;
3. create_wmt19_generated_dataset.py -d <AST tsv> -a <ASR log> [-o <NMT log>]: for each log, T- (reference) ->
   D- (hypothesis) keyed by the reference STRING (interop.fairseq_generate.reference_to_hypothesis); src_text
   is replaced through the ASR mapping (keyed on the gold transcript), tgt_text through the NMT mapping (keyed on
   the gold translation); rows whose key is missing stay unchanged, silently in the authors' script, counted here.
Either step can instead read an existing fairseq-generate log (asr_log / expert_log), e.g. one the authors' fairseq
produced. With the ASR log alone the authors' script writes the new transcripts to `generated_transcripts` (the
expert's input for step 2); so does this stage.

Output: <run>/data/<split>.tsv (columns id, audio, n_frames, tgt_text, speaker, src_text; audio still points
into the prep run's fbank80.zip) -> st-train with data.train_run = this run.
"""
from __future__ import annotations

import dataclasses
import time

from ..config import DataRunConfig, option
from ..data.manifests import read_s2t_tsv, write_tsv
from ..errors import InputError
from ..fileio import write_text_atomic
from ..interop.fairseq_generate import reference_to_hypothesis, references_and_hypotheses
from ..runs import Run, data_path, finished_run, require_file
from ..st.data import TextDataset, raw_references
from .st_generate import (GenerationConfig, decode_dataset, generate_split, model_data, pick_device, to_records,
                       write_split_outputs)
from ..st.models import load_trained_model, trained_run
from .st_prep import ST_COLUMNS
from .st_score import score_asr, score_translation
from ..st.vocab import CODES_FILE, DICT_FILE, TextEncoder


@dataclasses.dataclass
class Config(DataRunConfig):
    prep_run: str = option("", "the st-prep run of the AST dataset (-d): data/<split>.tsv and its features", run_ref=True)
    split: str = option("train", "the manifest to rewrite (the README: the training set)")
    asr_run: str = option("", "our st-train ASR run that transcribes the audio (step 1)", run_ref=True)
    asr_log: str = option("", "or: an ASR fairseq-generate log (-a), relative to data_root")
    expert_run: str = option("", "optional: our NMT expert run that translates the transcripts (step 2)", run_ref=True)
    expert_log: str = option("", "or: the NMT expert's fairseq-generate log (-o), relative to data_root")
    generation: GenerationConfig = option(GenerationConfig, "search of both steps (fairseq-generate: beam 5)")

    def __post_init__(self) -> None:
        if bool(self.asr_run) == bool(self.asr_log):
            raise ValueError("set asr_run or asr_log (one of them)")
        if self.expert_run and self.expert_log:
            raise ValueError("set expert_run or expert_log, not both")


def _normalized(text: str) -> str:
    return " ".join(text.split())  # the authors' keys: whitespace-split fields re-joined with single spaces


def replace_columns(rows: list[dict], src_map: dict[str, str] | None, tgt_map: dict[str, str] | None) -> tuple[list[dict], dict]:
    """create_wmt19_generated_dataset.py's replacement; returns (new rows, counts)."""
    counts = {"src_replaced": 0, "src_unchanged": 0, "tgt_replaced": 0, "tgt_unchanged": 0}
    out = []
    for row in rows:
        new = dict(row)
        for column, mapping, key in (("src_text", src_map, "src"), ("tgt_text", tgt_map, "tgt")):
            if mapping is None:
                continue
            value = mapping.get(_normalized(row[column]))
            if value is None:
                counts[f"{key}_unchanged"] += 1
            else:
                new[column] = value
                counts[f"{key}_replaced"] += 1
        out.append(new)
    return out, counts


def check_models_and_logs(cfg: Config, prep_dir, n_rows: int) -> None:
    """The ASR and expert runs (finished, of the right task, with their checkpoints and vocabulary) or logs, checked
    before the ASR model transcribes the training set: a bad expert must not surface after hours of decoding."""
    if cfg.asr_run:
        asr = trained_run(cfg, cfg.asr_run, "asr_run", cfg.generation.checkpoint)
        if asr.config["task"] != "asr":
            raise InputError(f"asr_run: '{cfg.asr_run}' is a {asr.config['task']} run, expected asr")
    else:
        require_file(data_path(cfg.data_root, cfg.asr_log), "asr_log", "ASR fairseq-generate log")
    if cfg.expert_run:
        expert = trained_run(cfg, cfg.expert_run, "expert_run", cfg.generation.checkpoint)
        if expert.config["task"] != "nmt":
            raise InputError(f"expert_run: '{cfg.expert_run}' is a {expert.config['task']} run, expected nmt")
        require_file(expert.prep_dir / CODES_FILE, "expert_run -> data.prep_run", "BPE codes")
        raw_references(prep_dir, cfg.split, model_data(expert).tgt_lang, n_rows)
    elif cfg.expert_log:
        require_file(data_path(cfg.data_root, cfg.expert_log), "expert_log", "NMT fairseq-generate log")


def run(cfg: Config) -> dict:
    run_ = Run(cfg, stage="st-synthetic")
    if (done := run_.metrics_if_done()) is not None:
        return done
    prep_dir = finished_run(cfg, cfg.prep_run, "prep_run") / "data"
    manifest = prep_dir / f"{cfg.split}.tsv"
    rows = read_s2t_tsv(manifest)
    if "src_text" not in rows[0]:
        raise InputError(f"{manifest}: no src_text column to replace")
    check_models_and_logs(cfg, prep_dir, len(rows))
    run_.start()
    device = pick_device(cfg.generation.device)
    metrics: dict = {}
    start = time.perf_counter()
    # step 1: ASR transcripts
    if cfg.asr_run:
        asr = load_trained_model(cfg, cfg.asr_run, "asr_run", cfg.generation.checkpoint)
        if asr.task != "asr":
            raise InputError(f"asr_run: '{cfg.asr_run}' is a {asr.task} run, expected asr")
        refs, hyps, seconds = generate_split(asr, prep_dir, cfg.split, cfg.generation, run_.dir / "asr", device)
        asr_log = run_.dir / "asr" / f"generate-{cfg.split}.txt"
        metrics["asr_decode_seconds"] = round(seconds, 2)
    else:
        asr_log = require_file(data_path(cfg.data_root, cfg.asr_log), "asr_log", "ASR fairseq-generate log")
        refs, hyps = references_and_hypotheses(asr_log)
    metrics[f"{cfg.split}_transcript_wer"] = score_asr(refs, hyps, "en")["wer"]
    src_map = reference_to_hypothesis(asr_log)
    transcripts = [src_map.get(_normalized(r["src_text"]), r["src_text"]) for r in rows]
    write_text_atomic(run_.dir / "generated_transcripts", "".join(t + "\n" for t in transcripts))
    # step 2 (optional): the expert translates the transcripts
    tgt_map = None
    if cfg.expert_run:
        expert = load_trained_model(cfg, cfg.expert_run, "expert_run", cfg.generation.checkpoint)
        if expert.task != "nmt":
            raise InputError(f"expert_run: '{cfg.expert_run}' is a {expert.task} run, expected nmt")
        # fast applybpe <codes> <dict> on the transcripts (source) and the gold translations (references)
        encoder = TextEncoder.load(expert.prep_dir / CODES_FILE, expert.prep_dir / DICT_FILE, restrict_to_dict=True)
        dataset = TextDataset([encoder.bpe.apply(t) for t in transcripts],
                              [encoder.bpe.apply(r["tgt_text"]) for r in rows], expert.dictionary,
                              name="generated_transcripts")
        t0 = time.perf_counter()
        decoded, _ = decode_dataset(expert.model, dataset, expert.dictionary, cfg.generation, device)
        metrics["expert_decode_seconds"] = round(time.perf_counter() - t0, 2)
        records = to_records(decoded, dataset, expert.dictionary)
        # its T- lines stay the tokenised gold translations: the keys tgt_map matches the manifest's tgt_text with
        write_split_outputs(run_.dir / "expert", cfg.split, records, "nmt", cfg.generation.beam,
                            len(dataset))
        by_index = {r.sample_id: r.hypotheses[0].detok for r in records}
        lang = model_data(expert).tgt_lang  # the BLEU is against the corpus's raw gold translations
        metrics[f"{cfg.split}_expert_bleu"] = score_translation(raw_references(prep_dir, cfg.split, lang, len(rows)),
                                                                [by_index[i] for i in range(len(rows))], lang)["bleu"]
        expert_log = run_.dir / "expert" / f"generate-{cfg.split}.txt"
    elif cfg.expert_log:
        expert_log = require_file(data_path(cfg.data_root, cfg.expert_log), "expert_log", "NMT fairseq-generate log")
    else:
        expert_log = None
    if expert_log is not None:
        tgt_map = reference_to_hypothesis(expert_log)
    new_rows, counts = replace_columns(rows, src_map, tgt_map)
    write_tsv(run_.dir / "data" / f"{cfg.split}.tsv", new_rows, ST_COLUMNS)
    metrics.update(counts)
    metrics["utterances"] = len(new_rows)
    metrics["seconds"] = round(time.perf_counter() - start, 2)
    print(f"[st-synthetic] {run_.name}: " + ", ".join(f"{k}={v}" for k, v in metrics.items()))
    return run_.finish(metrics)
