"""BLEU / chrF are scored against the corpus's raw reference text, never against references rebuilt from the
target dictionary (which turn every out-of-vocabulary word into <unk>): st-prep keeps the raw text, st-generate's
T- lines hold it, st-eval / st-score score the detokenised hypotheses against it and record the signature."""
from __future__ import annotations

import json
from pathlib import Path

import sacrebleu
import torch

from speechkd.config import load_config
from speechkd.interop.fairseq_generate import read_generate_log
from speechkd.runs import Run
from speechkd.stages import st_generate as generate
from speechkd.stages import st_prep as prep
from speechkd.stages import st_score as score
from speechkd.st.data import TextDataset, raw_references
from speechkd.stages.st_generate import Decoded, to_records, write_split_outputs
from speechkd.st.vocab import RAW_REFERENCES
from speechkd.tokenizers.dictionary import Dictionary
from speechkd.tokenizers.moses import detokenize

# raw references with words outside the vocabulary ("Zauberer", "Drachen", "Höhle")
RAW = ["Der Zauberer öffnet das Tor.", "Ein Drachen schläft in der Höhle.", "Das Kind liest ein Buch."]
TOKENISED_REFS = ["Der Zauberer öffnet das Tor .", "Ein Drachen schläft in der Höhle .", "Das Kind liest ein Buch ."]
HYPS = ["Der Mann öffnet das Tor .", "Ein Hund schläft in der Küche .", "Das Kind liest ein Buch ."]


def vocabulary() -> Dictionary:
    words = {w for line in HYPS for w in line.split()}
    return Dictionary.build([" ".join(sorted(words))], padding_factor=1)


def outputs(tmp_path: Path) -> tuple[list[str], list[str], Path]:
    """A decoded split as st-generate writes it (hypotheses given as token ids: no model needed)."""
    dictionary = vocabulary()
    dataset = TextDataset(HYPS, TOKENISED_REFS, dictionary)
    decoded = [Decoded(i, dictionary.encode_line(h, append_eos=True, add_if_not_exist=False), -1.0,
                       torch.zeros(len(h.split()) + 1)) for i, h in enumerate(HYPS)]
    records = to_records(decoded, dataset, dictionary, raw_refs=RAW)
    refs, hyps = write_split_outputs(tmp_path, "test", records, "st", 5, len(dataset), raw_lang="de")
    return refs, hyps, tmp_path / "generate-test.txt"


def test_bleu_is_against_the_raw_references_not_the_dictionary_round_trip(tmp_path):
    refs, hyps, log = outputs(tmp_path)
    assert refs == RAW
    assert [r.target for r in read_generate_log(log).records.values()] == RAW  # T- lines: the raw text
    ours = score.score_translation(refs, hyps, "de")
    detok = [detokenize(h, "de") for h in HYPS]
    assert ours["bleu"] == round(sacrebleu.corpus_bleu(detok, [RAW]).score, 2)
    assert ours["chrf"] == round(sacrebleu.corpus_chrf(detok, [RAW], word_order=2).score, 2)
    # the dictionary round trip (what the T- lines used to hold) scores differently
    dictionary = vocabulary()
    round_trip = [dictionary.string(dictionary.encode_line(r, add_if_not_exist=False), escape_unk=True)
                  for r in TOKENISED_REFS]
    assert "<<unk>>" in round_trip[0]
    old = sacrebleu.corpus_bleu(detok, [[detokenize(r, "de") for r in round_trip]]).score
    assert round(old, 2) != ours["bleu"]
    assert ours["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")


def test_st_score_of_a_generate_run_records_the_signature(tmp_path):
    cfg = load_config(generate.Config, data={"runs_dir": str(tmp_path / "runs"), "name": "gen", "model_run": "m"})
    run_ = Run(cfg, stage="st-generate")
    run_.start()
    outputs(run_.dir)
    run_.finish({"references": RAW_REFERENCES})
    scfg = load_config(score.Config, data={"runs_dir": str(tmp_path / "runs"), "name": "s", "generate_run": "gen",
                                           "splits": {"test": "test"}})
    metrics = score.run(scfg)
    detok = [detokenize(h, "de") for h in HYPS]
    assert metrics["test_bleu"] == round(sacrebleu.corpus_bleu(detok, [RAW]).score, 2)
    saved = json.loads((tmp_path / "runs" / scfg.profile / "s" / "metrics.json").read_text())
    assert saved["references"] == RAW_REFERENCES
    assert saved["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    assert saved["chrf_signature"].startswith("nrefs:1|case:mixed|eff:yes|nc:6|nw:2|space:no|version:")


def test_prep_keeps_the_raw_target_text(tmp_path):
    text = tmp_path / "text"
    text.mkdir()
    for split in ("train", "valid", "test"):
        (text / f"{split}.en").write_text("The wizard opens the gate.\nA dragon sleeps.\n", encoding="utf-8")
        (text / f"{split}.de").write_text("Der Zauberer öffnet das Tor.\nEin Drache schläft.\n", encoding="utf-8")
    cfg = load_config(prep.Config, data={"runs_dir": str(tmp_path / "runs"), "name": "p", "workers": 1,
                                         "corpus": "parallel_text", "corpus_dir": str(text),
                                         "bpe": {"learn_merges": 10}})
    prep.run(cfg)
    data = tmp_path / "runs" / cfg.profile / "p" / "data"
    assert raw_references(data, "test", "de", 2) == ["Der Zauberer öffnet das Tor.", "Ein Drache schläft."]
    assert (data / "text" / "test.de").read_text(encoding="utf-8").splitlines()[0] == "Der Zauberer öffnet das Tor ."
