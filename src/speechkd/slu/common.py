"""What every SLU stage shares: the data root, and references to the runs of earlier stages.

Stages refer to earlier stages by RUN NAME (resolved as <runs_dir>/<profile>/<name>, so `--set runs_dir=...`
moves a whole pipeline) and to external inputs (wavs, released checkpoints) by PATH, relative paths being
resolved against `data_root` (`--set data_root=DIR`: the paper configs hold paths relative to the directory
the real corpora and checkpoints were unpacked to).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from ..config import RunConfig, option
from ..errors import InputError


@dataclasses.dataclass
class SluRunConfig(RunConfig):
    data_root: str = option("", "directory that relative data and checkpoint paths are resolved against "
                                "('' = the working directory)", hashed=False)


def data_path(cfg: SluRunConfig, path: str) -> Path:
    """An external input path: absolute as given, relative ones under cfg.data_root."""
    p = Path(path)
    return p if p.is_absolute() or not cfg.data_root else Path(cfg.data_root) / p


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise InputError(f"{path}: {what} not found")
    return path


def run_dir(cfg: RunConfig, name: str) -> Path:
    return Path(cfg.runs_dir) / cfg.profile / name


def finished_run(cfg: RunConfig, name: str, stage: str, key: str) -> Path:
    """The directory of a finished earlier run (its DONE written by `stage`); `key` names the config field."""
    path = run_dir(cfg, name)
    done = path / "DONE"
    if not done.is_file():
        raise InputError(f"{key}: run '{name}' has not finished ({done} is missing); run the `speechkd {stage}` "
                         f"stage that writes it first")
    try:
        written_by = json.loads(done.read_text()).get("stage")
    except (OSError, ValueError):
        written_by = None
    if written_by not in (None, stage):
        raise InputError(f"{key}: run '{name}' was written by `speechkd {written_by}`, expected `speechkd {stage}`")
    return path


def one_of(cfg_section: object, key: str, *names: str) -> str:
    """Exactly one of the named string fields must be set; returns its name."""
    set_ = [n for n in names if getattr(cfg_section, n)]
    if len(set_) != 1:
        raise InputError(f"{key}: set exactly one of {', '.join(names)} (got {', '.join(set_) or 'none'})")
    return set_[0]
