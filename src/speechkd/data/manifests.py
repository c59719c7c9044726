"""Manifest formats at the edges (see manifests/README.md):

- fairseq S2T TSV: header `id audio n_frames tgt_text speaker [src_text ...]`, tab-separated, no quoting.
- SLU CSV (the seed's FSC-style manifest): `index,path,speaker,action,object,location,transcript` where the
  transcript is the last column and may itself contain commas (as the authors' loader re-joins it). A header line
  (`index,path,...` / `,wav,...`: columns 4-6 named action,object,location) is skipped; a header in FSC's order
  (`,path,speakerId,transcription,action,object,location`) makes the file read in that order.
- Intent dict: one "action object location" per line; line order = class index.

Readers validate and raise InputError with file:line (and column); non-UTF-8 bytes are named by line and byte
offset (fileio.read_text). Writers are atomic.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import InputError
from ..fileio import read_text, read_text_lines, write_text_atomic

S2T_COLUMNS = ("id", "audio", "n_frames", "tgt_text", "speaker")
SLU_COLUMNS = ("index", "path", "speaker", "action", "object", "location", "transcript")
FSC_HEADER = ",path,speakerId,transcription,action,object,location"   # FSC's data/*_data.csv (pandas index first)


def read_tsv(path: str | Path, required: Sequence[str] = ()) -> list[dict[str, str]]:
    """A headed TSV (fairseq style: tab-separated, no quoting) -> list of row dicts."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: manifest not found")
    lines = read_text_lines(path, "manifest", sep="\t", header=True)
    if not lines:
        raise InputError(f"{path}: empty manifest (expected a header line)")
    header = lines[0].split("\t")
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(f"{path}:1: missing column(s) {', '.join(missing)} (header has: {', '.join(header)})")
    rows = []
    for n, line in enumerate(lines[1:], start=2):
        fields = line.split("\t")
        if len(fields) != len(header):
            raise InputError(f"{path}:{n}: {len(fields)} fields, expected {len(header)} ({', '.join(header)})")
        rows.append(dict(zip(header, fields)))
    return rows


def write_tsv(path: str | Path, rows: Iterable[dict], columns: Sequence[str]) -> None:
    out = ["\t".join(columns)]
    for row in rows:
        values = [str(row[c]) for c in columns]
        bad = [c for c, v in zip(columns, values) if "\t" in v or "\n" in v]
        if bad:
            raise ValueError(f"{path}: column {bad[0]} of row {row.get('id')} contains a tab or newline")
        out.append("\t".join(values))
    write_text_atomic(path, "\n".join(out) + "\n")


def read_s2t_tsv(path: str | Path) -> list[dict[str, str]]:
    rows = read_tsv(path, required=S2T_COLUMNS)
    for n, row in enumerate(rows, start=2):
        if not row["n_frames"].isdigit():
            raise InputError(f"{path}:{n}: n_frames {row['n_frames']!r} is not a non-negative integer")
    return rows


@dataclass(frozen=True)
class SluExample:
    index: str
    path: str
    speaker: str
    action: str
    object: str
    location: str
    transcript: str

    @property
    def intent(self) -> str:
        return f"{self.action} {self.object} {self.location}"


def _is_slu_header(fields: Sequence[str]) -> bool:
    return len(fields) >= 7 and [f.strip().lower() for f in fields[3:6]] == ["action", "object", "location"]


FSC_COLUMNS = ("index",) + tuple(FSC_HEADER.split(",")[1:])


def read_slu_csv_rows(path: str | Path, fsc: bool = False) -> list[tuple[int, SluExample]]:
    """(line number, example) of every row of a seed-format SLU CSV (see the module docstring); fsc=True: FSC's
    own data/<split>_data.csv, whose header (FSC's column order) is then required."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: manifest not found")
    out = []
    fsc_order = False
    what, columns = ("FSC manifest", FSC_COLUMNS) if fsc else ("SLU manifest", SLU_COLUMNS)
    reader = csv.reader(io.StringIO(read_text(path, what, sep=",", columns=columns)))
    for fields in reader:
        n = reader.line_num
        if not fields:
            continue
        if not out and not fsc_order and ",".join(f.strip() for f in fields) == FSC_HEADER:
            fsc_order = True
            continue
        if fsc and not fsc_order:
            raise InputError(f"{path}:{n}: expected FSC's header {FSC_HEADER!r}")
        if not out and _is_slu_header(fields):
            continue
        if len(fields) < 7:
            raise InputError(f"{path}:{n}: {len(fields)} fields, expected 7 "
                             "(index,path,speaker,action,object,location,transcript)")
        if fsc_order:
            if len(fields) != 7:
                raise InputError(f"{path}:{n}: {len(fields)} fields, expected 7 ({FSC_HEADER})")
            idx, wav, speaker, text, action, obj, loc = fields
            out.append((n, SluExample(idx, wav, speaker, action, obj, loc, text)))
        else:
            out.append((n, SluExample(*fields[:6], ",".join(fields[6:]))))
    if not out:
        raise InputError(f"{path}: no examples (expected rows of {','.join(SLU_COLUMNS)})")
    return out


def read_slu_csv(path: str | Path) -> list[SluExample]:
    return [e for _, e in read_slu_csv_rows(path)]


def write_slu_csv(path: str | Path, examples: Iterable[SluExample]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for e in examples:
        writer.writerow([e.index, e.path, e.speaker, e.action, e.object, e.location, e.transcript])
    write_text_atomic(path, buf.getvalue())


def read_intent_dict(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: intent dict not found")
    intents, first = [], {}
    for n, line in enumerate(read_text_lines(path, "intent dict"), 1):
        if not line.strip():
            continue
        intent = line.strip()
        if intent in first:
            raise InputError(f"{path}:{n}: duplicate intents: {intent!r} is also line {first[intent]}")
        first[intent] = n
        intents.append(intent)
    if not intents:
        raise InputError(f"{path}: empty intent dict (expected one 'action object location' per line)")
    return intents


def write_intent_dict(path: str | Path, intents: Sequence[str]) -> None:
    write_text_atomic(path, "".join(f"{i}\n" for i in intents))
