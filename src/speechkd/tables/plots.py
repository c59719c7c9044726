"""PNG plots for the report: training/validation curves of a table's runs, and paper vs reproduced bars.

matplotlib is imported lazily, with the Agg backend (no display on the machines that render reports).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError
from ..fileio import atomic_path
from .render import TableResult


# ------------------------------------------------------------------------------------------ train logs

def training_run(run_dir: Path) -> Path | None:
    """The run whose train_log.jsonl shows how a table run was trained: the run itself, or — for evaluation
    runs (st-eval) — the run its config's `model_run` names, followed until a run has a log."""
    seen: set[Path] = set()
    while run_dir not in seen:
        seen.add(run_dir)
        if (run_dir / "train_log.jsonl").is_file():
            return run_dir
        model_run = _config(run_dir).get("model_run")
        if not model_run:
            return None
        run_dir = run_dir.parent / model_run
    return None


def _config(run_dir: Path) -> dict:
    path = run_dir / "config.json"
    if not path.is_file():
        return {}
    try:
        config = json.loads(path.read_text(encoding="utf-8"))["config"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise InputError(f"{path}: malformed run config ({e!r})") from None
    return config if isinstance(config, dict) else {}


def read_train_log(path: Path) -> tuple[list[dict], list[dict]]:
    """(interval records, validation records) of a trainer's train_log.jsonl (see train/trainer.py): interval
    records carry `loss`, validation records `valid_*` plus `best_<metric>`. Event lines (checkpoint, resume) and
    a torn last line of a run still being written are skipped."""
    train, valid = [], []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(rec, dict) or "event" in rec or "update" not in rec:
            continue
        if any(k.startswith("valid_") for k in rec):
            valid.append(rec)
        elif "loss" in rec:
            train.append(rec)
    return train, valid


def _best_metric(valid: list[dict]) -> str | None:
    """The validation metric the trainer selected checkpoints by (the record's `best_<metric>` key)."""
    for rec in valid:
        for key in rec:
            if key.startswith("best_") and key != "best_epoch" and key[5:] in rec:
                return key[5:]
    return None


# ------------------------------------------------------------------------------------------ figures

def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def plot_curves(result: TableResult, path: Path) -> list[Path]:
    """Train loss, validation loss and the checkpoint-selection metric against updates, one line per training
    run behind the table's finished runs. Returns the training runs plotted (none: no file written)."""
    logs: dict[Path, tuple[list[dict], list[dict]]] = {}
    for run_dir in result.finished:
        train_dir = training_run(run_dir)
        if train_dir is not None and train_dir not in logs:
            logs[train_dir] = read_train_log(train_dir / "train_log.jsonl")
    logs = {d: tv for d, tv in logs.items() if tv[0] or tv[1]}
    if not logs:
        return []
    metric = next((m for _, v in logs.values() if (m := _best_metric(v)) and m != "valid_loss"), None)
    panels = [("train loss", "train", "loss"), ("valid loss", "valid", "valid_loss")]
    panels += [(metric, "valid", metric)] if metric else []
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
    for ax, (title, kind, key) in zip(axes[0], panels):
        for run_dir, (train, valid) in logs.items():
            records = train if kind == "train" else valid
            points = [(r["update"], r[key]) for r in records if isinstance(r.get(key), (int, float))]
            if points:
                ax.plot(*zip(*points), marker="." if kind == "valid" else None, linewidth=1, label=run_dir.name)
        if kind == "train" and all(y > 0 for line in ax.get_lines() for y in line.get_ydata()):
            ax.set_yscale("log")  # KD losses (e.g. FT-KD's L1 on logits) sit an order of magnitude above CE
        ax.set_title(title)
        ax.set_xlabel("update")
        ax.grid(alpha=0.3)
    for ax in axes[0]:  # one legend, on the first panel that has lines
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc="best")
            break
    fig.suptitle(result.spec.title, fontsize=9)
    _save(fig, path)
    plt.close(fig)
    return list(logs)


def plot_bars(result: TableResult, path: Path) -> bool:
    """Paper vs reproduced per row, one panel per column; error bars = sample std over seeds. False (no file)
    when nothing has been reproduced yet."""
    rows, columns = result.ours(), result.spec.columns
    if not any(result.cell(r, c).values for r in rows for c in columns):
        return False
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(columns), figsize=(max(4.0, 0.55 * len(rows)) * len(columns), 3.8),
                             squeeze=False)
    xs = range(len(rows))
    for ax, col in zip(axes[0], columns):
        cells = [result.cell(r, col) for r in rows]
        paper = [c.paper if c.paper is not None else float("nan") for c in cells]
        ours = [c.reproduced if c.reproduced is not None else float("nan") for c in cells]
        err = [c.std or 0.0 for c in cells] if any(c.std is not None for c in cells) else None
        ax.bar([x - 0.2 for x in xs], paper, width=0.4, label="paper", color="#9e9e9e")
        ax.bar([x + 0.2 for x in xs], ours, width=0.4, yerr=err, label="reproduced", color="#1f77b4", capsize=2)
        ax.set_xticks(list(xs), [r.label for r in rows], rotation=45, ha="right", fontsize=7)
        ax.set_title(col.label)
        ax.set_ylabel(result.spec.metric)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(result.spec.title, fontsize=9)
    _save(fig, path)
    plt.close(fig)
    return True
