"""Table specs (configs/tables/<table_id>.json): which runs fill which cell, and the paper's numbers.

The papers' numbers live in these files only, each with its source. A spec has
- `title` (our heading) and `paper_caption` (the paper's own caption, quoted in text only, never over our numbers);
- `columns` (id, label, the row's run slot they read, and the metrics.json key);
- `rows` (id, label, indent, `paper` {column id: number or null}, `runs` {slot: run name}, optional `baseline`);
- `baseline`: the row every reproduced row's gain is measured against; a row's own `baseline` overrides it (the ST
  tables compare each architecture with its own NLL row);
- `depends_on`: the models every row depends on (text teacher, ASR, NMT expert, pre-training runs), each
  {run, metric, label} with optional `released` (the released checkpoint a profile without that run uses),
  `paper` (the paper's number, if it gives one) and `note`.
Rows with no runs are the paper's comparison systems: printed with their paper numbers, never reproduced.
configs/tables/claims.json (claims.py) is not a table spec.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError

TABLES_DIR = Path(__file__).resolve().parents[3] / "configs" / "tables"
CLAIMS_FILE = "claims.json"


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
    baseline: str | None = None  # overrides the table's baseline row for this row

    def run_for(self, column: Column) -> str | None:
        return self.runs.get(column.run)


@dataclass(frozen=True)
class Dependency:
    run: str
    metric: str
    label: str
    released: str = ""  # the released checkpoint a profile without this run reads instead
    paper: float | None = None
    note: str = ""


@dataclass(frozen=True)
class TableSpec:
    id: str
    title: str
    source: str
    metric: str
    higher_is_better: bool
    columns: list[Column]
    rows: list[Row]
    paper_caption: str = ""
    baseline: str | None = None
    depends_on: list[Dependency] = field(default_factory=list)

    def run_names(self) -> list[str]:
        return sorted({name for row in self.rows for name in row.runs.values()})

    def row(self, row_id: str) -> Row:
        return next(r for r in self.rows if r.id == row_id)

    def column(self, column_id: str) -> Column:
        return next(c for c in self.columns if c.id == column_id)

    def baseline_of(self, row: Row) -> Row | None:
        """The row a reproduced row's gain is measured against (None: a comparison system, or no baseline)."""
        base = row.baseline or self.baseline
        return self.row(base) if row.ours and base else None


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
        depends_on = [Dependency(**d) for d in raw.get("depends_on", [])]
        spec = TableSpec(raw["id"], raw["title"], raw["source"], raw["metric"], bool(raw["higher_is_better"]),
                         columns, rows, paper_caption=raw.get("paper_caption", ""), baseline=raw.get("baseline"),
                         depends_on=depends_on)
    except (KeyError, TypeError) as e:
        raise InputError(f"{path}: malformed table spec ({e})") from None
    col_ids = {c.id for c in columns}
    slots = {c.run for c in columns}
    ours = {r.id for r in rows if r.ours}
    if spec.baseline is not None and spec.baseline not in ours:
        raise InputError(f"{path}: key 'baseline': expected the id of a reproduced row, got {spec.baseline!r}")
    for row in rows:
        if set(row.paper) - col_ids:
            raise InputError(f"{path}: row {row.id!r}: paper numbers for unknown columns {sorted(set(row.paper) - col_ids)}")
        if set(row.runs) - slots:
            raise InputError(f"{path}: row {row.id!r}: runs for unknown slots {sorted(set(row.runs) - slots)}")
        if row.baseline is not None and row.baseline not in ours:
            raise InputError(f"{path}: row {row.id!r}: key 'baseline': expected the id of a reproduced row, "
                             f"got {row.baseline!r}")
    if path.stem != spec.id:
        raise InputError(f"{path}: id {spec.id!r} must equal the file name")
    return spec


def all_table_specs(tables_dir: str | Path = TABLES_DIR) -> list[TableSpec]:
    return [load_table_spec(p) for p in sorted(Path(tables_dir).glob("*.json")) if p.name != CLAIMS_FILE]
