"""Runs -> one paper table as Markdown, CSV and LaTeX, the paper's number beside the reproduced one.

Seeds. A row's run name `<name>` is seed 1; extra seeds are the runs `<name>_seed<k>` (k = 2, 3, ...) in the
same profile directory. A cell's reproduced value is the mean over every *finished* run (a `DONE` file) among
them, with the sample standard deviation when there are two or more; `runs` counts them. A cell with no finished
run is empty: nothing is ever filled in for a run that did not finish.

Gain = a reproduced row minus its baseline row (spec.baseline_of), for the paper's numbers and ours alike: on the
synthetic embedded data only gains can be set beside the paper's, so its tables show gains, not Δ. Our gain is
the difference of the two rows' seed means, with the Welch standard error when both rows have n ≥ 2 seeds
(mean_difference; the claims use the same rule). Δ = reproduced − paper, empty when either is missing; the CSV
always carries it, the paper profile's tables show it. Rows with `ours: false` (the paper's comparison systems)
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
              "std", "delta", "runs", "run_names", "baseline", "paper_gain", "gain", "gain_se")


# ------------------------------------------------------------------------------------------ collecting

def seed_runs(profile_dir: Path, name: str) -> list[tuple[int, str]]:
    """(1, `name`) followed by (k, `name_seed<k>`) for every existing one, k >= 2, in seed order."""
    extra = []
    if profile_dir.is_dir():
        for p in profile_dir.glob(f"{glob_escape(name)}_seed*"):
            m = _SEED_DIR.match(p.name)
            if m and m["base"] == name and int(m["k"]) >= 2:
                extra.append((int(m["k"]), p.name))
    return [(1, name)] + sorted(extra)


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


def mean_difference(a: list[float], b: list[float]) -> tuple[float, float | None]:
    """mean(a) − mean(b) and its standard error by Welch, sqrt(s_a²/n_a + s_b²/n_b) (None: a side has < 2 values,
    so there is no noise estimate)."""
    diff = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return diff, None
    return diff, math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))


@dataclass
class Cell:
    row: Row
    column: Column
    paper: float | None
    values: list[float] = field(default_factory=list)
    run_names: list[str] = field(default_factory=list)  # the finished runs the values come from
    seeds: list[int] = field(default_factory=list)  # the seed of each value

    @property
    def by_seed(self) -> dict[int, float]:
        return dict(zip(self.seeds, self.values))

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
class Gain:
    """A row minus its baseline row in one column: the paper's, ours (seed means) and its Welch standard error."""
    baseline: Row
    paper: float | None
    ours: float | None
    se: float | None


@dataclass
class TableResult:
    spec: TableSpec
    cells: dict[tuple[str, str], Cell]  # (row id, column id) -> cell
    finished: dict[Path, dict]  # every finished run directory the table read (table order) -> its metrics
    missing: list[str]  # run names (seed 1) with no finished run
    profile_dir: Path = Path()

    def cell(self, row: Row, column: Column) -> Cell:
        return self.cells[(row.id, column.id)]

    def ours(self) -> list[Row]:
        return [r for r in self.spec.rows if r.ours]

    def gain(self, row: Row, column: Column) -> Gain | None:
        """None for comparison systems, tables without a baseline, and the baseline row itself."""
        base = self.spec.baseline_of(row)
        if base is None or base.id == row.id:
            return None
        c, b = self.cell(row, column), self.cell(base, column)
        paper = None if c.paper is None or b.paper is None else c.paper - b.paper
        ours, se = mean_difference(c.values, b.values) if c.values and b.values else (None, None)
        return Gain(base, paper, ours, se)

    def seed_values(self, row: Row, column: Column, run_suffix: str = "") -> dict[int, float]:
        """seed -> value of a cell; with `run_suffix`, of the same row trained under the name <run><suffix> (a
        variant the table does not print, e.g. FT-KD with KL instead of the code's L1)."""
        if not run_suffix:
            return self.cell(row, column).by_seed
        name = row.run_for(column)
        if not row.ours or not name:
            return {}
        cell = Cell(row, column, None)
        _fill(cell, self.profile_dir, name + run_suffix, {}, {})
        return cell.by_seed


def _fill(cell: Cell, profile_dir: Path, name: str, metrics_of: dict[str, dict | None], finished: dict) -> None:
    """The cell's values from every finished seed of run `name` (metrics_of: run -> metrics or None, read once)."""
    for seed, run in seed_runs(profile_dir, name):
        if run not in metrics_of:
            run_dir = profile_dir / run
            metrics_of[run] = read_metrics(run_dir) if is_finished(run_dir) else None
        m = metrics_of[run]
        if m is not None:
            cell.values.append(metric_value(profile_dir / run, m, cell.column.metric))
            cell.run_names.append(run)
            cell.seeds.append(seed)
            finished[profile_dir / run] = m


def collect(spec: TableSpec, profile_dir: str | Path) -> TableResult:
    profile_dir = Path(profile_dir)
    metrics_of: dict[str, dict | None] = {}
    cells, finished, missing = {}, {}, []
    for row in spec.rows:
        for col in spec.columns:
            cell = cells[(row.id, col.id)] = Cell(row, col, row.paper.get(col.id))
            name = row.run_for(col)
            if not row.ours or not name:
                continue
            _fill(cell, profile_dir, name, metrics_of, finished)
            if not cell.values and name not in missing:
                missing.append(name)
    return TableResult(spec, cells, finished, missing, profile_dir)


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
            c, g = result.cell(row, col), result.gain(row, col)
            writer.writerow({"table": result.spec.id, "row": row.id, "row_label": row.label, "column": col.id,
                             "column_label": col.label, "metric": col.metric, "ours": str(row.ours).lower(),
                             "paper": csv_number(c.paper), "reproduced": csv_number(c.reproduced),
                             "std": csv_number(c.std), "delta": csv_number(c.delta), "runs": len(c.values),
                             "run_names": " ".join(c.run_names), "baseline": g.baseline.id if g else "",
                             "paper_gain": csv_number(g.paper) if g else "", "gain": csv_number(g.ours) if g else "",
                             "gain_se": csv_number(g.se) if g else ""})
    return out.getvalue()


def _reproduced_text(c: Cell) -> str:
    if c.reproduced is None:
        return ""
    return fmt(c.reproduced) + (f" ± {fmt(c.std)} (n={len(c.values)})" if c.std is not None else "")


def gain_text(g: Gain | None, ours: bool = True) -> str:
    if g is None:
        return ""
    if not ours:
        return fmt(g.paper, signed=True)
    return fmt(g.ours, signed=True) + (f" ± {fmt(g.se)}" if g.se is not None else "")


def gain_rows(result: TableResult) -> list[Row]:
    """The reproduced rows that have a gain (every one but the baselines)."""
    return [r for r in result.ours() if any(result.gain(r, c) for c in result.spec.columns)]


def to_markdown(result: TableResult, heading: str = "##", delta: bool = True) -> str:
    """The table with the paper's number beside ours (and Δ when `delta`), then each reproduced row's gain over
    its baseline row, paper beside ours."""
    spec = result.spec
    parts = ("paper", "reproduced", "Δ") if delta else ("paper", "reproduced")
    head = ["System"] + [f"{c.label} {part}" for c in spec.columns for part in parts]
    lines = [f"{heading} {spec.title}", "",
             f"Metric: {spec.metric} ({'higher' if spec.higher_is_better else 'lower'} is better). "
             "paper = the published number, reproduced = mean ± sample std over seeds when n ≥ 2"
             + (", Δ = reproduced − paper" if delta else "") + "; empty = not reported / not run.", ""]
    if spec.paper_caption:
        lines += [f"Paper's caption: “{spec.paper_caption}”", ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" + "---:|" * (len(head) - 1)]
    for row in spec.rows:
        cells = [_row_label(row)]
        for col in spec.columns:
            c = result.cell(row, col)
            cells += [paper_text(c.paper), _reproduced_text(c)] + ([fmt(c.delta, signed=True)] if delta else [])
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    rows = gain_rows(result)
    if rows:
        head = ["System", "baseline"] + [f"{c.label} {part}" for c in spec.columns for part in ("paper", "reproduced")]
        lines += [f"{heading}# Gain over the baseline row", "",
                  "Each row minus its baseline row, in the paper and here (our gain: difference of the seed means, "
                  "± its Welch standard error when both rows have n ≥ 2 seeds).", "",
                  "| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
        for row in rows:
            gains = [result.gain(row, col) for col in spec.columns]
            base = next(g.baseline for g in gains if g)
            cells = [_row_label(row), md_escape(base.label)]
            for g in gains:
                cells += [gain_text(g, ours=False), gain_text(g)]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if result.missing:
        lines += ["Not finished yet: " + ", ".join(f"`{n}`" for n in result.missing), ""]
    lines.append(f"Source: {spec.source}")
    return "\n".join(lines) + "\n"


def _row_label(row: Row) -> str:
    return md_escape("&emsp;" * row.indent + row.label) if row.indent else md_escape(row.label)


def md_escape(text: str) -> str:
    return text.replace("|", r"\|")


_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def tex_escape(text: str) -> str:
    return "".join(_TEX_SPECIAL.get(ch, ch) for ch in text)


def _tex_number(text: str) -> str:
    return text.replace("-", "$-$").replace("±", r"$\pm$")


def to_latex(result: TableResult, delta: bool = True) -> str:
    """A booktabs tabular (needs \\usepackage{booktabs}); \\input it inside a table environment. Per column: paper,
    reproduced, Δ (when `delta`), and the paper's and our gain over the row's baseline."""
    spec = result.spec
    parts = ["Paper", "Reproduced"] + ([r"$\Delta$"] if delta else []) + ["Gain paper", "Gain ours"]
    k, n = len(parts), len(spec.columns)
    lines = [f"% {tex_escape(spec.title)}", f"% Source: {tex_escape(spec.source)}",
             r"\begin{tabular}{l" + "r" * k * n + "}", r"\toprule",
             " & ".join([""] + [rf"\multicolumn{{{k}}}{{c}}{{{tex_escape(c.label)}}}" for c in spec.columns]) + r" \\",
             " ".join(rf"\cmidrule(lr){{{2 + k * i}-{1 + k * (i + 1)}}}" for i in range(n)),
             " & ".join(["System"] + parts * n) + r" \\", r"\midrule"]
    for row in spec.rows:
        cells = [r"\quad " * row.indent + tex_escape(row.label)]
        for col in spec.columns:
            c, g = result.cell(row, col), result.gain(row, col)
            ours = fmt(c.reproduced) + (f" ± {fmt(c.std)}" if c.std is not None else "")
            cells += [paper_text(c.paper), _tex_number(ours)]
            cells += [_tex_number(fmt(c.delta, signed=True))] if delta else []
            cells += [_tex_number(gain_text(g, ours=False)), _tex_number(gain_text(g))]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"
