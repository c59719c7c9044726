"""The paper profile end to end, as a real user runs it: `./run_all.sh --profile paper --data-root DIR` on a tiny
data root in the real published layouts with checkpoints in the released files' formats (tests/paper_smoke/
make_root.py), scaled down by `--scale smoke` (caps on epochs, updates, sizes and batch; every other
hyperparameter is the paper config's). Under 1 process every stage of both pipelines runs and all four tables
fill; `--only fsc` and `--only mustc` each run alone, under 2 processes (torchrun, gloo on CPU), which covers
every training-stage kind of the paper profile: SLU text / PT-KD / AM-PT / fine-tuning with FT-KD, ST ASR and
students with word-KD and ImitKD."""
from __future__ import annotations

import csv
import os
import subprocess
from pathlib import Path

import pytest
import torch.distributed

from support.make_root import make_root  # noqa: E402

from speechkd.train.checkpoint import load_checkpoint  # noqa: E402
from support.paths import REPO

TABLES = ("slu_table2_fsc", "slu_table3_snips", "st_mustc", "st_covost2")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return make_root(tmp_path_factory.mktemp("paper_data"))


def run_all(out: Path, data_root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    cmd = [str(REPO / "run_all.sh"), "--profile", "paper", "--data-root", str(data_root), "--scale", "smoke",
           "--stage", "1", "--runs-dir", str(out / "runs"), "--results-dir", str(out / "results"), *args]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}"
    return proc


def table_cells(results: Path, table: str) -> list[dict[str, str]]:
    """The rows of our systems (the paper's comparison systems have no runs)."""
    with open(results / f"{table}.csv", encoding="utf-8") as f:
        return [row for row in csv.DictReader(f) if row["ours"] == "true"]


def assert_filled(results: Path, table: str) -> None:
    cells = table_cells(results, table)
    empty = [f"{c['row']}/{c['column']}" for c in cells if c["reproduced"] == ""]
    assert cells and not empty, f"{table}: empty cells {empty}"


def test_the_paper_profile_runs_every_stage_and_fills_every_table(tmp_path, data_root):
    run_all(tmp_path, data_root)
    results = tmp_path / "results"
    for table in TABLES:
        assert_filled(results, table)
    # every BLEU comes from the corpora's raw references, with sacreBLEU's signature
    for table in ("st_mustc", "st_covost2"):
        for cell in table_cells(results, table):
            for run in cell["run_names"].split(";"):
                metrics = (tmp_path / "runs" / "paper" / run / "metrics.json").read_text()
                assert '"references": "raw"' in metrics and '"bleu_signature": "nrefs:1|' in metrics, run


two_processes = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="torch.distributed with the gloo backend is not available in this torch build")


@two_processes
@pytest.mark.parametrize("part, filled, others", [
    ("fsc", "slu_table2_fsc", ("slu_table3_snips", "st_mustc", "st_covost2")),
    ("mustc", "st_mustc", ("slu_table2_fsc", "slu_table3_snips", "st_covost2")),
])
def test_one_part_alone_under_two_processes(tmp_path, data_root, part, filled, others):
    # the other corpora are not even there: only what the part reads is checked and read
    partial = tmp_path / "data"
    keep = {"fsc": ("fsc", "librispeech", "checkpoints"), "mustc": ("mustc", "wmt19.en-de.joined-dict.ensemble")}
    partial.mkdir()
    for name in keep[part]:
        (partial / name).symlink_to(data_root / name)
    run_all(tmp_path, partial, "--only", part, "--gpus", "2")
    results = tmp_path / "results"
    assert_filled(results, filled)
    for table in others:
        assert all(c["reproduced"] == "" for c in table_cells(results, table)), table
        assert "**Not run**" in (results / f"{table}.md").read_text()
    trained = {"fsc": ("slu_text_fsc", "slu_ptkd", "slu_ampt", "slu_fsc_full_ftkd", "slu_fsc_10pct_da"),
               "mustc": ("asr_mustc", "st_mustc_rnn_kd", "st_mustc_transformer_imitkd_full")}[part]
    for run in trained:  # each was trained by 2 processes (the trainer records the world size it ran with)
        ckpt = load_checkpoint(tmp_path / "runs" / "paper" / run / "checkpoints" / "checkpoint_last.pt")
        assert ckpt["world_size"] == 2, run
