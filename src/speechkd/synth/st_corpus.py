"""Embedded speech-translation corpora: English speech (espeak-ng) with German translations from the
English-German grammar, and the larger text-only parallel corpus the NMT expert trains on.

- build_st_corpus: CoVoST2 ("read") or MuST-C ("talk") stand-in. Splits are by speaker (disjoint speaker
  sets) and no sentence of dev/test occurs in train (the grammar never repeats an English or a German
  sentence within one stream). Writes wav/<split>/<id>.wav and fairseq S2T TSVs {train,dev,test}.tsv with
  columns id, audio (relative to the TSV's folder), n_frames, tgt_text (German), speaker, src_text.
- build_text_parallel: WMT19 stand-in, far larger and mixing both styles, with every sentence of the ST
  corpora's dev/test splits removed (WMT19 never saw the CoVoST/MuST-C test sets).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from ..config import option
from ..errors import InputError
from ..fileio import write_json_atomic, write_text_atomic
from ..data.manifests import S2T_COLUMNS, read_tsv, write_tsv
from .ende_grammar import STYLE_NAMES, Pair, generate_pairs
from ..features.fbank import num_frames
from ..train.reproducibility import derive_seed
from .speakers import speaker_splits
from .tts import SAMPLE_RATE, TtsJob, synthesize_to_wavs

ST_COLUMNS = S2T_COLUMNS + ("src_text",)
ST_SPLITS = ("train", "dev", "test")
TEXT_SPLITS = ("train", "valid", "test")


@dataclass
class StCorpusSpec:
    style: str = option("read", "grammar style: read (short read sentences, CoVoST2 stand-in) or talk "
                                "(long first-person spoken sentences, MuST-C stand-in)")
    n_train: int = option(2000, "training utterances")
    n_dev: int = option(300, "dev utterances (sentences never in train)")
    n_test: int = option(300, "test utterances (sentences never in train or dev)")
    speakers_train: int = option(24, "training speakers")
    speakers_dev: int = option(6, "dev speakers (disjoint from train and test)")
    speakers_test: int = option(6, "test speakers (disjoint from train and dev)")
    seed: int = option(1, "seed of the sentences, the speakers and the synthesis")

    def __post_init__(self) -> None:
        if self.style not in STYLE_NAMES:
            raise ValueError(f"style must be one of {', '.join(STYLE_NAMES)}, got {self.style!r}")
        for split in ST_SPLITS:
            n, k = getattr(self, f"n_{split}"), getattr(self, f"speakers_{split}")
            if n < 1 or k < 1:
                raise ValueError(f"n_{split} and speakers_{split} must be >= 1, got {n} and {k}")


@dataclass
class TextParallelSpec:
    n_train: int = option(100000, "training sentence pairs (half read style, half talk style)")
    n_valid: int = option(1000, "validation sentence pairs")
    n_test: int = option(1000, "test sentence pairs")
    seed: int = option(7, "seed of the sentences; keep it apart from the ST corpora's seeds so the expert "
                          "sees sentences other than the ST training set, as WMT19 did")

    def __post_init__(self) -> None:
        if min(self.n_train, self.n_valid, self.n_test) < 1:
            raise ValueError("n_train, n_valid and n_test must be >= 1")


def build_st_corpus(spec: StCorpusSpec, out_dir: Path, workers: int) -> dict:
    """Synthesise the corpus into out_dir; returns per-split utterances, speakers, hours, distinct sentences."""
    out_dir = Path(out_dir)
    sizes = {s: getattr(spec, f"n_{s}") for s in ST_SPLITS}
    pairs = generate_pairs(sum(sizes.values()), spec.seed, spec.style)
    counts = [getattr(spec, f"speakers_{s}") for s in ST_SPLITS]
    voices = dict(zip(ST_SPLITS, speaker_splits(*counts, spec.seed)))
    rows: list[dict] = []
    jobs: list[TtsJob] = []
    start = 0
    for split in ST_SPLITS:
        split_pairs = pairs[start:start + sizes[split]]
        start += sizes[split]
        speakers = voices[split]
        order = [i % len(speakers) for i in range(len(split_pairs))]  # balanced, then shuffled
        random.Random(derive_seed(spec.seed, "st-speakers", split)).shuffle(order)
        for i, (pair, k) in enumerate(zip(split_pairs, order)):
            utt = f"{spec.style}-{split}-{i:05d}"
            rel = f"wav/{split}/{utt}.wav"
            seed = derive_seed(spec.seed, "st-utt", spec.style, len(jobs))
            jobs.append(TtsJob(pair.en, speakers[k], seed, str(out_dir / rel)))
            rows.append({"split": split, "id": utt, "audio": rel, "tgt_text": pair.de,
                         "speaker": speakers[k].id, "src_text": pair.en})
    lengths = synthesize_to_wavs(jobs, workers=workers, desc=f"st {spec.style}")
    stats: dict = {"style": spec.style, "sample_rate": SAMPLE_RATE, "splits": {}}
    for split in ST_SPLITS:
        split_rows = [(r, n) for r, n in zip(rows, lengths) if r["split"] == split]
        for r, n in split_rows:
            r["n_frames"] = num_frames(n)
        write_tsv(out_dir / f"{split}.tsv", [r for r, _ in split_rows], ST_COLUMNS)
        stats["splits"][split] = {
            "utterances": len(split_rows),
            "speakers": len({r["speaker"] for r, _ in split_rows}),
            "hours": round(sum(n for _, n in split_rows) / SAMPLE_RATE / 3600, 4),
            "distinct_sentences": len({r["src_text"] for r, _ in split_rows}),
        }
    stats["hours"] = round(sum(s["hours"] for s in stats["splits"].values()), 4)
    stats["distinct_sentences"] = len({r["src_text"] for r in rows})
    write_json_atomic(out_dir / "stats.json", stats)
    return stats


def held_out_sentences(st_corpus_dirs: list[Path]) -> tuple[set[str], set[str]]:
    """English and German sentences of the dev/test splits of the given ST corpora."""
    english, german = set(), set()
    for corpus in st_corpus_dirs:
        for split in ("dev", "test"):
            path = Path(corpus) / f"{split}.tsv"
            if not path.is_file():
                raise InputError(f"{path}: ST manifest not found (build the ST corpus before the text corpus)")
            for row in read_tsv(path, required=("src_text", "tgt_text")):
                english.add(row["src_text"])
                german.add(row["tgt_text"])
    return english, german


def build_text_parallel(spec: TextParallelSpec, out_dir: Path, st_corpus_dirs: list[Path]) -> dict:
    """Write out_dir/{train,valid,test}.{en,de}; no sentence of any ST dev/test split appears in them."""
    out_dir = Path(out_dir)
    held_en, held_de = held_out_sentences(st_corpus_dirs)
    total = spec.n_train + spec.n_valid + spec.n_test
    quota = {"read": total - total // 2, "talk": total // 2}
    kept: list[Pair] = []
    excluded = 0
    seen_en: set[str] = set()
    seen_de: set[str] = set()
    for style, need in quota.items():
        # generate_pairs' output for a larger n extends the smaller one, so over-asking stays deterministic
        pairs = generate_pairs(need + len(held_en) + need // 100 + 64, spec.seed, style)
        taken = 0
        for pair in pairs:
            if taken == need:
                break
            if pair.en in held_en or pair.de in held_de:
                excluded += 1
                continue
            if pair.en in seen_en or pair.de in seen_de:  # the same sentence from both styles
                continue
            seen_en.add(pair.en)
            seen_de.add(pair.de)
            kept.append(pair)
            taken += 1
        if taken < need:
            raise ValueError(f"could not draw {need} {style} pairs outside the ST dev/test sets")
    random.Random(derive_seed(spec.seed, "text-parallel")).shuffle(kept)
    bounds = {"train": (0, spec.n_train), "valid": (spec.n_train, spec.n_train + spec.n_valid),
              "test": (spec.n_train + spec.n_valid, total)}
    stats: dict = {"excluded_st_dev_test": excluded, "splits": {}}
    for split, (lo, hi) in bounds.items():
        chunk = kept[lo:hi]
        write_text_atomic(out_dir / f"{split}.en", "".join(p.en + "\n" for p in chunk))
        write_text_atomic(out_dir / f"{split}.de", "".join(p.de + "\n" for p in chunk))
        stats["splits"][split] = {"pairs": len(chunk), "en_words": sum(len(p.en.split()) for p in chunk),
                                  "de_words": sum(len(p.de.split()) for p in chunk)}
    write_json_atomic(out_dir / "stats.json", stats)
    return stats
