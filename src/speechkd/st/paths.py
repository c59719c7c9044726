"""Where the ST stages find each other's outputs.

Stages refer to earlier runs by run NAME (e.g. data.prep_run = "st_prep_mustc"), resolved against the current
run's runs_dir and profile, so a whole pipeline moves with --set runs_dir=... (the smoke test runs in a temp dir).
External inputs (corpora, released checkpoints) are paths, taken relative to the config's data_root when relative.

A run records the DONE records of the runs it read (upstream.json): it counts as done only while they are
unchanged, and a rerun after an upstream run was redone starts afresh (the old directory is moved aside), so
retraining the expert or the ASR model retrains and re-evaluates everything made from it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputError


def run_dir(cfg: Any, name: str) -> Path:
    """<runs_dir>/<profile>/<name> of another run of the same profile."""
    return Path(cfg.runs_dir) / cfg.profile / name


def finished_run(cfg: Any, name: str, field: str) -> Path:
    """The directory of a finished (DONE) run, or an InputError naming the config field that points at it."""
    if not name:
        raise InputError(f"{field}: no run name given")
    path = run_dir(cfg, name)
    if not (path / "DONE").is_file():
        raise InputError(f"{field}: run '{name}' is not finished ({path}/DONE missing): run its stage first")
    return path


def run_config(path: Path) -> dict:
    """The resolved config (and stage) a run was started with: {"stage": ..., "config": {...}}."""
    try:
        return json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"{path}/config.json: cannot read the run's config ({e})") from None


def external(data_root: str, path: str) -> Path:
    """An external input path: as given when absolute (or when data_root is empty), else under data_root."""
    p = Path(path)
    return p if p.is_absolute() or not data_root else Path(data_root) / p


def require_file(path: Path, field: str, what: str) -> Path:
    if not path.is_file():
        raise InputError(f"{field}: {what} not found: {path}")
    return path


# metrics.json "references" of st-generate / st-eval / st-score runs of translation models: BLEU and chrF were
# scored against the corpus's own raw text (and the logs' T- lines hold it), not references rebuilt from token ids
RAW_REFERENCES = "raw"


# ------------------------------------------------------------------------------- upstream runs

UPSTREAM_FILE = "upstream.json"


def upstream_state(cfg: Any, names: list[str]) -> dict[str, str]:
    """The DONE record (config hash + finish time) of every run this run reads. A run is current only while they
    are unchanged: DONE alone compares this run's own config, not what its inputs were made from."""
    state = {}
    for name in names:
        if name:
            done = run_dir(cfg, name) / "DONE"
            state[name] = done.read_text(encoding="utf-8") if done.is_file() else ""
    return state


def is_current(run: Any, upstream: dict[str, str]) -> bool:
    """DONE with the same config AND made from the same upstream runs."""
    if not run.is_done():
        return False
    try:
        return json.loads((run.dir / UPSTREAM_FILE).read_text(encoding="utf-8")) == upstream
    except (OSError, ValueError):
        return False


def start_run(run: Any, upstream: dict[str, str]) -> None:
    """Run.start(), after moving aside a directory whose upstream runs have been redone since (a rerun of a
    changed prep or ASR run must retrain what was made from it, not resume or skip it)."""
    import shutil
    import sys
    from ..train import distributed
    recorded = run.dir / UPSTREAM_FILE
    if distributed.is_main() and run.dir.exists():  # the other ranks wait in run.start()'s barrier
        try:
            same = json.loads(recorded.read_text(encoding="utf-8")) == upstream
        except (OSError, ValueError):
            same = not (run.dir / "config.json").exists()  # nothing of a previous attempt to mix with
        if not same:
            aside = run.dir.with_name(f"{run.dir.name}.stale-upstream")
            shutil.rmtree(aside, ignore_errors=True)
            run.dir.rename(aside)
            print(f"[{run.stage}] an upstream run changed: previous run moved to {aside}", file=sys.stderr)
    run.start()
    if distributed.is_main():
        from ..fileio import write_json_atomic
        write_json_atomic(recorded, upstream)
