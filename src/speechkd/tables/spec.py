"""Table specs (configs/tables/<table_id>.json): which runs fill which cell, and the paper's numbers.

The papers' numbers live in these files only, each with its source. A spec has `columns` (id, label,
the row's run slot they read, and the metrics.json key) and `rows` (id, label, indent, `paper`
{column id: number or null}, `runs` {slot: run name}). Rows with no runs are the paper's comparison
systems: printed with their paper numbers, never reproduced.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError

TABLES_DIR = Path(__file__).resolve().parents[3] / "configs" / "tables"


@dataclass(frozen=True)
class Column:
    id: str
    label: str
    run: str
    metric: str


@dataclass(frozen=True)
class Row:
    id: str
    label: str
    indent: int
    ours: bool
    paper: dict[str, float | None]
    runs: dict[str, str] = field(default_factory=dict)

    def run_for(self, column: Column) -> str | None:
        return self.runs.get(column.run)


@dataclass(frozen=True)
class TableSpec:
    id: str
    title: str
    source: str
    metric: str
    higher_is_better: bool
    columns: list[Column]
    rows: list[Row]

    def run_names(self) -> list[str]:
        return sorted({name for row in self.rows for name in row.runs.values()})


def load_table_spec(path: str | Path) -> TableSpec:
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: table spec not found") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{e.lineno}:{e.colno}: invalid JSON ({e.msg})") from None
    try:
        columns = [Column(**c) for c in raw["columns"]]
        rows = [Row(**r) for r in raw["rows"]]
        spec = TableSpec(raw["id"], raw["title"], raw["source"], raw["metric"], bool(raw["higher_is_better"]),
                         columns, rows)
    except (KeyError, TypeError) as e:
        raise InputError(f"{path}: malformed table spec ({e})") from None
    col_ids = {c.id for c in columns}
    slots = {c.run for c in columns}
    for row in rows:
        if set(row.paper) - col_ids:
            raise InputError(f"{path}: row {row.id!r}: paper numbers for unknown columns {sorted(set(row.paper) - col_ids)}")
        if set(row.runs) - slots:
            raise InputError(f"{path}: row {row.id!r}: runs for unknown slots {sorted(set(row.runs) - slots)}")
    if path.stem != spec.id:
        raise InputError(f"{path}: id {spec.id!r} must equal the file name")
    return spec


def all_table_specs(tables_dir: str | Path = TABLES_DIR) -> list[TableSpec]:
    return [load_table_spec(p) for p in sorted(Path(tables_dir).glob("*.json"))]
