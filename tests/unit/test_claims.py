"""The papers' claims (configs/tables/claims.json) judged over seeds: the verdict rule on hand-made per-seed values,
sides over several rows and columns, gains as sides, variants under another run name, claims.csv and the report."""
import csv
import json
import math
import statistics

import pytest

from speechkd.errors import InputError
from speechkd.stages.report import Config, run
from speechkd.tables.claims import judge, load_claims, verdict
from speechkd.tables.render import collect, mean_difference
from speechkd.tables.spec import TABLES_DIR, all_table_specs, load_table_spec


def _verdict(relation, a, b):
    diff, se = mean_difference(a, b)
    return verdict(relation, diff, se, min(len(a), len(b)))


def test_verdict_rule_on_hand_made_seeds():
    # SE = sqrt(1/3 + 1/3) = 0.816 for two sides of spread 1: 2 SE = 1.63
    assert _verdict(">", [12.0, 13.0, 14.0], [10.0, 11.0, 12.0]) == "holds"  # +2.0 > 2 SE
    assert _verdict(">", [11.0, 12.0, 13.0], [10.0, 11.0, 12.0]) == "within noise"  # +1.0
    assert _verdict(">", [10.0, 11.0, 12.0], [11.0, 12.0, 13.0]) == "within noise"  # -1.0
    assert _verdict(">", [8.0, 9.0, 10.0], [10.0, 11.0, 12.0]) == "does not hold"  # -2.0
    assert _verdict(">=", [11.0, 12.0, 13.0], [12.0, 13.0, 14.0]) == "holds"  # -1.0 is not against it by 2 SE
    assert _verdict(">=", [8.0, 9.0, 10.0], [10.0, 11.0, 12.0]) == "does not hold"
    assert _verdict("≈", [11.0, 12.0, 13.0], [10.0, 11.0, 12.0]) == "holds"
    assert _verdict("≈", [12.0, 13.0, 14.0], [10.0, 11.0, 12.0]) == "does not hold"
    # identical seeds: SE 0, any difference is beyond noise
    assert _verdict(">", [2.0, 2.0], [1.0, 1.0]) == "holds" and _verdict(">", [1.0, 1.0], [1.0, 1.0]) == "within noise"


def test_single_seed_gives_the_raw_direction_only():
    assert _verdict(">", [12.0], [10.0]) == "1 seed: no noise estimate; raw direction as claimed"
    assert _verdict(">", [9.0], [10.0]) == "1 seed: no noise estimate; raw direction against the claim"
    assert _verdict(">", [12.0], [10.0, 11.0]) == "1 seed: no noise estimate; raw direction as claimed"
    assert _verdict("≈", [9.5], [10.0]) == "1 seed: no noise estimate; raw difference -0.50"
    assert verdict(">", None, None, 0) == "not run"


def test_welch_standard_error():
    diff, se = mean_difference([1.0, 2.0, 6.0], [0.0, 2.0])
    assert diff == pytest.approx(2.0)
    assert se == pytest.approx(math.sqrt(statistics.variance([1.0, 2.0, 6.0]) / 3 + 2.0 / 2))


# ------------------------------------------------------------------------------------------ a tiny profile

SPEC = {"id": "t", "title": "T", "source": "s", "metric": "acc", "higher_is_better": True, "baseline": "base",
        "columns": [{"id": "c1", "label": "C1", "run": "r1", "metric": "m1"},
                    {"id": "c2", "label": "C2", "run": "r1", "metric": "m2"},
                    {"id": "c3", "label": "C3", "run": "r3", "metric": "m1"}],
        "rows": [{"id": r, "label": r.upper(), "indent": 0, "ours": True,
                  "paper": {"c1": p, "c2": p + 1.0, "c3": p + 2.0}, "runs": {"r1": f"t_{r}", "r3": f"t3_{r}"}}
                 for r, p in (("base", 10.0), ("x", 12.0), ("y", 11.0), ("z", 15.0))]}


def _write_run(profile, name, metrics):
    d = profile / name
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"stage": "x", "config_hash": "h", "config": {}}))
    (d / "metrics.json").write_text(json.dumps(metrics))
    (d / "DONE").write_text("{}")


def _seed_name(run, k):
    return run if k == 1 else f"{run}_seed{k}"


@pytest.fixture
def profile(tmp_path):
    """Rows base, x, y, z with 3 seeds in columns c1/c2 (run t_<row>), column c3 never run; z's seed 3 missing."""
    tables = tmp_path / "tables"
    tables.mkdir()
    (tables / "t.json").write_text(json.dumps(SPEC))
    prof = tmp_path / "runs" / "embedded"
    values = {"base": [50.0, 52.0, 54.0], "x": [60.0, 61.0, 62.0], "y": [51.0, 55.0, 53.0], "z": [70.0, 72.0]}
    for row, seeds in values.items():
        for k, v in enumerate(seeds, 1):
            _write_run(prof, _seed_name(f"t_{row}", k), {"m1": v, "m2": v + 10.0})
    return tables, prof


def _claim(tables, **item):
    item = {"id": "c", "claim": "claim", "paper": "words", "where": "Table 1", "relation": ">", "tables": ["t"],
            **item}
    (tables / "claims.json").write_text(json.dumps({"claims": [item]}))
    results = {"t": collect(load_table_spec(tables / "t.json"), tables.parent / "runs" / "embedded")}
    return judge(load_claims(tables / "claims.json", results)[0], results)


def test_claim_pools_per_seed_over_columns_and_drops_columns_not_run(profile):
    tables, _ = profile
    r = _claim(tables, a={"label": "x", "rows": ["x"]}, b={"label": "base", "rows": ["base"]})
    # per seed: mean of c1 (v) and c2 (v + 10) = v + 5; column c3 has no runs and is left out
    assert r.a.per_seed == {1: 65.0, 2: 66.0, 3: 67.0} and r.b.per_seed == {1: 55.0, 2: 57.0, 3: 59.0}
    assert r.cells == ["t/c1", "t/c2"] and r.not_run == ["t/c3"]
    assert r.difference == pytest.approx(9.0) and r.se == pytest.approx(math.sqrt(1 / 3 + 4 / 3))
    assert r.verdict == "holds"
    assert r.a.paper == pytest.approx(12.5) and r.paper_difference == pytest.approx(2.0)  # c1, c2 of the paper


def test_multi_row_sides_use_only_seeds_every_row_has(profile):
    tables, _ = profile
    r = _claim(tables, relation="≈", columns=["c1"], a={"label": "x and z", "rows": ["x", "z"]},
               b={"label": "base and y", "rows": ["base", "y"]})
    assert r.a.per_seed == {1: 65.0, 2: 66.5}  # z has no seed 3
    assert r.b.per_seed == {1: 50.5, 2: 53.5, 3: 53.5}
    diff, se = mean_difference([65.0, 66.5], [50.5, 53.5, 53.5])
    assert (r.difference, r.se) == (pytest.approx(diff), pytest.approx(se))
    assert r.verdict == "does not hold"  # 14.3 apart, far beyond 2 SE
    assert r.a.paper == pytest.approx(13.5) and r.b.paper == pytest.approx(10.5)


def test_a_side_can_be_a_gain_over_other_rows_in_its_own_columns(profile):
    tables, _ = profile
    r = _claim(tables, a={"label": "x − base, c2", "rows": ["x"], "minus": ["base"], "columns": ["c2"]},
               b={"label": "y − base, c1", "rows": ["y"], "minus": ["base"], "columns": ["c1"]})
    assert r.a.per_seed == {1: 10.0, 2: 9.0, 3: 8.0} and r.b.per_seed == {1: 1.0, 2: 3.0, 3: -1.0}
    assert r.cells == ["t/c2", "t/c1"] and r.verdict == "holds"
    assert r.a.paper == pytest.approx(2.0) and r.b.paper == pytest.approx(1.0)


def test_a_variant_run_name_is_judged_only_when_its_runs_exist(profile):
    tables, prof = profile
    item = dict(a={"label": "x under _kl", "rows": ["x"], "run_suffix": "_kl"}, b={"label": "base", "rows": ["base"]})
    r = _claim(tables, **item)
    assert r.verdict == "not run" and r.cells == [] and r.a.values == []
    assert r.a.paper == pytest.approx(13.0)  # the paper's numbers of the row it varies, over every column
    _write_run(prof, "t_x_kl", {"m1": 40.0, "m2": 40.0})
    r = _claim(tables, **item)
    assert r.a.per_seed == {1: 40.0} and r.a.paper == pytest.approx(12.5)
    assert r.verdict == "1 seed: no noise estimate; raw direction against the claim"


def test_malformed_claims_name_the_file_and_claim(profile):
    tables, _ = profile
    with pytest.raises(InputError, match=r"claims.json: claims\[0\] \(c\): key 'relation'"):
        _claim(tables, relation="<", a={"label": "x", "rows": ["x"]}, b={"label": "b", "rows": ["base"]})
    with pytest.raises(InputError, match=r"claims\[0\] \(c\): key 'b': row 'nope' is not a reproduced row"):
        _claim(tables, a={"label": "x", "rows": ["x"]}, b={"label": "b", "rows": ["nope"]})
    with pytest.raises(InputError, match=r"claims\[0\] \(c\): malformed claim"):
        _claim(tables, a={"label": "x"}, b={"label": "b", "rows": ["base"]})


def test_the_bundled_claims_load_against_the_bundled_tables(tmp_path):
    results = {s.id: collect(s, tmp_path) for s in all_table_specs()}
    claims = load_claims(TABLES_DIR / "claims.json", results)
    assert {c.id for c in claims} >= {"ptkd_over_base", "ftkd_over_ptkd", "ftkd_kl_over_ptkd", "ampt_most_on_10pct",
                                     "da_helps", "wordkd_over_nll", "imitkd_full_over_wordkd", "synthetic_approx_gold"}
    # with no runs, every claim is "not run" and the paper's side of each is in the claimed direction
    for c in claims:
        r = judge(c, results)
        assert r.verdict == "not run", c.id
        assert r.paper_difference > 0 if c.relation == ">" else r.paper_difference is not None, c.id


def test_report_writes_the_claims_section_and_csv(profile):
    tables, prof = profile
    _claim(tables, a={"label": "x", "rows": ["x"]}, b={"label": "base", "rows": ["base"]})
    out = tables.parent / "out"
    run(Config(profile="embedded", runs_dir=str(prof.parent), out_dir=str(out), tables_dir=str(tables),
               plots=False))
    report = (out / "report.md").read_text()
    assert report.index("## Claims") < report.index("## Environment")
    assert "| 1 | claim | 12.50 vs 10.50 (+2.00) | 66.00 ± 1.00 (n=3) | 57.00 ± 2.00 (n=3) | +9.00 ± 1.29 | " \
           "holds |" in report
    assert "Welch standard error" in report and "Not run: t/c3." in report
    with open(out / "claims.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert (row["claim"], row["verdict"], row["a_n"], row["a_seeds"]) == ("c", "holds", "3", "1:65.0 2:66.0 3:67.0")
    assert float(row["difference"]) == pytest.approx(9.0) and row["not_run"] == "t/c3"
