"""fairseq-generate logs (fairseq 0.12, fairseq_cli/generate.py), written and read.

Per sentence, in the order the batches come out:

    S-<id>\\t<source>                  (only when the task has a source dictionary; not for speech input)
    T-<id>\\t<reference>               (target dictionary string, BPE removed, detokenised)
    H-<id>\\t<score>\\t<hypothesis>     (score = hypo["score"] / ln 2, printed with "{}", i.e. repr(float))
    D-<id>\\t<score>\\t<detokenised hypothesis>
    P-<id>\\t<positional scores>       (base 2, "{:.4f}" each, space-separated)

H/D/P repeat for each of the n best. The log ends with
`Generate <subset> with beam=<beam>: <scorer.result_string()>` when references were given; with
`--results-path`, fairseq's logging lines (`2021-.. | INFO | ...`) share the file and are skipped here.

The authors' scripts (HubReb/imitkd_ast) read these logs with plain whitespace splitting;
`reference_to_hypothesis` and `references_and_hypotheses` reproduce them.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import InputError
from ..fileio import write_text_atomic

__all__ = ["GenerateHypothesis", "GenerateLog", "GenerateRecord", "format_generate_log", "read_generate_log",
           "reference_to_hypothesis", "references_and_hypotheses", "sacrebleu_result_string",
           "wer_result_string", "write_generate_log"]

_ID_LINE = re.compile(r"^([STHDP])-(\d+)\t")
_CLOSING = re.compile(r"^Generate (\S+) with beam=(\d+): (.*)$")


@dataclass
class GenerateHypothesis:
    score: float                                 # base-2 log-probability score, as printed
    tokens: str | None = None                    # H-: target-dictionary string (after --remove-bpe)
    detok: str | None = None                     # D-: after BPE decoding and detokenisation
    positional_scores: list[float] | None = None  # P-: per-token base-2 scores (4 decimals)


@dataclass
class GenerateRecord:
    sample_id: int
    source: str | None = None
    target: str | None = None
    hypotheses: list[GenerateHypothesis] = field(default_factory=list)


@dataclass
class GenerateLog:
    records: dict[int, GenerateRecord]  # in the order of the file
    subset: str | None = None
    beam: int | None = None
    result: str | None = None           # the scorer's result string of the closing line


# --- writing --------------------------------------------------------------------------------------
def _format_score(score: float) -> str:
    # fairseq formats a 0-dim tensor with "{}", which formats its .item(): repr of a Python float
    return "{}".format(float(score))


def format_record(record: GenerateRecord) -> list[str]:
    i = record.sample_id
    lines = []
    if record.source is not None:
        lines.append(f"S-{i}\t{record.source}")
    if record.target is not None:
        lines.append(f"T-{i}\t{record.target}")
    for h in record.hypotheses:
        score = _format_score(h.score)
        lines.append(f"H-{i}\t{score}\t{h.tokens if h.tokens is not None else ''}")
        lines.append(f"D-{i}\t{score}\t{h.detok if h.detok is not None else ''}")
        if h.positional_scores is not None:
            lines.append(f"P-{i}\t" + " ".join("{:.4f}".format(x) for x in h.positional_scores))
    return lines


def format_generate_log(records: Iterable[GenerateRecord], subset: str | None = None, beam: int | None = None,
                        result: str | None = None) -> str:
    """The log text; the closing line is written when `result` (a scorer's result string) is given."""
    lines = [line for r in records for line in format_record(r)]
    if result is not None:
        if subset is None or beam is None:
            raise ValueError("the closing 'Generate ... with beam=...' line needs subset and beam")
        lines.append(f"Generate {subset} with beam={beam}: {result}")
    return "".join(line + "\n" for line in lines)


def write_generate_log(path: str | Path, records: Iterable[GenerateRecord], subset: str | None = None,
                       beam: int | None = None, result: str | None = None) -> None:
    write_text_atomic(path, format_generate_log(records, subset, beam, result))


def sacrebleu_result_string(refs: Sequence[str], hyps: Sequence[str]) -> str:
    """fairseq's `--scoring sacrebleu` result (fairseq/scoring/bleu.py SacrebleuScorer): T- and D- strings
    13a-tokenised, then sacreBLEU's corpus BLEU with tokenize="none" -- the same numbers as 13a BLEU."""
    from ..metrics.translation import corpus_bleu
    return corpus_bleu(hyps, refs).formatted


def wer_result_string(wer_percent: float) -> str:
    """fairseq's `--scoring wer` result (fairseq/scoring/wer.py)."""
    return f"WER: {wer_percent:.2f}"


# --- reading --------------------------------------------------------------------------------------
def _lines(log: str | Path | Iterable[str]) -> tuple[str, list[str]]:
    """(name for messages, lines split on "\\n" only: hypotheses may hold other line-break characters)."""
    if isinstance(log, (str, Path)):
        path = Path(log)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise InputError(f"{path}: fairseq-generate log not found") from None
        except UnicodeDecodeError as e:
            raise InputError(f"{path}: fairseq-generate log is not UTF-8 ({e})") from None
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return str(path), [line[:-1] if line.endswith("\r") else line for line in lines]
    return "<log>", [line.rstrip("\n") for line in log]


def read_generate_log(log: str | Path | Iterable[str]) -> GenerateLog:
    """Parses S-/T-/H-/D-/P- lines per sentence id and the closing line; everything else (logging lines,
    A-/I-/E- lines) is skipped. A malformed S/T/H/D/P line is an InputError naming file and line."""
    name, lines = _lines(log)
    out = GenerateLog(records={})
    for lineno, line in enumerate(lines, 1):
        m = _ID_LINE.match(line)
        if m is None:
            c = _CLOSING.match(line)
            if c is not None:
                out.subset, out.beam, out.result = c.group(1), int(c.group(2)), c.group(3)
            continue
        kind, sid = m.group(1), int(m.group(2))
        rest = line[m.end():]
        rec = out.records.setdefault(sid, GenerateRecord(sid))
        try:
            if kind == "S":
                rec.source = rest
            elif kind == "T":
                rec.target = rest
            elif kind in "HD":
                score_text, _, text = rest.partition("\t")
                score = float(score_text)
                last = rec.hypotheses[-1] if rec.hypotheses else None
                if kind == "H" or last is None or last.detok is not None:
                    rec.hypotheses.append(GenerateHypothesis(score))
                    last = rec.hypotheses[-1]
                if kind == "H":
                    last.tokens = text
                else:
                    last.detok = text
            else:  # P
                if not rec.hypotheses or rec.hypotheses[-1].positional_scores is not None:
                    raise ValueError("P- line without a preceding H-/D- line")
                rec.hypotheses[-1].positional_scores = [float(x) for x in rest.split()]
        except ValueError as e:
            raise InputError(f"{name}:{lineno}: malformed fairseq-generate {kind}- line ({e}): {line!r}") from None
    return out


def reference_to_hypothesis(log: str | Path | Iterable[str]) -> dict[str, str]:
    """create_wmt19_generated_dataset.py `get_references_and_hypotheses`: a T- line sets the current reference
    (its whitespace-split fields after the first, re-joined with single spaces); every D- line maps that
    reference to its text (fields after the first two). Keyed by the reference string, so duplicates collapse
    and the last D- wins; S-/H-/P- lines are ignored. The authors' script also dropped a last line without a
    trailing newline (`split("\\n")[:-1]`) and crashed on a D- line before any T- line; here every line is
    read and the latter is an InputError."""
    name, lines = _lines(log)
    mapping: dict[str, str] = {}
    reference: str | None = None
    for lineno, line in enumerate(lines, 1):
        if line.startswith("T-"):
            reference = " ".join(line.split()[1:])
        if line.startswith("D-"):
            if reference is None:
                raise InputError(f"{name}:{lineno}: D- line before any T- line (a log generated without references?)")
            mapping[reference] = " ".join(line.split()[2:])
    return mapping


def references_and_hypotheses(log: str | Path | Iterable[str]) -> tuple[list[str], list[str]]:
    """get_references_and_hypothesis.py (eval_script.sh step 1): every T- line and every D- line in file
    order, whitespace-normalised as above."""
    _, lines = _lines(log)
    refs = [" ".join(line.split()[1:]) for line in lines if line.startswith("T-")]
    hyps = [" ".join(line.split()[2:]) for line in lines if line.startswith("D-")]
    return refs, hyps
