"""st-synthetic = create_wmt19_generated_dataset.py: src_text replaced through the ASR log (keyed on the gold
transcript), tgt_text through the NMT log (keyed on the gold translation), unknown keys left unchanged; from
fairseq-generate logs given as files."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from speechkd.config import load_config
from speechkd.data.manifests import read_s2t_tsv, write_tsv
from speechkd.errors import InputError
from speechkd.stages import st_synthetic as synthetic
from speechkd.stages.st_prep import ST_COLUMNS

ROWS = [("u0", "the cat sleeps .", "die Katze schläft ."), ("u1", "a dog barks .", "ein Hund bellt ."),
        ("u2", "no  log  line .", "keine Zeile .")]


def fake_prep_run(runs: Path) -> None:
    data = runs / "embedded" / "prep" / "data"
    write_tsv(data / "train.tsv", [{"id": i, "audio": f"fbank80.zip:{k * 10}:10", "n_frames": 50 + k, "tgt_text": de,
                                    "speaker": "s", "src_text": en} for k, (i, en, de) in enumerate(ROWS)], ST_COLUMNS)
    (runs / "embedded" / "prep" / "DONE").write_text(json.dumps({"config_hash": "x"}))


def test_replace_columns_counts_missing_keys():
    rows = [{"src_text": "a  b", "tgt_text": "x"}, {"src_text": "c", "tgt_text": "y"}]
    out, counts = synthetic.replace_columns(rows, {"a b": "A B"}, None)
    assert [r["src_text"] for r in out] == ["A B", "c"] and out[0]["tgt_text"] == "x"
    assert counts == {"src_replaced": 1, "src_unchanged": 1, "tgt_replaced": 0, "tgt_unchanged": 0}


def test_synthetic_dataset_from_fairseq_logs(tmp_path):
    runs = tmp_path / "runs"
    fake_prep_run(runs)
    # an ASR log (T- gold transcript, D- hypothesis) and an NMT log (T- gold translation, D- expert translation)
    (tmp_path / "asr.log").write_text(
        "T-1\ta dog barks .\nH-1\t-0.5\ta dog bark .\nD-1\t-0.5\ta dog bark .\n"
        "T-0\tthe cat sleeps .\nH-0\t-0.2\tthe cats sleep .\nD-0\t-0.2\tthe cats sleep .\n")
    (tmp_path / "nmt.log").write_text("S-0\tthe cats sleep .\nT-0\tdie Katze schläft .\n"
                                      "H-0\t-0.1\tdie Katzen schlafen .\nD-0\t-0.1\tdie Katzen schlafen .\n")
    cfg = load_config(synthetic.Config, data={"runs_dir": str(runs), "name": "syn", "prep_run": "prep",
                                              "asr_log": "asr.log", "expert_log": "nmt.log",
                                              "data_root": str(tmp_path)})
    metrics = synthetic.run(cfg)
    out = read_s2t_tsv(runs / "embedded" / "syn" / "data" / "train.tsv")
    assert [r["src_text"] for r in out] == ["the cats sleep .", "a dog bark .", "no  log  line ."]
    assert [r["tgt_text"] for r in out] == ["die Katzen schlafen .", "ein Hund bellt .", "keine Zeile ."]
    assert [r["audio"] for r in out] == [f"fbank80.zip:{k * 10}:10" for k in range(3)]  # features unchanged
    assert metrics["src_replaced"] == 2 and metrics["src_unchanged"] == 1 and metrics["tgt_replaced"] == 1
    assert metrics["train_transcript_wer"] == pytest.approx(50.0)  # 3 errors / 6 words, punctuation removed
    assert (runs / "embedded" / "syn" / "generated_transcripts").read_text().splitlines() == [
        "the cats sleep .", "a dog bark .", "no  log  line ."]


def test_synthetic_config_needs_one_asr_source():
    with pytest.raises(InputError, match="asr_run or asr_log"):
        load_config(synthetic.Config, data={"prep_run": "p"})
    with pytest.raises(InputError, match="not both"):
        load_config(synthetic.Config, data={"prep_run": "p", "asr_log": "a", "expert_run": "e", "expert_log": "o"})


def test_a_rerun_upstream_run_invalidates_what_was_made_from_it(tmp_path):
    runs = tmp_path / "runs"
    fake_prep_run(runs)
    (tmp_path / "asr.log").write_text("T-0\tthe cat sleeps .\nH-0\t-0.2\tthe cats sleep .\nD-0\t-0.2\tthe cats sleep .\n")
    data = {"runs_dir": str(runs), "name": "syn", "prep_run": "prep", "asr_log": "asr.log", "data_root": str(tmp_path)}
    first = synthetic.run(load_config(synthetic.Config, data=data))
    marker = runs / "embedded" / "syn" / "marker"
    marker.write_text("made from the first prep")
    assert synthetic.run(load_config(synthetic.Config, data=data)) == first and marker.exists()  # skipped: current
    # the prep run is redone (new DONE record): same config here, but its output must be rebuilt, not skipped
    (runs / "embedded" / "prep" / "DONE").write_text(json.dumps({"config_hash": "x", "finished": "later"}))
    synthetic.run(load_config(synthetic.Config, data=data))
    assert not marker.exists() and (runs / "embedded" / "syn.stale-upstream" / "marker").exists()
