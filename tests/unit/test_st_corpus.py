"""Embedded ST corpora: speaker-disjoint splits, sentence-disjoint dev/test, S2T TSVs whose n_frames match
the wavs, and a text-only parallel corpus that never contains an ST dev/test sentence."""
from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf

from speechkd.config import load_config
from speechkd.data.manifests import read_s2t_tsv
from speechkd.synth import st_corpus
from speechkd.synth.st_corpus import (ST_COLUMNS, StCorpusSpec, TextParallelSpec, build_st_corpus,
                                           build_text_parallel)
from speechkd.features.fbank import num_frames as n_fbank_frames
from speechkd.errors import InputError

TINY = dict(n_train=12, n_dev=4, n_test=4, speakers_train=3, speakers_dev=2, speakers_test=2)


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory) -> tuple[Path, dict]:
    """A real (espeak) build: 20 short utterances."""
    out = tmp_path_factory.mktemp("st_read")
    return out, build_st_corpus(StCorpusSpec(style="read", seed=3, **TINY), out, workers=2)


def test_tsv_columns_and_n_frames_match_the_audio(tiny_corpus):
    out, stats = tiny_corpus
    for split, n in (("train", 12), ("dev", 4), ("test", 4)):
        header = (out / f"{split}.tsv").read_text(encoding="utf-8").split("\n")[0]
        assert tuple(header.split("\t")) == ST_COLUMNS
        rows = read_s2t_tsv(out / f"{split}.tsv")
        assert len(rows) == n == stats["splits"][split]["utterances"]
        for row in rows:
            info = sf.info(str(out / row["audio"]))
            assert info.samplerate == 16000 and info.channels == 1
            assert int(row["n_frames"]) == 1 + (info.frames - 400) // 160 > 50
            assert row["src_text"] and row["tgt_text"] and row["id"].startswith(f"read-{split}-")
    assert 0 < stats["hours"] < 0.1
    assert stats["distinct_sentences"] == 20


def test_splits_are_speaker_and_sentence_disjoint(tiny_corpus):
    out, stats = tiny_corpus
    rows = {s: read_s2t_tsv(out / f"{s}.tsv") for s in ("train", "dev", "test")}
    speakers = {s: {r["speaker"] for r in rs} for s, rs in rows.items()}
    assert [len(speakers[s]) for s in ("train", "dev", "test")] == [3, 2, 2]
    assert not speakers["train"] & speakers["dev"] and not speakers["train"] & speakers["test"]
    assert not speakers["dev"] & speakers["test"]
    for side in ("src_text", "tgt_text"):
        texts = {s: {r[side] for r in rs} for s, rs in rows.items()}
        assert not texts["train"] & texts["dev"] and not texts["train"] & texts["test"]
        assert not texts["dev"] & texts["test"]


def test_build_is_deterministic(tiny_corpus, tmp_path):
    out, _ = tiny_corpus
    build_st_corpus(StCorpusSpec(style="read", seed=3, **TINY), tmp_path, workers=1)
    for split in ("train", "dev", "test"):
        assert (tmp_path / f"{split}.tsv").read_text() == (out / f"{split}.tsv").read_text()
    first = read_s2t_tsv(out / "dev.tsv")[0]["audio"]
    assert (tmp_path / first).read_bytes() == (out / first).read_bytes()


def fake_synthesize(jobs, workers=1, desc=""):
    """Stand-in for espeak: no audio written, length grows with the text."""
    return [4000 + 900 * len(job.text.split()) for job in jobs]


def test_talk_corpus_and_text_parallel_exclude_held_out_sentences(tmp_path, monkeypatch):
    monkeypatch.setattr(st_corpus, "synthesize_to_wavs", fake_synthesize)
    corpora = []
    for style, seed in (("read", 1), ("talk", 2)):
        d = tmp_path / style
        stats = build_st_corpus(StCorpusSpec(style=style, seed=seed, n_train=40, n_dev=300, n_test=300,
                                             speakers_train=4, speakers_dev=2, speakers_test=2), d, workers=1)
        assert stats["splits"]["dev"]["utterances"] == 300
        row = read_s2t_tsv(d / "train.tsv")[0]
        assert int(row["n_frames"]) == n_fbank_frames(4000 + 900 * len(row["src_text"].split()))
        corpora.append(d)
    held_en = {r["src_text"] for d in corpora for s in ("dev", "test") for r in read_s2t_tsv(d / f"{s}.tsv")}
    held_de = {r["tgt_text"] for d in corpora for s in ("dev", "test") for r in read_s2t_tsv(d / f"{s}.tsv")}
    # seed 1 makes the text stream start with exactly the read corpus' sentences: the worst case
    spec = TextParallelSpec(n_train=3000, n_valid=100, n_test=100, seed=1)
    stats = build_text_parallel(spec, tmp_path / "text", corpora)
    assert stats["excluded_st_dev_test"] >= 600
    lines = {}
    for split, n in (("train", 3000), ("valid", 100), ("test", 100)):
        en = (tmp_path / "text" / f"{split}.en").read_text(encoding="utf-8").splitlines()
        de = (tmp_path / "text" / f"{split}.de").read_text(encoding="utf-8").splitlines()
        assert len(en) == len(de) == n
        assert not set(en) & held_en and not set(de) & held_de
        lines[split] = set(en)
    assert not lines["train"] & lines["valid"] and not lines["train"] & lines["test"]
    talk_like = sum(line.startswith(("I ", "So, ", "We ")) for line in lines["train"])
    assert 300 < talk_like < 2500  # both styles are mixed in
    again = build_text_parallel(spec, tmp_path / "text2", corpora)
    assert again == stats
    assert (tmp_path / "text2" / "train.de").read_bytes() == (tmp_path / "text" / "train.de").read_bytes()


def test_text_parallel_needs_the_st_corpora(tmp_path):
    with pytest.raises(InputError, match="dev.tsv"):
        build_text_parallel(TextParallelSpec(n_train=10, n_valid=2, n_test=2), tmp_path / "t", [tmp_path])


def test_specs_load_from_config_with_clear_errors():
    spec = load_config(StCorpusSpec, data={"style": "talk", "n_train": 5})
    assert spec.style == "talk" and spec.n_train == 5 and spec.n_dev == 300
    with pytest.raises(InputError, match="style"):
        load_config(StCorpusSpec, data={"style": "news"})
    assert load_config(TextParallelSpec).n_train == 100000
