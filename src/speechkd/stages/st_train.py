"""st-train: train an ASR model (task asr), the NMT expert (task nmt) or a speech translation student (task st).

What fairseq-train does in the fork's README command: data from an st-prep run (S2T TSV + fbank80.zip, or the
BPE'd text for the expert), batches by max_tokens, the model of `model.arch`, the encoder optionally initialised
from an ASR checkpoint (--load-pretrained-encoder-from) and frozen for the first N updates
(--encoder-freezing-updates), the criterion from st/criteria/, validation NLL -> checkpoint_best.pt and
patience. The KD criteria's expert (criterion.expert) is loaded once, frozen, held by the task.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Literal

from ..config import DataRunConfig, option
from ..errors import InputError
from ..runs import Run, finished_run, require_file
from ..tokenizers.bpe import BPE
from ..tokenizers.dictionary import Dictionary
from ..train.config import TrainConfig
from ..train.reproducibility import seed_everything
from ..train.trainer import Trainer
from ..st.criteria import CriterionConfig, CriterionContext, criterion_class
from ..st.data import DataConfig, SpeechDataset, TextDataset, resolve_source, resolve_target_field
from ..st.expert import Expert, check_expert_inputs, load_expert
from ..st.models import (ModelConfig, build_model, freezing_supported, load_pretrained_encoder, num_parameters,
                     pretrained_encoder_path, trained_run)
from ..st.task import StTask
from ..st.vocab import CODES_FILE, DICT_FILE, TextEncoder

GCMVN_FILE = "gcmvn.npz"


@dataclasses.dataclass
class Config(DataRunConfig):
    task: Literal["asr", "nmt", "st"] = option("st", "asr: speech -> transcript; nmt: text -> text (the expert); "
                                                    "st: speech -> translation", required=True)
    data: DataConfig = option(DataConfig, "manifests, batching, feature transforms")
    model: ModelConfig = option(ModelConfig, "architecture")
    criterion: CriterionConfig = option(CriterionConfig, "training criterion (and its expert)")
    train: TrainConfig = option(TrainConfig, "optimiser, schedule, stopping, checkpoints")
    load_pretrained_encoder_from: str = option(
        "", "initialise the encoder from an ASR model: an st-train run name (its checkpoint_best.pt) or a .pt path "
            "(fairseq --load-pretrained-encoder-from)", run_ref=True)
    encoder_freezing_updates: int = option(0, "run the encoder under no_grad for the first N updates "
                                              "(fairseq --encoder-freezing-updates; s2t_transformer only)")
    required_batch_size_multiple: int = option(8, "fairseq --required-batch-size-multiple (default 8)")

    def __post_init__(self) -> None:
        if self.encoder_freezing_updates < 0:
            raise ValueError(f"encoder_freezing_updates must be >= 0, got {self.encoder_freezing_updates}")
        if self.required_batch_size_multiple < 1:
            raise ValueError("required_batch_size_multiple must be >= 1")


def build_datasets(cfg: Config, prep_dir, dictionary: Dictionary, expert: Expert | None):
    """(train, valid) datasets of the configured source kind."""
    source = resolve_source(cfg.data, cfg.task)
    if source == "text":
        if cfg.task != "nmt":
            raise InputError(f"data.source = text needs task nmt (task is {cfg.task})")
        text = prep_dir / "text"
        train_dir = text if not cfg.data.train_run else \
            finished_run(cfg, cfg.data.train_run, "data.train_run") / "data" / "text"

        def files(directory, subset):
            return (directory / f"{subset}.bpe.{cfg.data.src_lang}", directory / f"{subset}.bpe.{cfg.data.tgt_lang}")
        return (TextDataset.from_files(*files(train_dir, cfg.data.train_subset), dictionary),
                TextDataset.from_files(*files(text, cfg.data.valid_subset), dictionary))
    target = TextEncoder(BPE.from_codes(prep_dir / CODES_FILE), dictionary)
    field = resolve_target_field(cfg.data, cfg.task)
    gcmvn = prep_dir / GCMVN_FILE if cfg.data.cmvn == "global" else None
    expert_source = expert.source_encoder if expert is not None and expert.kind == "nmt" else None
    train_dir = prep_dir if not cfg.data.train_run else \
        finished_run(cfg, cfg.data.train_run, "data.train_run") / "data"

    def speech(directory, subset, cache):
        return SpeechDataset(directory / f"{subset}.tsv", prep_dir, target, field, cfg.data.cmvn, gcmvn,
                             expert_source, cache_features=cache)
    # validation batches are collated once and kept by the task: no feature cache needed there
    return (speech(train_dir, cfg.data.train_subset, cfg.data.cache_features),
            speech(prep_dir, cfg.data.valid_subset, False))


def check_inputs(cfg: Config, prep_dir) -> None:
    """Every input of the training -- vocabulary, manifests and their columns, expert, ASR helper, pretrained
    encoder -- checked before anything is built or started, so a missing or malformed one is one InputError in
    seconds, never after the first epoch."""
    from ..data.manifests import read_tsv
    dictionary = Dictionary.load(require_file(prep_dir / DICT_FILE, "data.prep_run", "dictionary"))
    crit_cls = criterion_class(cfg.criterion.name)
    reads_transcripts = crit_cls.needs_expert and check_expert_inputs(cfg.criterion.expert, cfg, dictionary,
                                                                      cfg.data_root)
    train_dir = prep_dir if not cfg.data.train_run else \
        finished_run(cfg, cfg.data.train_run, "data.train_run") / "data"
    if resolve_source(cfg.data, cfg.task) == "text":
        for directory, subset in ((train_dir, cfg.data.train_subset), (prep_dir, cfg.data.valid_subset)):
            for lang in (cfg.data.src_lang, cfg.data.tgt_lang):
                require_file(directory / "text" / f"{subset}.bpe.{lang}", "data", "BPE'd text")
    else:
        require_file(prep_dir / CODES_FILE, "data.prep_run", "BPE codes")
        columns = ("id", "audio", "n_frames", resolve_target_field(cfg.data, cfg.task))
        if reads_transcripts:
            columns += ("src_text",)
        for directory, subset in ((train_dir, cfg.data.train_subset), (prep_dir, cfg.data.valid_subset)):
            read_tsv(directory / f"{subset}.tsv", required=columns)
        if cfg.data.cmvn == "global":
            require_file(prep_dir / GCMVN_FILE, "data.cmvn = global", "global CMVN stats (prep option global_cmvn)")
    if crit_cls.needs_asr:
        trained_run(cfg, cfg.criterion.asr_run, "criterion.asr_run")
    if cfg.load_pretrained_encoder_from:
        pretrained_encoder_path(cfg.load_pretrained_encoder_from, cfg, cfg.data_root)


def run(cfg: Config) -> dict:
    run_ = Run(cfg, stage="st-train")
    if (done := run_.metrics_if_done()) is not None:
        return done
    if not cfg.data.prep_run:
        raise InputError("data.prep_run: name the st-prep run holding the data")
    prep_dir = finished_run(cfg, cfg.data.prep_run, "data.prep_run") / "data"
    check_inputs(cfg, prep_dir)
    run_.start()
    start = time.perf_counter()
    seed_everything(cfg.seed)
    dictionary = Dictionary.load(prep_dir / DICT_FILE)
    model = build_model(cfg.model, len(dictionary), cfg.encoder_freezing_updates,
                        ctc_head=cfg.criterion.ctc_weight > 0)
    if cfg.encoder_freezing_updates and not freezing_supported(model):
        raise InputError(f"encoder_freezing_updates: {cfg.model.arch} has no encoder freezing (s2t_transformer only)")
    metrics: dict = {"task": cfg.task, "arch": cfg.model.arch, "criterion": cfg.criterion.name,
                     "num_parameters": num_parameters(model)}
    if cfg.load_pretrained_encoder_from:
        metrics["pretrained_encoder"] = load_pretrained_encoder(model, cfg.load_pretrained_encoder_from, cfg,
                                                                cfg.data_root)
    crit_cls = criterion_class(cfg.criterion.name)
    ctx = CriterionContext(tgt_dict=dictionary, max_updates=cfg.train.max_updates)
    helpers = []
    if crit_cls.needs_expert:
        ctx.expert = load_expert(cfg.criterion.expert, cfg, dictionary, cfg.data_root)
        helpers.append(ctx.expert)
        metrics["expert"] = ctx.expert.description
    if crit_cls.needs_asr:
        from ..st.models import load_trained_model
        asr = load_trained_model(cfg, cfg.criterion.asr_run, "criterion.asr_run")
        asr.model.requires_grad_(False)
        ctx.asr, ctx.asr_dict = asr.model, asr.dictionary
        helpers.append(asr.model)
    criterion = crit_cls(cfg.criterion, ctx)
    train_data, valid_data = build_datasets(cfg, prep_dir, dictionary, ctx.expert)
    task = StTask(train_data, valid_data, criterion, max_tokens=cfg.data.max_tokens,
                  max_sentences=cfg.data.max_sentences, seed=cfg.seed,
                  specaugment=cfg.data.specaugment if resolve_source(cfg.data, cfg.task) == "audio" else "none",
                  max_source_positions=cfg.data.max_source_positions,
                  max_target_positions=cfg.data.max_target_positions,
                  required_batch_size_multiple=cfg.required_batch_size_multiple, helpers=helpers)
    metrics["train_items"], metrics["train_items_skipped"] = len(task.train_indices), task.skipped
    metrics.update(Trainer(cfg.train, run_, model, task).fit())
    metrics["seconds"] = round(time.perf_counter() - start, 2)
    print(f"[st-train] {run_.name}: {metrics['epochs']} epochs, {metrics['num_updates']} updates, "
          f"best valid_loss {metrics.get('best_valid_loss', float('nan')):.4f}, {metrics['seconds']} s")
    return run_.finish(metrics)

