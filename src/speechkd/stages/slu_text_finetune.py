"""slu-text-finetune: the FT-KD teacher, a text RoBERTa fine-tuned to classify the transcripts.

As text_finetuning.py + models/nlu.py (clovaai/textual-kd-slu): transcript lower-cased, RoBERTa-encoded with the
trailing `</s>` dropped (loader/text_data_loader.py), `extract_features` -> `<s>` vector -> Linear(hidden,
num_intents) (TextModel, models.roberta.TextClassifier); CE; Adam lr 1e-5, betas (0.9, 0.999), eps 1e-6, weight
decay 0.01 (L2, torch Adam); lr / 1.1 after every epoch while lr >= 1e-8; batch 32; 100 epochs. The intent dict
is the corpus's (line order = class index), shared with the student so that logits match index to index.
Model selection: the best validation accuracy (the authors keep best_acc.pt and best_loss.pt; FT-KD used one
of them); on ties the later epoch. Test accuracy is measured once, with the selected weights.
"""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from ..config import DataRunConfig, option
from ..models.roberta import TextClassifier
from ..runs import Run, data_path, finished_run
from ..train.config import TrainConfig
from ..train.reproducibility import seed_everything
from ..train.trainer import Trainer
from ..slu.batching import BatchConfig, eval_batches, load_best_weights, pad, train_sampler
from ..slu.corpus import SLU_SPLITS, read_intents, read_slu_split
from ..slu.encoders import RobertaRef, load_roberta
from ..slu.teacher import save_teacher
from ..slu.text import encode_for_finetuning

PAPER_TRAIN = TrainConfig(optimizer="adam", lr=1e-5, betas=[0.9, 0.999], eps=1e-6, weight_decay=0.01,
                          scheduler="exponential", lr_decay=1 / 1.1, min_lr=1e-8, max_epochs=100,
                          best_metric="valid_accuracy", maximize=True)


@dataclasses.dataclass
class Config(DataRunConfig):
    units_run: str = option("slu_units", "the slu-units run whose corpus manifests hold the transcripts", run_ref=True)
    corpus: str = option("fsc", "corpus name inside the units run (fsc, lights_close, ...)")
    text: RobertaRef = option(RobertaRef(run="slu_text_roberta"), "the pre-trained text RoBERTa")
    batching: BatchConfig = option(BatchConfig, "batches (text_fine.json: batch_size 32)")
    train: TrainConfig = option(PAPER_TRAIN, "optimiser and schedule (text_fine.json, text_finetuning.py)")


def evaluate(model: torch.nn.Module, batches: list[dict], logits_of) -> dict[str, float]:
    """Summed CE and accuracy (percent) over fixed batches; logits_of(model, batch) -> (B, C)."""
    total, correct, n = 0.0, 0, 0
    for batch in batches:
        logits = logits_of(model, batch).float()
        labels = batch["labels"].to(logits.device)
        total += float(F.cross_entropy(logits, labels, reduction="sum"))
        correct += int((logits.argmax(-1) == labels).sum())
        n += len(labels)
    return {"loss": total / max(n, 1), "accuracy": 100.0 * correct / max(n, 1)}


def score_best_epoch(run_, model: torch.nn.Module, eval_batches_of: dict[str, list[dict]], logits_of,
                     metrics: dict) -> int:
    """Reload the best-validation weights and add valid_/test_ loss and accuracy to `metrics` (finetuning.py
    tests at the best validation epoch); returns that epoch."""
    best_epoch = load_best_weights(run_, model)
    model.eval()
    with torch.no_grad():
        for split in ("valid", "test"):
            for k, v in evaluate(model, eval_batches_of[split], logits_of).items():
                metrics[f"{split}_{k}"] = v
    return best_epoch


class TextClassificationTask:
    def __init__(self, cfg: Config, data: dict[str, tuple[list[torch.Tensor], list[int]]], pad_idx: int):
        self.cfg, self.pad_idx = cfg, pad_idx
        self.texts, self.labels = data["train"]
        self.sampler = train_sampler([len(t) for t in self.texts], cfg.batching, cfg.seed)
        self.eval = {split: [self.collate(texts, labels, b)
                             for b in eval_batches([len(t) for t in texts], cfg.batching.eval_batch_size)]
                     for split, (texts, labels) in data.items() if split != "train"}

    def collate(self, texts: list[torch.Tensor], labels: list[int], indices: list[int]) -> dict:
        tokens, _ = pad([texts[i] for i in indices], self.pad_idx)
        return {"tokens": tokens, "labels": torch.tensor([labels[i] for i in indices], dtype=torch.long)}

    @staticmethod
    def logits(model: TextClassifier, batch: dict) -> torch.Tensor:
        return model(batch["tokens"].to(next(model.parameters()).device))[0]

    def train_batches(self, epoch: int, rank: int, world: int) -> list[list[int]]:
        self.sampler.rank, self.sampler.num_replicas = rank, world
        return self.sampler.epoch_batches(epoch)

    def load_batch(self, indices: list[int]) -> dict:
        return self.collate(self.texts, self.labels, indices)

    def loss(self, model: TextClassifier, batch: dict) -> tuple[torch.Tensor, int, dict]:
        logits = model(batch["tokens"])[0].float()
        loss = F.cross_entropy(logits, batch["labels"], reduction="sum")  # / B by the trainer = the batch mean
        correct = (logits.argmax(-1) == batch["labels"]).sum()
        return loss, len(batch["labels"]), {"accuracy": 100.0 * float(correct)}

    def validate(self, model: TextClassifier) -> dict:
        return {f"valid_{k}": v for k, v in evaluate(model, self.eval["valid"], self.logits).items()}


def run(cfg: Config) -> dict:
    run_ = Run(cfg, stage="slu-text-finetune")
    if (done := run_.metrics_if_done()) is not None:
        return done
    corpus_dir = finished_run(cfg, cfg.units_run, "units_run", stage="slu-units") / cfg.corpus
    intents = read_intents(corpus_dir)
    text = load_roberta(cfg, cfg.text, "text")
    encoder = text.text_encoder(cfg.text, cfg)
    data = {}
    for split in SLU_SPLITS:
        s = read_slu_split(corpus_dir, split, intents)
        data[split] = ([encode_for_finetuning(encoder, e.transcript) for e in s.examples], s.labels)
    run_.start()
    seed_everything(cfg.seed)
    model = TextClassifier(text.model.train(), len(intents))
    task = TextClassificationTask(cfg, data, text.dictionary.pad())
    metrics = Trainer(cfg.train, run_, model, task).fit()
    best_epoch = score_best_epoch(run_, model, task.eval, task.logits, metrics)
    metrics["best_epoch"] = best_epoch
    gpt2 = ("", "")
    if cfg.text.bpe == "gpt2":
        gpt2 = (str(data_path(cfg.data_root, cfg.text.gpt2_encoder_json).resolve()),
                str(data_path(cfg.data_root, cfg.text.gpt2_vocab_bpe).resolve()))
    return run_.finish(metrics, save=lambda: save_teacher(run_.dir, model.cpu(), text.dict_path, cfg.text.bpe, gpt2,
                                                          intents))
