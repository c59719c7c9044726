"""slu-units: wav -> discrete units, written in the seed's manifest format.

(a) `vq_wav2vec` set: the released fairseq vq-wav2vec k-means model (conv feature extractor + k-means
    quantiser, 2 groups, "a-b" tokens, 10 ms hop), as the authors' preprocessing.py / vq-wav2vec_featurize.py.
(b) otherwise (the embedded default): a k-means unit tokenizer (tokenizers/units.py: product quantisation of the
    80-dim utterance-CMVN fbank frame, 2 groups of `num_codes`, 10 ms hop) fitted on the read-speech train split
    (the LibriSpeech stand-in VQ-BERT is pre-trained on), then applied to every corpus.

SLU corpora: a directory with {train,valid,test}.csv in the seed's format (wav paths relative to the directory)
and intent_dict, or FSC as released (data/{train,valid,test}_data.csv with FSC's header; its intent dict is then
the sorted set of train intents). Read speech: fairseq S2T TSVs {train,dev,test}.tsv (audio = wav/flac path).
Outputs are listed in slu/corpus.py. Token files are plain writes (thousands of them): the run's DONE, written
last, is what says they are complete.
"""
from __future__ import annotations

import dataclasses
import multiprocessing
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from ..data.audio import read_audio
from ..data.librispeech import read_librispeech
from ..data.manifests import (SluExample, read_intent_dict, read_s2t_tsv, read_slu_csv_rows,
                              write_intent_dict, write_slu_csv)
from ..errors import InputError
from ..fileio import write_json_atomic, write_text_atomic
from ..config import DataRunConfig, option
from ..runs import Run, data_path, require_file
from ..train.distributed import device as device_of
from ..tokenizers.units import UnitTokenizer, unit_dictionary
from ..slu.corpus import READ_SPLITS, SLU_SPLITS
from ..slu.unit_source import SOURCE_FILE, UnitSource, stacked_features



@dataclasses.dataclass
class Config(DataRunConfig):
    vq_wav2vec: str = option("", "released fairseq vq-wav2vec_kmeans.pt (relative to data_root); '' = fit the "
                                 "k-means unit tokenizer on fbank frames of the read-speech train split")
    corpora: dict[str, str] = option(
        {"fsc": "data/embedded/fsc", "lights_close": "data/embedded/smartlights/close",
         "lights_far": "data/embedded/smartlights/far", "snips": "data/embedded/snips"},
        "SLU corpora: output name -> directory (relative to data_root) with {train,valid,test}.csv + intent_dict "
        "in the seed's format, or FSC as released (data/*_data.csv)")
    only_corpora: list[str] = option([], "tokenise only these of `corpora` (run_all.sh --only fsc: the other "
                                         "corpora need not exist); [] = all")
    read: str = option("data/embedded/read", "read speech (LibriSpeech stand-in): directory with "
                                             "{train,dev,test}.tsv S2T manifests; '' = none")
    read_splits: list[str] = option(list(READ_SPLITS), "read-speech splits to tokenise")
    read_parts: dict[str, list[str]] = option(
        {}, "read speech as LibriSpeech is released: split -> parts under `read` (e.g. {\"train\": "
            "[\"train-clean-100\"], \"dev\": [\"dev-clean\"]}), read from <part>/<spk>/<chapter>/*.trans.txt + "
            ".flac; {} = `read` holds {split}.tsv S2T manifests")
    num_codes: int = option(64, "k-means: codes per group (vocabulary up to num_codes^2 'a-b' units)")
    stack_frames: int = option(1, "k-means: concatenate this many 10 ms frames per unit (1 = vq-wav2vec's "
                                  "10 ms hop; the embedded profile uses 2, see slu/unit_source.py)")
    kmeans_iters: int = option(20, "k-means: Lloyd iterations (stops early when assignments settle)")
    fit_max_frames: int = option(50000, "k-means: at most this many frames (a fixed random sample of the "
                                         "read train frames) to fit on")
    resample: bool = option(False, "resample audio at another sample rate to 16 kHz on reading (polyphase, "
                                   "scipy resample_poly); false = such files are refused by name")
    device: str = option("auto", "vq-wav2vec: torch device (auto = cuda when available, cpu, cuda)", hashed=False)
    workers: int = option(2, "processes computing fbank + units (k-means only; output is identical for any value)",
                          hashed=False)

    def __post_init__(self) -> None:
        if not self.vq_wav2vec and not self.read:
            raise ValueError("the k-means tokenizer is fitted on read speech: set read (or vq_wav2vec)")
        if self.num_codes < 2 or self.kmeans_iters < 1 or self.fit_max_frames < 1 or self.stack_frames < 1:
            raise ValueError("num_codes must be >= 2, kmeans_iters, fit_max_frames and stack_frames >= 1")
        if self.vq_wav2vec and self.stack_frames != 1:
            raise ValueError("stack_frames applies to the k-means tokenizer only (vq-wav2vec has its own 10 ms hop)")
        unknown = [n for n in self.only_corpora if n not in self.corpora]
        if unknown:
            raise ValueError(f"only_corpora: {unknown[0]!r} is not one of corpora ({', '.join(self.corpora)})")
        bad = [n for n in self.corpora if not n or "/" in n or n == "read"]
        if bad:
            raise ValueError(f"corpora: invalid output name {bad[0]!r} (a plain directory name other than 'read')")


# ---------------------------------------------------------------------------------------- inputs

def _read_fsc_original(path: Path, root: Path) -> list[tuple[int, SluExample]]:
    """(line number, example) of FSC's data/<split>_data.csv; wav paths relative to the FSC root."""
    return [(n, dataclasses.replace(e, path=str(root / e.path))) for n, e in read_slu_csv_rows(path, fsc=True)]


def _check_rows(manifest: Path, rows: list[tuple[int, SluExample]], intents: Sequence[str], intent_source: str,
                columns: dict[str, str], check_audio: bool) -> None:
    """Every row of a user's SLU manifest: a unique, non-empty index, a non-empty transcript, an intent of the
    intent list and (check_audio) an existing audio file; InputError naming manifest:line and the column."""
    known = set(intents)
    first: dict[str, int] = {}
    for n, e in rows:
        where = f"{manifest}:{n}"
        index = e.index.strip()
        if not index:
            raise InputError(f"{where}: column {columns['index']}: empty index (expected a unique utterance index)")
        if index in first:
            raise InputError(f"{where}: column {columns['index']}: duplicate index {index!r} (also on line "
                             f"{first[index]}); expected one row per utterance")
        first[index] = n
        if not e.transcript.strip():
            raise InputError(f"{where}: column {columns['transcript']}: empty transcript (expected the utterance's "
                             "words)")
        if e.intent not in known:
            raise InputError(f"{where}: columns action,object,location: intent {e.intent!r} is not in "
                             f"{intent_source}")
        if check_audio and not Path(e.path).is_file():
            raise InputError(f"{where}: column {columns['path']}: audio file {e.path} not found")


def read_slu_corpus(directory: Path, check_audio: bool = False) -> tuple[dict[str, list[SluExample]], list[str]]:
    """{split: examples with wav paths resolved}, intent list. Every row is checked (_check_rows) against the
    user's files, so that an error names them rather than the copies slu-units writes; check_audio: every audio
    file must exist too (slu-units checks them all before its first feature)."""
    fsc_original = (directory / "data" / "train_data.csv").is_file() and not (directory / "train.csv").is_file()
    read: dict[str, tuple[Path, list[tuple[int, SluExample]]]] = {}
    for split in SLU_SPLITS:
        if fsc_original:
            manifest = directory / "data" / f"{split}_data.csv"
            if not manifest.is_file():
                raise InputError(f"{manifest}: FSC manifest not found (FSC as released has data/"
                                 f"{{train,valid,test}}_data.csv)")
            read[split] = (manifest, _read_fsc_original(manifest, directory))
        else:
            manifest = directory / f"{split}.csv"
            read[split] = (manifest, [(n, dataclasses.replace(e, path=str(Path(e.path) if Path(e.path).is_absolute()
                                                                          else directory / e.path)))
                                      for n, e in read_slu_csv_rows(manifest)])
    intent_file = directory / "intent_dict"
    if intent_file.is_file():
        intents = read_intent_dict(intent_file)
        source = f"{intent_file} (one 'action object location' per line)"
    elif fsc_original:
        intents = sorted({e.intent for _, e in read["train"][1]})
        source = (f"the intents of {read['train'][0]} (FSC as released: the intent list is the train split's; "
                  f"an intent_dict in {directory} lists them explicitly)")
    else:
        raise InputError(f"{intent_file}: intent dict not found (one 'action object location' per line)")
    columns = ({"index": "index", "path": "path", "transcript": "transcription"} if fsc_original else
               {"index": "index", "path": "path", "transcript": "transcript"})
    for manifest, rows in read.values():
        _check_rows(manifest, rows, intents, source, columns, check_audio)
    return {split: [e for _, e in rows] for split, (_, rows) in read.items()}, intents


# ------------------------------------------------------------------------------------ tokenising

_FRAMES_CACHE: dict[str, np.ndarray] = {}


def _features_job(job: tuple[str, int, bool]) -> np.ndarray:
    wav, stack, resample = job
    return stacked_features(read_audio(wav, resample=resample), stack)


def _tokens_job(job: tuple[str, str, Any, int, bool]) -> None:
    wav, out, codebooks, stack, resample = job
    source = UnitSource(kmeans=UnitTokenizer(codebooks), stack=stack)
    _write_tokens(Path(out), source.tokens(read_audio(wav, resample=resample)))


def _init_worker() -> None:
    torch.set_num_threads(1)  # two processes on two cores: no intra-op threads on top


def _write_tokens(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(line + "\n", encoding="utf-8")


class _Tokenise:
    """Runs one tokenizer over lists of wavs: the k-means one in a process pool, vq-wav2vec in this process."""

    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.pool = None
        self.vq = None
        self.kmeans: UnitTokenizer | None = None
        if cfg.vq_wav2vec:
            from ..models.vq_wav2vec import load_fairseq_vq_wav2vec
            path = require_file(data_path(cfg.data_root, cfg.vq_wav2vec), "vq_wav2vec", "vq-wav2vec checkpoint")
            self.device = device_of(cfg.device)
            self.vq = load_fairseq_vq_wav2vec(path).to(self.device)
        elif cfg.workers > 1:
            # fork before this process runs any multi-threaded torch op (k-means): forked OpenMP is not safe
            self.pool = multiprocessing.get_context("fork").Pool(cfg.workers, initializer=_init_worker)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool.join()

    def features(self, wavs: Sequence[str]) -> list[np.ndarray]:
        jobs = [(w, self.cfg.stack_frames, self.cfg.resample) for w in wavs]
        if self.pool is not None:
            return self.pool.map(_features_job, jobs, chunksize=16)
        return [_features_job(j) for j in jobs]

    def write(self, items: Sequence[tuple[str, Path]], feats: Sequence[np.ndarray] | None = None) -> None:
        """Token files for (wav, output path) items; `feats` = precomputed unit features of the same items."""
        if self.vq is not None:
            source = UnitSource(vq=self.vq, device=str(self.device))
            for wav, out in items:
                _write_tokens(out, source.tokens(read_audio(wav, resample=self.cfg.resample)))
            return
        assert self.kmeans is not None
        if feats is not None:
            for (_, out), f in zip(items, feats):
                _write_tokens(out, self.kmeans.tokens(f))
            return
        jobs = [(wav, str(out), self.kmeans.codebooks, self.cfg.stack_frames, self.cfg.resample)
                for wav, out in items]
        if self.pool is not None:
            self.pool.map(_tokens_job, jobs, chunksize=16)
        else:
            for job in jobs:
                _tokens_job(job)


def _fit(cfg: Config, feats: Sequence[np.ndarray]) -> tuple[UnitTokenizer, int]:
    frames = np.concatenate(feats, axis=0)
    if len(frames) > cfg.fit_max_frames:  # a fixed sample: the fit depends on the seed only
        pick = np.sort(np.random.default_rng(cfg.seed).choice(len(frames), cfg.fit_max_frames, replace=False))
        frames = frames[pick]
    return UnitTokenizer.fit(torch.from_numpy(frames), cfg.num_codes, cfg.kmeans_iters, seed=cfg.seed), len(frames)


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def run(cfg: Config) -> dict:
    run_ = Run(cfg, stage="slu-units")
    if (done := run_.metrics_if_done()) is not None:
        return done
    run_.start()
    out = run_.dir
    start = time.perf_counter()
    metrics: dict[str, Any] = {}

    # every input is read (and validated) before any work starts
    corpora = {n: d for n, d in cfg.corpora.items() if not cfg.only_corpora or n in cfg.only_corpora}
    slu = {name: read_slu_corpus(data_path(cfg.data_root, d), check_audio=True) for name, d in corpora.items()}
    read_rows = {}
    if cfg.read:
        read_dir = data_path(cfg.data_root, cfg.read)
        for split in cfg.read_splits:
            if cfg.read_parts:
                if split not in cfg.read_parts:
                    raise InputError(f"read_parts: no LibriSpeech parts for read split {split!r}")
                read_rows[split] = read_librispeech(read_dir, cfg.read_parts[split])
                continue
            tsv = read_dir / f"{split}.tsv"
            rows = read_s2t_tsv(tsv)
            if not rows:
                raise InputError(f"{tsv}: no utterances after the header line (read split {split!r}; expected "
                                 "one row per utterance)")
            for n, r in enumerate(rows, 2):
                if not (read_dir / r["audio"]).is_file():
                    raise InputError(f"{tsv}:{n}: column audio: audio file {read_dir / r['audio']} not found")
            read_rows[split] = [(str(read_dir / r["audio"]), r["id"], r["tgt_text"]) for r in rows]
    for name in cfg.corpora:
        shutil.rmtree(out / name, ignore_errors=True)  # a rerun of an interrupted run starts clean
    shutil.rmtree(out / "read", ignore_errors=True)

    tok = _Tokenise(cfg)
    try:
        read_train_feats = None
        if tok.vq is None:
            if "train" not in read_rows:
                raise InputError("read_splits: the k-means tokenizer is fitted on the read 'train' split")
            read_train_feats = tok.features([w for w, _, _ in read_rows["train"]])
            tok.kmeans, n_fit = _fit(cfg, read_train_feats)
            tok.kmeans.save(out / "tokenizer.pt")
            write_json_atomic(out / SOURCE_FILE, UnitSource(kmeans=tok.kmeans, stack=cfg.stack_frames).describe())
            metrics["fit_frames"] = n_fit
        else:
            write_json_atomic(out / SOURCE_FILE, UnitSource(vq=tok.vq).describe(
                str(data_path(cfg.data_root, cfg.vq_wav2vec).resolve())))

        for split, rows in read_rows.items():
            items = [(w, out / "read" / "tokens" / split / f"{_safe_name(i)}.txt") for w, i, _ in rows]
            tok.write(items, read_train_feats if split == "train" else None)
            lines = []
            for (_, utt_id, text), (_, token_path) in zip(rows, items):
                text_path = out / "read" / "transcripts" / split / f"{_safe_name(utt_id)}.txt"
                _write_tokens(text_path, text)
                lines.append(f"{token_path.relative_to(out / 'read')},{text_path.relative_to(out / 'read')}\n")
            write_text_atomic(out / "read" / f"{split}.csv", "".join(lines))
            metrics[f"read_{split}_utts"] = len(rows)
        read_train_feats = None

        for name, (splits, intents) in slu.items():
            for split, examples in splits.items():
                items = [(e.path, out / name / "tokens" / split / f"{n:05d}.txt") for n, e in enumerate(examples)]
                tok.write(items)
                write_slu_csv(out / name / f"{split}.csv",
                              [dataclasses.replace(e, path=str(p.relative_to(out / name)))
                               for e, (_, p) in zip(examples, items)])
                metrics[f"{name}_{split}_utts"] = len(examples)
            write_intent_dict(out / name / "intent_dict", intents)
            metrics[f"{name}_intents"] = len(intents)
    finally:
        tok.close()

    # the unit dictionary of the VQ-BERT pre-training corpus (bert_kmeans ships its own for the released model)
    source = "read/train" if (out / "read" / "tokens" / "train").is_dir() else None
    token_dirs = [out / "read" / "tokens" / "train"] if source else \
        [out / name / "tokens" / "train" for name in corpora]
    lines = [p.read_text(encoding="utf-8") for d in token_dirs for p in sorted(d.glob("*.txt"))]
    dictionary = unit_dictionary(lines)
    dictionary.save(out / "dict.txt")
    metrics["dict_units"] = sum(1 for s in dictionary.symbols[dictionary.nspecial:] if not s.startswith("madeupword"))
    metrics["tokenizer"] = "vq_wav2vec" if cfg.vq_wav2vec else "kmeans"
    metrics["seconds"] = round(time.perf_counter() - start, 1)
    print(f"[slu-units] {metrics}", file=sys.stderr)
    return run_.finish(metrics)
