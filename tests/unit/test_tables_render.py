"""`speechkd report`: fake finished runs -> the paper tables (CSV values, Markdown, LaTeX), plots and report.md."""
import csv
import json
import re
import shutil
import statistics

import pytest

from speechkd import cli
from speechkd.errors import InputError
from speechkd.stages.report import Config, run
from speechkd.tables.spec import TABLES_DIR

SIGNATURE = "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0"


def _write_run(profile_dir, name, metrics=None, done=True, config=None, log=None):
    d = profile_dir / name
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"stage": "x", "config_hash": "h", "config": config or {}}))
    if log:
        (d / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    if metrics is not None:
        (d / "metrics.json").write_text(json.dumps(metrics))
    if done:
        (d / "DONE").write_text(json.dumps({"config_hash": "h"}))


def _log(best):
    return [{"epoch": 1, "update": 10, "loss": 3.0, "lr": 0.1},
            {"epoch": 1, "update": 20, "train_loss": 2.5, "valid_loss": 2.0, "valid_accuracy": best,
             "best_valid_accuracy": best, "best_epoch": 1},
            {"event": "checkpoint", "epoch": 2, "update": 20, "files": ["checkpoint_last.pt"]},
            {"epoch": 2, "update": 30, "loss": 1.5, "lr": 0.1}]


@pytest.fixture
def setup(tmp_path):
    tables = tmp_path / "tables"
    tables.mkdir()
    for tid in ("slu_table3_snips", "st_mustc"):
        shutil.copy(TABLES_DIR / f"{tid}.json", tables)
    prof = tmp_path / "runs" / "embedded"
    # SLU: two seeds of base, one of ptkd, ftkd still running (no DONE), everything else never started
    _write_run(prof, "slu_lights_close_base", {"valid_accuracy": 60.0, "test_accuracy": 50.0}, log=_log(60.0))
    _write_run(prof, "slu_lights_close_base_seed2", {"valid_accuracy": 62.0, "test_accuracy": 54.0}, log=_log(62.0))
    _write_run(prof, "slu_lights_close_base_seed2x", {"test_accuracy": 0.0})  # not a seed of base: ignored
    _write_run(prof, "slu_lights_close_ptkd", {"valid_accuracy": 70.0, "test_accuracy": 81.3}, log=_log(70.0))
    _write_run(prof, "slu_lights_close_ftkd", done=False, log=_log(10.0))
    # ST: an eval run whose curves come from the st-train run it names
    _write_run(prof, "st_mustc_rnn_nll", done=True, log=_log(5.0))
    _write_run(prof, "st_mustc_rnn_nll_eval", {"dev_bleu": 10.5, "test_bleu": 9.25, "bleu_signature": SIGNATURE},
               config={"model_run": "st_mustc_rnn_nll"})
    cfg = Config(profile="embedded", runs_dir=str(tmp_path / "runs"), out_dir=str(tmp_path / "out"),
                 tables_dir=str(tables))
    return cfg, tmp_path / "out"


def _cells(path):
    with open(path, newline="") as f:
        return {(r["row"], r["column"]): r for r in csv.DictReader(f)}


def test_csv_values(setup):
    cfg, out = setup
    run(cfg)
    cells = _cells(out / "slu_table3_snips.csv")
    base = cells[("base", "lights_close")]
    assert base["runs"] == "2" and base["run_names"] == "slu_lights_close_base slu_lights_close_base_seed2"
    assert float(base["reproduced"]) == pytest.approx(52.0)
    assert float(base["std"]) == pytest.approx(statistics.stdev([50.0, 54.0]))
    assert float(base["delta"]) == pytest.approx(52.0 - 75.9)
    assert float(base["paper"]) == 75.9
    ptkd = cells[("ptkd", "lights_close")]
    assert (ptkd["runs"], ptkd["std"]) == ("1", "") and float(ptkd["delta"]) == pytest.approx(0.0)
    for key in [("ftkd", "lights_close"), ("base", "lights_far"), ("base", "snips")]:  # running / never run
        assert (cells[key]["reproduced"], cells[key]["delta"], cells[key]["runs"]) == ("", "", "0")
        assert cells[key]["paper"] != ""
    st = _cells(out / "st_mustc.csv")
    assert float(st[("rnn_nll", "test")]["reproduced"]) == 9.25
    assert float(st[("rnn_nll", "dev")]["delta"]) == pytest.approx(10.5 - 14.6)
    assert len(st) == 10 * 2


def test_markdown_latex_plots_and_report(setup):
    cfg, out = setup
    run(cfg)
    md = (out / "slu_table3_snips.md").read_text()
    assert "| VQ-BERT +DS2 | 86.4 |  |  | 75.9 | 52.00 ± 2.83 (n=2) | -23.90 |" in md
    assert "Source: Kim et al., ICASSP 2021, Table 3" in md
    assert "`slu_lights_close_ftkd`" in md  # listed as not finished
    tex = (out / "slu_table3_snips.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"\begin{tabular}{lrrrrrrrrr}" in tex
    assert r"52.00 $\pm$ 2.83 & $-$23.90" in tex
    assert "(test accuracy, \\%)" in tex  # the title, escaped, as a comment line
    assert all(not re.search(r"(?<!\\)%", line[1:]) for line in tex.splitlines())  # no stray comment char
    for name in ("slu_table3_snips_bars.png", "slu_table3_snips_curves.png", "st_mustc_bars.png",
                 "st_mustc_curves.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert "## Environment" in report and "git:" in report and "torch:" in report and "device:" in report
    assert "not comparable with the paper's" in report
    assert SIGNATURE in report
    assert "slu_table3_snips.md" in report and "![st_mustc_curves.png](st_mustc_curves.png)" in report
    assert "- Smartlights Close: +PT-KD 81.30 (paper 81.3) > VQ-BERT +DS2 52.00 (paper 75.9); " \
           "row pairs in the paper's order: 1 of 1" in report
    assert "- `st_mustc_transformer_nll_eval` (st_mustc)" in report


def test_paper_profile_has_no_synthetic_caveat(setup, tmp_path):
    cfg, out = setup
    cfg.profile, cfg.plots = "paper", False
    run(cfg)
    report = (out / "report.md").read_text()
    assert "not comparable" not in report and "st_mustc_rnn_nll_eval" in report  # every run missing here
    assert not list(out.glob("*.png"))


def test_malformed_metrics_names_the_file(setup, capsys):
    cfg, _ = setup
    bad = f"{cfg.runs_dir}/embedded/slu_lights_close_ptkd/metrics.json"
    with open(bad, "w") as f:
        f.write("{not json")
    with pytest.raises(InputError, match="slu_lights_close_ptkd/metrics.json"):
        run(cfg)
    code = cli.main(["report", "--set", f"runs_dir={cfg.runs_dir}", "--set", f"out_dir={cfg.out_dir}",
                     "--set", f"tables_dir={cfg.tables_dir}"])
    assert code == 2 and "metrics.json" in capsys.readouterr().err
