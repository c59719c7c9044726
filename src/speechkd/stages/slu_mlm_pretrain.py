"""slu-mlm-pretrain: pre-train a small RoBERTa with masked-LM, standing in for a released one at embedded scale.

- kind "units": VQ-BERT, i.e. RoBERTa on the read-speech units of a slu-units run (`<s> units </s>` per
  utterance), stands in for fairseq's `bert_kmeans` (vq-wav2vec paper: RoBERTa on LibriSpeech k-means codes;
  its args: mask_prob 0.5, span 10, leave_unmasked 0.1, random 0.1 -> our defaults for this kind).
- kind "text": the text RoBERTa on the text-only sample plus the read transcripts, lower-cased, with a word-level
  dictionary (see slu/text.py); RoBERTa's masking (15 %, 80/10/10). Stands in for roberta.base, which the paper
  scale loads instead (so the paper profile has no run of this stage).
Masking and loss: models/mlm.py (fairseq MaskTokensDataset and masked_lm criterion: mean CE over the masked
positions). Writes encoder.pt (fairseq 0.12 layout, loadable by interop.fairseq_roberta) and dict.txt.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F

from ..config import DataRunConfig, option
from ..errors import InputError
from ..models.mlm import mask_tokens
from ..models.roberta import RobertaConfig, RobertaModel
from ..runs import Run, data_path, finished_run, require_file
from ..tokenizers.dictionary import Dictionary
from ..tokenizers.units import UnitTokenizer
from ..train.config import TrainConfig
from ..train.trainer import Trainer
from ..train.reproducibility import batch_rng, derive_seed, seed_everything, seeded
from ..slu.batching import BatchConfig, eval_batches, load_best_weights, pad, train_sampler
from ..slu.corpus import encode_units, read_pair_manifest
from ..slu.encoders import save_roberta
from ..slu.text import WordTextEncoder, build_word_dictionary

SMALL_ROBERTA = RobertaConfig(layers=2, embed_dim=128, heads=2, ffn_dim=512, max_positions=1024)


@dataclasses.dataclass
class MaskingConfig:
    mask_prob: float = option(0.15, "share of positions selected (text 0.15; VQ-BERT 0.5)")
    mask_multiple_length: int = option(1, "span length per selected start (text 1; VQ-BERT 10)")
    leave_unmasked_prob: float = option(0.1, "selected positions left unchanged")
    random_token_prob: float = option(0.1, "selected positions replaced by a random symbol")


@dataclasses.dataclass
class Config(DataRunConfig):
    kind: Literal["units", "text"] = option("units", "units: VQ-BERT on read-speech units; text: text RoBERTa")
    units_run: str = option("slu_units", "the slu-units run (units: read/{train,dev}.csv tokens; text: read "
                                         "transcripts)", run_ref=True)
    text_files: list[str] = option(["data/embedded/read/text_only.txt"],
                                   "text: extra text-only files, one sentence a line (relative to data_root)")
    use_read_transcripts: bool = option(True, "text: add the read-speech train transcripts to the text")
    min_count: int = option(1, "text: words seen fewer times are left out of the dictionary (<unk>)")
    arch: RobertaConfig = option(SMALL_ROBERTA, "RoBERTa size (embedded: small)")
    embed_init: Literal["random", "unit_centroids"] = option(
        "random", "units: token embeddings from BERT's N(0, 0.02) init, or from the k-means centroids of each "
                  "unit (PCA to embed_dim; see centroid_embeddings)")
    embed_init_std: float = option(0.1, "unit_centroids: per-dimension std of the initial unit embeddings")
    masking: MaskingConfig = option(MaskingConfig, "masked-LM masking (fairseq MaskTokensDataset)")
    batching: BatchConfig = option(BatchConfig(batch_size=64, max_tokens=16384), "batches")
    max_valid: int = option(2000, "validate on at most this many sentences (the first ones)")
    train: TrainConfig = option(TrainConfig(lr=5e-4, betas=[0.9, 0.98], eps=1e-6, weight_decay=0.01,
                                            optimizer="adamw", max_epochs=5, warmup_updates=100),
                                "optimiser and schedule (fairseq RoBERTa recipe: Adam(0.9, 0.98), eps 1e-6, "
                                "wd 0.01; fewer updates)")


def centroid_embeddings(dictionary: Dictionary, tokenizer: UnitTokenizer, dim: int,
                        std: float) -> tuple[list[int], torch.Tensor]:
    """(dictionary rows of "a-b" units, their initial embeddings): the unit's de-quantised vector (the two
    groups' centroids concatenated), centred, projected on its first `dim` principal components, each scaled to
    `std` (components beyond the vector size stay 0).

    Why (embedded scale only): the released VQ-BERT learnt its unit embeddings from 960 h of MLM; our small one
    gets minutes. From a random init, acoustically close units start as unrelated vectors, and a classifier on top
    of the frozen encoder then generalises poorly across speakers (measured on the embedded smart-lights corpus:
    about 25 % validation accuracy against 40-45 % with this init or on the de-quantised frames themselves). The
    centroids give the units their acoustic geometry from the start; MLM pre-training then goes on from there."""
    rows, vectors = [], []
    for i, sym in enumerate(dictionary.symbols):
        parts = sym.split("-")
        if len(parts) == tokenizer.groups and all(p.isdigit() for p in parts):
            codes = [int(p) for p in parts]
            if all(c < tokenizer.num_codes for c in codes):
                rows.append(i)
                vectors.append(torch.cat([tokenizer.codebooks[g][c] for g, c in enumerate(codes)]))
    if len(rows) < 2:
        raise InputError("embed_init unit_centroids: the dictionary has fewer than 2 'a-b' units")
    x = torch.stack(vectors).double()
    x = x - x.mean(0)
    _, _, v = torch.linalg.svd(x, full_matrices=False)
    k = min(dim, v.shape[0])
    proj = x @ v[:k].T
    proj = proj / proj.std(0).clamp_min(1e-8) * std
    out = torch.zeros(len(rows), dim, dtype=torch.float32)
    out[:, :k] = proj.float()
    return rows, out


class MlmTask:
    def __init__(self, cfg: Config, train: list[torch.Tensor], valid: list[torch.Tensor], dictionary: Dictionary):
        self.cfg, self.train, self.dictionary = cfg, train, dictionary
        self.mask_idx = dictionary.index("<mask>")
        self.pad_idx = dictionary.pad()
        self.sampler = train_sampler([len(s) for s in train], cfg.batching, cfg.seed)
        # validation masks are drawn once, from a fixed seed: every epoch is scored on the same positions
        with seeded(derive_seed(cfg.seed, "valid-masks")):
            masked = [self._mask(s) for s in valid]
        self.valid = [self._collate([masked[i] for i in b])
                      for b in eval_batches([len(s) for s in valid], cfg.batching.eval_batch_size)]

    def _mask(self, seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.cfg.masking
        return mask_tokens(seq, self.mask_idx, len(self.dictionary), batch_rng(), m.mask_prob, m.leave_unmasked_prob,
                           m.random_token_prob, m.mask_multiple_length, num_special=self.dictionary.nspecial,
                           padding_idx=self.pad_idx)

    def _collate(self, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> dict:
        src, _ = pad([p[0] for p in pairs], self.pad_idx)
        tgt, _ = pad([p[1] for p in pairs], self.pad_idx)
        return {"source": src, "target": tgt}

    # trainer protocol
    def train_batches(self, epoch: int, rank: int, world: int) -> list[list[int]]:
        self.sampler.rank, self.sampler.num_replicas = rank, world
        return self.sampler.epoch_batches(epoch)

    def load_batch(self, indices: list[int]) -> dict:
        return self._collate([self._mask(self.train[i]) for i in indices])

    def loss(self, model: torch.nn.Module, batch: dict) -> tuple[torch.Tensor, int, dict]:
        # encoder and LM head in one model(...) call: under torchrun `model` is the DDP wrapper, and the head's
        # matrix is the (tied) token embedding, so using it outside that forward would count its gradient twice
        target = batch["target"]
        masked = target.ne(self.pad_idx)
        logits = model(batch["source"], masked_tokens=masked)[0]
        # no masked position: a 0-row logits tensor, a 0 loss that still reaches every head parameter
        return F.cross_entropy(logits.float(), target[masked], reduction="sum"), int(masked.sum()), {}

    def validate(self, model: RobertaModel) -> dict:
        total, correct, n = 0.0, 0, 0
        for batch in self.valid:
            feats = model.extract_features(batch["source"].to(self._device(model)))
            tgt = batch["target"].to(feats.device)
            masked = tgt.ne(self.pad_idx)
            if not masked.any():
                continue
            logits = model.lm_logits(feats, masked).float()
            total += float(torch.nn.functional.cross_entropy(logits, tgt[masked], reduction="sum"))
            correct += int((logits.argmax(-1) == tgt[masked]).sum())
            n += int(masked.sum())
        return {"valid_loss": total / max(n, 1), "valid_accuracy": 100.0 * correct / max(n, 1)}

    @staticmethod
    def _device(model: torch.nn.Module) -> torch.device:
        return next(model.parameters()).device


def _unit_data(cfg: Config, units: Path) -> tuple[list[torch.Tensor], list[torch.Tensor], Dictionary]:
    train = read_pair_manifest(units / "read" / "train.csv")
    dev = read_pair_manifest(units / "read" / "dev.csv") if (units / "read" / "dev.csv").is_file() else None
    dictionary = Dictionary.load(units / "dict.txt")
    dictionary.add_symbol("<mask>")
    encode = lambda line: encode_units(dictionary, line, append_eos=True)  # noqa: E731
    return [encode(t) for t in train.tokens], [encode(t) for t in (dev.tokens if dev else [])], dictionary


def _text_data(cfg: Config, units: Path) -> tuple[list[torch.Tensor], list[torch.Tensor], Dictionary]:
    lines: list[str] = []
    for name in cfg.text_files:
        path = require_file(data_path(cfg.data_root, name), "text_files", "text file")
        lines.extend(line for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    if cfg.use_read_transcripts:
        lines.extend(read_pair_manifest(units / "read" / "train.csv").transcripts)
    if not lines:
        raise InputError("text_files / use_read_transcripts: no text to pre-train on")
    dictionary = build_word_dictionary(lines, cfg.min_count)
    dictionary.add_symbol("<mask>")
    encoder = WordTextEncoder(dictionary)
    dev_path = units / "read" / "dev.csv"
    valid_lines = read_pair_manifest(dev_path).transcripts if dev_path.is_file() else []
    return [encoder.encode(t) for t in lines], [encoder.encode(t) for t in valid_lines], dictionary


def run(cfg: Config) -> dict:
    run_ = Run(cfg, stage="slu-mlm-pretrain")
    if (done := run_.metrics_if_done()) is not None:
        return done
    units = finished_run(cfg, cfg.units_run, "units_run", stage="slu-units")
    train, valid, dictionary = (_unit_data if cfg.kind == "units" else _text_data)(cfg, units)
    longest = max(len(s) for s in train + valid)
    if longest > cfg.arch.max_positions:
        raise InputError(f"arch.max_positions: {cfg.arch.max_positions} < the longest sequence ({longest} tokens)")
    if not valid:
        raise InputError(f"{units / 'read' / 'dev.csv'}: no validation data (run slu-units with the dev split)")
    run_.start()
    seed_everything(cfg.seed)
    model = RobertaModel(cfg.arch, len(dictionary), dictionary.pad())
    if cfg.kind == "units" and cfg.embed_init == "unit_centroids":
        if not (units / "tokenizer.pt").is_file():
            raise InputError(f"embed_init: unit_centroids needs the k-means tokenizer ({units / 'tokenizer.pt'})")
        rows, init = centroid_embeddings(dictionary, UnitTokenizer.load(units / "tokenizer.pt"), cfg.arch.embed_dim,
                                         cfg.embed_init_std)
        with torch.no_grad():
            model.encoder.sentence_encoder.embed_tokens.weight[rows] = init
    task = MlmTask(cfg, train, valid[:cfg.max_valid], dictionary)
    trainer = Trainer(cfg.train, run_, model, task)
    metrics = trainer.fit()
    load_best_weights(run_, model)
    metrics.update({"vocab_size": len(dictionary), "train_sentences": len(train),
                    "parameters": sum(p.numel() for p in model.parameters())})
    return run_.finish(metrics, save=lambda: save_roberta(run_.dir, model.cpu(), dictionary))
