"""Accuracy, fairseq-style WER/CER (checked by hand and against jiwer), sacreBLEU BLEU/chrF++/TER (checked by
hand and against the sacrebleu command line the authors' eval_script.sh runs)."""
import json
import subprocess
import sys

import jiwer
import pytest

from speechkd.metrics.asr import FAIRSEQ_S2T_RECIPE, cer, normalize, wer
from speechkd.metrics.classification import accuracy
from speechkd.metrics.translation import corpus_bleu, corpus_chrf, corpus_ter, score_translations

HYPS = ["a b", "the cat sat on the mat"]
REFS = ["a c", "the cat sat on a mat"]


# --- classification ---------------------------------------------------------------------------
def test_accuracy_and_per_class_counts():
    report = accuracy(["a", "b", "a", "c"], ["a", "b", "b", "c"])
    assert (report.correct, report.total, report.accuracy) == (3, 4, 75.0)
    assert report.per_class["b"].correct == 1 and report.per_class["b"].total == 2
    assert report.per_class["b"].accuracy == 50.0 and report.per_class["a"].accuracy == 100.0
    assert accuracy([], []).accuracy == 0.0
    with pytest.raises(ValueError):
        accuracy(["a"], [])


# --- ASR ----------------------------------------------------------------------------------------
def test_fairseq_wer_normalisation():
    # 13a splits punctuation off, punctuation-only tokens go, then lowercase; 13a keeps "it's" whole
    assert normalize("Hello, World! It's -- ok.", **FAIRSEQ_S2T_RECIPE) == ["hello", "world", "it's", "ok"]
    assert normalize("Hello, World!") == ["Hello,", "World!"]  # fairseq's defaults: no normalisation
    assert normalize("ab c", char_level=True) == ["a", "b", "\u2581", "c"]


def test_wer_by_hand():
    refs, hyps = ["Hello, world!", "the cat sat"], ["hello world", "the cat"]
    recipe = wer(refs, hyps, **FAIRSEQ_S2T_RECIPE)
    assert (recipe.substitutions, recipe.deletions, recipe.insertions, recipe.ref_length) == (0, 1, 0, 5)
    assert recipe.score == pytest.approx(20.0)
    assert wer(refs, hyps).score == pytest.approx(60.0)  # "Hello," != "hello", "world!" != "world"


def test_wer_and_cer_match_jiwer_on_clean_text():
    refs = ["the cat sat on the mat", "a b c d", "hello there"]
    hyps = ["the cat sat on mat", "a x c d e", "hello their friend"]
    assert wer(refs, hyps).score == pytest.approx(100 * jiwer.wer(refs, hyps))
    assert cer(refs, hyps).score == pytest.approx(100 * jiwer.cer(refs, hyps))
    assert cer(["ab c"], ["ac c"]).score == pytest.approx(25.0)  # one substitution in 4 characters


def test_wer_edge_cases():
    empty_ref = wer([""], ["x"])
    assert empty_ref.insertions == 1 and empty_ref.ref_length == 0 and empty_ref.score == 0.0  # fairseq: 0
    assert wer(["a b", ""], ["", "c"]).score == pytest.approx(150.0)  # 2 deletions + 1 insertion over 2 words
    with pytest.raises(ValueError):
        wer(["a"], [])


# --- translation --------------------------------------------------------------------------------
def test_bleu_chrf_ter_by_hand():
    # BLEU: matches 6/8, 3/6, 2/4, 1/3, BP 1 -> (3/4 * 1/2 * 1/2 * 1/3) ** (1/4) = 0.5
    bleu = corpus_bleu(HYPS, REFS)
    assert bleu.score == pytest.approx(50.0)
    assert bleu.signature.startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    assert bleu.formatted.startswith("BLEU = 50.00 75.0/50.0/50.0/33.3 (BP = 1.000")
    # TER: one substitution per sentence over 8 reference words
    ter = corpus_ter(HYPS, REFS)
    assert ter.score == pytest.approx(25.0) and ter.name == "TER"
    # chrF++ of "a b" vs "a c" (spaces ignored): char 1-grams F=1/2, char 2-grams F=0, word 1-grams F=1/2,
    # word 2-grams F=0; longer orders have no n-grams and do not count (eff:yes) -> mean 0.25
    chrf = corpus_chrf(["a b"], ["a c"])
    assert chrf.score == pytest.approx(25.0) and chrf.name == "chrF2++"
    assert "nc:6|nw:2" in chrf.signature


def test_scores_match_sacrebleu_cli(tmp_path):
    (tmp_path / "hyp").write_text("\n".join(HYPS) + "\n", encoding="utf-8")
    (tmp_path / "ref").write_text("\n".join(REFS) + "\n", encoding="utf-8")
    cli = subprocess.run([sys.executable, "-m", "sacrebleu", str(tmp_path / "ref"), "-i", str(tmp_path / "hyp"),
                          "-m", "bleu", "ter", "chrf", "--chrf-word-order", "2", "-w", "4"],
                         capture_output=True, text=True, check=True)
    by_name = {d["name"]: d for d in json.loads(cli.stdout)}
    ours = score_translations(HYPS, REFS)
    for key, name in (("bleu", "BLEU"), ("chrf", "chrF2++"), ("ter", "TER")):
        assert ours[key].name == name
        assert ours[key].score == pytest.approx(by_name[name]["score"], abs=1e-4)
        assert ours[key].signature == by_name[name]["signature"]


def test_moses_detokenised_scoring():
    tok_hyps = ["Das ist &quot; gut &quot; .", "Er geht&apos;s ."]
    tok_refs = ["Das ist &quot; gut &quot; .", "Er kommt ."]
    plain_hyps = ['Das ist "gut".', "Er geht's."]
    plain_refs = ['Das ist "gut".', "Er kommt."]
    detok = score_translations(tok_hyps, tok_refs, detok_lang="de")
    assert detok["bleu"].score == pytest.approx(corpus_bleu(plain_hyps, plain_refs).score)
    assert detok["chrf"].score == pytest.approx(corpus_chrf(plain_hyps, plain_refs).score)
    ter = corpus_ter(tok_hyps, tok_refs, detok_lang="de")
    assert ter.score == pytest.approx(corpus_ter(plain_hyps, plain_refs).score)
    # scoring the escaped, tokenised text directly gives a different number
    assert corpus_bleu(tok_hyps, tok_refs).score != pytest.approx(detok["bleu"].score)
    with pytest.raises(ValueError):
        corpus_bleu(["a"], [])
