"""slu-pt-kd: PT-KD, VQ-BERT further pre-trained on read speech with textual knowledge (stage 1 of the paper).

What is matched (README figure, abstract; CrossBert.forward in pretrain mode, models/bert.py): the VQ-BERT output
at position 0 (`<s>`, the [CLS] equivalent) against the frozen text RoBERTa's `<s>` output of the transcript; the
masked-LM loss on span-masked units is kept (CrossBert returns the VQ-BERT MLM logits too). Inputs as the
authors' PT-KD loader (loader/masked_data_loader.py): units `<s> ... </s>` (append_eos=True), span masking
seqfreq 0.025 span 20 (every selected unit -> `<mask>`), MLM targets at the masked positions; transcript
lower-cased and RoBERTa-encoded keeping `</s>`.

The authors did NOT release this training script, so the following are OUR choices (slu_paper.md §1.2), all
options: the distance (kd.representation_kd.cls_distance: "mse" = squared L2 per utterance summed over features,
the default; "l1"; "cosine"), averaged over the batch; loss = mlm_weight * (mean CE over masked units) +
kd_weight * distance, both weights 1 by default; the teacher runs in eval mode (no dropout), so its `<s>` vectors
are computed once; optimiser and schedule (see the configs and docs/slu_config_sources.md). Writes the updated
VQ-BERT (with its MLM head) as encoder.pt + dict.txt, like slu-mlm-pretrain.
"""
from __future__ import annotations

import dataclasses
from typing import Literal

import torch
import torch.nn.functional as F

from ..config import DataRunConfig, option
from ..errors import InputError
from ..kd.representation_kd import cls_distance
from ..models.mlm import span_mask_for_mlm
from ..models.roberta import RobertaModel
from ..runs import Run, finished_run
from ..train.config import TrainConfig
from ..train.distributed import unwrap
from ..train.reproducibility import batch_rng, derive_seed, seed_everything, seeded
from ..train.trainer import Trainer
from ..slu.batching import BatchConfig, eval_batches, load_best_weights, pad, train_sampler
from ..slu.corpus import long_utterances_option, read_pair_manifest, unit_sequences
from ..slu.encoders import RobertaRef, load_roberta, save_roberta
from ..slu.text import encode_for_pt_kd


@dataclasses.dataclass
class Config(DataRunConfig):
    units_run: str = option("slu_units", "the slu-units run (read/{train,dev}.csv: units + transcripts)", run_ref=True)
    vq_bert: RobertaRef = option(RobertaRef(run="slu_vq_bert"), "the VQ-BERT to continue from (paper: bert_kmeans)")
    text: RobertaRef = option(RobertaRef(run="slu_text_roberta"), "the frozen text RoBERTa (paper: roberta.base)")
    distance: Literal["mse", "l1", "cosine"] = option("mse", "distance between the two <s> vectors (our choice)")
    kd_weight: float = option(1.0, "weight of the <s> distance")
    mlm_weight: float = option(1.0, "weight of the masked-LM loss")
    long_utterances: Literal["error", "skip"] = long_utterances_option()
    span_seqfreq: float = option(0.025, "span starts per unit (masked_data_loader.py: 0.025)")
    span: int = option(20, "units per masked span (masked_data_loader.py: 20)")
    batching: BatchConfig = option(BatchConfig(batch_size=32), "batches")
    max_valid: int = option(2000, "validate on at most this many utterances of read/dev (the first ones)")
    train: TrainConfig = option(TrainConfig(optimizer="adam", lr=1e-5, eps=1e-6, weight_decay=0.01,
                                            max_epochs=10),
                                "optimiser and schedule (not released by the authors)")

    def __post_init__(self) -> None:
        if self.kd_weight < 0 or self.mlm_weight < 0 or self.kd_weight + self.mlm_weight == 0:
            raise ValueError("kd_weight and mlm_weight must be >= 0 and not both 0")
        if not 0 < self.span_seqfreq < 1 or self.span < 1:
            raise ValueError("span_seqfreq must be in (0, 1) and span >= 1")


class PtKdTask:
    def __init__(self, cfg: Config, train: tuple[list[torch.Tensor], torch.Tensor],
                 valid: tuple[list[torch.Tensor], torch.Tensor], mask_idx: int, pad_idx: int):
        self.cfg, self.mask_idx, self.pad_idx = cfg, mask_idx, pad_idx
        self.units, self.teacher_cls = train
        self.sampler = train_sampler([len(u) for u in self.units], cfg.batching, cfg.seed)
        units, cls = valid
        with seeded(derive_seed(cfg.seed, "valid-masks")):  # the same masked positions every epoch
            masked = [self._mask(u) for u in units]
        self.valid = [self._collate([masked[i] for i in b], cls[b])
                      for b in eval_batches([len(u) for u in units], cfg.batching.eval_batch_size)]

    def _mask(self, units: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return span_mask_for_mlm(units, self.mask_idx, batch_rng(), self.cfg.span_seqfreq, self.cfg.span,
                                 self.pad_idx)

    def _collate(self, pairs: list[tuple[torch.Tensor, torch.Tensor]], cls: torch.Tensor) -> dict:
        return {"source": pad([p[0] for p in pairs], self.pad_idx)[0],
                "target": pad([p[1] for p in pairs], self.pad_idx)[0], "teacher_cls": cls}

    def train_batches(self, epoch: int, rank: int, world: int) -> list[list[int]]:
        self.sampler.rank, self.sampler.num_replicas = rank, world
        return self.sampler.epoch_batches(epoch)

    def load_batch(self, indices: list[int]) -> dict:
        return self._collate([self._mask(self.units[i]) for i in indices], self.teacher_cls[indices])

    def _terms(self, model: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        target = batch["target"]
        masked = target.ne(self.pad_idx)
        logits, feats = mlm_logits_and_features(model, batch["source"], masked)
        # no masked position: 0-row logits, a 0 loss that still reaches every LM-head parameter
        mlm = F.cross_entropy(logits.float(), target[masked], reduction="sum") / max(int(masked.sum()), 1)
        dist = cls_distance(feats[:, 0, :].float(), batch["teacher_cls"].float(), self.cfg.distance)
        return self.cfg.mlm_weight * mlm + self.cfg.kd_weight * dist, mlm, dist

    def loss(self, model: RobertaModel, batch: dict) -> tuple[torch.Tensor, int, dict]:
        b = batch["source"].size(0)
        total, mlm, dist = self._terms(model, batch)
        # batch means x B, divided by B (sample_size) in the trainer: the update follows the per-batch mean
        return total * b, b, {"mlm_loss": float(mlm.detach()) * b, "kd_distance": float(dist.detach()) * b}

    def validate(self, model: RobertaModel) -> dict:
        device = next(model.parameters()).device
        sums, n = [0.0, 0.0, 0.0], 0
        for batch in self.valid:
            batch = {k: v.to(device) for k, v in batch.items()}
            b = batch["source"].size(0)
            for i, term in enumerate(self._terms(model, batch)):
                sums[i] += float(term) * b
            n += b
        return {"valid_loss": sums[0] / n, "valid_mlm_loss": sums[1] / n, "valid_kd_distance": sums[2] / n}


def mlm_logits_and_features(model: torch.nn.Module, source: torch.Tensor,
                            masked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(LM logits at the masked positions, encoder features (B, T, C)) from ONE model(...) call. Under torchrun
    `model` is the DDP wrapper: the LM head's matrix is the tied token embedding, and using it outside that
    forward (extract_features, then lm_logits) makes DDP count its gradient twice. The features are taken with
    a hook on the sentence encoder (they are what extract_features returns)."""
    captured: list[torch.Tensor] = []
    encoder = unwrap(model).encoder.sentence_encoder
    hook = encoder.register_forward_hook(lambda _module, _args, out: captured.append(out[0]))
    try:
        logits = model(source, masked_tokens=masked)[0]
    finally:
        hook.remove()
    return logits, captured[0]


@torch.no_grad()
def teacher_cls(text: RobertaModel, seqs: list[torch.Tensor], pad_idx: int, batch_size: int) -> torch.Tensor:
    """(N, D) `<s>` outputs of the frozen text RoBERTa, eval mode."""
    text.eval()
    out = torch.empty(len(seqs), text.embed_dim)
    for b in eval_batches([len(s) for s in seqs], batch_size):
        out[b] = text.extract_features(pad([seqs[i] for i in b], pad_idx)[0])[:, 0, :].float()
    return out


def run(cfg: Config) -> dict:
    run_ = Run(cfg, stage="slu-pt-kd")
    if (done := run_.metrics_if_done()) is not None:
        return done
    units = finished_run(cfg, cfg.units_run, "units_run", stage="slu-units")
    vq = load_roberta(cfg, cfg.vq_bert, "vq_bert")
    text = load_roberta(cfg, cfg.text, "text")
    if vq.model.embed_dim != text.model.embed_dim:
        raise InputError(f"vq_bert / text: hidden sizes differ ({vq.model.embed_dim} vs {text.model.embed_dim}); "
                         f"PT-KD matches the two <s> vectors directly (768 = 768 in the paper)")
    encoder = text.text_encoder(cfg.text, cfg)
    data = {}
    skipped = {}
    for split in ("train", "dev"):
        manifest = units / "read" / f"{split}.csv"
        pairs = read_pair_manifest(manifest)
        seqs, transcripts, skipped[f"read_{split}_skipped_long"] = unit_sequences(
            pairs, vq.dictionary, vq.model.max_positions, cfg.long_utterances, manifest)
        n = len(seqs) if split == "train" else min(len(seqs), cfg.max_valid)
        seqs = seqs[:n]
        texts = [encode_for_pt_kd(encoder, t) for t in transcripts[:n]]
        data[split] = (seqs, teacher_cls(text.model, texts, text.dictionary.pad(), cfg.batching.eval_batch_size))
    run_.start()
    seed_everything(cfg.seed)
    model = vq.model.train()
    task = PtKdTask(cfg, data["train"], data["dev"], vq.dictionary.index("<mask>"), vq.dictionary.pad())
    metrics = Trainer(cfg.train, run_, model, task).fit()
    metrics["best_epoch"] = load_best_weights(run_, model)
    metrics.update(skipped)
    return run_.finish(metrics, save=lambda: save_roberta(run_.dir, model.cpu(), vq.dictionary))
