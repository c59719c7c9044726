"""The ST configs (that they load: test_pipeline_configs.py): every table run exists, and the students of one table
(corpus x architecture) differ only in what the row name says: the criterion and, for the T rows, the synthetic
training data. Without this, a row's number could come from a different budget than its neighbours'."""
from __future__ import annotations

import copy

import pytest

from support.pipeline_configs import PROFILES, configs, table_runs

ROWS = {"nll": ("label_smoothed_nll", False), "kd": ("word_kd", False), "kdt": ("word_kd", True),
        "imitkd_full": ("imitkd_full", False), "imitkdt_full": ("imitkd_full", True)}


@pytest.mark.parametrize("profile", PROFILES)
def test_table_runs_exist(profile):
    have = configs(profile, "st")
    for table in ("st_mustc", "st_covost2"):
        for row, _, run in table_runs(table):
            assert run in have, f"{profile}: {table} row {row} needs configs/{profile}/st/{run}.json"
            assert have[run]["model_run"] in have, f"{run}: its model_run has no config"


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("corpus", ("mustc", "covost2"))
@pytest.mark.parametrize("arch", ("transformer", "rnn"))
def test_rows_of_a_table_differ_only_in_the_method(profile, corpus, arch):
    have = configs(profile, "st")
    common = None
    for row, (criterion, synthetic) in ROWS.items():
        raw = copy.deepcopy(have[f"st_{corpus}_{arch}_{row}"])
        assert raw["criterion"]["name"] == criterion, row
        assert (raw["data"].get("train_run") == f"synthetic_{corpus}") == synthetic, row
        for key in ("name", "criterion"):
            raw.pop(key)
        for key in ("train_run", "train_subset"):
            raw["data"].pop(key, None)
        raw["train"].pop("log_interval", None)
        common = common or raw
        assert raw == common, f"st_{corpus}_{arch}_{row} differs from the other rows beyond its method"
    kd = [have[f"st_{corpus}_{arch}_{r}"]["criterion"] for r in ROWS if r != "nll"]
    assert all(c.get("expert") == kd[0].get("expert") for c in kd)
    imit = [have[f"st_{corpus}_{arch}_{r}"]["criterion"]["kd"] for r in ("imitkd_full", "imitkdt_full")]
    assert imit[0] == imit[1]
