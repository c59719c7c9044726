"""Manifest formats at the edges (see manifests/README.md):

- fairseq S2T TSV: header `id audio n_frames tgt_text speaker [src_text ...]`, tab-separated, no quoting.
- SLU CSV (the seed's FSC-style manifest, no header): `index,path,speaker,action,object,location,transcript`
  where the transcript is the last column and may itself contain commas (as the authors' loader re-joins it).
- Intent dict: one "action object location" per line; line order = class index.

Readers validate and raise InputError with file:line; writers are atomic.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import InputError
from ..fileio import write_text_atomic

S2T_COLUMNS = ("id", "audio", "n_frames", "tgt_text", "speaker")


def read_tsv(path: str | Path, required: Sequence[str] = ()) -> list[dict[str, str]]:
    """A headed TSV (fairseq style: tab-separated, no quoting) -> list of row dicts."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: manifest not found")
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
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


def read_slu_csv(path: str | Path) -> list[SluExample]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: manifest not found")
    out = []
    for n, fields in enumerate(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))), start=1):
        if not fields:
            continue
        if len(fields) < 7:
            raise InputError(f"{path}:{n}: {len(fields)} fields, expected 7 "
                             "(index,path,speaker,action,object,location,transcript; no header line)")
        out.append(SluExample(*fields[:6], ",".join(fields[6:])))
    if not out:
        raise InputError(f"{path}: no examples")
    return out


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
    intents = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if len(set(intents)) != len(intents):
        raise InputError(f"{path}: duplicate intents")
    return intents


def write_intent_dict(path: str | Path, intents: Sequence[str]) -> None:
    write_text_atomic(path, "".join(f"{i}\n" for i in intents))
