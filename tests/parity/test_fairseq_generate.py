"""fairseq-generate logs (fairseq 0.12 fairseq_cli/generate.py format) and the authors' log parsing
(create_wmt19_generated_dataset.py, get_references_and_hypothesis.py)."""
import re

import pytest

from speechkd.errors import InputError
from speechkd.interop.fairseq_generate import (GenerateHypothesis, GenerateRecord, format_generate_log,
                                               read_generate_log, reference_to_hypothesis,
                                               references_and_hypotheses, sacrebleu_result_string,
                                               wer_result_string, write_generate_log)
from support.paths import FAIRSEQ_FIXTURES

REAL_LOG = FAIRSEQ_FIXTURES / "nmt_generate.log"

# What fairseq-generate --results-path prints for a text NMT model (sentences come out in batch order,
# logging lines share the file; ids 2 and 0 share a reference).
NMT_LOG = """\
2023-05-01 10:00:00 | INFO | fairseq_cli.generate | loading model(s) from model1.pt
S-2\tthe house is green .
T-2\tdas Haus ist grün .
H-2\t-0.2791832685470581\tdas Haus ist grün .
D-2\t-0.2791832685470581\tdas Haus ist grün .
P-2\t-0.4402 -0.1000 -0.2123 -0.3000 -0.1251 -0.4975
S-0\tthe  house is green
T-0\tdas   Haus ist grün .
H-0\t-0.5\tdas Gebäude ist grün .
D-0\t-0.5\tdas Gebäude ist grün .
P-0\t-0.5000 -1.0000 -0.2500 -0.2500 -0.5000 -0.5000
S-1\tyes
T-1\tja
H-1\t-3.0\t
D-1\t-3.0\t
P-1\t-3.0000
2023-05-01 10:00:01 | INFO | fairseq_cli.generate | NOTE: hypothesis and token scores are output in base 2
Generate test with beam=5: BLEU = 62.40 80.0/66.7/57.1/50.0 (BP = 1.000 ratio = 1.000 hyp_len = 10 ref_len = 10)
"""


# Verbatim from fairseq 0.12.3 `fairseq-generate --beam 5 --nbest 2 --scoring sacrebleu --results-path`
# on a toy en-de transformer (the first two sentences and the closing line of the file).
REAL_EXCERPT = (
    'S-7\tgreen green likes big\n'
    'T-7\tgrün grün mag groß\n'
    'H-7\t-0.3454524874687195\tgrün grün groß mag\n'
    'D-7\t-0.3454524874687195\tgrün grün groß mag\n'
    'P-7\t-0.0207 -0.7096 -0.8325 -0.1075 -0.0569\n'
    'H-7\t-0.45188412070274353\tgrün mag groß mag\n'
    'D-7\t-0.45188412070274353\tgrün mag groß mag\n'
    'P-7\t-0.0207 -1.7681 -0.3080 -0.1022 -0.0604\n'
    'S-9\ta a house the\n'
    'T-9\tein ein Haus der\n'
    'H-9\t-0.13246220350265503\tein ein Haus der\n'
    'D-9\t-0.13246220350265503\tein ein Haus der\n'
    'P-9\t-0.0235 -0.1286 -0.1188 -0.3610 -0.0304\n'
    'H-9\t-0.6390605568885803\tein ein Haus Haus\n'
    'D-9\t-0.6390605568885803\tein ein Haus Haus\n'
    'P-9\t-0.0235 -0.1286 -0.1188 -2.6770 -0.2473\n'
    'Generate test with beam=5: BLEU = 54.06 95.5/71.9/50.0/27.3 (BP = 0.978 ratio = 0.978 hyp_len = 44 ref_len = 45)\n'
)


def test_read_records_and_closing_line(tmp_path):
    f = tmp_path / "generate-test.txt"
    f.write_text(NMT_LOG, encoding="utf-8")
    log = read_generate_log(f)
    assert list(log.records) == [2, 0, 1]
    r2 = log.records[2]
    assert (r2.source, r2.target) == ("the house is green .", "das Haus ist grün .")
    h = r2.hypotheses[0]
    assert h.score == pytest.approx(-0.2791832685470581)
    assert h.tokens == h.detok == "das Haus ist grün ."
    assert h.positional_scores == pytest.approx([-0.4402, -0.1, -0.2123, -0.3, -0.1251, -0.4975])
    assert log.records[0].target == "das   Haus ist grün ."  # the reader keeps the text as printed
    assert log.records[1].hypotheses[0].detok == ""
    assert (log.subset, log.beam) == ("test", 5)
    assert log.result.startswith("BLEU = 62.40")


def test_reference_to_hypothesis_like_the_authors_script():
    mapping = reference_to_hypothesis(NMT_LOG.splitlines(keepends=True))
    # keyed by whitespace-normalised reference; id 0 repeats id 2's reference and, coming later, wins
    assert mapping == {"das Haus ist grün .": "das Gebäude ist grün .", "ja": ""}
    refs, hyps = references_and_hypotheses(NMT_LOG.splitlines())
    assert refs == ["das Haus ist grün .", "das Haus ist grün .", "ja"]
    assert hyps == ["das Haus ist grün .", "das Gebäude ist grün .", ""]


def test_nbest_hypotheses_and_last_d_line_wins():
    lines = ["T-7\tref", "H-7\t-0.1\ta", "D-7\t-0.1\tA", "P-7\t-0.1000", "H-7\t-0.9\tb", "D-7\t-0.9\tB",
             "P-7\t-0.9000"]
    rec = read_generate_log(lines).records[7]
    assert [(h.tokens, h.detok, h.score) for h in rec.hypotheses] == [("a", "A", -0.1), ("b", "B", -0.9)]
    assert reference_to_hypothesis(lines) == {"ref": "B"}


def test_writer_matches_fairseq_format_exactly(tmp_path):
    records = [
        # speech input: no source dictionary, so no S- line; H- holds sentencepiece pieces, D- the decoded text
        GenerateRecord(3, target="the cat sat", hypotheses=[GenerateHypothesis(
            -0.41666666666666674, "\u2581the \u2581cat \u2581s at", "the cat sat",
            [-0.12345, -1.0, -0.333333, 0.0, -0.5])]),
        GenerateRecord(4, source="hi", target="hallo",
                       hypotheses=[GenerateHypothesis(-1.5, "hal@@ lo", "hallo", [-2.0, -1.0, -1.5])]),
    ]
    text = format_generate_log(records, "dev", 5, wer_result_string(12.3456))
    assert text == (
        "T-3\tthe cat sat\n"
        "H-3\t-0.41666666666666674\t\u2581the \u2581cat \u2581s at\n"
        "D-3\t-0.41666666666666674\tthe cat sat\n"
        "P-3\t-0.1235 -1.0000 -0.3333 0.0000 -0.5000\n"
        "S-4\thi\n"
        "T-4\thallo\n"
        "H-4\t-1.5\thal@@ lo\n"
        "D-4\t-1.5\thallo\n"
        "P-4\t-2.0000 -1.0000 -1.5000\n"
        "Generate dev with beam=5: WER: 12.35\n"
    )
    write_generate_log(tmp_path / "g.txt", records, "dev", 5, "WER: 12.35")
    back = read_generate_log(tmp_path / "g.txt")
    assert [r.sample_id for r in back.records.values()] == [3, 4]
    assert back.records[3].hypotheses[0].detok == "the cat sat" and back.records[3].source is None
    assert back.records[4].hypotheses[0].positional_scores == [-2.0, -1.0, -1.5]
    assert back.result == "WER: 12.35"


def test_sacrebleu_result_string_is_sacrebleus_line():
    assert sacrebleu_result_string(["the cat sat on a mat"], ["the cat sat on the mat"]) == (
        "BLEU = 53.73 83.3/60.0/50.0/33.3 (BP = 1.000 ratio = 1.000 hyp_len = 6 ref_len = 6)")


def test_real_fairseq_output_reads_and_rewrites_byte_exact():
    log = read_generate_log(REAL_EXCERPT.splitlines())
    assert list(log.records) == [7, 9] and [len(r.hypotheses) for r in log.records.values()] == [2, 2]
    second = log.records[7].hypotheses[1]
    assert (second.score, second.detok) == (-0.45188412070274353, "grün mag groß mag")
    assert second.positional_scores == pytest.approx([-0.0207, -1.7681, -0.308, -0.1022, -0.0604])
    assert format_generate_log(log.records.values(), log.subset, log.beam, log.result) == REAL_EXCERPT


def test_malformed_lines_name_file_and_line(tmp_path):
    f = tmp_path / "bad.log"
    f.write_text("T-0\tref\nH-0\tnot-a-score\thyp\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.log:2: malformed fairseq-generate H- line"):
        read_generate_log(f)
    f.write_text("T-0\tref\nP-0\t-1.0\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.log:2: .*P- line without a preceding H-/D- line"):
        read_generate_log(f)
    f.write_text("D-0\t-1.0\thyp\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad.log:1: D- line before any T- line"):
        reference_to_hypothesis(f)
    with pytest.raises(InputError, match="not found"):
        read_generate_log(tmp_path / "missing.log")


def test_reads_a_real_fairseq_generate_log():
    if not REAL_LOG.is_file():
        pytest.skip(f"no fairseq-generate fixture at {REAL_LOG} (produced with real fairseq-generate elsewhere)")
    log = read_generate_log(REAL_LOG)
    assert log.records and log.beam is not None and log.subset
    for rec in log.records.values():
        assert rec.target is not None and rec.hypotheses
        for h in rec.hypotheses:
            assert h.tokens is not None and h.detok is not None and h.positional_scores is not None
    refs, hyps = references_and_hypotheses(REAL_LOG)
    assert len(refs) == len(log.records) and len(hyps) == sum(len(r.hypotheses) for r in log.records.values())
    assert set(reference_to_hypothesis(REAL_LOG)) == set(refs)
    # the writer reproduces every line the reader understands, byte for byte
    kept = [line for line in REAL_LOG.read_text(encoding="utf-8").split("\n")
            if re.match(r"[STHDP]-\d+\t|Generate \S+ with beam=", line)]
    rewritten = format_generate_log(log.records.values(), log.subset, log.beam, log.result)
    assert rewritten == "".join(k + "\n" for k in kept)
