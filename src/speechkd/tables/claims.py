"""The papers' claims (configs/tables/claims.json), judged over the seeds of a profile's runs.

A claim compares side a with side b by a relation: ">" (a better than b), ">=" (a at least as good) or "≈" (the same).
A side is rows of the claim's tables; `minus` rows make it a gain over them (e.g. AM-PT's gain over +FT-KD);
`columns` narrows it to some columns (default: the claim's `columns`, or every column); `run_suffix` reads its
`rows` trained under <run><suffix> (a variant no table prints, e.g. FT-KD with KL instead of the code's L1).

The rule (VERDICT_RULE, printed in the report):
- per seed k, a side's value is the mean over its cells (tables × columns × rows; minus the mean of its `minus`
  rows) at seed k, so a claim pooled over several tables or columns averages their per-seed differences; a seed
  counts for a side only when every one of its cells has that seed;
- a (table, column) with no finished run for some cell the claim reads there is left out (listed as not run);
- difference = mean of a's per-seed values − mean of b's, with Welch's standard error SE (render.mean_difference);
  "better" follows the tables' higher_is_better;
- ">": holds when the difference is in the claimed direction by more than 2 SE, does not hold when against it by
  more than 2 SE, within noise otherwise. ">=": holds unless against it by more than 2 SE. "≈": holds when
  |difference| <= 2 SE, does not hold otherwise;
- a side with a single seed has no noise estimate: the verdict says so and gives the raw direction.
The paper's evidence is the same computation on the paper's numbers (one value per side, over the same cells).
"""
from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .render import TableResult, csv_number, fmt, mean_difference, md_escape
from .spec import Column

RELATIONS = (">", ">=", "≈")
CSV_FIELDS = ("claim", "statement", "relation", "verdict", "a", "a_mean", "a_std", "a_n", "a_seeds", "b", "b_mean",
              "b_std", "b_n", "b_seeds", "difference", "se", "paper_a", "paper_b", "paper_difference", "cells",
              "not_run")
VERDICT_RULE = (
    "Per seed, a side's value is the mean of its cells (the claim's tables, columns and rows; a side with `minus` "
    "rows is a gain over them), so a claim spanning several tables or columns averages their per-seed "
    "differences; a table column with an unfinished cell is left out. Difference = mean of side a − mean of "
    "side b over seeds, ± its Welch standard error SE = √(s_a²/n_a + s_b²/n_b). \">\": **holds** when the "
    "difference is in the claimed direction by more than 2 SE, **does not hold** when against it by more than "
    "2 SE, **within noise** otherwise; \">=\": holds unless against it by more than 2 SE; \"≈\": holds when "
    "|difference| ≤ 2 SE, does not hold otherwise. With 1 seed there is no noise estimate: the verdict gives the "
    "raw direction only. Verdicts are reported as they come out: no row is tuned toward its claim.")


@dataclass(frozen=True)
class Side:
    label: str
    rows: list[str]
    minus: list[str] = field(default_factory=list)
    columns: list[str] | None = None
    run_suffix: str = ""


@dataclass(frozen=True)
class Claim:
    id: str
    claim: str
    paper: str
    where: str
    relation: str
    tables: list[str]
    a: Side
    b: Side
    columns: list[str] | None = None
    note: str = ""


def load_claims(path: str | Path, results: dict[str, TableResult]) -> list[Claim]:
    """The claims of `path`, checked against the table specs they name (results: table id -> its result)."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        items = raw["claims"]
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{e.lineno}:{e.colno}: invalid JSON ({e.msg})") from None
    except (KeyError, TypeError):
        raise InputError(f"{path}: expected an object with a 'claims' list") from None
    claims = []
    for i, item in enumerate(items):
        where = f"{path}: claims[{i}]" + (f" ({item['id']})" if isinstance(item, dict) and "id" in item else "")
        try:
            claim = Claim(**{**item, "a": Side(**item["a"]), "b": Side(**item["b"])})
        except (KeyError, TypeError) as e:
            raise InputError(f"{where}: malformed claim ({e})") from None
        _check(claim, results, where)
        claims.append(claim)
    return claims


def _check(claim: Claim, results: dict[str, TableResult], where: str) -> None:
    if claim.relation not in RELATIONS:
        raise InputError(f"{where}: key 'relation': expected one of {', '.join(RELATIONS)}, got {claim.relation!r}")
    unknown = [t for t in claim.tables if t not in results]
    if unknown or not claim.tables:
        raise InputError(f"{where}: key 'tables': expected table ids of the specs ({', '.join(results)}), "
                         f"got {claim.tables!r}")
    specs = [results[t].spec for t in claim.tables]
    if len({s.higher_is_better for s in specs}) > 1:
        raise InputError(f"{where}: key 'tables': the tables disagree on higher_is_better")
    for key, side in (("a", claim.a), ("b", claim.b)):
        for row in side.rows + side.minus:
            if not all(any(r.id == row and r.ours for r in s.rows) for s in specs):
                raise InputError(f"{where}: key '{key}': row {row!r} is not a reproduced row of every table "
                                 f"{claim.tables}")
        for col in (side.columns or claim.columns or []):
            if not any(c.id == col for s in specs for c in s.columns):
                raise InputError(f"{where}: key '{key}': column {col!r} is in none of the tables {claim.tables}")
        if not side.rows:
            raise InputError(f"{where}: key '{key}.rows': expected at least one row")


# ------------------------------------------------------------------------------------------ judging

@dataclass
class SideResult:
    side: Side
    per_seed: dict[int, float]  # seed -> the side's value at that seed
    paper: float | None

    @property
    def values(self) -> list[float]:
        return [self.per_seed[k] for k in sorted(self.per_seed)]

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) >= 2 else None


@dataclass
class ClaimResult:
    claim: Claim
    a: SideResult
    b: SideResult
    cells: list[str]    # "table/column" judged
    not_run: list[str]  # "table/column" left out: some cell the claim reads there has no finished run
    difference: float | None  # oriented: positive = a better than b
    se: float | None
    paper_difference: float | None
    verdict: str


@dataclass
class _Unit:
    result: TableResult
    column: Column
    # per side: (seed -> value of each `rows` cell, seed -> value of each `minus` cell) in this table column
    cells: dict[str, tuple[list[dict[int, float]], list[dict[int, float]]]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.result.spec.id}/{self.column.id}"

    def complete(self) -> bool:
        return all(values for rows, minus in self.cells.values() for values in rows + minus)


def judge(claim: Claim, results: dict[str, TableResult]) -> ClaimResult:
    units: dict[tuple[str, str], _Unit] = {}
    for key, side in (("a", claim.a), ("b", claim.b)):
        for tid in claim.tables:
            result = results[tid]
            for col in result.spec.columns:
                if col.id not in (side.columns or claim.columns or [col.id]):
                    continue
                unit = units.setdefault((tid, col.id), _Unit(result, col))
                spec = result.spec
                unit.cells[key] = ([result.seed_values(spec.row(r), col, side.run_suffix) for r in side.rows],
                                   [result.seed_values(spec.row(r), col) for r in side.minus])
    kept = [u for u in units.values() if u.complete()]
    a, b = (_side_result(key, side, kept or list(units.values()), bool(kept), claim)
            for key, side in (("a", claim.a), ("b", claim.b)))
    sign = 1.0 if results[claim.tables[0]].spec.higher_is_better else -1.0
    difference = se = None
    if a.values and b.values:
        difference, se = mean_difference(a.values, b.values)
        difference *= sign
    paper = None if a.paper is None or b.paper is None else sign * (a.paper - b.paper)
    n = min(len(a.values), len(b.values))
    return ClaimResult(claim, a, b, [u.name for u in kept], [u.name for u in units.values() if not u.complete()],
                       difference, se, paper, verdict(claim.relation, difference, se, n))


def _side_result(key: str, side: Side, units: list[_Unit], measured: bool, claim: Claim) -> SideResult:
    """The side's per-seed values over `units` (none when not `measured`) and its paper value over the same units."""
    mine = [u for u in units if key in u.cells]
    per_seed: dict[int, float] = {}
    if measured and mine:
        cells = [values for u in mine for values in u.cells[key][0] + u.cells[key][1]]
        seeds = set.intersection(*(set(v) for v in cells))
        for k in sorted(seeds):
            per_seed[k] = statistics.fmean(_gain_at(u.cells[key], k) for u in mine)
    paper = []
    for u in mine:
        spec = u.result.spec
        rows = [spec.row(r).paper.get(u.column.id) for r in side.rows]
        minus = [spec.row(r).paper.get(u.column.id) for r in side.minus]
        if all(x is not None for x in rows + minus):
            paper.append(statistics.fmean(rows) - (statistics.fmean(minus) if minus else 0.0))
    return SideResult(side, per_seed, statistics.fmean(paper) if paper else None)


def _gain_at(cells: tuple[list[dict[int, float]], list[dict[int, float]]], k: int) -> float:
    rows, minus = cells
    return statistics.fmean(v[k] for v in rows) - (statistics.fmean(v[k] for v in minus) if minus else 0.0)


def verdict(relation: str, difference: float | None, se: float | None, n: int) -> str:
    """`difference` is oriented (positive = side a better); n = the smaller side's number of seeds."""
    if difference is None:
        return "not run"
    if se is None or n < 2:
        if relation == "≈":
            raw = f"raw difference {fmt(difference, signed=True)}"
        elif difference > 0 or (relation == ">=" and difference == 0):
            raw = "raw direction as claimed"
        else:
            raw = "raw direction against the claim" if difference < 0 else "no raw difference"
        return f"1 seed: no noise estimate; {raw}"
    if relation == "≈":
        return "holds" if abs(difference) <= 2 * se else "does not hold"
    if difference < -2 * se:
        return "does not hold"
    if relation == ">=" or difference > 2 * se:
        return "holds"
    return "within noise"


# ------------------------------------------------------------------------------------------ rendering

def _side_text(s: SideResult) -> str:
    if s.mean is None:
        return "not run"
    return fmt(s.mean) + (f" ± {fmt(s.std)}" if s.std is not None else "") + f" (n={len(s.values)})"


def _paper_text(r: ClaimResult) -> str:
    if r.a.paper is None or r.b.paper is None:
        return "–"
    return f"{fmt(r.a.paper)} vs {fmt(r.b.paper)} ({fmt(r.paper_difference, signed=True)})"


def _difference_text(r: ClaimResult) -> str:
    if r.difference is None:
        return ""
    return fmt(r.difference, signed=True) + (f" ± {fmt(r.se)}" if r.se is not None else "")


def to_markdown(claims: list[ClaimResult]) -> list[str]:
    """The report's Claims section (its lines, without the heading)."""
    lines = [VERDICT_RULE, "", "Relation: a > b, a >= b or a ≈ b (a better than b, at least as good, the same). "
             "Paper = the same computation on the paper's numbers, over the cells judged here (over every cell "
             "while none is). Also in [claims.csv](claims.csv).", "",
             "| # | Claim | Paper: a vs b (difference) | Ours: a | Ours: b | Difference ± SE | Verdict |",
             "|---|---|---|---:|---:|---:|---|"]
    for i, r in enumerate(claims, 1):
        lines.append(f"| {i} | {md_escape(r.claim.claim)} | {_paper_text(r)} | {_side_text(r.a)} | "
                     f"{_side_text(r.b)} | {_difference_text(r)} | {r.verdict} |")
    lines.append("")
    for i, r in enumerate(claims, 1):
        c = r.claim
        text = (f"{i}. **{c.claim}** (`{c.id}`): a = {c.a.label}; b = {c.b.label}. Paper: {c.paper} ({c.where}). "
                f"Judged on: {', '.join(r.cells) or 'nothing yet'}.")
        if r.not_run:
            text += f" Not run: {', '.join(r.not_run)}."
        if c.note:
            text += f" {c.note}"
        lines.append(text)
    return lines


def to_csv(claims: list[ClaimResult]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for r in claims:
        writer.writerow({"claim": r.claim.id, "statement": r.claim.claim, "relation": r.claim.relation,
                         "verdict": r.verdict, "a": r.claim.a.label, "b": r.claim.b.label,
                         **{f"{k}_{field}": value for k, s in (("a", r.a), ("b", r.b)) for field, value in
                            (("mean", csv_number(s.mean)), ("std", csv_number(s.std)), ("n", len(s.values)),
                             ("seeds", " ".join(f"{seed}:{csv_number(v)}" for seed, v in sorted(s.per_seed.items()))))},
                         "difference": csv_number(r.difference), "se": csv_number(r.se),
                         "paper_a": csv_number(r.a.paper), "paper_b": csv_number(r.b.paper),
                         "paper_difference": csv_number(r.paper_difference), "cells": " ".join(r.cells),
                         "not_run": " ".join(r.not_run)})
    return out.getvalue()
