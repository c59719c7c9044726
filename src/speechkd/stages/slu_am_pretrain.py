"""slu-am-pretrain: AM-PT, the DeepSpeech2 block pre-trained with character CTC on top of the frozen VQ-BERT.

As am_pretraining.py + models/ammodel.py + loader/asr_data_loader.py (clovaai/textual-kd-slu): units
`<s> ... </s>` (append_eos=True) -> the (PT-KD) VQ-BERT, frozen -> DS2 -> SequenceWise(BN + Linear(H, 29));
targets: the transcript's characters over the 29 labels of manifest/labels.json (upper-cased; others dropped);
CTC summed over the batch, then divided by the batch size (warp-ctc there, torch's CTCLoss here: warp-ctc
takes activations and normalises them itself, so log_softmax + CTCLoss computes the same loss); SGD Nesterov,
lr 1e-4, momentum 0.9, weight decay 1e-5, lr / 1.05 per epoch; batch 20; 100 epochs (am_pre.json).
Validation: greedy CTC decoding (deepspeech.pytorch GreedyDecoder), WER and CER as its decoder computes them
(CER ignores spaces); the lowest CER selects the saved model (`best_metric` valid_cer). `decoder: beam` also
reports pyctcdecode beam-search WER/CER of the selected model.
Writes am.pt, the DeepSpeech package layout slu-finetune's `am_pt_checkpoint` reads by parameter name.
"""
from __future__ import annotations

import dataclasses
from typing import Literal

import torch
import torch.nn.functional as F

from ..config import DataRunConfig, option
from ..decode.ctc import beam_decode, greedy_decode
from ..errors import InputError
from ..metrics.asr import cer, wer
from ..runs import Run, finished_run, run_dir
from ..tokenizers.char import CharTokenizer
from ..train.config import TrainConfig
from ..train.reproducibility import seed_everything
from ..train.trainer import Trainer
from ..data.batching import collate_features
from ..slu.batching import BatchConfig, eval_batches, load_best_weights, pad, train_sampler
from ..slu.corpus import long_utterances_option, read_pair_manifest, unit_sequences
from ..slu.encoders import RobertaRef, load_roberta
from ..slu.feature_cache import cached_features
from ..slu.speech_model import AcousticModel, Ds2Config, save_am_package

PAPER_TRAIN = TrainConfig(optimizer="sgd_nesterov", lr=1e-4, momentum=0.9, weight_decay=1e-5,
                          scheduler="exponential", lr_decay=1 / 1.05, min_lr=0.0, max_epochs=100,
                          best_metric="valid_cer", maximize=False)


@dataclasses.dataclass
class Config(DataRunConfig):
    units_run: str = option("slu_units", "the slu-units run (read/{train,dev}.csv)", run_ref=True)
    vq_bert: RobertaRef = option(RobertaRef(run="slu_ptkd"), "the frozen VQ-BERT (the PT-KD one, as the authors)")
    ds2: Ds2Config = option(Ds2Config, "DS2 block (am_pre.json: hidden 768, 5 layers)")
    long_utterances: Literal["error", "skip"] = long_utterances_option()
    vq_bert_train_mode: bool = option(True, "run the frozen VQ-BERT in train mode (its dropout on) while "
                                            "training, as the authors' model.train() did; false = eval mode "
                                            "(deterministic, allows the feature cache)")
    feature_cache: bool = option(True, "reuse/store frozen VQ-BERT features (only when they are deterministic)",
                                 hashed=False)
    decoder: Literal["greedy", "beam"] = option("greedy", "final evaluation: greedy, or also pyctcdecode beam")
    beam_width: int = option(100, "beam: width")
    max_valid: int = option(2000, "validate on at most this many read/dev utterances (the first ones)")
    batching: BatchConfig = option(BatchConfig(batch_size=20), "batches (am_pre.json: batch_size 20)")
    train: TrainConfig = option(PAPER_TRAIN, "optimiser and schedule (am_pre.json, am_pretraining.py)")


def authors_cer_wer(refs: list[str], hyps: list[str]) -> tuple[float, float]:
    """deepspeech.pytorch decoder.cer/wer summed and normalised as am_pretraining.evaluate: CER over characters
    with spaces removed, WER over words; percent."""
    c = cer([r.replace(" ", "") for r in refs], [h.replace(" ", "") for h in hyps]).score
    w = wer(refs, hyps).score
    return c, w


class AmTask:
    def __init__(self, cfg: Config, units: dict, targets: dict, refs: list[str], feats: dict | None, pad_idx: int):
        self.cfg, self.pad_idx = cfg, pad_idx
        self.units, self.targets, self.feats = units["train"], targets["train"], feats and feats.get("train")
        self.sampler = train_sampler([len(u) for u in self.units], cfg.batching, cfg.seed)
        self.refs = refs
        dev_feats = feats.get("dev") if feats else None
        self.valid = [self._collate(units["dev"], targets["dev"], dev_feats, b)
                      for b in eval_batches([len(u) for u in units["dev"]], cfg.batching.eval_batch_size)]

    def _collate(self, units, targets, feats, indices: list[int]) -> dict:
        tokens, lengths = pad([units[i] for i in indices], self.pad_idx)
        batch = {"lengths": lengths, "targets": torch.cat([targets[i] for i in indices]),
                 "target_lengths": torch.tensor([len(targets[i]) for i in indices]),
                 "index": torch.tensor(indices)}
        if feats is not None:
            batch["features"] = collate_features([feats[i] for i in indices])[0]
        else:
            batch["tokens"] = tokens
        return batch

    def train_batches(self, epoch: int, rank: int, world: int) -> list[list[int]]:
        self.sampler.rank, self.sampler.num_replicas = rank, world
        return self.sampler.epoch_batches(epoch)

    def load_batch(self, indices: list[int]) -> dict:
        return self._collate(self.units, self.targets, self.feats, indices)

    @staticmethod
    def forward(model: AcousticModel, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        logits, out_lengths = model(batch["lengths"], batch.get("tokens"), batch.get("features"))
        return F.log_softmax(logits.float(), dim=-1), out_lengths

    def _ctc(self, log_probs, out_lengths, batch) -> torch.Tensor:
        return F.ctc_loss(log_probs.transpose(0, 1), batch["targets"], out_lengths, batch["target_lengths"],
                          blank=0, reduction="sum", zero_infinity=True)

    def loss(self, model: AcousticModel, batch: dict) -> tuple[torch.Tensor, int, dict]:
        log_probs, out_lengths = self.forward(model, batch)
        return self._ctc(log_probs, out_lengths, batch), len(batch["lengths"]), {}

    def decode(self, model: AcousticModel, beam: bool = False) -> tuple[list[str], float]:
        """Hypotheses of the dev utterances (in dev order) and the summed CTC loss."""
        device = next(model.parameters()).device
        hyps: dict[int, str] = {}
        total = 0.0
        for batch in self.valid:
            batch = {k: v.to(device) for k, v in batch.items()}
            log_probs, out_lengths = self.forward(model, batch)
            total += float(self._ctc(log_probs, out_lengths, batch))
            texts = beam_decode(log_probs, out_lengths, beam_width=self.cfg.beam_width) if beam \
                else greedy_decode(log_probs, out_lengths)
            hyps.update(zip(batch["index"].tolist(), texts))
        return [hyps[i] for i in range(len(hyps))], total

    def validate(self, model: AcousticModel) -> dict:
        hyps, total = self.decode(model)
        c, w = authors_cer_wer(self.refs, hyps)
        return {"valid_loss": total / len(hyps), "valid_cer": c, "valid_wer": w}


def run(cfg: Config) -> dict:
    run_ = Run(cfg, stage="slu-am-pretrain")
    if (done := run_.metrics_if_done()) is not None:
        return done
    if cfg.decoder == "beam":
        try:
            import pyctcdecode  # noqa: F401
        except ImportError:
            raise InputError("decoder: 'beam' needs the pyctcdecode package (pip install pyctcdecode)") from None
    units_dir = finished_run(cfg, cfg.units_run, "units_run", stage="slu-units")
    vq = load_roberta(cfg, cfg.vq_bert, "vq_bert")
    chars = CharTokenizer()
    units, targets, refs = {}, {}, []
    skipped = {}
    for split in ("train", "dev"):
        manifest = units_dir / "read" / f"{split}.csv"
        seqs, transcripts, skipped[f"read_{split}_skipped_long"] = unit_sequences(
            read_pair_manifest(manifest), vq.dictionary, vq.model.max_positions, cfg.long_utterances, manifest)
        n = len(seqs) if split == "train" else min(len(seqs), cfg.max_valid)
        units[split] = seqs[:n]
        targets[split] = [chars.encode(t) for t in transcripts[:n]]
        if split == "dev":
            refs = [chars.decode(t) for t in targets[split]]  # the reference as the authors' target decoder saw it
    empty = sum(len(t) == 0 for t in targets["train"])
    if empty:
        raise InputError(f"{units_dir / 'read' / 'train.csv'}: {empty} transcripts have no character of the 29 "
                         f"CTC labels")
    run_.start()
    seed_everything(cfg.seed)
    model = AcousticModel(vq.model, cfg.ds2.build(vq.model.embed_dim), cfg.vq_bert_train_mode)
    feats = None
    cache_dir = run_dir(cfg, "slu_feature_cache") if cfg.feature_cache else None
    if not cfg.vq_bert_train_mode:  # deterministic frozen features: compute once
        feats = {s: cached_features(cache_dir, vq.model, vq.digest, units[s], vq.dictionary.pad(),
                                    cfg.batching.eval_batch_size) for s in units}
    elif cache_dir is not None:  # dev is decoded in eval mode anyway
        feats = {"dev": cached_features(cache_dir, vq.model, vq.digest, units["dev"], vq.dictionary.pad(),
                                        cfg.batching.eval_batch_size)}
    task = AmTask(cfg, units, targets, refs, feats, vq.dictionary.pad())
    metrics = Trainer(cfg.train, run_, model, task).fit()
    best_epoch = load_best_weights(run_, model)
    model.eval()
    with torch.no_grad():
        metrics.update({f"greedy_{k}": v for k, v in task.validate(model).items()})
        if cfg.decoder == "beam":
            hyps, _ = task.decode(model, beam=True)
            c, w = authors_cer_wer(refs, hyps)
            metrics.update({"beam_valid_cer": c, "beam_valid_wer": w})
    metrics["best_epoch"] = best_epoch
    metrics.update(skipped)
    package = {"epoch": best_epoch, "cer": metrics["greedy_valid_cer"], "wer": metrics["greedy_valid_wer"]}
    return run_.finish(metrics, save=lambda: save_am_package(run_.dir / "am.pt", model, cfg.ds2, package))
