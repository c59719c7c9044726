"""slu-finetune: the E2E SLU model, VQ-BERT -> DS2 -> max-pool over time -> Linear(H, intents).

As finetuning.py + models/slu.py + loader/data_loader.py (clovaai/textual-kd-slu):
- input: units `<s> ...` WITHOUT `</s>` (append_eos=False); VQ-BERT frozen (finetune_vq_bert: false, as coded);
- `pt_kd_checkpoint`: the VQ-BERT after PT-KD (a slu-pt-kd run, or the authors' xbt_recent); else `vq_bert`;
- `am_pt_checkpoint`: DS2 conv + BiLSTM weights from AM-PT, copied BY NAME (a slu-am-pretrain run's am.pt, or
  the authors' xbt_asr.pth), the CTC head dropped;
- FT-KD (`ft_kd`): loss = CE(logits, y) [batch mean] + ft_kd_weight * D(logits, teacher logits), D = "l1" as
  coded (L1 summed over classes, / batch size), "mse" (the commented-out alternative) or "kl" (Hinton, with
  `temperature`); the teacher is a slu-text-finetune run (eval mode, its own text encoder, the transcript with
  `</s>` dropped), its logits computed once; its intent dict must equal the corpus's;
- DA (`da`), training split only, re-drawn every time a batch is loaded: unit span masking (Masking.span_masking,
  seqfreq = select_prob / max_span = 0.2 / 5, span 5, `<mask>`), then hidden masking of the VQ-BERT output
  (emb_augment.py: time span 10 p 0.5, channel span 5 p 0.4, set to 0);
- Adam lr 1e-4, betas (0.9, 0.999), eps 1e-6, weight decay 0.01, lr / 1.05 per epoch, batch 32, 100 epochs;
- model selection: validation accuracy after every epoch; test accuracy is that of the best-validation epoch
  (the authors test whenever validation accuracy is >= the best so far, so ties go to the later epoch; so do
  ours). metrics.json: valid_accuracy, test_accuracy (percent), best_epoch.
- `subset: 10pct`: a class-stratified 10 % of the training split with a fixed seed (corpus.stratified_subset).
Unlike finetuning.py, the trained model is saved, with everything slu-infer needs (see bundle.py).
"""
from __future__ import annotations

import dataclasses
from typing import Literal

import torch
import torch.nn.functional as F

from ..config import DataRunConfig, exactly_one, option
from ..data.batching import collate_features
from ..data.masking import mask_hidden_batch, span_mask_tokens
from ..errors import InputError
from ..kd.logit_kd import ft_kd
from ..runs import Run, data_path, finished_run, require_file, run_dir
from ..train.config import TrainConfig
from ..train.reproducibility import batch_rng, seed_everything
from ..train.trainer import Trainer
from ..slu.batching import BatchConfig, eval_batches, pad, train_sampler
from ..slu.bundle import save_bundle
from ..slu.corpus import SLU_SPLITS, SluSplit, encode_units, read_intents, read_slu_split, stratified_subset
from ..slu.encoders import RobertaRef, load_roberta
from ..slu.feature_cache import cached_features
from ..slu.speech_model import Ds2Config, SpeechIntentModel, load_am_into
from ..slu.teacher import load_teacher
from ..slu.text import encode_for_finetuning
from .slu_text_finetune import evaluate, score_best_epoch

PAPER_TRAIN = TrainConfig(optimizer="adam", lr=1e-4, betas=[0.9, 0.999], eps=1e-6, weight_decay=0.01,
                          scheduler="exponential", lr_decay=1 / 1.05, min_lr=1e-8, max_epochs=100,
                          best_metric="valid_accuracy", maximize=True)
SUBSETS = {"full": 1.0, "10pct": 0.1}


@dataclasses.dataclass
class AmRef:
    run: str = option("", "name of a finished slu-am-pretrain run (its am.pt)", run_ref=True)
    checkpoint: str = option("", "an AM-PT package file (the authors' xbt_asr.pth); relative to data_root")


@dataclasses.dataclass
class DaConfig:
    """finetuning_kd.json: token_masking, emb_masking, masking_type static, max_span 5, select_prob 0.2,
    time_span 10, time_prob 0.5, channel_span 5, channel_prob 0.4."""
    token_masking: bool = option(False, "span-mask the units of training utterances")
    select_prob: float = option(0.2, "token masking: share of units (span starts = select_prob / max_span)")
    max_span: int = option(5, "token masking: units per span")
    masking_type: Literal["static", "dynamic"] = option("static", "token masking: fixed span, or U(1, max_span)")
    emb_masking: bool = option(False, "time + channel masking of the VQ-BERT output")
    time_prob: float = option(0.5, "hidden masking: share of time steps")
    time_span: int = option(10, "hidden masking: time steps per span")
    channel_prob: float = option(0.4, "hidden masking: share of channels")
    channel_span: int = option(5, "hidden masking: channels per span")

    def __post_init__(self) -> None:
        for name in ("select_prob", "time_prob", "channel_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        for name in ("max_span", "time_span", "channel_span"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")


@dataclasses.dataclass
class Config(DataRunConfig):
    units_run: str = option("slu_units", "the slu-units run", run_ref=True)
    corpus: str = option("fsc", "corpus name inside the units run (fsc, lights_close, lights_far, ...)")
    vq_bert: RobertaRef = option(RobertaRef(run="slu_vq_bert"), "VQ-BERT without PT-KD (paper: bert_kmeans)")
    pt_kd_checkpoint: RobertaRef = option(RobertaRef, "the VQ-BERT after PT-KD (replaces vq_bert when set): run "
                                                      "= a slu-pt-kd run, checkpoint = e.g. the authors' xbt_recent")
    am_pt_checkpoint: AmRef = option(AmRef, "initialise DS2 from AM-PT (when set)")
    ft_kd: Literal["none", "l1", "mse", "kl"] = option("none", "FT-KD distance to the teacher logits (l1 as coded)")
    ft_kd_weight: float = option(1.0, "weight of the FT-KD term (1 as coded)")
    temperature: float = option(1.0, "ft_kd kl: softmax temperature")
    teacher_run: str = option("", "ft_kd: the slu-text-finetune run of this corpus", run_ref=True)
    da: DaConfig = option(DaConfig, "data augmentation (the +DA rows)")
    subset: Literal["full", "10pct"] = option("full", "training data: all, or a stratified 10 %")
    subset_seed: int = option(0, "seed of the 10 % draw (the same subset for every row and run seed)")
    finetune_vq_bert: bool = option(False, "also train VQ-BERT (the authors' code keeps it frozen)")
    vq_bert_train_mode: bool = option(True, "frozen VQ-BERT in train mode (dropout on) while training, as the "
                                            "authors' model.train(); false = eval mode (deterministic: features "
                                            "can be computed once)")
    feature_cache: bool = option(True, "reuse/store deterministic frozen VQ-BERT features across runs", hashed=False)
    ds2: Ds2Config = option(Ds2Config, "DS2 block (must equal the AM-PT run's when am_pt_checkpoint is set)")
    batching: BatchConfig = option(BatchConfig, "batches (finetuning_kd.json: batch_size 32, eval_size 32)")
    train: TrainConfig = option(PAPER_TRAIN, "optimiser and schedule (finetuning_kd.json, finetuning.py)")

    def __post_init__(self) -> None:
        if self.ft_kd != "none" and not self.teacher_run:
            raise ValueError(f"ft_kd '{self.ft_kd}' needs teacher_run (a slu-text-finetune run)")
        if self.temperature <= 0 or self.ft_kd_weight < 0:
            raise ValueError("temperature must be > 0 and ft_kd_weight >= 0")
        if self.train.best_metric != "valid_accuracy" or not self.train.maximize:
            raise ValueError("train.best_metric must be valid_accuracy with maximize true (finetuning.py's model "
                             "selection)")


class FinetuneTask:
    def __init__(self, cfg: Config, splits: dict[str, SluSplit], units: dict[str, list[torch.Tensor]],
                 feats: dict[str, list[torch.Tensor]], teacher_logits: torch.Tensor | None, mask_idx: int,
                 pad_idx: int, hidden_dim: int):
        self.cfg, self.mask_idx, self.pad_idx, self.hidden_dim = cfg, mask_idx, pad_idx, hidden_dim
        self.units, self.labels = units["train"], splits["train"].labels
        self.feats = feats.get("train")
        self.teacher = teacher_logits
        self.sampler = train_sampler([len(u) for u in self.units], cfg.batching, cfg.seed)
        self.eval = {s: [self._collate(units[s], splits[s].labels, feats.get(s), None, b, augment=False)
                         for b in eval_batches([len(u) for u in units[s]], cfg.batching.eval_batch_size)]
                     for s in ("valid", "test")}

    def _collate(self, units, labels, feats, teacher, indices: list[int], augment: bool) -> dict:
        da = self.cfg.da
        seqs = [units[i] for i in indices]
        rng = batch_rng() if augment and (da.token_masking or da.emb_masking) else None
        if augment and da.token_masking:  # loader/data_loader.py parse_audio, every time an utterance is loaded
            seqs = [span_mask_tokens(s, da.select_prob / da.max_span, da.max_span, self.mask_idx, rng,
                                     dynamic=da.masking_type == "dynamic")[0] for s in seqs]
        tokens, lengths = pad(seqs, self.pad_idx)
        batch = {"lengths": lengths, "labels": torch.tensor([labels[i] for i in indices], dtype=torch.long)}
        if feats is not None:
            batch["features"] = collate_features([feats[i] for i in indices])[0]
        else:
            batch["tokens"] = tokens
        if augment and da.emb_masking:  # emb_augment.py per utterance, on its unpadded length
            ones = torch.ones(len(lengths), int(lengths.max()), self.hidden_dim)
            batch["hidden_keep"] = mask_hidden_batch(ones, lengths, da.time_prob, da.time_span, da.channel_prob,
                                                     da.channel_span, rng)
        if teacher is not None:
            batch["teacher"] = teacher[indices]
        return batch

    @staticmethod
    def logits(model: SpeechIntentModel, batch: dict) -> torch.Tensor:
        device = next(model.parameters()).device
        b = {k: v.to(device) for k, v in batch.items()}
        return model(b["lengths"], b.get("tokens"), b.get("features"), b.get("hidden_keep"))

    # trainer protocol
    def train_batches(self, epoch: int, rank: int, world: int) -> list[list[int]]:
        self.sampler.rank, self.sampler.num_replicas = rank, world
        return self.sampler.epoch_batches(epoch)

    def load_batch(self, indices: list[int]) -> dict:
        return self._collate(self.units, self.labels, self.feats, self.teacher, indices, augment=True)

    def loss(self, model: SpeechIntentModel, batch: dict) -> tuple[torch.Tensor, int, dict]:
        logits = model(batch["lengths"], batch.get("tokens"), batch.get("features"), batch.get("hidden_keep"))
        logits = logits.float()
        b = len(batch["labels"])
        ce = F.cross_entropy(logits, batch["labels"])  # mean over the batch (nn.CrossEntropyLoss())
        loss, logs = ce, {"ce": float(ce.detach()) * b}
        if self.teacher is not None:
            kd = ft_kd(self.cfg.ft_kd, logits, batch["teacher"].float(), self.cfg.temperature)
            loss = loss + self.cfg.ft_kd_weight * kd
            logs["ft_kd"] = float(kd.detach()) * b
        logs["accuracy"] = 100.0 * float((logits.argmax(-1) == batch["labels"]).sum())
        return loss * b, b, logs  # the trainer divides by b: the update follows the batch mean, as coded

    def validate(self, model: SpeechIntentModel) -> dict:
        return {f"valid_{k}": v for k, v in evaluate(model, self.eval["valid"], self.logits).items()}


@torch.no_grad()
def teacher_logits(cfg: Config, intents: list[str], split: SluSplit) -> torch.Tensor:
    directory = finished_run(cfg, cfg.teacher_run, "teacher_run", stage="slu-text-finetune")
    teacher, encoder, teacher_intents = load_teacher(directory)
    if teacher_intents != intents:
        raise InputError(f"teacher_run: {directory / 'intent_dict'} differs from the corpus's intent dict: teacher "
                         f"and student logits are matched index to index, so they must share it")
    texts = [encode_for_finetuning(encoder, e.transcript) for e in split.examples]
    out = torch.empty(len(texts), len(intents))
    for b in eval_batches([len(t) for t in texts], 64):
        out[b] = teacher(pad([texts[i] for i in b], encoder.dictionary.pad())[0])[0].float()
    return out


def run(cfg: Config) -> dict:
    run_ = Run(cfg, stage="slu-finetune")
    if (done := run_.metrics_if_done()) is not None:
        return done
    units_dir = finished_run(cfg, cfg.units_run, "units_run", stage="slu-units")
    corpus_dir = units_dir / cfg.corpus
    if not corpus_dir.is_dir():
        raise InputError(f"corpus: {corpus_dir} does not exist (corpora of {cfg.units_run}: "
                         f"{', '.join(sorted(p.name for p in units_dir.iterdir() if (p / 'intent_dict').is_file()))})")
    intents = read_intents(corpus_dir)
    splits = {s: read_slu_split(corpus_dir, s, intents) for s in SLU_SPLITS}
    full_train = len(splits["train"])
    if cfg.subset != "full":
        chosen = stratified_subset(splits["train"].labels, SUBSETS[cfg.subset], cfg.subset_seed)
        splits["train"] = splits["train"].subset(chosen)
    use_pt_kd = bool(cfg.pt_kd_checkpoint.run or cfg.pt_kd_checkpoint.checkpoint)
    vq = load_roberta(cfg, cfg.pt_kd_checkpoint if use_pt_kd else cfg.vq_bert,
                      "pt_kd_checkpoint" if use_pt_kd else "vq_bert")
    units = {s: [encode_units(vq.dictionary, t, append_eos=False) for t in splits[s].tokens] for s in SLU_SPLITS}
    longest = max(len(u) for s in units.values() for u in s)
    if longest > vq.model.max_positions:
        raise InputError(f"the longest utterance has {longest} units > VQ-BERT max_positions {vq.model.max_positions}")
    am_path = None
    if cfg.am_pt_checkpoint.run or cfg.am_pt_checkpoint.checkpoint:
        which = exactly_one(cfg.am_pt_checkpoint, "am_pt_checkpoint", "run", "checkpoint")
        if which == "run":
            am_path = finished_run(cfg, cfg.am_pt_checkpoint.run, "am_pt_checkpoint.run", stage="slu-am-pretrain")
            am_path = am_path / "am.pt"
        else:
            am_path = require_file(data_path(cfg.data_root, cfg.am_pt_checkpoint.checkpoint),
                                   "am_pt_checkpoint.checkpoint", "AM-PT checkpoint")
    teacher = teacher_logits(cfg, intents, splits["train"]) if cfg.ft_kd != "none" else None

    run_.start()
    seed_everything(cfg.seed)
    ds2 = cfg.ds2.build(vq.model.embed_dim)
    if am_path is not None:
        load_am_into(ds2, am_path)
    model = SpeechIntentModel(vq.model, ds2, len(intents), cfg.finetune_vq_bert, cfg.vq_bert_train_mode)
    # frozen VQ-BERT features that cannot change: training ones unless masked / dropout / trained; eval ones
    # unless trained (evaluation runs in eval mode)
    cache_dir = run_dir(cfg, "slu_feature_cache") if cfg.feature_cache else None
    frozen_eval = not cfg.finetune_vq_bert
    frozen_train = frozen_eval and not cfg.da.token_masking and not cfg.vq_bert_train_mode
    feats = {s: cached_features(cache_dir, vq.model, vq.digest, units[s], vq.dictionary.pad(),
                                cfg.batching.eval_batch_size)
             for s in SLU_SPLITS if (frozen_train if s == "train" else frozen_eval)}
    task = FinetuneTask(cfg, splits, units, feats, teacher, vq.dictionary.index("<mask>"), vq.dictionary.pad(),
                        vq.model.embed_dim)
    metrics = Trainer(cfg.train, run_, model, task).fit()
    best_epoch = score_best_epoch(run_, model, task.eval, task.logits, metrics)
    metrics.update({"best_epoch": best_epoch, "train_utterances": len(splits["train"]),
                    "full_train_utterances": full_train, "pt_kd": use_pt_kd, "am_pt": am_path is not None,
                    "ft_kd": cfg.ft_kd, "da": cfg.da.token_masking or cfg.da.emb_masking,
                    "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad)})

    def save() -> None:
        if cfg.subset != "full":
            (run_.dir / "subset.txt").write_text("".join(f"{e.index}\n" for e in splits["train"].examples))
        save_bundle(run_.dir, model.cpu(), cfg.ds2, units_dir, vq, intents)
    return run_.finish(metrics, save=save)
