"""ST training/eval data: fairseq S2T TSV + fbank80.zip speech datasets and BPE'd parallel-text datasets, with
fairseq's collaters.

- SpeechDataset mirrors fairseq's SpeechToTextDataset as the fork uses it: features from `fbank80.zip:offset:size`,
  transforms `{_train: [utterance_cmvn, specaugment], '*': [utterance_cmvn]}` (or global CMVN), target =
  `tgt_dict.encode_line(bpe(tgt_text), add_if_not_exist=False, append_eos=True)`, and the fork's extra
  `src_text` column passed through raw (the expert's source, encoded in its own vocabulary here at collate time
  rather than in the criterion: same ids, computed once per sentence).
- TextDataset mirrors fairseq's LanguagePairDataset on the BPE'd text st-prep writes (the expert's data).
- Collaters follow fairseq: samples sorted by source length, longest first; target right-padded;
  prev_output_tokens = target with EOS moved to the front (move_eos_to_beginning); ntokens = target tokens
  incl. EOS. Sources are right-padded (fairseq left-pads NMT sources; positions count non-pad tokens only and
  attention masks pads, so the outputs are the same).

A batch is a dict: id (list), index (B,), source (B, T, F) float or (B, S) ids, source_lengths (B,), target,
prev_output_tokens, target_lengths (B, U), ntokens, nsentences; speech batches add src_text (list of raw
transcripts) and, with an expert encoder, expert_source / expert_source_lengths.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np
import torch

from ..config import option
from ..data.batching import collate_features, pad_sequences
from ..data.manifests import read_s2t_tsv
from ..errors import InputError
from ..features.cmvn import GlobalCMVN, UtteranceCMVN
from ..features.specaugment import SpecAugment, specaugment_policy
from ..features.store import read_features
from ..tokenizers.dictionary import Dictionary
from .vocab import RAW_TEXT, TextEncoder

Batch = dict[str, Any]


@dataclasses.dataclass
class DataConfig:
    prep_run: str = option("", "the st-prep run whose data/ holds the manifests, fbank80.zip, bpecodes and dict.txt", run_ref=True)
    train_run: str = option("", "run whose data/<train_subset>.tsv is the training manifest (default: prep_run); "
                                "e.g. an st-synthetic run (synthetic transcripts / translations)", run_ref=True)
    train_subset: str = option("train", "training manifest name (speech: <name>.tsv; text: text/<name>.bpe.<lang>)")
    valid_subset: str = option("dev", "validation manifest name (dev for speech, valid for the NMT text)")
    source: Literal["auto", "audio", "text"] = option(
        "auto", "model input: auto = text for task nmt, audio otherwise (audio for an NMT student that "
                "reads on-the-fly ASR transcripts, the cascade criterion)")
    target_field: Literal["auto", "tgt_text", "src_text"] = option(
        "auto", "speech manifests: the column the model predicts (auto = src_text for asr, tgt_text otherwise)")
    src_lang: str = option("en", "source language (text files text/<subset>.bpe.<src_lang>)")
    tgt_lang: str = option("de", "target language")
    max_tokens: int = option(50000, "batch size limit in source frames (speech) or tokens (text), fairseq "
                                    "--max-tokens")
    max_sentences: int = option(0, "batch size limit in sentences (0 = none), fairseq --batch-size")
    max_source_positions: int = option(6000, "skip training items with longer sources (fairseq S2T default 6000)")
    max_target_positions: int = option(1024, "skip training items with longer targets (fairseq default 1024)")
    cmvn: Literal["utterance", "global", "none"] = option(
        "utterance", "feature normalisation: utterance (fairseq recipe default), global (gcmvn.npz of st-prep, "
                     "the MuST-C --cmvn-type global option) or none")
    specaugment: Literal["lb", "ld", "sm", "ss", "none"] = option(
        "lb", "SpecAugment policy on training batches (lb = the fairseq recipes' LibriSpeech basic)")
    cache_features: bool = option(False, "keep the normalised features of every utterance in memory after the "
                                         "first epoch (small corpora: saves the zip reads and CMVN of later epochs)",
                                  hashed=False)

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"data.max_tokens must be >= 1, got {self.max_tokens}")
        if self.max_sentences < 0:
            raise ValueError(f"data.max_sentences must be >= 0, got {self.max_sentences}")


def resolve_source(cfg: DataConfig, task: str) -> str:
    return cfg.source if cfg.source != "auto" else ("text" if task == "nmt" else "audio")


def resolve_target_field(cfg: DataConfig, task: str) -> str:
    return cfg.target_field if cfg.target_field != "auto" else ("src_text" if task == "asr" else "tgt_text")


# ------------------------------------------------------------------------------------------------ speech

class SpeechDataset:
    """Rows of an S2T TSV (id, audio, n_frames, tgt_text, speaker[, src_text]); features read from
    `feature_root` (the prep run's data dir, where fbank80.zip lives)."""

    def __init__(self, manifest: str | Path, feature_root: Path, target: TextEncoder | None,
                 target_field: str = "tgt_text", cmvn: str = "utterance", gcmvn_path: Path | None = None,
                 expert_source: TextEncoder | None = None, cache_features: bool = False):
        self.manifest = Path(manifest)
        self.rows = read_s2t_tsv(self.manifest)
        if not self.rows:
            raise InputError(f"{self.manifest}: no utterances")
        if target is not None and target_field not in self.rows[0]:
            raise InputError(f"{self.manifest}: no '{target_field}' column (header: {', '.join(self.rows[0])})")
        if expert_source is not None and "src_text" not in self.rows[0]:
            raise InputError(f"{self.manifest}: the expert needs a 'src_text' column (the fork's "
                             "get_src_to_st.py output); run st-prep")
        self.feature_root, self.target, self.target_field = Path(feature_root), target, target_field
        self.expert_source = expert_source
        self.normalize = self._normalizer(cmvn, gcmvn_path)
        self.lengths = np.array([int(r["n_frames"]) for r in self.rows], dtype=np.int64)
        self._targets: dict[int, torch.Tensor] = {}
        self._expert_sources: dict[int, torch.Tensor] = {}
        self._features: dict[int, np.ndarray] | None = {} if cache_features else None

    @staticmethod
    def _normalizer(cmvn: str, gcmvn_path: Path | None):
        if cmvn == "utterance":
            return UtteranceCMVN()
        if cmvn == "global":
            if gcmvn_path is None:
                raise InputError("data.cmvn = global needs the st-prep run's gcmvn.npz (prep option global_cmvn)")
            return GlobalCMVN.from_npz(gcmvn_path)
        return None

    def __len__(self) -> int:
        return len(self.rows)

    def ids(self) -> list[str]:
        return [r["id"] for r in self.rows]

    def features(self, i: int) -> np.ndarray:
        """Normalised (CMVN) features; SpecAugment is applied to a copy in collate."""
        if self._features is not None and i in self._features:
            return self._features[i]
        x = read_features(self.rows[i]["audio"], self.feature_root)
        x = self.normalize(x) if self.normalize is not None else x
        if self._features is not None:
            self._features[i] = x
        return x

    def target_tokens(self, i: int) -> torch.Tensor:
        if i not in self._targets:
            self._targets[i] = self.target.encode(self.rows[i][self.target_field])
        return self._targets[i]

    def target_lengths(self) -> np.ndarray:
        return np.array([len(self.target_tokens(i)) for i in range(len(self))], dtype=np.int64)

    def expert_source_tokens(self, i: int) -> torch.Tensor:
        if i not in self._expert_sources:
            self._expert_sources[i] = self.expert_source.encode(self.rows[i]["src_text"])
        return self._expert_sources[i]

    def collate(self, indices: Sequence[int], specaugment: SpecAugment | None = None,
                rng: np.random.Generator | None = None) -> Batch:
        feats = [self.features(i) for i in indices]
        if specaugment is not None:
            feats = [specaugment(f, rng) for f in feats]
        # fairseq SpeechToTextDataset.collater: sort by frame count, longest first (stable for ties)
        order = sorted(range(len(indices)), key=lambda k: -feats[k].shape[0])
        indices = [indices[k] for k in order]
        source, source_lengths = collate_features([feats[k] for k in order])
        batch: Batch = {"id": [self.rows[i]["id"] for i in indices],
                        "index": torch.tensor(indices, dtype=torch.long),
                        "source": source, "source_lengths": source_lengths, "nsentences": len(indices)}
        if "src_text" in self.rows[0]:
            batch["src_text"] = [self.rows[i]["src_text"] for i in indices]
        if self.target is not None:
            batch.update(collate_targets([self.target_tokens(i) for i in indices], self.target.dictionary))
        if self.expert_source is not None:
            src = [self.expert_source_tokens(i) for i in indices]
            batch["expert_source"] = pad_sequences(src, self.expert_source.dictionary.pad())
            batch["expert_source_lengths"] = torch.tensor([len(s) for s in src], dtype=torch.long)
        return batch


# -------------------------------------------------------------------------------------------------- text

class TextDataset:
    """Parallel BPE'd text (one sentence per line, line i of the source translates to line i of the target),
    encoded with one (joined) dictionary, EOS appended (fairseq-preprocess + LanguagePairDataset)."""

    def __init__(self, src_lines: Sequence[str], tgt_lines: Sequence[str] | None, dictionary: Dictionary,
                 name: str = "<text>"):
        if tgt_lines is not None and len(src_lines) != len(tgt_lines):
            raise InputError(f"{name}: {len(src_lines)} source lines but {len(tgt_lines)} target lines")
        self.dictionary, self.name = dictionary, name
        self.sources = [dictionary.encode_line(s, append_eos=True) for s in src_lines]
        self.targets = None if tgt_lines is None else [dictionary.encode_line(t, append_eos=True) for t in tgt_lines]
        src_len = np.array([len(s) for s in self.sources], dtype=np.int64)
        # fairseq LanguagePairDataset.num_tokens: max(source, target) tokens, what max_tokens packs by
        self.lengths = src_len if self.targets is None else np.maximum(src_len, self.target_lengths())
        self.source_lengths = src_len

    @classmethod
    def from_files(cls, src: Path, tgt: Path | None, dictionary: Dictionary) -> "TextDataset":
        for p in (src, tgt):
            if p is not None and not p.is_file():
                raise InputError(f"{p}: text file not found (st-prep writes text/<split>.bpe.<lang>)")
        tgt_lines = None if tgt is None else tgt.read_text(encoding="utf-8").splitlines()
        return cls(src.read_text(encoding="utf-8").splitlines(), tgt_lines, dictionary, name=str(src))

    def __len__(self) -> int:
        return len(self.sources)

    def ids(self) -> list[str]:
        return [str(i) for i in range(len(self))]

    def target_lengths(self) -> np.ndarray:
        return np.array([len(t) for t in self.targets], dtype=np.int64)

    def collate(self, indices: Sequence[int], specaugment: Any = None, rng: Any = None) -> Batch:
        order = sorted(indices, key=lambda i: -len(self.sources[i]))  # LanguagePairDataset: by source length
        pad = self.dictionary.pad()
        batch: Batch = {"id": [str(i) for i in order], "index": torch.tensor(order, dtype=torch.long),
                        "source": pad_sequences([self.sources[i] for i in order], pad),
                        "source_lengths": torch.tensor([len(self.sources[i]) for i in order], dtype=torch.long),
                        "nsentences": len(order)}
        if self.targets is not None:
            batch.update(collate_targets([self.targets[i] for i in order], self.dictionary))
        return batch


def collate_targets(targets: Sequence[torch.Tensor], dictionary: Dictionary) -> Batch:
    """target (B, U) right-padded; prev_output_tokens = [EOS] + target[:-1] per row (fairseq collate_tokens with
    move_eos_to_beginning=True); ntokens = total target tokens including EOS."""
    pad, eos = dictionary.pad(), dictionary.eos()
    prev = [torch.cat([t.new_full((1,), eos), t[:-1]]) for t in targets]
    lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
    return {"target": pad_sequences(targets, pad), "prev_output_tokens": pad_sequences(prev, pad),
            "target_lengths": lengths, "ntokens": int(lengths.sum())}


def raw_references(data_dir: Path, split: str, lang: str, n_items: int | None = None) -> list[str]:
    """Line i = the corpus's own (untokenised) text of item i of the split, as st-prep keeps it: the references
    BLEU and chrF are scored against. Never rebuilt from token ids: the dictionary round trip turns every word
    outside the vocabulary into <unk>."""
    path = Path(data_dir) / RAW_TEXT.format(split=split, lang=lang)
    if not path.is_file():
        raise InputError(f"{path}: raw reference text not found (st-prep writes it; rerun st-prep on this corpus)")
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if n_items is not None and len(lines) != n_items:
        raise InputError(f"{path}: {len(lines)} lines for {n_items} items of split {split} (expected one per item)")
    return lines


def specaugment_of(policy: str) -> SpecAugment | None:
    return None if policy == "none" else specaugment_policy(policy)

