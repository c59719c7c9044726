"""Every ST stage checks its inputs before its heavy work: a missing or malformed vocabulary, dictionary or
checkpoint is one InputError (exit 2, naming the file) before the first feature is extracted or update made."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from speechkd import cli
from speechkd.stages import st_prep as prep
from speechkd.stages import st_train as train
from support.st_corpora import write_embedded_corpus, write_parallel_text


def speechkd(tmp: Path, stage: str, **settings) -> int:
    args = [stage, "--set", f"runs_dir={tmp / 'runs'}"]
    for key, value in settings.items():
        args += ["--set", f"{key}={json.dumps(value)}"]
    return cli.main(args)


@pytest.fixture
def no_features(monkeypatch):
    """Feature extraction fails the test if it starts."""
    def extract(utt):
        raise AssertionError(f"feature extraction started ({utt.id}) before the inputs were checked")
    monkeypatch.setattr(prep, "_feature_job", extract)


@pytest.mark.parametrize("broken, expected", [
    ("missing codes", "bpe.codes: BPE codes not found"),
    ("malformed codes", "expected 'left right count'"),
    ("missing dict", "bpe.dict: dictionary not found"),
    ("malformed dict", "dict.txt:1"),
])
def test_st_prep_checks_the_vocabulary_before_any_feature(tmp_path, capsys, no_features, broken, expected):
    corpus = write_embedded_corpus(tmp_path)
    codes, dictionary = tmp_path / "bpecodes", tmp_path / "dict.txt"
    codes.write_text("d e 5\n" if broken != "malformed codes" else "just two\n", encoding="utf-8")
    dictionary.write_text("Der 3\n" if broken != "malformed dict" else "no-count-here\n", encoding="utf-8")
    {"missing codes": codes, "missing dict": dictionary}.get(broken, tmp_path / "none").unlink(missing_ok=True)
    start = time.perf_counter()
    rc = speechkd(tmp_path, "st-prep", name="p", corpus="embedded", corpus_dir=str(corpus), workers=1,
                  bpe={"codes": str(codes), "dict": str(dictionary)})
    assert rc == 2 and time.perf_counter() - start < 10
    err = capsys.readouterr().err
    assert expected in err and str(codes if "codes" in broken else dictionary) in err
    assert not list((tmp_path / "runs").rglob(prep.FEATURE_ZIP))


def test_st_train_checks_the_expert_before_the_first_update(tmp_path, capsys, monkeypatch):
    text = write_parallel_text(tmp_path)
    assert speechkd(tmp_path, "st-prep", name="nmt", corpus="parallel_text", corpus_dir=str(text), workers=1,
                    bpe={"learn_merges": 30}) == 0

    def build(*args, **kwargs):
        raise AssertionError("the model was built before the inputs were checked")
    monkeypatch.setattr(train, "build_model", build)
    expert = tmp_path / "expert"
    expert.mkdir()
    (expert / "model1.pt").write_bytes(b"")
    settings = dict(name="student", task="nmt", data_root=str(expert), criterion={"name": "word_kd", "expert": {
        "checkpoint": "model1.pt", "tgt_dict": "dict.de.txt"}}, data={"prep_run": "nmt", "valid_subset": "valid"})
    assert speechkd(tmp_path, "st-train", **settings) == 2
    assert f"criterion.expert.tgt_dict: tgt dict not found: {expert / 'dict.de.txt'}" in capsys.readouterr().err
    (expert / "model1.pt").unlink()
    assert speechkd(tmp_path, "st-train", **settings) == 2
    assert f"criterion.expert.checkpoint: checkpoint not found: {expert / 'model1.pt'}" in capsys.readouterr().err
    assert not list((tmp_path / "runs").rglob("student"))  # no run was started
