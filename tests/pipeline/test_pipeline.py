"""speechkd pipeline: the plan (stage from each config's $schema, dependencies from typed run-reference fields,
seed copies) and the scheduler (dependency order, longest chain first, failures stop what depends on them)."""
from __future__ import annotations

import pytest

from speechkd.pipeline import PlannedRun, chain_lengths, execute, plan


@pytest.fixture(scope="module")
def embedded():
    return {r.name: r for r in plan("embedded", ("slu", "st"), seeds=2, runs_dir="/nonexistent")}


def test_each_run_takes_its_stage_from_its_config_and_its_dependencies_from_run_references(embedded):
    assert embedded["slu_units"].stage == "slu-units" and embedded["slu_units"].deps == set()
    assert embedded["slu_vq_bert"].stage == embedded["slu_text_roberta"].stage == "slu-mlm-pretrain"
    assert {"slu_ptkd", "slu_text_fsc", "slu_units", "slu_vq_bert"} <= embedded["slu_fsc_full_ftkd"].deps
    assert embedded["slu_infer"].deps == {"slu_fsc_full_ampt"}
    assert "out=/nonexistent/embedded/slu_infer.tsv" in embedded["slu_infer"].overrides  # inference: a file, no run
    assert embedded["st_mustc_rnn_nll_eval"].stage == "st-eval"
    assert embedded["st_mustc_rnn_nll_eval"].deps == {"st_mustc_rnn_nll"}
    assert {"asr_mustc", "nmt_expert", "st_prep_mustc"} <= embedded["st_mustc_transformer_imitkd_full"].deps
    assert all(not r.current for r in embedded.values())  # no run directory exists


def test_seed_copies_are_made_for_the_table_runs_and_read_the_same_seed(embedded):
    seed2 = embedded["st_mustc_rnn_nll_eval_seed2"]
    assert "seed=2" in seed2.overrides and "model_run=st_mustc_rnn_nll_seed2" in seed2.overrides
    assert seed2.deps == {"st_mustc_rnn_nll_seed2"}
    assert "slu_fsc_10pct_ftkd_seed2" in embedded
    assert "asr_mustc_seed2" not in embedded and "slu_units_seed2" not in embedded  # not table runs


class FakeLauncher:
    """Ends each run at the next poll with the exit code `codes` gives (0 by default); records the start order."""

    def __init__(self, codes=None):
        self.codes, self.started = codes or {}, []

    def start(self, run, log):
        self.started.append(run.name)
        log.write_text("last line of the log\n")
        return lambda: self.codes.get(run.name, 0)


def _runs(**deps):
    return [PlannedRun(name, "st-train", None, [], set(d)) for name, d in deps.items()]


def test_runs_start_after_their_dependencies_longest_chain_first(tmp_path):
    runs = _runs(short=[], a=[], b=["a"], c=["b"])
    assert chain_lengths(runs) == {"short": 1, "a": 3, "b": 2, "c": 1}
    launcher = FakeLauncher()
    lines = []
    assert execute(runs, tmp_path, jobs=1, launcher=launcher, echo=lines.append) == 0
    assert launcher.started == ["a", "b", "short", "c"]  # ties: in config order
    assert any("[1/4] a: done in" in line for line in lines)


def test_a_failed_run_stops_what_needs_it_and_the_rest_goes_on(tmp_path):
    runs = _runs(a=[], b=["a"], other=[])
    launcher = FakeLauncher({"a": 2})
    lines = []
    assert execute(runs, tmp_path, jobs=2, launcher=launcher, echo=lines.append) == 1
    assert set(launcher.started) == {"a", "other"}
    assert any("a: FAILED (exit 2)" in line for line in lines)
    assert any("b (st-train): not started, it needs a" in line for line in lines)
    assert any("last line of the log" in line for line in lines)


def test_current_runs_are_skipped(tmp_path):
    runs = _runs(a=[], b=["a"])
    runs[0].current = True
    launcher = FakeLauncher()
    assert execute(runs, tmp_path, jobs=1, launcher=launcher, echo=lambda _: None) == 0
    assert launcher.started == ["b"]
