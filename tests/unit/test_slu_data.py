"""SLU data plumbing: unit/text encoding as the authors' loaders build it, the 10 % subset, manifests, FSC's own
CSV format, frame stacking."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from speechkd.errors import InputError
from speechkd.slu.corpus import encode_units, read_pair_manifest, read_slu_split, stratified_subset
from speechkd.slu.text import WordTextEncoder, build_word_dictionary, encode_for_finetuning, encode_for_pt_kd, words
from speechkd.stages.slu_units import read_slu_corpus
from speechkd.slu.unit_source import stacked_features
from speechkd.tokenizers.dictionary import Dictionary


def unit_dict() -> Dictionary:
    d = Dictionary.build(["1-2 3-4 1-2", "5-6"], padding_factor=1)
    d.add_symbol("<mask>")
    return d


def test_units_get_bos_and_eos_only_where_the_authors_loaders_add_them():
    d = unit_dict()
    ids = [d.index("1-2"), d.index("3-4"), d.unk()]
    # data_loader.py (fine-tuning): cat([0], encode_line(seq, append_eos=False)); asr/masked loaders: eos too
    assert encode_units(d, "1-2 3-4 9-9", append_eos=False).tolist() == [0, *ids]
    assert encode_units(d, "1-2 3-4 9-9", append_eos=True).tolist() == [0, *ids, 2]


def test_word_text_encoder_lowercases_and_drops_eos_for_finetuning_only():
    d = build_word_dictionary(["Turn the lights on, please", "let's go"])
    d.add_symbol("<mask>")
    enc = WordTextEncoder(d)
    assert words("Let's go, NOW!") == ["let's", "go", ",", "now", "!"]
    full = encode_for_pt_kd(enc, "Turn the LIGHTS on")
    assert full[0] == d.bos() and full[-1] == d.eos()
    assert [d[i] for i in full[1:-1]] == ["turn", "the", "lights", "on"]
    assert encode_for_finetuning(enc, "Turn the LIGHTS on").tolist() == full[:-1].tolist()  # `[:-1]`
    assert enc.encode("unseen word")[1] == d.unk()


def test_stratified_subset_takes_a_tenth_of_every_class_deterministically():
    labels = [0] * 40 + [1] * 25 + [2] * 4 + [3] * 31
    chosen = stratified_subset(labels, 0.1, seed=0)
    counts = Counter(labels[i] for i in chosen)
    assert counts == {0: 4, 1: 2, 2: 1, 3: 3}  # round(2.5) = 2 (banker's), at least one of a tiny class
    assert chosen == sorted(chosen) and len(set(chosen)) == len(chosen)
    assert chosen == stratified_subset(labels, 0.1, seed=0)
    assert chosen != stratified_subset(labels, 0.1, seed=1)
    assert stratified_subset(labels, 1.0, seed=3) == list(range(len(labels)))


def test_manifests_resolve_paths_against_their_directory(tmp_path):
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "a.txt").write_text("1-2 3-4\n")
    (tmp_path / "tok" / "a.lab").write_text("HELLO WORLD\n")
    (tmp_path / "train.csv").write_text("tok/a.txt,tok/a.lab\n")
    pairs = read_pair_manifest(tmp_path / "train.csv")
    assert pairs.tokens == ["1-2 3-4"] and pairs.transcripts == ["HELLO WORLD"]
    (tmp_path / "intent_dict").write_text("change language German none\nactivate music none\n")
    (tmp_path / "valid.csv").write_text('0,tok/a.txt,spk,change language,German,none,"Deutsch, bitte"\n')
    split = read_slu_split(tmp_path, "valid", ["activate music none", "change language German none"])
    assert split.labels == [1] and split.examples[0].transcript == "Deutsch, bitte"
    with pytest.raises(InputError, match="not in"):
        read_slu_split(tmp_path, "valid", ["activate music none"])


def test_fsc_as_released_is_read_with_its_header_and_column_order(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "valid", "test"):
        (data / f"{split}_data.csv").write_text(
            ",path,speakerId,transcription,action,object,location\n"
            "0,wavs/speakers/x/a.wav,x,Switch on the lights,activate,lights,none\n"
            "1,wavs/speakers/x/b.wav,x,Stop,deactivate,music,none\n")
    splits, intents = read_slu_corpus(tmp_path)
    e = splits["valid"][0]
    assert (e.path, e.transcript, e.intent) == (str(tmp_path / "wavs/speakers/x/a.wav"), "Switch on the lights",
                                                "activate lights none")
    assert intents == ["activate lights none", "deactivate music none"]  # sorted train intents


def test_stacked_features_concatenate_consecutive_frames():
    wave = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    one = stacked_features(wave, 1)
    two = stacked_features(wave, 2)
    assert one.shape == (98, 80) and two.shape == (49, 160)
    np.testing.assert_array_equal(two[3], np.concatenate([one[6], one[7]]))
    assert torch.as_tensor(two).dtype == torch.float32


def test_read_utterances_longer_than_vq_bert_are_refused_or_skipped_and_counted(tmp_path):
    from speechkd.errors import InputError
    from speechkd.slu.corpus import ReadSplit, unit_sequences
    from speechkd.tokenizers.dictionary import Dictionary
    d = Dictionary()
    for unit in ("1-2", "3-4"):
        d.add_symbol(unit)
    pairs = ReadSplit(["1-2 3-4", "1-2 " * 9 + "3-4", "3-4"], ["A B", "LONG", "C"])
    with pytest.raises(InputError, match=r"read\.csv:2: 12 units > VQ-BERT max_positions 8"):
        unit_sequences(pairs, d, 8, "error", tmp_path / "read.csv")
    seqs, texts, skipped = unit_sequences(pairs, d, 8, "skip", tmp_path / "read.csv")
    assert (len(seqs), texts, skipped) == (2, ["A B", "C"], 1)
    assert seqs[0].tolist() == [d.bos(), d.index("1-2"), d.index("3-4"), d.eos()]
