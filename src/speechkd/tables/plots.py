"""PNG plots for the report: training curves of a table's runs grouped by objective, and bars of each row's gain
over its baseline row, the paper's beside ours on separate axes. Titles are the table id and what is plotted; the
paper's caption stays in the text.

matplotlib is imported lazily, with the Agg backend (no display on the machines that render reports).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError
from ..fileio import atomic_path
from .render import TableResult, gain_rows


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
    config = _run_config(run_dir).get("config")
    return config if isinstance(config, dict) else {}


def _run_config(run_dir: Path) -> dict:
    """config.json of a run: {"stage", "config", ...} ({} when there is none)."""
    path = run_dir / "config.json"
    if not path.is_file():
        return {}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict) or "config" not in raw:
            raise KeyError("config")
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise InputError(f"{path}: malformed run config ({e!r})") from None
    return raw


def objective(run_dir: Path) -> str:
    """What a training run minimises, so that runs whose losses are comparable share an axis: an ST run's
    criterion, an SLU fine-tuning run's CE with or without FT-KD, otherwise its stage."""
    config = _config(run_dir)
    criterion = config.get("criterion")
    if isinstance(criterion, dict) and criterion.get("name"):
        return f"criterion {criterion['name']}"
    if "ft_kd" in config:
        return "CE" if config["ft_kd"] == "none" else f"CE + FT-KD ({config['ft_kd']})"
    return str(_run_config(run_dir).get("stage", "unknown stage"))


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


def _grid(plt, n: int, width: float = 4.6, height: float = 3.4):
    cols = min(3, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    flat = [ax for line in axes for ax in line]
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def plot_curves(result: TableResult, path: Path) -> list[Path]:
    """Training loss against updates, one panel per objective (runs with the same loss share an axis: an FT-KD
    loss sits far above CE, word-KD's above NLL), and the checkpoint-selection metric (else the validation loss)
    in its own panel, one line per training run behind the table's finished runs. Returns the training runs
    plotted (none: no file written)."""
    logs: dict[Path, tuple[list[dict], list[dict]]] = {}
    for run_dir in result.finished:
        train_dir = training_run(run_dir)
        if train_dir is not None and train_dir not in logs:
            logs[train_dir] = read_train_log(train_dir / "train_log.jsonl")
    logs = {d: tv for d, tv in logs.items() if tv[0] or tv[1]}
    if not logs:
        return []
    groups: dict[str, list[Path]] = {}
    for run_dir in logs:
        groups.setdefault(objective(run_dir), []).append(run_dir)
    metric = next((m for _, v in logs.values() if (m := _best_metric(v))), None) or "valid_loss"
    panels = [(f"train loss: {name}", runs, "train", "loss") for name, runs in groups.items()]
    panels.append((f"validation: {metric}", list(logs), "valid", metric))
    plt = _pyplot()
    fig, axes = _grid(plt, len(panels))
    for ax, (title, runs, kind, key) in zip(axes, panels):
        for run_dir in runs:
            train, valid = logs[run_dir]
            records = train if kind == "train" else valid
            points = [(r["update"], r[key]) for r in records if isinstance(r.get(key), (int, float))]
            if points:
                ax.plot(*zip(*points), marker="." if kind == "valid" else None, linewidth=1, label=run_dir.name)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("update")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # the validation panel names every run: its legend goes beside it
            ax.legend(fontsize=6, **({"loc": "best"} if kind == "train" else
                                     {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0)}))
    fig.suptitle(f"{result.spec.id}: training curves", fontsize=10)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return list(logs)


def plot_bars(result: TableResult, path: Path) -> bool:
    """Each reproduced row's gain over its baseline row: per column, the paper's gains in one panel and ours in
    the panel below, each on its own y-axis (our gains on synthetic data are far smaller than the paper's);
    error bars = Welch standard error over seeds; bars coloured by baseline. False (no file) when no gain has been
    reproduced yet."""
    rows, columns = gain_rows(result), result.spec.columns
    gains = {(r.id, c.id): result.gain(r, c) for r in rows for c in columns}
    if not any(g is not None and g.ours is not None for g in gains.values()):
        return False
    plt = _pyplot()
    width = max(3.2, 0.45 * len(rows))
    fig, axes = plt.subplots(2, len(columns), figsize=(width * len(columns), 6.4), squeeze=False)
    baselines = list(dict.fromkeys(g.baseline.id for g in gains.values() if g))
    colours = {b: f"C{i}" for i, b in enumerate(baselines)}
    xs = list(range(len(rows)))
    for j, col in enumerate(columns):
        cells = [gains[(r.id, col.id)] for r in rows]
        colour = [colours[g.baseline.id] if g else "#999999" for g in cells]
        for i, (who, values, err) in enumerate((
                ("paper", [g.paper if g and g.paper is not None else float("nan") for g in cells], None),
                ("reproduced", [g.ours if g and g.ours is not None else float("nan") for g in cells],
                 [g.se or 0.0 if g else 0.0 for g in cells] if any(g and g.se is not None for g in cells) else None))):
            ax = axes[i][j]
            ax.bar(xs, values, yerr=err, color=colour, capsize=2, alpha=0.6 if who == "paper" else 1.0)
            ax.axhline(0.0, color="black", linewidth=0.8)
            ax.set_title(f"{col.label}: {who} gain", fontsize=9)
            ax.set_ylabel(f"Δ {result.spec.metric} vs baseline", fontsize=8)
            ax.set_xticks(xs, [r.label for r in rows] if who == "reproduced" else [""] * len(rows),
                          rotation=45, ha="right", fontsize=7)
            ax.grid(axis="y", alpha=0.3)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[b]) for b in baselines]
    axes[0][0].legend(handles, [f"vs {result.spec.row(b).label}" for b in baselines], fontsize=7, loc="best")
    fig.suptitle(f"{result.spec.id}: gain over the baseline row, paper (top) and ours (bottom)", fontsize=10)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return True
