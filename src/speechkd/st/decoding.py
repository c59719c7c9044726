"""Decoding a trained ST-pipeline model: the search settings (GenerationConfig), the device, and beam search over a
dataset in fairseq-generate's batches; shared by st-generate, st-eval, st-synthetic and st-translate (translator.py).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Iterator, Literal

import torch

from ..config import option
from ..data.batching import BucketBatchSampler
from ..errors import InputError
from ..tokenizers.dictionary import Dictionary
from ..train.batches import to_device
from .data import DataConfig, resolve_source
from .models import TrainedModel


@dataclasses.dataclass
class GenerationConfig:
    checkpoint: str = option("best", "best, last, or average_last_N (mean of the last N epoch checkpoints)")
    beam: int = option(5, "beam size (fairseq --beam)")
    max_len_a: float = option(0.0, "max length = a·source length + b (fairseq --max-len-a)")
    max_len_b: int = option(200, "fairseq --max-len-b")
    lenpen: float = option(1.0, "length penalty (fairseq --lenpen)")
    max_tokens: int = option(50000, "batch size limit in source frames / tokens (fairseq --max-tokens)")
    device: Literal["auto", "cpu", "cuda"] = option("auto", "auto = cuda when available", hashed=False)

    def __post_init__(self) -> None:
        if self.beam < 1 or self.max_tokens < 1:
            raise ValueError("generation: beam and max_tokens must be >= 1")


@dataclasses.dataclass
class Decoded:
    index: int            # dataset index (fairseq's sample id)
    tokens: torch.Tensor  # hypothesis ids ending with EOS
    score: float          # natural-log score (normalised by length ** lenpen)
    positional_scores: torch.Tensor


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise InputError("generation.device: cuda requested but no CUDA device is available")
    return torch.device("cuda" if choice != "cpu" and torch.cuda.is_available() else "cpu")


def decode_batches(model: torch.nn.Module, dataset: Any, dictionary: Dictionary, gen: GenerationConfig,
                   device: torch.device, beam: int | None = None) -> Iterator[list[Decoded]]:
    """The best hypothesis of every item, one batch at a time (in the batch's order), in fairseq-generate's batches
    of up to max_tokens, longest first: a caller keeps what it needs of a batch and lets the rest go."""
    from ..decode.search import beam_search
    model = model.to(device).eval()
    sampler = BucketBatchSampler(dataset.lengths, max(gen.max_tokens, int(dataset.lengths.max())), shuffle=False)
    with torch.inference_mode():
        for spec in sampler.global_batches(1):
            batch = to_device(dataset.collate(spec), device)
            enc = model.encode(batch["source"], batch["source_lengths"])
            hyps = beam_search(model, enc, beam or gen.beam, gen.max_len_a, gen.max_len_b, gen.lenpen,
                               src_len=int(batch["source"].size(1)), bos=dictionary.eos(), eos=dictionary.eos(),
                               pad=dictionary.pad(), unk=dictionary.unk())
            yield [Decoded(i, nbest[0].tokens.cpu(), float(nbest[0].score), nbest[0].positional_scores.float().cpu())
                   for i, nbest in zip(batch["index"].tolist(), hyps)]


def decode_dataset(model: torch.nn.Module, dataset: Any, dictionary: Dictionary, gen: GenerationConfig,
                   device: torch.device, beam: int | None = None) -> tuple[list[Decoded], list[list[int]]]:
    """Best hypothesis per item, and the batches (lists of dataset indices, in decoding order)."""
    out: list[Decoded] = []
    order: list[list[int]] = []
    for decoded in decode_batches(model, dataset, dictionary, gen, device, beam):
        order.append([d.index for d in decoded])
        out += decoded
    return out, order


def model_data(model: Any) -> DataConfig:
    """The data section a TrainedModel (or models.TrainedRun) was trained with."""
    from ..config import load_config
    return load_config(DataConfig, data=model.config["data"])


def is_cascade(model: TrainedModel) -> bool:
    """An NMT model trained on audio batches: the cascade's NMT part, which reads ASR transcripts."""
    return model.task == "nmt" and resolve_source(model_data(model), "nmt") == "audio"
