"""Where the ST stages find each other's outputs.

Stages refer to earlier runs by run NAME (e.g. data.prep_run = "st_prep_mustc"), resolved against the current
run's runs_dir and profile, so a whole pipeline moves with --set runs_dir=... (the smoke test runs in a temp dir).
External inputs (corpora, released checkpoints) are paths, taken relative to the config's data_root when relative.

Whether a run is current (DONE, and made from its upstream runs as they are now) is runs.Run.is_current, the
same rule for every stage of both methods.
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
