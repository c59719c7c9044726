"""st-prep: a speech-translation corpus (or the expert's parallel text) -> what st-train reads, in <run>/data/.

Speech corpora (corpus embedded | mustc | covost2), as the fork's data pipeline (ast_paper.md §4.2):
1. features: 80-dim log-mel fbank (features/fbank.py: Kaldi's, 25/10 ms) of every utterance, stored as <id>.npy entries
   of one uncompressed fbank80.zip (fairseq's prep_*_data.py + get_zip_manifest); n_frames = feature frames;
2. manifests {split}.tsv with columns id, audio (fbank80.zip:offset:size), n_frames, tgt_text, speaker, src_text:
   fairseq's manifest plus the transcript column get_src_to_st.py joins in; fairseq's filters: fewer than 5
   frames, train utterances over 3000 frames, empty text (the --il variant also drops an empty src_text);
3. text: prepare-rest.sh on both columns (get_source_text.py round trip): train = normalize-punctuation ->
   remove-non-printing-char -> tokenizer -a; dev/test = tokenizer -a (tokenizers/moses.py);
4. the expert's vocabulary: bpecodes + joined dict.txt (also as dict.en.txt/dict.de.txt), taken from files (paper:
   the WMT19 release), from another prep run (embedded: the NMT text prep) or learned (corpus parallel_text);
   BPE'd copies text/{split}.bpe.{en,de} as prepare-rest.sh's `fast applybpe`, plus the tokenised text/{split}.{en,de};
5. optionally gcmvn.npz (fairseq's --cmvn-type global, from up to 150k training utterances), and config_st.yaml /
   config_asr.yaml: fairseq S2T data configs pointing at the expert's dict and codes (README step 6).

Parallel text (corpus parallel_text: <dir>/{split}.{src,tgt}, one sentence per line): steps 3 and 4 only, learning
fastBPE codes on the tokenised training text of both languages (`fast learnbpe N train.de train.en`) and the
joined dictionary (`fairseq-preprocess --joined-dictionary`: counts from both training sides, padded to a
multiple of 8).
"""
from __future__ import annotations

import collections
import dataclasses
import multiprocessing
import shutil
import time
from pathlib import Path
from typing import Iterable, Iterator, Literal, Sequence

import numpy as np

from ..config import DataRunConfig, option
from ..data.manifests import write_tsv
from ..errors import InputError
from ..features.cmvn import compute_global_cmvn, save_global_cmvn
from ..features.fbank import fbank
from ..features.store import read_features, write_feature_zip
from ..fileio import read_text, write_text_atomic
from ..runs import Run, data_path, finished_run, require_file
from ..tokenizers import moses
from ..tokenizers.bpe import BPE, learn_bpe, read_codes, write_codes
from ..tokenizers.dictionary import Dictionary
from ..st.corpora import DEFAULT_SPLITS, READERS, Utterance, load_audio
from ..st.vocab import CODES_FILE, DICT_FILE, LANG_DICT_FILE, RAW_TEXT

ST_COLUMNS = ("id", "audio", "n_frames", "tgt_text", "speaker", "src_text")
FEATURE_ZIP = "fbank80.zip"
TEXT_SPLITS = ["train", "valid", "test"]


@dataclasses.dataclass
class BpeConfig:
    learn_merges: int = option(0, "learn fastBPE codes with this many merges on the tokenised training text of both "
                                  "languages (corpus parallel_text; 0 = take them from codes/dict or from_run)")
    codes: str = option("", "an existing fastBPE codes file (paper: the WMT19 bpecodes), relative to data_root")
    dict: str = option("", "the fairseq dict.txt that goes with it (paper: the WMT19 dict.de.txt, joined)")
    from_run: str = option("", "take bpecodes and dict.txt from another st-prep run (the expert's text prep)", run_ref=True)

    def check(self) -> None:
        sources = sum([self.learn_merges > 0, bool(self.codes or self.dict), bool(self.from_run)])
        if sources != 1:
            raise ValueError("bpe: set exactly one of learn_merges (> 0), codes + dict, or from_run")
        if bool(self.codes) != bool(self.dict):
            raise ValueError("bpe: codes and dict go together")


@dataclasses.dataclass
class Config(DataRunConfig):
    corpus: Literal["embedded", "mustc", "covost2", "parallel_text"] = option(
        "embedded", "input layout: embedded (data/embedded/st_*), mustc / covost2 (the releases), parallel_text "
                    "({split}.{src,tgt} text for the NMT expert)")
    corpus_dir: str = option("", "the corpus directory (relative to data_root)")
    splits: list[str] = option([], "splits to prepare; default: train/dev/test (MuST-C: train/dev/tst-COMMON, "
                                   "parallel text: train/valid/test). The split named train gets the training "
                                   "normalisation and the train length filter")
    src_lang: str = option("en", "source language")
    tgt_lang: str = option("de", "target language")
    normalize_lang: str = option("en", "normalize-punctuation.perl language: prepare-rest.sh never sets $l, so "
                                       "the script runs with its default, English, for both languages")
    bpe: BpeConfig = option(BpeConfig, "the expert's BPE codes and dictionary (set one source)")
    min_frames: int = option(5, "drop utterances with fewer feature frames (fairseq recipes: 5)")
    max_train_frames: int = option(3000, "drop training utterances with more frames (fairseq recipes: 3000)")
    global_cmvn: bool = option(False, "also write gcmvn.npz (fairseq --cmvn-type global) for data.cmvn = global")
    gcmvn_max_utterances: int = option(150000, "training utterances the global CMVN stats are computed from "
                                               "(fairseq gcmvn_max_num)")
    workers: int = option(2, "processes for feature extraction and tokenisation (results do not depend on it)",
                          hashed=False)

    def __post_init__(self) -> None:
        if not self.corpus_dir:
            raise ValueError("corpus_dir: required")
        self.bpe.check()
        if self.bpe.learn_merges and self.corpus != "parallel_text":
            raise ValueError("bpe.learn_merges: codes are learned on the expert's text (corpus parallel_text); "
                             "speech corpora take them from codes/dict or from_run")
        if self.workers < 1:
            raise ValueError("workers must be >= 1")


def default_splits(cfg: Config) -> list[str]:
    return list(cfg.splits) or (TEXT_SPLITS if cfg.corpus == "parallel_text" else DEFAULT_SPLITS[cfg.corpus])


def _pool(workers: int):
    return multiprocessing.get_context("fork").Pool(workers) if workers > 1 else None


def _map(pool, fn, items: Sequence, chunksize: int = 64) -> Iterator:
    return pool.imap(fn, items, chunksize=chunksize) if pool is not None else map(fn, items)


# ------------------------------------------------------------------------------------------------- text

def _moses_job(job: tuple[str, str, bool, str]) -> str:
    text, lang, train, normalize_lang = job
    return moses.preprocess(text, lang, train, normalize_lang)


def tokenize_lines(lines: Sequence[str], lang: str, train: bool, normalize_lang: str, pool) -> list[str]:
    """prepare-rest.sh on one side of one split (train: normalise + remove non-printing + tokenise -a)."""
    return list(_map(pool, _moses_job, [(line, lang, train, normalize_lang) for line in lines], chunksize=256))


def build_joined_dict(bpe_lines: Iterable[str]) -> Dictionary:
    """fairseq-preprocess --joined-dictionary: every BPE piece of the training text of both sides, counted,
    sorted by count (ties by symbol), padded to a multiple of 8 (threshold 0, all words kept)."""
    return Dictionary.build(bpe_lines, threshold=-1, nwords=-1, padding_factor=8)


@dataclasses.dataclass
class GivenVocabulary:
    """The expert's codes and dictionary files (bpe.codes + bpe.dict, or bpe.from_run), already parsed."""
    codes: Path
    dict: Path
    bpe: BPE
    dictionary: Dictionary


def given_vocabulary(cfg: Config) -> GivenVocabulary | None:
    """Read and check the expert's vocabulary before any feature or text work, so a missing or malformed codes or
    dict file fails in seconds instead of after hours of MuST-C extraction. None when the codes are learned."""
    if cfg.bpe.learn_merges:
        return None
    if cfg.bpe.from_run:
        src = finished_run(cfg, cfg.bpe.from_run, "bpe.from_run") / "data"
        codes = require_file(src / CODES_FILE, "bpe.from_run", "BPE codes")
        dict_path = require_file(src / DICT_FILE, "bpe.from_run", "dictionary")
    else:
        codes = require_file(data_path(cfg.data_root, cfg.bpe.codes), "bpe.codes", "BPE codes")
        dict_path = require_file(data_path(cfg.data_root, cfg.bpe.dict), "bpe.dict", "dictionary")
    merges = read_codes(codes)
    if not merges:
        raise InputError(f"bpe.codes: {codes}: no merges (expected fastBPE 'left right count' lines)")
    dictionary = Dictionary.load(dict_path)
    if len(dictionary) <= dictionary.nspecial:
        raise InputError(f"bpe.dict: {dict_path}: no symbols (expected fairseq 'symbol count' lines)")
    return GivenVocabulary(codes, dict_path, BPE(merges, source=str(codes)), dictionary)


def vocabulary(cfg: Config, out: Path, train_text: dict[str, list[str]] | None,
               given: GivenVocabulary | None) -> tuple[BPE, Dictionary]:
    """Write bpecodes + dict.txt (+ dict.<lang>.txt) into `out` and return them: the given ones, or learned."""
    if given is None:
        if train_text is None:
            raise InputError("bpe.learn_merges: no training split to learn the codes on")
        merges = learn_bpe([line for lang in (cfg.tgt_lang, cfg.src_lang) for line in train_text[lang]],
                           cfg.bpe.learn_merges)
        write_codes(out / CODES_FILE, merges)
        bpe = BPE(merges)
        dictionary = build_joined_dict(bpe.apply(line) for lang in (cfg.src_lang, cfg.tgt_lang)
                                       for line in train_text[lang])
        dictionary.save(out / DICT_FILE)
    else:
        shutil.copyfile(given.codes, out / CODES_FILE)
        shutil.copyfile(given.dict, out / DICT_FILE)
        bpe, dictionary = given.bpe, given.dictionary
    for lang in (cfg.src_lang, cfg.tgt_lang):
        shutil.copyfile(out / DICT_FILE, out / LANG_DICT_FILE.format(lang=lang))
    return bpe, dictionary


def raw_line(text: str) -> str:
    """The corpus's own text, whitespace runs made single spaces (one line of a text file; BLEU's 13a and chrF do
    not see the difference)."""
    return " ".join(text.split())


def write_text_copies(out: Path, split: str, texts: dict[str, list[str]], raw: dict[str, list[str]],
                      bpe: BPE) -> None:
    """text/{split}.{lang} (tokenised) and text/{split}.bpe.{lang} (fast applybpe), as prepare-rest.sh writes,
    and text/{split}.raw.{lang}, the corpus's untokenised text: the references BLEU and chrF are scored against
    (fairseq S2T keeps the raw tgt_text the same way); line i of each is item i of the split."""
    for lang, lines in texts.items():
        write_text_atomic(out / "text" / f"{split}.{lang}", "".join(line + "\n" for line in lines))
        write_text_atomic(out / "text" / f"{split}.bpe.{lang}", "".join(bpe.apply(line) + "\n" for line in lines))
        write_text_atomic(out / RAW_TEXT.format(split=split, lang=lang), "".join(raw_line(line) + "\n"
                                                                                 for line in raw[lang]))


# ------------------------------------------------------------------------------------------------ speech

def _feature_job(utt: Utterance) -> tuple[str, np.ndarray | None]:
    if Path(utt.audio).is_file() and Path(utt.audio).stat().st_size == 0:
        return utt.id, None  # empty Common Voice clips (fairseq #2971): skipped like unreadable ones
    return utt.id, fbank(load_audio(utt))


def fairseq_data_config(split_name: str, cmvn: str) -> str:
    """A fairseq S2T data config (gen_config_yaml) pointed at the expert's vocabulary (README step 6):
    vocab_filename = the joined dict, bpe_tokenizer = fastbpe with the expert's codes. cmvn: utterance, global or
    none (`speechkd export` of a model trained without feature normalisation)."""
    norm = {"global": ["  - global_cmvn"], "none": []}.get(cmvn, ["  - utterance_cmvn"])
    lines = ["bpe_tokenizer:", "  bpe: fastbpe", f"  bpe_codes: {CODES_FILE}"]
    if cmvn == "global":
        lines += ["global_cmvn:", "  stats_npz_path: gcmvn.npz"]
    lines += ["input_channels: 1", "input_feat_per_channel: 80", "specaugment:", "  freq_mask_F: 27",
              "  freq_mask_N: 1", "  time_mask_N: 1", "  time_mask_T: 100", "  time_mask_p: 1.0", "  time_wrap_W: 0",
              "transforms:", "  '*':" + ("" if norm else " []"), *norm, "  _train:", *norm, "  - specaugment",
              f"vocab_filename: {DICT_FILE}"]
    return f"# fairseq S2T data config for the {split_name} manifests (written by speechkd st-prep)\n" + \
        "\n".join(lines) + "\n"


def prepare_speech(cfg: Config, out: Path, splits: list[str], pool, given: GivenVocabulary | None) -> dict:
    corpus_dir = data_path(cfg.data_root, cfg.corpus_dir)  # checked by run()
    reader = READERS[cfg.corpus]
    utts = reader(corpus_dir, splits) if cfg.corpus == "embedded" else reader(corpus_dir, splits, cfg.tgt_lang)
    source_of = {s: corpus_dir / f"{s}.tsv" if cfg.corpus == "embedded" else corpus_dir for s in splits}
    seen: dict[str, str] = {}
    for split in splits:  # before the first feature
        if not utts[split]:
            raise InputError(f"{source_of[split]}: split {split!r} has no utterances ({cfg.corpus} corpus); "
                             "expected at least one")
        for k, u in enumerate(utts[split]):
            if u.id in seen:  # fbank80.zip holds one entry per id
                where = f"{source_of[split]}:{k + 2}: column id" if cfg.corpus == "embedded" else \
                    f"{source_of[split]}: split {split!r}"
                raise InputError(f"{where}: duplicate utterance id {u.id!r} (also in split {seen[u.id]!r}); "
                                 "expected ids unique across the prepared splits")
            seen[u.id] = split
    everything = [u for s in splits for u in utts[s]]
    frames: dict[str, int] = {}
    skipped_audio = 0
    t0 = time.perf_counter()

    def features() -> Iterator[tuple[str, np.ndarray]]:
        nonlocal skipped_audio
        for utt_id, feats in _map(pool, _feature_job, everything, chunksize=16):
            if feats is None:
                skipped_audio += 1
                continue
            frames[utt_id] = int(feats.shape[0])
            yield utt_id, feats
    fields = write_feature_zip(out / FEATURE_ZIP, features(), field_path=FEATURE_ZIP)
    stats: dict = {"feature_seconds": round(time.perf_counter() - t0, 2), "skipped_empty_audio": skipped_audio}
    t0 = time.perf_counter()
    texts_by_split: dict[str, dict[str, list[str]]] = {}
    raw_by_split: dict[str, dict[str, list[str]]] = {}
    filtered: dict[str, tuple[list[dict], list[Utterance], int]] = {}
    for split in splits:
        train = split.startswith("train")
        rows, kept, why = [], [], collections.Counter()
        src = tokenize_lines([u.src_text for u in utts[split]], cfg.src_lang, train, cfg.normalize_lang, pool)
        tgt = tokenize_lines([u.tgt_text for u in utts[split]], cfg.tgt_lang, train, cfg.normalize_lang, pool)
        for utt, s, t in zip(utts[split], src, tgt):
            n = frames.get(utt.id)
            # fairseq prep_*_data.py filter_manifest_df (+ the --il flag's empty-source filter)
            reason = ("with an empty (0-byte) audio file" if n is None else
                      f"shorter than min_frames={cfg.min_frames}" if n < cfg.min_frames else
                      f"longer than max_train_frames={cfg.max_train_frames}" if train and n > cfg.max_train_frames
                      else "with an empty tgt_text" if not t.strip() else
                      "with an empty src_text" if not s.strip() else None)
            if reason is not None:
                why[reason] += 1
                continue
            rows.append({"id": utt.id, "audio": fields[utt.id], "n_frames": n, "tgt_text": t,
                         "speaker": utt.speaker, "src_text": s})
            kept.append(utt)
        if not rows:  # before any manifest is written
            raise InputError(f"{source_of[split]}: split {split!r}: 0 of {len(utts[split])} utterances left: "
                             + ", ".join(f"{k} {r}" for r, k in why.most_common())
                             + "; expected at least one (check the audio and min_frames / max_train_frames)")
        filtered[split] = (rows, kept, sum(why.values()))
    for split, (rows, kept, dropped) in filtered.items():
        write_tsv(out / f"{split}.tsv", rows, ST_COLUMNS)
        texts_by_split[split] = {cfg.src_lang: [r["src_text"] for r in rows], cfg.tgt_lang: [r["tgt_text"] for r in rows]}
        raw_by_split[split] = {cfg.src_lang: [u.src_text for u in kept], cfg.tgt_lang: [u.tgt_text for u in kept]}
        stats[f"{split}_utterances"] = len(rows)
        stats[f"{split}_dropped"] = dropped
        stats[f"{split}_hours"] = round(sum(r["n_frames"] for r in rows) / 100 / 3600, 4)
    stats["text_seconds"] = round(time.perf_counter() - t0, 2)
    bpe, dictionary = vocabulary(cfg, out, None, given)
    for split, texts in texts_by_split.items():
        write_text_copies(out, split, texts, raw_by_split[split], bpe)
    if cfg.global_cmvn:
        train_split = next((s for s in splits if s.startswith("train")), None)
        if train_split is None:
            raise InputError("global_cmvn: needs a training split")
        rows_path = out / f"{train_split}.tsv"
        from ..data.manifests import read_s2t_tsv
        rows = read_s2t_tsv(rows_path)[: cfg.gcmvn_max_utterances]
        mean, std = compute_global_cmvn(read_features(r["audio"], out) for r in rows)
        save_global_cmvn(out / "gcmvn.npz", mean, std)
    cmvn = "global" if cfg.global_cmvn else "utterance"
    write_text_atomic(out / "config_st.yaml", fairseq_data_config("ST (tgt_text)", cmvn))
    write_text_atomic(out / "config_asr.yaml", fairseq_data_config("ASR (target: src_text)", cmvn))
    stats["vocab_size"] = len(dictionary)
    return stats


def prepare_parallel_text(cfg: Config, out: Path, splits: list[str], pool, given: GivenVocabulary | None) -> dict:
    corpus_dir = data_path(cfg.data_root, cfg.corpus_dir)
    stats: dict = {}
    t0 = time.perf_counter()
    texts_by_split: dict[str, dict[str, list[str]]] = {}
    raw_by_split: dict[str, dict[str, list[str]]] = {}
    for split in splits:
        texts, raw = {}, {}
        for lang in (cfg.src_lang, cfg.tgt_lang):
            path = corpus_dir / f"{split}.{lang}"
            if not path.is_file():
                raise InputError(f"{path}: parallel text not found (expected {split}.{cfg.src_lang} and "
                                 f"{split}.{cfg.tgt_lang} in corpus_dir)")
            lines = read_text(path, "parallel text").split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            if not lines:
                raise InputError(f"{path}: split {split!r} is empty; expected one sentence per line")
            raw[lang] = lines
            texts[lang] = tokenize_lines(lines, lang, split.startswith("train"), cfg.normalize_lang, pool)
        if len(texts[cfg.src_lang]) != len(texts[cfg.tgt_lang]):
            raise InputError(f"{corpus_dir}: {split}.{cfg.src_lang} and {split}.{cfg.tgt_lang} differ in length")
        texts_by_split[split], raw_by_split[split] = texts, raw
        stats[f"{split}_pairs"] = len(texts[cfg.src_lang])
    stats["text_seconds"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    train = next((texts_by_split[s] for s in splits if s.startswith("train")), None)
    bpe, dictionary = vocabulary(cfg, out, train, given)
    for split, texts in texts_by_split.items():
        write_text_copies(out, split, texts, raw_by_split[split], bpe)
    stats["bpe_seconds"] = round(time.perf_counter() - t0, 2)
    stats["bpe_merges"] = len(bpe)
    stats["vocab_size"] = len(dictionary)
    return stats


def run(cfg: Config) -> dict:
    run_ = Run(cfg, stage="st-prep")
    if (done := run_.metrics_if_done()) is not None:
        return done
    given = given_vocabulary(cfg)  # before the first feature: see given_vocabulary
    corpus_dir = data_path(cfg.data_root, cfg.corpus_dir)
    if not corpus_dir.is_dir():
        raise InputError(f"corpus_dir: directory not found: {corpus_dir}")
    run_.start()
    out = run_.dir / "data"
    out.mkdir(parents=True, exist_ok=True)
    splits = default_splits(cfg)
    start = time.perf_counter()
    pool = _pool(cfg.workers)
    try:
        if cfg.corpus == "parallel_text":
            stats = prepare_parallel_text(cfg, out, splits, pool, given)
        else:
            stats = prepare_speech(cfg, out, splits, pool, given)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    stats["seconds"] = round(time.perf_counter() - start, 2)
    stats["corpus"] = cfg.corpus
    print(f"[st-prep] {run_.name}: " + ", ".join(f"{k}={v}" for k, v in stats.items()))
    return run_.finish(stats)
