"""The unit-token corpora that slu-units writes and every later stage reads.

Layout of a slu-units run (paths inside manifests are relative to the manifest's directory; absolute paths are
used as they are):
    <run>/<corpus>/{train,valid,test}.csv   the seed's SLU manifest: index,vq_token_path,speaker,action,object,
                                            location,transcript (no header; transcript last)
    <run>/<corpus>/intent_dict              one "action object location" per line, line order = class index
    <run>/read/{train,dev,test}.csv         the AM-PT / PT-KD manifest: vq_token_path,transcript_path
    <run>/dict.txt                          the unit dictionary; tokenizer.pt or vq_wav2vec.json: how to tokenise
A token file holds one line of space-separated "a-b" units (vq-wav2vec_featurize.py's format).
"""
from __future__ import annotations

import csv
import dataclasses
import io
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..config import option
from ..data.manifests import SluExample, read_intent_dict, read_slu_csv
from ..errors import InputError
from ..fileio import read_text
from ..tokenizers.dictionary import Dictionary

SLU_SPLITS = ("train", "valid", "test")
READ_SPLITS = ("train", "dev", "test")


def resolve(manifest: Path, path: str) -> Path:
    p = Path(path)
    return p if p.is_absolute() else manifest.parent / p


def read_token_line(path: Path) -> str:
    return read_text(path, "unit token file").replace("\n", " ").strip()


def encode_units(dictionary: Dictionary, line: str, append_eos: bool) -> torch.Tensor:
    """`<s>` + units (+ `</s>`), as the authors' loaders build VQ-BERT input: `cat([0], encode_line(seq,
    append_eos))` with append_eos False for SLU fine-tuning (data_loader.py) and True for AM-PT and PT-KD
    (asr_data_loader.py, masked_data_loader.py). Unknown units become `<unk>`."""
    body = dictionary.encode_line(line, append_eos=append_eos)
    return torch.cat([torch.tensor([dictionary.bos()], dtype=torch.long), body])


@dataclasses.dataclass
class SluSplit:
    examples: list[SluExample]
    tokens: list[str]            # the unit token line of every example
    labels: list[int]            # class index in the intent dict

    def __len__(self) -> int:
        return len(self.examples)

    def subset(self, indices: Sequence[int]) -> "SluSplit":
        return SluSplit([self.examples[i] for i in indices], [self.tokens[i] for i in indices],
                        [self.labels[i] for i in indices])


def read_slu_split(corpus_dir: Path, split: str, intents: Sequence[str]) -> SluSplit:
    manifest = corpus_dir / f"{split}.csv"
    examples = read_slu_csv(manifest)
    index = {intent: i for i, intent in enumerate(intents)}
    labels = []
    for n, e in enumerate(examples, 1):
        if e.intent not in index:
            raise InputError(f"{manifest}:{n}: intent {e.intent!r} is not in {corpus_dir / 'intent_dict'}")
        labels.append(index[e.intent])
    tokens = [read_token_line(resolve(manifest, e.path)) for e in examples]
    return SluSplit(examples, tokens, labels)


def read_intents(corpus_dir: Path) -> list[str]:
    return read_intent_dict(corpus_dir / "intent_dict")


@dataclasses.dataclass
class ReadSplit:
    tokens: list[str]
    transcripts: list[str]

    def __len__(self) -> int:
        return len(self.tokens)


def read_pair_manifest(path: Path) -> ReadSplit:
    """`vq_token_path,transcript_path` per line (manifest/am_pretrain_manifest.csv)."""
    if not path.is_file():
        raise InputError(f"{path}: manifest not found")
    tokens, transcripts = [], []
    reader = csv.reader(io.StringIO(read_text(path, "manifest", sep=",",
                                              columns=("vq_token_path", "transcript_path"))))
    for row in reader:
        n = reader.line_num
        if not row:
            continue
        if len(row) != 2:
            raise InputError(f"{path}:{n}: {len(row)} fields, expected 2 (vq_token_path,transcript_path)")
        tokens.append(read_token_line(resolve(path, row[0])))
        transcript = resolve(path, row[1])
        if not transcript.is_file():
            raise InputError(f"{path}:{n}: column transcript_path: transcript file {transcript} not found")
        transcripts.append(read_text(transcript, "transcript file").replace("\n", " ").strip())
    if not tokens:
        raise InputError(f"{path}: no utterances")
    return ReadSplit(tokens, transcripts)


def stratified_subset(labels: Sequence[int], fraction: float, seed: int) -> list[int]:
    """Indices of a class-stratified `fraction` of the examples: for every class, round(fraction * count)
    examples (at least 1), drawn with numpy's default_rng(seed); returned in the original order.

    Why stratified: the paper's 10 % FSC setting follows Lugosch et al., whose draw is not published; with 31
    intents a plain 10 % sample of a small corpus can miss or nearly miss an intent, which would measure the
    sampling luck more than the method. A fixed seed makes every row of a table see the same subset."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    labels_arr = np.asarray(labels)
    chosen: list[int] = []
    for c in sorted(set(labels_arr.tolist())):
        members = np.flatnonzero(labels_arr == c)
        k = max(1, int(round(fraction * len(members))))
        chosen.extend(rng.permutation(members)[:k].tolist())
    return sorted(chosen)


def long_utterances_option():
    """The config field of the stages that read read speech into VQ-BERT (PT-KD, AM-PT)."""
    return option("error", "read utterances with more units than VQ-BERT's max_positions (2048 = 20.5 s at "
                           "vq-wav2vec's 10 ms hop; LibriSpeech has utterances up to ~35 s): 'error' stops before "
                           "training, 'skip' leaves them out and counts them in metrics.json (as fairseq's "
                           "--skip-invalid-size-inputs-valid-test); what the authors did is not published")


def unit_sequences(pairs: ReadSplit, dictionary: Dictionary, max_positions: int, long_utterances: str,
                   where: Path) -> tuple[list[torch.Tensor], list[str], int]:
    """(`<s>` + units + `</s>` of each utterance, its transcript, how many were too long and skipped)."""
    seqs, texts, skipped = [], [], 0
    for n, (tokens, text) in enumerate(zip(pairs.tokens, pairs.transcripts), 1):
        seq = encode_units(dictionary, tokens, append_eos=True)
        if len(seq) > max_positions:
            if long_utterances != "skip":
                raise InputError(f"{where}:{n}: {len(seq)} units > VQ-BERT max_positions {max_positions}; set "
                                 f"long_utterances=skip to leave such utterances out")
            skipped += 1
            continue
        seqs.append(seq)
        texts.append(text)
    if not seqs:
        raise InputError(f"{where}: no utterance of at most {max_positions} units ({skipped} longer ones skipped)")
    return seqs, texts, skipped

