"""st-prep: features in fairseq's fbank80.zip, S2T TSVs with src_text and fairseq's filters, prepare-rest.sh text
processing (train vs dev), the expert's BPE (learned on parallel text, or taken from another prep run), and the
MuST-C / CoVoST 2 release readers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechkd.config import load_config
from speechkd.data.manifests import read_s2t_tsv
from speechkd.errors import InputError
from speechkd.features.fbank import fbank
from speechkd.features.store import read_features
from speechkd.st import corpora
from speechkd.stages import st_prep as prep
from speechkd.tokenizers.bpe import BPE, read_codes
from speechkd.tokenizers.dictionary import Dictionary
from support.st_corpora import SR, _wave, write_embedded_corpus, write_parallel_text


def run_prep(tmp_path: Path, **data) -> dict:
    cfg = load_config(prep.Config, data={"runs_dir": str(tmp_path / "runs"), "workers": 1, **data})
    return prep.run(cfg)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("st_prep")
    text = write_parallel_text(tmp)
    corpus = write_embedded_corpus(tmp)
    text_metrics = run_prep(tmp, name="st_prep_nmt", corpus="parallel_text", corpus_dir=str(text),
                            bpe={"learn_merges": 30})
    speech_metrics = run_prep(tmp, name="st_prep_x", corpus="embedded", corpus_dir=str(corpus), splits=["train", "dev"],
                              bpe={"from_run": "st_prep_nmt"}, max_train_frames=100, global_cmvn=True)
    return tmp, corpus, text_metrics, speech_metrics


def test_parallel_text_prep_learns_codes_and_a_joined_dict(prepared):
    tmp, _, metrics, _ = prepared
    out = tmp / "runs" / "embedded" / "st_prep_nmt" / "data"
    assert metrics["train_pairs"] == 12 and metrics["bpe_merges"] == 30
    train_en = (out / "text" / "train.en").read_text().splitlines()
    # train: normalize-punctuation (curly quotes -> ") then tokenizer -a with XML escaping
    assert train_en[1] == 'A dog &quot; barks &quot; loudly .'
    assert train_en[0] == "The cat doesn &apos;t sleep ."
    valid_en = (out / "text" / "valid.en").read_text().splitlines()
    assert valid_en[1] == "A dog \u201c barks \u201d loudly ."  # dev/test: tokenise only, quotes kept
    codes = read_codes(out / "bpecodes")
    bpe = BPE(codes)
    bpe_lines = (out / "text" / "train.bpe.de").read_text().splitlines()
    train_de = (out / "text" / "train.de").read_text().splitlines()
    assert bpe_lines == [bpe.apply(line) for line in train_de]
    d = Dictionary.load(out / "dict.txt")
    assert len(d) % 8 == 0  # padded as fairseq-preprocess does
    pieces = {p for f in ("train.bpe.en", "train.bpe.de") for line in (out / "text" / f).read_text().splitlines()
              for p in line.split()}
    assert pieces <= set(d.symbols)
    assert (out / "dict.en.txt").read_bytes() == (out / "dict.txt").read_bytes() == (out / "dict.de.txt").read_bytes()


def test_speech_prep_writes_fairseq_manifests_with_filters(prepared):
    tmp, corpus, _, metrics = prepared
    out = tmp / "runs" / "embedded" / "st_prep_x" / "data"
    train = read_s2t_tsv(out / "train.tsv")
    assert list(train[0]) == list(prep.ST_COLUMNS)
    # u1: < 5 frames; u2: 158 frames > max_train_frames 100; u3: empty translation
    assert [r["id"] for r in train] == ["u0", "u4"]
    assert metrics["train_dropped"] == 3 and metrics["dev_utterances"] == 1  # dev keeps its 158-frame clip
    assert train[0]["tgt_text"] == "Der Hund schl\u00e4ft ."
    # normalize-punctuation.perl (English) moves a full stop in front of a closing quote
    assert train[0]["src_text"] == "The dog &quot; sleeps . &quot;"
    assert train[1]["src_text"] == "The cat isn &apos;t running ."
    dev = read_s2t_tsv(out / "dev.tsv")
    assert dev[0]["src_text"] == "A dog \u201c barks \u201d ."
    wave, _ = sf.read(corpus / "wav" / "train" / "u0.wav", dtype="float32")
    feats = read_features(train[0]["audio"], out)
    assert train[0]["audio"].startswith("fbank80.zip:")
    assert int(train[0]["n_frames"]) == feats.shape[0] == 48
    np.testing.assert_allclose(feats, fbank(wave), rtol=0, atol=1e-6)
    # the expert's vocabulary is copied from the text prep, and the ST text gets BPE'd copies
    nmt = tmp / "runs" / "embedded" / "st_prep_nmt" / "data"
    assert (out / "bpecodes").read_bytes() == (nmt / "bpecodes").read_bytes()
    assert (out / "dict.txt").read_bytes() == (nmt / "dict.txt").read_bytes()
    bpe = BPE(read_codes(out / "bpecodes"))
    assert (out / "text" / "train.bpe.de").read_text().splitlines() == [bpe.apply(r["tgt_text"]) for r in train]
    stats = np.load(out / "gcmvn.npz")
    both = np.concatenate([read_features(r["audio"], out) for r in train])
    np.testing.assert_allclose(stats["mean"], both.mean(0), rtol=1e-5, atol=1e-4)
    yaml = (out / "config_st.yaml").read_text()
    assert "bpe: fastbpe" in yaml and "vocab_filename: dict.txt" in yaml and "global_cmvn" in yaml


def test_prep_config_errors(tmp_path):
    with pytest.raises(InputError, match="exactly one"):
        load_config(prep.Config, data={"corpus_dir": "x", "bpe": {}})
    with pytest.raises(InputError, match="learn_merges"):
        load_config(prep.Config, data={"corpus_dir": "x", "corpus": "embedded", "bpe": {"learn_merges": 10}})
    cfg = load_config(prep.Config, data={"runs_dir": str(tmp_path), "corpus_dir": str(tmp_path),
                                         "bpe": {"from_run": "missing"}, "workers": 1})
    with pytest.raises(InputError):
        prep.run(cfg)


def test_mustc_reader_segments_talks_like_fairseq(tmp_path):
    base = tmp_path / "en-de" / "data" / "dev"
    (base / "wav").mkdir(parents=True)
    (base / "txt").mkdir()
    sf.write(base / "wav" / "ted_7.wav", _wave(12.0, 1), SR, subtype="PCM_16")
    # fairseq sorts a talk's segments by offset as a STRING: "10.5" < "2.25" < "9.0"
    (base / "txt" / "dev.yaml").write_text(
        "- {duration: 1.5, offset: 9.0, rW: 3, uW: 0, speaker_id: spk.7, wav: ted_7.wav}\n"
        "- {duration: 1.0, offset: 2.25, rW: 2, uW: 0, speaker_id: spk.7, wav: ted_7.wav}\n"
        "- {duration: 0.5, offset: 10.5, rW: 1, uW: 0, speaker_id: spk.7, wav: ted_7.wav}\n")
    (base / "txt" / "dev.en").write_text("nine\ntwo\nten \n")
    (base / "txt" / "dev.de").write_text("neun\nzwei\nzehn\n")
    utts = corpora.mustc(tmp_path, ["dev"])["dev"]
    assert [(u.id, u.src_text, u.tgt_text, u.offset, u.num_samples) for u in utts] == [
        ("ted_7_0", "ten", "zehn", 168000, 8000), ("ted_7_1", "two", "zwei", 36000, 16000),
        ("ted_7_2", "nine", "neun", 144000, 24000)]
    wave = corpora.load_audio(utts[1])
    full, _ = sf.read(base / "wav" / "ted_7.wav", dtype="float32")
    np.testing.assert_array_equal(wave, full[36000:52000])


def test_covost_reader_joins_common_voice_and_explains_mp3(tmp_path):
    (tmp_path / "clips").mkdir()
    (tmp_path / "validated.tsv").write_text(
        "client_id\tpath\tsentence\tup_votes\n"
        "c1\ta.mp3\tHello there.\t2\nc2\tb.mp3\tGood night.\t1\nc3\tc.mp3\tNot in CoVoST.\t1\n")
    (tmp_path / "covost_v2.en_de.tsv").write_text(
        "path\tsentence\ttranslation\tsplit\n"
        "a.mp3\tHello there.\tHallo.\ttrain\nb.mp3\tGood night.\tGute Nacht.\tdev\n")
    sf.write(tmp_path / "clips" / "a.wav", _wave(0.3, 1), SR, subtype="PCM_16")
    (tmp_path / "clips" / "b.mp3").write_bytes(b"not really an mp3")
    out = corpora.covost2(tmp_path, ["train", "dev"])
    assert [(u.id, u.speaker, u.src_text, u.tgt_text) for u in out["train"]] == [("a", "c1", "Hello there.", "Hallo.")]
    assert out["train"][0].audio.endswith("a.wav")  # the converted clip is preferred (reduce_audio_q.sh)
    assert len(corpora.load_audio(out["train"][0])) == int(0.3 * SR)
    with pytest.raises(InputError, match="ffmpeg -i .*b.mp3 -acodec pcm_s16le -ac 1 -ar 16000"):
        corpora.load_audio(out["dev"][0])
