"""The table specs in configs/tables/ parse, hold the papers' numbers, and name the runs the configs produce;
their baselines and the models their rows depend on name real rows and runs."""
import json

import pytest

from speechkd.errors import InputError
from speechkd.runs import REPO_ROOT
from speechkd.tables.spec import all_table_specs, load_table_spec

EXPECTED = {"slu_table2_fsc", "slu_table3_snips", "st_mustc", "st_covost2"}


def test_every_paper_table_has_a_spec():
    assert {s.id for s in all_table_specs()} == EXPECTED


def test_paper_numbers_spot_checks():
    specs = {s.id: s for s in all_table_specs()}
    t2 = {r.id: r for r in specs["slu_table2_fsc"].rows}
    assert t2["da"].paper == {"full_valid": 97.8, "full_test": 99.7, "10pct_valid": 96.2, "10pct_test": 99.5}
    assert t2["base"].paper["10pct_valid"] == 87.3
    t3 = {r.id: r for r in specs["slu_table3_snips"].rows}
    assert t3["ampt"].paper == {"snips": 96.7, "lights_close": 92.2, "lights_far": 70.5}
    mustc = {r.id: r for r in specs["st_mustc"].rows}
    assert mustc["transformer_imitkdt_full"].paper == {"dev": 23.5, "test": 23.5}
    covost = {r.id: r for r in specs["st_covost2"].rows}
    assert covost["rnn_nll"].paper == {"dev": 13.6, "test": 10.0}
    assert len(mustc) == len(covost) == 10


def test_reference_rows_have_no_runs():
    spec = {s.id: s for s in all_table_specs()}["slu_table2_fsc"]
    assert [r.label for r in spec.rows if not r.ours][:3] == ["Lugosh et al. [6]", "+AM-PT [6]", "+FT-KD [13]"]
    assert all(not r.runs for r in spec.rows if not r.ours)


def test_malformed_spec_names_the_file(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"id": "x", "title": "t", "source": "s", "metric": "m", "higher_is_better": True,
                               "columns": [{"id": "a", "label": "A", "run": "r", "metric": "m"}],
                               "rows": [{"id": "r1", "label": "R", "indent": 0, "ours": True,
                                         "paper": {"b": 1.0}, "runs": {}}]}))
    with pytest.raises(InputError, match="x.json: row 'r1': paper numbers for unknown columns"):
        load_table_spec(bad)


def test_baselines_are_the_base_row_and_each_architectures_nll_row():
    specs = {s.id: s for s in all_table_specs()}
    for tid in ("slu_table2_fsc", "slu_table3_snips"):
        spec = specs[tid]
        assert {spec.baseline_of(r).id for r in spec.rows if r.ours} == {"base"}
        assert all(spec.baseline_of(r) is None for r in spec.rows if not r.ours)
    for tid in ("st_mustc", "st_covost2"):
        spec = specs[tid]
        assert all(spec.baseline_of(r).id == r.id.split("_")[0] + "_nll" for r in spec.rows)


def test_dependencies_name_runs_of_the_profiles():
    """Every run a table depends on is configured in the embedded or paper profile; where the paper profile has
    no such run, the entry names the released checkpoint it reads instead (or the embedded data has no stand-in)."""
    configured = {p: {c.stem for c in (REPO_ROOT / "configs" / p).glob("*/*.json")} for p in ("embedded", "paper")}
    for spec in all_table_specs():
        assert spec.depends_on, spec.id
        for dep in spec.depends_on:
            assert dep.run in configured["embedded"] | configured["paper"], dep.run
            if dep.run not in configured["paper"]:
                assert dep.released, f"{spec.id}: {dep.run} has no paper run and no released checkpoint"


def test_bad_baseline_names_the_file(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"id": "x", "title": "t", "source": "s", "metric": "m", "higher_is_better": True,
                               "baseline": "nope", "columns": [{"id": "a", "label": "A", "run": "r", "metric": "m"}],
                               "rows": [{"id": "r1", "label": "R", "indent": 0, "ours": True, "paper": {}}]}))
    with pytest.raises(InputError, match="x.json: key 'baseline': expected the id of a reproduced row, got 'nope'"):
        load_table_spec(bad)
