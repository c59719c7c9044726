"""Runs -> one paper table as Markdown, CSV and LaTeX, the paper's number beside the reproduced one.

Seeds. A row's run name `<name>` is seed 1; extra seeds are the runs `<name>_seed<k>` (k = 2, 3, ...) in the
same profile directory. A cell's reproduced value is the mean over every *finished* run (a `DONE` file) among
them, with the sample standard deviation when there are two or more; `runs` counts them. A cell with no finished
run is empty: nothing is ever filled in for a run that did not finish.

Δ = reproduced − paper, empty when either is missing. Rows with `ours: false` (the paper's comparison systems)
carry the paper's numbers only.
"""
from __future__ import annotations

import csv
import io
import json
import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .spec import Column, Row, TableSpec

_SEED_DIR = re.compile(r"^(?P<base>.+)_seed(?P<k>[0-9]+)$")
CSV_FIELDS = ("table", "row", "row_label", "column", "column_label", "metric", "ours", "paper", "reproduced",
              "std", "delta", "runs", "run_names")


# ------------------------------------------------------------------------------------------ collecting

def seed_runs(profile_dir: Path, name: str) -> list[str]:
    """`name` (seed 1) followed by every existing `name_seed<k>`, k >= 2, in seed order."""
    extra = []
    if profile_dir.is_dir():
        for p in profile_dir.glob(f"{glob_escape(name)}_seed*"):
            m = _SEED_DIR.match(p.name)
            if m and m["base"] == name and int(m["k"]) >= 2:
                extra.append((int(m["k"]), p.name))
    return [name] + [n for _, n in sorted(extra)]


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


def is_finished(run_dir: Path) -> bool:
    return (run_dir / "DONE").is_file()


def read_metrics(run_dir: Path) -> dict:
    """metrics.json of a finished run; a missing or malformed file is bad input (the message names it)."""
    path = run_dir / "metrics.json"
    try:
        metrics = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: missing, although the run has a DONE marker") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: malformed metrics ({e})") from None
    if not isinstance(metrics, dict):
        raise InputError(f"{path}: expected one flat JSON object, got {type(metrics).__name__}")
    return metrics


def metric_value(run_dir: Path, metrics: dict, key: str) -> float:
    value = metrics.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{run_dir / 'metrics.json'}: key '{key}' must be a finite number, got {value!r}")
    return float(value)


@dataclass
class Cell:
    row: Row
    column: Column
    paper: float | None
    values: list[float] = field(default_factory=list)
    run_names: list[str] = field(default_factory=list)  # the finished runs the values come from

    @property
    def reproduced(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) >= 2 else None

    @property
    def delta(self) -> float | None:
        r = self.reproduced
        return None if r is None or self.paper is None else r - self.paper


@dataclass
class TableResult:
    spec: TableSpec
    cells: dict[tuple[str, str], Cell]  # (row id, column id) -> cell
    finished: dict[Path, dict]  # every finished run directory the table read (table order) -> its metrics
    missing: list[str]  # run names (seed 1) with no finished run

    def cell(self, row: Row, column: Column) -> Cell:
        return self.cells[(row.id, column.id)]

    def ours(self) -> list[Row]:
        return [r for r in self.spec.rows if r.ours]


def collect(spec: TableSpec, profile_dir: str | Path) -> TableResult:
    profile_dir = Path(profile_dir)
    metrics_of: dict[str, dict | None] = {}  # run name -> metrics (None: not finished); each run read once

    def metrics(name: str) -> dict | None:
        if name not in metrics_of:
            run_dir = profile_dir / name
            metrics_of[name] = read_metrics(run_dir) if is_finished(run_dir) else None
        return metrics_of[name]

    cells, finished, missing = {}, {}, []
    for row in spec.rows:
        for col in spec.columns:
            cell = cells[(row.id, col.id)] = Cell(row, col, row.paper.get(col.id))
            name = row.run_for(col)
            if not row.ours or not name:
                continue
            for run in seed_runs(profile_dir, name):
                m = metrics(run)
                if m is not None:
                    cell.values.append(metric_value(profile_dir / run, m, col.metric))
                    cell.run_names.append(run)
                    finished[profile_dir / run] = m
            if not cell.values and name not in missing:
                missing.append(name)
    return TableResult(spec, cells, finished, missing)


# ------------------------------------------------------------------------------------------ formatting

def fmt(x: float | None, digits: int = 2, signed: bool = False) -> str:
    if x is None:
        return ""
    return f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"


def paper_text(x: float | None) -> str:
    """The published number as the spec writes it (10.0 stays 10.0, 99.25 stays 99.25)."""
    return "" if x is None else str(x)


def csv_number(x: float | None) -> str:
    return "" if x is None else repr(round(x, 6))  # drops float noise (52.00000000001), keeps the std


def to_csv(result: TableResult) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in result.spec.rows:
        for col in result.spec.columns:
            c = result.cell(row, col)
            writer.writerow({"table": result.spec.id, "row": row.id, "row_label": row.label, "column": col.id,
                             "column_label": col.label, "metric": col.metric, "ours": str(row.ours).lower(),
                             "paper": csv_number(c.paper), "reproduced": csv_number(c.reproduced),
                             "std": csv_number(c.std), "delta": csv_number(c.delta), "runs": len(c.values),
                             "run_names": " ".join(c.run_names)})
    return out.getvalue()


def _reproduced_text(c: Cell) -> str:
    if c.reproduced is None:
        return ""
    return fmt(c.reproduced) + (f" ± {fmt(c.std)} (n={len(c.values)})" if c.std is not None else "")


def to_markdown(result: TableResult, heading: str = "##") -> str:
    spec = result.spec
    head = ["System"] + [f"{c.label} {part}" for c in spec.columns for part in ("paper", "reproduced", "Δ")]
    lines = [f"{heading} {spec.title}", "",
             f"Metric: {spec.metric} ({'higher' if spec.higher_is_better else 'lower'} is better). "
             "paper = the published number, reproduced = mean ± sample std over seeds when n ≥ 2, "
             "Δ = reproduced − paper; empty = not reported / not run.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" + "---:|" * (len(head) - 1)]
    for row in spec.rows:
        cells = [md_escape("&emsp;" * row.indent + row.label) if row.indent else md_escape(row.label)]
        for col in spec.columns:
            c = result.cell(row, col)
            cells += [paper_text(c.paper), _reproduced_text(c), fmt(c.delta, signed=True)]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if result.missing:
        lines += ["Not finished yet: " + ", ".join(f"`{n}`" for n in result.missing), ""]
    lines.append(f"Source: {spec.source}")
    return "\n".join(lines) + "\n"


def md_escape(text: str) -> str:
    return text.replace("|", r"\|")


_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(text: str) -> str:
    return "".join(_TEX_SPECIAL.get(ch, ch) for ch in text)


def to_latex(result: TableResult) -> str:
    """A booktabs tabular (needs \\usepackage{booktabs}); \\input it inside a table environment."""
    spec, n = result.spec, len(result.spec.columns)
    lines = [f"% {tex_escape(spec.title)}", f"% Source: {tex_escape(spec.source)}",
             r"\begin{tabular}{l" + "rrr" * n + "}", r"\toprule",
             " & ".join([""] + [rf"\multicolumn{{3}}{{c}}{{{tex_escape(c.label)}}}" for c in spec.columns]) + r" \\",
             " ".join(rf"\cmidrule(lr){{{2 + 3 * i}-{4 + 3 * i}}}" for i in range(n)),
             " & ".join(["System"] + ["Paper", "Reproduced", r"$\Delta$"] * n) + r" \\", r"\midrule"]
    for row in spec.rows:
        cells = [r"\quad " * row.indent + tex_escape(row.label)]
        for col in spec.columns:
            c = result.cell(row, col)
            ours = fmt(c.reproduced) + (rf" $\pm$ {fmt(c.std)}" if c.std is not None else "")
            cells += [paper_text(c.paper), ours, fmt(c.delta, signed=True).replace("-", "$-$")]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"
