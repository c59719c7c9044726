"""st-generate / st-score against real fairseq output: the fixture NMT model (trained by fairseq-fixed, loaded as a
KD expert would be, from checkpoint + dicts + bpecodes) decodes the fixture's test sentences with our beam search
and the hypotheses, scores and positional scores match fairseq-generate's log; the log we write scores as
fairseq's; checkpoint selection and averaging."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from speechkd.config import load_config
from speechkd.errors import InputError
from speechkd.interop.fairseq_generate import read_generate_log
from speechkd.stages import st_score as score
from speechkd.st.expert import ExpertConfig, load_expert
from speechkd.st.data import TextDataset
from speechkd.stages.st_generate import GenerationConfig, decode_dataset, to_records, write_split_outputs
from speechkd.st.models import checkpoint_paths, load_model_state
from speechkd.tokenizers.dictionary import Dictionary
from support.paths import FAIRSEQ_FIXTURES

FIX = FAIRSEQ_FIXTURES


@pytest.fixture(scope="module")
def fairseq_expert():
    cfg = ExpertConfig(checkpoint="transformer_nmt.pt", src_dict="nmt_dict.en.txt", tgt_dict="nmt_dict.de.txt",
                       bpe_codes="nmt_bpecodes")
    student_dict = Dictionary.load(FIX / "nmt_dict.de.txt")
    return load_expert(cfg, object(), student_dict, data_root=str(FIX))


def test_generate_matches_fairseq_generate(fairseq_expert, tmp_path):
    expert = fairseq_expert
    assert expert.kind == "nmt" and not any(p.requires_grad for p in expert.model.parameters())
    log = read_generate_log(FIX / "nmt_generate.log")
    ids = sorted(log.records)
    # the log was made with --remove-bpe: S-/T- are raw text; re-apply the expert's BPE as fairseq-preprocess did
    bpe = expert.source_encoder.bpe
    dataset = TextDataset([bpe.apply(log.records[i].source) for i in ids], [bpe.apply(log.records[i].target)
                                                                            for i in ids], expert.tgt_dict)
    decoded, _ = decode_dataset(expert.model, dataset, expert.tgt_dict, GenerationConfig(beam=5),
                                torch.device("cpu"))
    records = {ids[r.sample_id]: r for r in to_records(decoded, dataset, expert.tgt_dict)}
    for i in ids:
        ref, ours = log.records[i].hypotheses[0], records[i].hypotheses[0]
        assert ours.detok == ref.detok
        assert ours.score == pytest.approx(ref.score, abs=1e-4)
        assert ours.positional_scores == pytest.approx(ref.positional_scores, abs=1e-4)
        assert records[i].target == log.records[i].target
    # our log scores as fairseq's closing line says (sacreBLEU on T- vs D-)
    refs, hyps = write_split_outputs(tmp_path, "test", list(records.values()), "nmt", 5, len(dataset))
    assert (tmp_path / "hyps" / "test.txt").read_text().splitlines()[0] == records[ids[0]].hypotheses[0].detok
    ours = read_generate_log(tmp_path / "generate-test.txt")
    assert ours.result == log.result and ours.beam == 5
    assert score.score_translation(refs, hyps)["bleu"] == pytest.approx(81.50, abs=0.005)


def test_score_stage_reads_fairseq_logs(tmp_path):
    # the raw references of an external log come from a file (line i = sample i); this log's T- lines are the raw
    # text (fairseq-generate on untokenised data, no out-of-vocabulary words), so they serve as that file here
    records = read_generate_log(FIX / "nmt_generate.log").records
    refs = tmp_path / "test.de"
    refs.write_text("".join(records[i].target + "\n" for i in range(len(records))), encoding="utf-8")
    cfg = load_config(score.Config, data={"runs_dir": str(tmp_path), "name": "s", "data_root": str(FIX),
                                          "logs": {"test": "nmt_generate.log"}, "references": {"test": str(refs)}})
    metrics = score.run(cfg)
    assert metrics["test_bleu"] == pytest.approx(81.50, abs=0.005)
    assert metrics["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:")
    assert "chrF2++" not in metrics["chrf_signature"] and metrics["test_chrf"] > 80
    asr = score.score_asr(["Hello , it &apos;s me ."], ["hello it is me"])
    # detokenised "Hello, it's me." -> 13a keeps "it's", punctuation dropped: 3 words; 1 substitution + 1 insertion
    assert asr["wer"] == pytest.approx(66.67) and asr["wer_ref_words"] == 3
    with pytest.raises(InputError, match="generate_run or logs"):
        load_config(score.Config, data={})


def _save(path: Path, value: float) -> None:
    torch.save({"model": {"w": torch.full((2,), value), "n": torch.tensor(value, dtype=torch.long)}}, path)


def test_checkpoint_selection_and_averaging(tmp_path):
    for epoch, value in ((1, 1.0), (2, 2.0), (3, 4.0), (10, 9.0)):
        _save(tmp_path / f"checkpoint{epoch}.pt", value)
    _save(tmp_path / "checkpoint_best.pt", 2.0)
    assert checkpoint_paths(tmp_path, "best") == [tmp_path / "checkpoint_best.pt"]
    last3 = checkpoint_paths(tmp_path, "average_last_3")
    assert last3 == [tmp_path / "checkpoint2.pt", tmp_path / "checkpoint3.pt", tmp_path / "checkpoint10.pt"]
    state = load_model_state(last3)
    assert state["w"].tolist() == [5.0, 5.0] and int(state["n"]) == 5  # (2 + 4 + 9) / 3, ints floor-divided
    with pytest.raises(InputError, match="checkpoint_last.pt"):
        checkpoint_paths(tmp_path, "last")
    with pytest.raises(InputError, match="average_last_N"):
        checkpoint_paths(tmp_path, "avg5")
    assert math.isclose(float(load_model_state([tmp_path / "checkpoint1.pt"])["w"][0]), 1.0)
