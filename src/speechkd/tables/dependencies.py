"""The models every table row depends on (a spec's `depends_on`): text teacher, ASR, NMT expert, pre-training runs.

Each entry reads one metric of one run's metrics.json (seed 1: these runs are not seeded). A run the profile has no
config for is either replaced by a released checkpoint (the entry's `released`, as the paper profile does for the
WMT19 expert and VQ-BERT) or does not exist in that profile; a configured run without a DONE marker is not finished.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from .render import TableResult, fmt, is_finished, md_escape, paper_text, read_metrics
from .spec import Dependency


@dataclass
class DependencyResult:
    dependency: Dependency
    tables: list[str]
    value: float | None
    status: str  # the value as text, or why there is none


def collect_dependencies(results: list[TableResult], profile_dir: Path, profile_configs: Path
                         ) -> list[DependencyResult]:
    """One entry per (run, metric) over all tables, in table order; profile_configs = configs/<profile>."""
    found: dict[tuple[str, str], DependencyResult] = {}
    for result in results:
        for dep in result.spec.depends_on:
            key = (dep.run, dep.metric)
            if key in found:
                if result.spec.id not in found[key].tables:
                    found[key].tables.append(result.spec.id)
                continue
            value, status = _read(dep, profile_dir, profile_configs)
            found[key] = DependencyResult(dep, [result.spec.id], value, status)
    return list(found.values())


def _read(dep: Dependency, profile_dir: Path, profile_configs: Path) -> tuple[float | None, str]:
    run_dir = profile_dir / dep.run
    if is_finished(run_dir):
        value = read_metrics(run_dir).get(dep.metric)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None, f"no number `{dep.metric}` in metrics.json"
        return float(value), fmt(float(value))
    configured = not profile_configs.is_dir() or any(profile_configs.glob(f"*/{dep.run}.json"))
    if configured:
        return None, "not finished"
    if dep.released:
        return None, f"released checkpoint `{dep.released}`"
    return None, "no such run in this profile"


def to_markdown(deps: list[DependencyResult]) -> list[str]:
    """The report's dependencies section (its lines, without the heading)."""
    if not deps:
        return ["None: no table spec names the models its rows depend on (`depends_on`)."]
    lines = ["The models the table rows are trained from or distilled from: a weak teacher or expert explains weak "
             "rows. Read from each run's metrics.json (seed 1).", "",
             "| Model | Run | Metric | Ours | Paper | Tables |", "|---|---|---|---:|---:|---|"]
    for d in deps:
        dep = d.dependency
        paper = (paper_text(dep.paper) or "–") + (f" ({md_escape(dep.note)})" if dep.note else "")
        lines.append(f"| {md_escape(dep.label)} | `{dep.run}` | `{dep.metric}` | {d.status} | {paper} | "
                     f"{', '.join(d.tables)} |")
    return lines
