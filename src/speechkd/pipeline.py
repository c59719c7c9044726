"""`speechkd pipeline {slu,st,all}`: every run of a profile, in dependency order, N at a time.

    speechkd pipeline all --profile embedded --jobs 2 --seeds 3
    speechkd pipeline st --profile paper --data-root /data --only '^(st_prep_mustc|asr_mustc.*|st_mustc_.*)$' --gpus 4

The runs are the configs in configs/<profile>/<method>/: each config says its own stage (its `$schema`), and a run
waits for the runs its run-reference fields name (option(run_ref=True): units_run, model_run, vq_bert.run, ...;
never a string that merely looks like a run name). A run that is current (DONE with this config, made from its
upstream runs as they are now) is skipped; an interrupted one resumes from its last checkpoint (the stage does
that itself). Among the runs that could start, the one heading the longest chain of runs still to do starts
first, so that the pool ends evenly. Training stages start through torchrun with --gpus N > 1.

--seeds K also trains every run a paper table names (and the model its evaluation reads) with seeds 2..K:
run <name>_seed<k> with seed=k, its run references to seeded runs pointing at their _seed<k> copies; the tables
average them.

Each run's output goes to <runs_dir>/<profile>/logs/<run>.log; the console gets one line as a run starts and one
as it ends, with its headline metric. Runs start as forks of one process that imported torch and every stage
(the standard library's multiprocessing forkserver, with set_forkserver_preload), unless --fresh-processes.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from .config import load_config, run_references
from .errors import InputError
from .runs import REPO_ROOT

METHODS = ("slu", "st")
TRAINING_STAGES = {"slu-mlm-pretrain", "slu-text-finetune", "slu-pt-kd", "slu-am-pretrain", "slu-finetune",
                   "st-train"}
# inference commands write an output file, no run directory: never current (a rerun takes seconds and rewrites it);
# the pipeline tells each where: out=<runs_dir>/<profile>/<config name>.tsv
INFERENCE_STAGES = {"slu-infer", "st-translate"}
# the metric the console shows for a finished run: the first of these its metrics.json has
HEADLINE = (("test_accuracy", "test acc", 1), ("test_bleu", "test BLEU", 1), ("valid_wer", "valid WER", 1),
            ("best_valid_accuracy", "valid acc", 1), ("greedy_valid_cer", "valid CER", 1),
            ("best_valid_loss", "best valid loss", 3), ("dict_units", "units", 0), ("seconds", "seconds", 1))


@dataclasses.dataclass
class PlannedRun:
    name: str                 # the run directory's name
    stage: str
    config: Path
    overrides: list[str]      # --set KEY=VALUE of this run
    deps: set[str] = dataclasses.field(default_factory=set)  # names of the runs it reads that are in the plan
    current: bool = False     # DONE with this config and made from its upstream runs as they are now

    def argv(self) -> list[str]:
        return [self.stage, "--config", str(self.config), *(a for kv in self.overrides for a in ("--set", kv))]


# ------------------------------------------------------------------------------------------------- the plan

def stage_of(config: Path) -> str:
    """The stage a config belongs to, from its `$schema` (configs/schemas/<stage>.schema.json)."""
    from .cli import STAGES
    from .config import read_json
    schema = str(read_json(config).get("$schema", ""))
    stage = Path(schema).name.removesuffix(".schema.json")
    if stage not in STAGES:
        raise InputError(f"{config}: key '$schema': expected ../../schemas/<stage>.schema.json naming a stage "
                         f"(one of {', '.join(STAGES)}), got {schema!r}")
    return stage


def seeded_runs(configs: dict[str, Path]) -> set[str]:
    """The runs a paper table names, and the model runs their evaluations read: those get seeds 2..K."""
    from .tables.spec import all_table_specs
    named = {run for spec in all_table_specs() for row in spec.rows for run in row.runs.values()}
    out = set()
    for name in named & set(configs):
        out.add(name)
        model = json.loads(configs[name].read_text(encoding="utf-8")).get("model_run")
        if model in configs:
            out.add(model)
    return out


def plan(profile: str, methods: Sequence[str], *, seeds: int = 1, only: str = ".", overrides: Sequence[str] = (),
         data_root: str = "", runs_dir: str = "runs", per_stage: dict[str, list[str]] | None = None
         ) -> list[PlannedRun]:
    """Every run of `methods` (configs/<profile>/<method>/*.json whose name matches `only`) with its overrides,
    dependencies and whether it is current, in config-file order (seed copies after their config)."""
    from .cli import _stage_module
    configs: dict[str, Path] = {}
    for method in methods:
        directory = REPO_ROOT / "configs" / profile / method
        if not directory.is_dir():
            raise InputError(f"--profile {profile}: no configs in {directory}")
        configs.update({p.stem: p for p in sorted(directory.glob("*.json"))})
    try:
        keep = re.compile(only)
    except re.error as e:
        raise InputError(f"--only {only!r}: not a regular expression ({e})") from None
    configs = {n: p for n, p in configs.items() if keep.search(n)}
    seeded = seeded_runs(configs)
    runs: list[PlannedRun] = []
    typed: dict[str, Any] = {}
    for name, path in configs.items():
        stage = stage_of(path)
        cls = _stage_module(stage).Config
        fields = {f.name for f in dataclasses.fields(cls)}
        base = [f"runs_dir={runs_dir}", *overrides, *(per_stage or {}).get(stage, [])]
        if data_root and "data_root" in fields:
            base.append(f"data_root={data_root}")
        if stage in INFERENCE_STAGES:  # the profile-wide --set (scale, ...) configure run directories it has none of
            base = [kv for kv in base if kv.split("=", 1)[0].split(".")[0] in fields]
            base.append(f"out={Path(runs_dir) / profile / name}.tsv")
        copies = [(name, [])] + [(f"{name}_seed{k}", [f"seed={k}", f"name={name}_seed{k}"])
                                 for k in range(2, seeds + 1) if name in seeded]
        for run_name, seed_sets in copies:
            cfg = load_config(cls, path, base + seed_sets)
            if seed_sets:  # a seeded run reads the same seed's copies of the seeded runs it names
                k = run_name.rsplit("_seed", 1)[1]
                extra = [f"{key}={value}_seed{k}" for key, value in run_references(cfg) if value in seeded]
                cfg = load_config(cls, path, base + seed_sets + extra)
                seed_sets = seed_sets + extra
            runs.append(PlannedRun(run_name, stage, path, base + seed_sets))
            typed[run_name] = cfg
    names = {r.name for r in runs}
    for r in runs:
        r.deps = {value for _, value in run_references(typed[r.name]) if value in names and value != r.name}
    _mark_current(runs, typed)
    return runs


def _mark_current(runs: list[PlannedRun], typed: dict[str, Any]) -> None:
    """Current = the stage would skip it (runs.Run.is_current: DONE with this config, made from its upstream runs
    as they are now), and no run it depends on is about to be redone."""
    from .runs import Run
    by_name = {r.name: r for r in runs}
    for r in runs:
        r.current = r.stage not in INFERENCE_STAGES and Run(typed[r.name], r.stage).is_current()
    changed = True
    while changed:
        changed = False
        for r in runs:
            if r.current and any(not by_name[d].current for d in r.deps):
                r.current, changed = False, True


def chain_lengths(runs: list[PlannedRun]) -> dict[str, int]:
    """For each run, the number of runs in the longest chain of pending runs that starts with it."""
    pending = {r.name: r for r in runs if not r.current}
    users: dict[str, list[str]] = {n: [] for n in pending}
    for r in pending.values():
        for d in r.deps & set(pending):
            users[d].append(r.name)
    memo: dict[str, int] = {}

    def length(name: str) -> int:
        if name not in memo:
            memo[name] = 1 + max((length(u) for u in users[name]), default=0)
        return memo[name]
    return {n: length(n) for n in pending}


# ---------------------------------------------------------------------------------------------- launching

def _preload() -> None:
    """What each run would import: loaded once in the fork server (multiprocessing's set_forkserver_preload)."""
    import importlib
    from . import cli
    for module, _ in cli.STAGES.values():
        importlib.import_module(module)
    import sacremoses  # noqa: F401  imported when scoring
    import torch._dynamo  # noqa: F401  torch.optim imports it at its first use: 1.2 s per process otherwise
    import torch.utils.tensorboard  # noqa: F401


def _child(argv: list[str], log: str, threads: int) -> None:
    """A run inside a fork of the server: output to its log, torch's thread count set (torch read
    OMP_NUM_THREADS when the server imported it), exit code = the stage's."""
    import torch
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    if threads:
        os.environ["OMP_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)
    sys.argv = [str(Path(sys.executable).parent / "speechkd"), *argv]  # what provenance.json records
    from .cli import main
    code = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)


class Launcher:
    """Starts one run and tells whether it has ended (exit code) or not (None)."""

    def __init__(self, gpus: int = 1, torchrun_args: str = "", threads: int = 0, forkserver: bool = True):
        self.gpus, self.torchrun_args, self.threads = gpus, torchrun_args, threads
        self.ctx = None
        if forkserver:
            self.ctx = multiprocessing.get_context("forkserver")
            self.ctx.set_forkserver_preload(["speechkd.pipeline_preload"])

    def start(self, run: PlannedRun, log: Path) -> Callable[[], int | None]:
        env = dict(os.environ)
        if self.threads:
            env["OMP_NUM_THREADS"] = str(self.threads)
        speechkd = shutil.which("speechkd") or str(Path(sys.executable).parent / "speechkd")
        if self.gpus > 1 and run.stage in TRAINING_STAGES:
            cmd = [shutil.which("torchrun") or "torchrun", f"--nproc_per_node={self.gpus}",
                   *self.torchrun_args.split(), speechkd, *run.argv()]
        elif self.ctx is None:
            cmd = [speechkd, *run.argv()]
        else:
            process = self.ctx.Process(target=_child, args=(run.argv(), str(log), self.threads))
            process.start()
            return lambda: process.exitcode
        with open(log, "ab") as out:
            popen = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)
        return popen.poll


def headline(run_dir: Path) -> str:
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    for key, label, digits in HEADLINE:
        value = metrics.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return f", {label} {value:.{digits}f}"
    return ""


def execute(runs: list[PlannedRun], run_root: Path, jobs: int, launcher: Launcher,
            echo: Callable[[str], None] = print) -> int:
    """Run the pending runs, up to `jobs` at a time; 0 when every one ended well, 1 otherwise."""
    logs = run_root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    for r in runs:
        if r.current:
            echo(f"  {r.name} ({r.stage}): current, skipped")
    priority = chain_lengths(runs)
    order = {r.name: i for i, r in enumerate(runs)}
    todo = sorted((r for r in runs if not r.current), key=lambda r: (-priority[r.name], order[r.name]))
    total, started, status = len(todo), 0, 0
    finished: set[str] = {r.name for r in runs if r.current}
    failed: set[str] = set()
    running: dict[str, tuple[Callable[[], int | None], float, str]] = {}
    while todo or running:
        for r in list(todo):
            if r.deps & failed:
                echo(f"  {r.name} ({r.stage}): not started, it needs {', '.join(sorted(r.deps & failed))}")
                failed.add(r.name)
                todo.remove(r)
                status = 1
            elif r.deps <= finished and len(running) < jobs:
                started += 1
                log = logs / f"{r.name}.log"
                log.unlink(missing_ok=True)
                tag = f"[{started}/{total}] {r.name}"
                echo(f"  {tag} ({r.stage}) started")
                running[r.name] = (launcher.start(r, log), time.monotonic(), tag)
                todo.remove(r)
        ended = [(n, code) for n, (poll, _, _) in running.items() if (code := poll()) is not None]
        if not ended:
            time.sleep(0.05)
            continue
        for name, code in ended:
            _, t0, tag = running.pop(name)
            seconds = time.monotonic() - t0
            if code == 0:
                finished.add(name)
                echo(f"  {tag}: done in {seconds:.0f} s{headline(run_root / name)}")
            else:
                failed.add(name)
                status = 1
                tail = (logs / f"{name}.log").read_text(encoding="utf-8", errors="replace").splitlines()[-20:]
                echo(f"  {tag}: FAILED (exit {code}) after {seconds:.0f} s; the end of {logs / (name + '.log')}:")
                for line in tail:
                    echo(f"      {line}")
    return status


# ------------------------------------------------------------------------------------------------- command

def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("method", choices=("slu", "st", "all"), help="which method's runs")
    p.add_argument("--profile", default="embedded", help="configs/<profile>/ (embedded or paper)")
    p.add_argument("--jobs", type=int, default=0, help="runs at a time (default 2 on embedded, 1 on paper); "
                   "with more than one, each run gets one intra-op thread")
    p.add_argument("--seeds", type=int, default=1, help="also train the table runs with seeds 2..K")
    p.add_argument("--only", default=".", help="keep the configs whose name matches this regex")
    p.add_argument("--data-root", default="", help="the paper corpora and checkpoints (data_root of every run)")
    p.add_argument("--runs-dir", default="runs", help="root of the run directories")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override in every run")
    p.add_argument("--units-corpora", default="", help="slu-units only_corpora, as JSON (run_all.sh --only)")
    p.add_argument("--gpus", type=int, default=1, help="> 1: training stages start through torchrun")
    p.add_argument("--torchrun-args", default="", help="extra torchrun arguments (several nodes)")
    p.add_argument("--fresh-processes", action="store_true",
                   help="start every run as a fresh `speechkd <stage>` process instead of a fork")
    p.add_argument("--dry-run", action="store_true", help="print the plan (order, dependencies) and exit")


def main(args: argparse.Namespace) -> int:
    if args.seeds < 1 or args.gpus < 1 or args.jobs < 0:
        raise InputError("--seeds and --gpus must be >= 1, --jobs >= 0")
    methods = METHODS if args.method == "all" else (args.method,)
    per_stage = {"slu-units": [f"only_corpora={args.units_corpora}"]} if args.units_corpora else {}
    runs = plan(args.profile, methods, seeds=args.seeds, only=args.only, overrides=args.set,
                data_root=args.data_root, runs_dir=args.runs_dir, per_stage=per_stage)
    if args.dry_run:
        for r in runs:
            print(f"{r.name}\t{r.stage}\t{'current' if r.current else 'pending'}\t{' '.join(sorted(r.deps))}")
        return 0
    jobs = args.jobs or (2 if args.profile == "embedded" else 1)
    launcher = Launcher(args.gpus, args.torchrun_args, threads=1 if jobs > 1 else 0,
                        forkserver=not args.fresh_processes)
    t0 = time.monotonic()
    status = execute(runs, Path(args.runs_dir) / args.profile, jobs, launcher,
                     echo=lambda line: print(line, flush=True))
    what = "every run ended well" if status == 0 else "some runs failed (see above)"
    print(f"--- pipeline {args.method} ({args.profile}): {what}, {time.monotonic() - t0:.0f} s", flush=True)
    return status
