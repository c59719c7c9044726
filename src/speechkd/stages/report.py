"""report: render every paper table of a profile and the report that links them.

For each table spec (configs/tables/<table_id>.json) writes <out_dir>/<table_id>.md, .csv and .tex (render.py),
<table_id>_bars.png (each row's gain over its baseline row, paper and ours) and <table_id>_curves.png (training
curves of the runs behind the table, grouped by objective), then <out_dir>/claims.csv (the papers' claims of
configs/tables/claims.json judged over the seeds, claims.py) and <out_dir>/report.md: the claims, the models the
rows depend on (dependencies.py), the environment (date, git commit, versions, device), every table, the order of
the reproduced rows per column beside the paper's, the sacreBLEU signatures of the ST scores, and the runs that
have not finished. On the embedded profile the tables show gains over the baseline row instead of Δ = reproduced
− paper (meaningless on synthetic data; the CSV keeps it). Unfinished runs leave empty cells; rerun the command
when they are done.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ..config import option
from ..fileio import write_text_atomic
from ..runs import REPO_ROOT, provenance
from ..tables import claims as claims_mod
from ..tables import dependencies, plots
from ..tables.render import TableResult, collect, fmt, to_csv, to_latex, to_markdown
from ..tables.spec import CLAIMS_FILE, TABLES_DIR, all_table_specs

EMBEDDED_CAVEAT = ("**Synthetic data.** The embedded profile trains and tests on stand-in corpora the project "
                   "generates itself (espeak-ng speech, grammar text): its numbers are not comparable with the "
                   "paper's — only the ordering of the rows is, so the tables show each row's gain over its "
                   "baseline row beside the paper's gain.")


@dataclasses.dataclass
class Config:
    profile: str = option("embedded", "profile whose runs fill the tables: embedded or paper")
    runs_dir: str = option("runs", "root of all run directories (runs are read from <runs_dir>/<profile>/)")
    out_dir: str = option("", "where tables, plots and report.md go (default: results/<profile>)")
    tables_dir: str = option("", "directory of table specs and their claims.json (default: the bundled "
                                 "configs/tables)", path="dir")
    plots: bool = option(True, "draw the PNG plots (bars and training curves)")
    tables: list[str] = option([], "the tables this invocation ran (run_all.sh --only); the others are marked "
                                   "'not run' ([] = every table was run)")


def run(cfg: Config) -> Path:
    out = Path(cfg.out_dir or Path("results") / cfg.profile)
    profile_dir = Path(cfg.runs_dir) / cfg.profile
    tables_dir = Path(cfg.tables_dir or TABLES_DIR)
    specs = all_table_specs(tables_dir)
    results = [collect(spec, profile_dir) for spec in specs]  # read everything first: bad input fails early
    by_id = {r.spec.id: r for r in results}
    claims_path = tables_dir / CLAIMS_FILE
    judged = ([claims_mod.judge(c, by_id) for c in claims_mod.load_claims(claims_path, by_id)]
              if claims_path.is_file() else None)
    deps = dependencies.collect_dependencies(results, profile_dir, REPO_ROOT / "configs" / cfg.profile)
    delta = cfg.profile != "embedded"  # Δ = reproduced − paper means nothing on the synthetic data
    sections = []
    for result in results:
        tid = result.spec.id
        markdown = to_markdown(result, heading="#", delta=delta)
        if cfg.tables and tid not in cfg.tables:
            markdown += (f"\n**Not run**: this report comes from a run of {', '.join(cfg.tables)} only "
                         f"(run_all.sh --only); cells above are from earlier runs, if any.\n")
        write_text_atomic(out / f"{tid}.md", markdown)
        write_text_atomic(out / f"{tid}.csv", to_csv(result))
        write_text_atomic(out / f"{tid}.tex", to_latex(result, delta=delta))
        images = _plots(result, out) if cfg.plots else None
        section = _table_section(result, images, delta)
        if cfg.tables and tid not in cfg.tables:
            section = "**Not run in this invocation** (run_all.sh --only).\n\n" + section
        sections.append(section)
    if judged is not None:
        write_text_atomic(out / "claims.csv", claims_mod.to_csv(judged))
    report = out / "report.md"
    front = _claims_section(judged, claims_path) + ["", "## Models the rows depend on", ""]
    front += dependencies.to_markdown(deps) + [""]
    write_text_atomic(report, _report(cfg, profile_dir, results, sections, front))
    print(f"[report] {len(results)} tables -> {report}")
    return report


def _plots(result: TableResult, out: Path) -> list[str]:
    """Draw the table's plots; a plot with nothing to show is removed rather than left stale."""
    images = []
    for suffix, draw in (("bars", plots.plot_bars), ("curves", plots.plot_curves)):
        path = out / f"{result.spec.id}_{suffix}.png"
        if draw(result, path):
            images.append(path.name)
        else:
            path.unlink(missing_ok=True)
    return images


# ------------------------------------------------------------------------------------------ sections

def _claims_section(judged: list | None, claims_path: Path) -> list[str]:
    lines = ["## Claims", ""]
    if judged is None:
        return lines + [f"None: no claims file `{claims_path.name}` beside the table specs."]
    return lines + claims_mod.to_markdown(judged)


def _table_section(result: TableResult, images: list[str] | None, delta: bool) -> str:
    tid = result.spec.id
    lines = [to_markdown(result, heading="##", delta=delta),
             f"Files: [{tid}.md]({tid}.md) · [{tid}.csv]({tid}.csv) · [{tid}.tex]({tid}.tex)", "",
             "### Row ordering", ""] + row_ordering(result) + [""]
    for name in images or []:
        lines += [f"![{name}]({name})", ""]
    if images == []:
        lines += ["No plots: no run of this table has finished.", ""]
    return "\n".join(lines)


def row_ordering(result: TableResult) -> list[str]:
    """Per column, the reproduced rows best first, each with its paper number, and how many row pairs keep the
    paper's order — so a reader sees which of the paper's comparisons hold here, without us asserting any."""
    spec, lines = result.spec, []
    for col in spec.columns:
        cells = [result.cell(r, col) for r in result.ours() if result.cell(r, col).reproduced is not None]
        if not cells:
            lines.append(f"- {col.label}: nothing reproduced yet")
            continue
        ranked = sorted(cells, key=lambda c: c.reproduced, reverse=spec.higher_is_better)
        text = f"{ranked[0].row.label} {_with_paper(ranked[0])}"
        for prev, c in zip(ranked, ranked[1:]):
            sign = "=" if fmt(prev.reproduced) == fmt(c.reproduced) else (">" if spec.higher_is_better else "<")
            text += f" {sign} {c.row.label} {_with_paper(c)}"
        agree, pairs = _concordant_pairs(cells)
        lines.append(f"- {col.label}: {text}; row pairs in the paper's order: {agree} of {pairs}")
    return lines


def _with_paper(c) -> str:
    return f"{fmt(c.reproduced)} (paper {c.paper if c.paper is not None else '–'})"


def _concordant_pairs(cells: list) -> tuple[int, int]:
    """Row pairs whose reproduced values are ordered as their paper values (pairs tied in the paper skipped)."""
    agree = pairs = 0
    with_paper = [c for c in cells if c.paper is not None]
    for i, a in enumerate(with_paper):
        for b in with_paper[i + 1:]:
            if a.paper == b.paper:
                continue
            pairs += 1
            agree += (a.paper - b.paper) * (a.reproduced - b.reproduced) > 0
    return agree, pairs


def environment_block() -> list[str]:
    """The machine and code that rendered the report (runs.provenance: the same facts every run records)."""
    p = provenance()
    git = p["git"]
    packages = ", ".join(f"{k} {v}" for k, v in p["packages"].items() if v)
    return ["```",
            f"date:      {p['date']}",
            f"git:       {git['commit']}{' (dirty: uncommitted changes)' if git['dirty'] else ''}",
            f"python:    {p['python']}",
            f"torch:     {p['packages'].get('torch')} (CUDA {p['cuda'] or 'none'})",
            f"device:    {p['device']}" + (f" x{p['gpus']}" if p.get("gpus") else ""),
            f"cpus:      {p['cpus']} (torch threads {p['torch_threads']})",
            f"platform:  {p['platform']}",
            f"packages:  {packages}",
            "```"]


def sacrebleu_signatures(results: list[TableResult]) -> list[str]:
    """Every distinct `*_signature` value in the finished runs' metrics, with the tables it scored."""
    found: dict[tuple[str, str], list[str]] = {}
    for result in results:
        for metrics in result.finished.values():
            for key, value in metrics.items():
                if key.endswith("_signature") and isinstance(value, str):
                    tables = found.setdefault((key, value), [])
                    if result.spec.id not in tables:
                        tables.append(result.spec.id)
    return [f"- `{key}`: `{value}` ({', '.join(tables)})" for (key, value), tables in sorted(found.items())]


def _report(cfg: Config, profile_dir: Path, results: list[TableResult], sections: list[str], front: list[str]
            ) -> str:
    lines = [f"# speechkd results: profile `{cfg.profile}`", ""]
    if cfg.profile == "embedded":
        lines += [EMBEDDED_CAVEAT, ""]
    lines += [f"Runs read from `{profile_dir}`. Regenerate with `speechkd report --set profile={cfg.profile}`.", ""]
    lines += front + ["## Environment", ""] + environment_block() + ["", "## Tables", ""]
    lines += [f"- [{r.spec.title}](#{r.spec.id}) — [{r.spec.id}.md]({r.spec.id}.md)" for r in results]
    lines.append("")
    for result, section in zip(results, sections):
        lines += [f'<a id="{result.spec.id}"></a>', "", section]
    signatures = sacrebleu_signatures(results)
    lines += ["## sacreBLEU signatures", ""] + (signatures or ["None: no finished run reported a signature."])
    missing = [(r.spec.id, name) for r in results for name in r.missing]
    lines += ["", "## Runs not finished", ""]
    lines += [f"- `{name}` ({tid})" for tid, name in missing] or ["None: every table cell has a finished run."]
    return "\n".join(lines) + "\n"
