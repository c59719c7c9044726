"""`speechkd report`: fake finished runs -> the paper tables (CSV values, gains over the baseline rows, Markdown,
LaTeX), plots, the dependencies section and report.md."""
import csv
import json
import re
import shutil
import statistics
from pathlib import Path

import pytest

from speechkd import cli
from speechkd.errors import InputError
from speechkd.stages.report import Config, run
from speechkd.tables.plots import objective
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
    spec = json.loads((tables / "slu_table3_snips.json").read_text())  # a dependency no profile configures
    spec["depends_on"].append({"run": "slu_text_absent", "metric": "test_accuracy", "label": "an absent teacher"})
    (tables / "slu_table3_snips.json").write_text(json.dumps(spec))
    prof = tmp_path / "runs" / "embedded"
    # SLU: two seeds of base, one of ptkd, ftkd still running (no DONE), everything else never started
    _write_run(prof, "slu_lights_close_base", {"valid_accuracy": 60.0, "test_accuracy": 50.0}, log=_log(60.0))
    _write_run(prof, "slu_lights_close_base_seed2", {"valid_accuracy": 62.0, "test_accuracy": 54.0}, log=_log(62.0))
    _write_run(prof, "slu_lights_close_base_seed2x", {"test_accuracy": 0.0})  # not a seed of base: ignored
    _write_run(prof, "slu_lights_close_ptkd", {"valid_accuracy": 70.0, "test_accuracy": 81.3}, log=_log(70.0))
    _write_run(prof, "slu_lights_close_ftkd", done=False, log=_log(10.0))
    # ST: eval runs whose curves come from the st-train runs they name; each architecture has its own baseline
    for name, dev, test, criterion in (("rnn_nll", 10.5, 9.25, "label_smoothed_nll"), ("rnn_kd", 11.0, 10.0, "word_kd"),
                                       ("transformer_nll", 20.0, 19.0, "label_smoothed_nll"),
                                       ("transformer_kd", 19.5, 19.5, "word_kd")):
        _write_run(prof, f"st_mustc_{name}", done=True, log=_log(5.0), config={"criterion": {"name": criterion}})
        _write_run(prof, f"st_mustc_{name}_eval", {"dev_bleu": dev, "test_bleu": test, "bleu_signature": SIGNATURE},
                   config={"model_run": f"st_mustc_{name}"})
    _write_run(prof, "asr_mustc_eval", {"dev_wer": 30.5, "test_wer": 31.25})  # a model the rows depend on
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
    # gain over the baseline row: paper's and ours; no standard error with a single seed of ptkd
    assert (ptkd["baseline"], ptkd["gain_se"]) == ("base", "")
    assert float(ptkd["gain"]) == pytest.approx(81.3 - 52.0) and float(ptkd["paper_gain"]) == pytest.approx(5.4)
    assert (base["baseline"], base["gain"], base["paper_gain"]) == ("", "", "")  # the baseline itself has none
    for key in [("ftkd", "lights_close"), ("base", "lights_far"), ("base", "snips")]:  # running / never run
        assert (cells[key]["reproduced"], cells[key]["delta"], cells[key]["runs"]) == ("", "", "0")
        assert cells[key]["paper"] != ""
    assert cells[("ftkd", "lights_close")]["gain"] == "" and cells[("ftkd", "lights_close")]["paper_gain"] != ""
    st = _cells(out / "st_mustc.csv")
    assert float(st[("rnn_nll", "test")]["reproduced"]) == 9.25
    assert float(st[("rnn_nll", "dev")]["delta"]) == pytest.approx(10.5 - 14.6)
    assert len(st) == 10 * 2


def test_gains_use_each_groups_baseline(setup):
    cfg, out = setup
    run(cfg)
    st = _cells(out / "st_mustc.csv")
    rnn, transformer = st[("rnn_kd", "test")], st[("transformer_kd", "test")]
    assert rnn["baseline"] == "rnn_nll" and float(rnn["gain"]) == pytest.approx(10.0 - 9.25)
    assert float(rnn["paper_gain"]) == pytest.approx(17.2 - 14.1)
    assert transformer["baseline"] == "transformer_nll" and float(transformer["gain"]) == pytest.approx(0.5)
    assert float(st[("transformer_kd", "dev")]["gain"]) == pytest.approx(-0.5)
    assert st[("transformer_imitkd_full", "dev")]["baseline"] == "transformer_nll"
    assert st[("transformer_imitkd_full", "dev")]["gain"] == ""  # not run
    md = (out / "st_mustc.md").read_text()
    assert "| AST transformer: KD | AST transformer: NLL | +2.70 | -0.50 | +2.90 | +0.50 |" in md


def test_gain_standard_error_over_seeds(setup):
    cfg, out = setup
    _write_run(Path(cfg.runs_dir) / "embedded", "slu_lights_close_ptkd_seed2",
               {"valid_accuracy": 70.0, "test_accuracy": 83.3})
    run(cfg)
    ptkd = _cells(out / "slu_table3_snips.csv")[("ptkd", "lights_close")]
    assert float(ptkd["gain"]) == pytest.approx(82.3 - 52.0)
    se = (statistics.variance([81.3, 83.3]) / 2 + statistics.variance([50.0, 54.0]) / 2) ** 0.5
    assert float(ptkd["gain_se"]) == pytest.approx(se)
    assert f"+30.30 ± {se:.2f}" in (out / "slu_table3_snips.md").read_text()


def test_markdown_latex_plots_and_report(setup):
    cfg, out = setup
    run(cfg)
    md = (out / "slu_table3_snips.md").read_text()
    # embedded: paper beside reproduced, no Δ (meaningless on synthetic data); then the gains, paper beside ours
    assert "| VQ-BERT +DS2 | 86.4 |  | 75.9 | 52.00 ± 2.83 (n=2) | 47.9 |  |" in md and "Δ" not in md
    assert "| &emsp;+PT-KD | VQ-BERT +DS2 | +1.90 |  | +5.40 | +29.30 | +3.30 |  |" in md
    assert "Paper's caption: “Table 3. Results on SNIPS" in md
    assert "Source: Kim et al., ICASSP 2021, Table 3" in md
    assert "`slu_lights_close_ftkd`" in md  # listed as not finished
    tex = (out / "slu_table3_snips.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"\begin{tabular}{l" + "r" * 12 + "}" in tex
    assert r"75.9 & 52.00 $\pm$ 2.83 &  & " in tex and r"81.3 & 81.30 & +5.40 & +29.30" in tex
    assert "(test, \\%)" in tex  # the title, escaped, as a comment line
    assert all(not re.search(r"(?<!\\)%", line[1:]) for line in tex.splitlines())  # no stray comment char
    for name in ("slu_table3_snips_bars.png", "slu_table3_snips_curves.png", "st_mustc_bars.png",
                 "st_mustc_curves.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert report.index("## Claims") < report.index("## Models the rows depend on") < report.index("## Environment")
    assert "None: no claims file `claims.json`" in report  # this tables dir has none (test_claims.py covers them)
    # the models the rows depend on: finished, configured but not finished, and absent from the profile
    assert "| ASR: tst-COMMON WER % | `asr_mustc_eval` | `test_wer` | 31.25 |" in report
    assert "| `slu_text_lights_close` | `test_accuracy` | not finished |" in report
    assert "| `slu_text_snips` | `test_accuracy` | not finished |" in report
    assert "| `slu_text_absent` | `test_accuracy` | no such run in this profile |" in report
    assert "## Environment" in report and "git:" in report and "torch:" in report and "device:" in report
    assert "not comparable with the paper's" in report
    assert SIGNATURE in report
    assert "slu_table3_snips.md" in report and "![st_mustc_curves.png](st_mustc_curves.png)" in report
    assert "- Smartlights Close: +PT-KD 81.30 (paper 81.3) > VQ-BERT +DS2 52.00 (paper 75.9); " \
           "row pairs in the paper's order: 1 of 1" in report
    assert "- `st_mustc_transformer_kdt_eval` (st_mustc)" in report


def test_paper_profile_has_no_synthetic_caveat(setup, tmp_path):
    cfg, out = setup
    cfg.profile, cfg.plots = "paper", False
    run(cfg)
    report = (out / "report.md").read_text()
    assert "not comparable" not in report and "st_mustc_rnn_nll_eval" in report  # every run missing here
    assert not list(out.glob("*.png"))
    assert "| VQ-BERT +DS2 | 86.4 |  |  | 75.9 |  |  |" in (out / "slu_table3_snips.md").read_text()  # keeps Δ
    # the paper profile reads the released WMT19 expert instead of training one
    assert "| `nmt_expert_mustc_eval` | `test_bleu` | released checkpoint `wmt19.en-de.joined-dict.ensemble/" in report
    assert "| `slu_text_snips` | `test_accuracy` | not finished |" in report


def test_training_curves_are_grouped_by_objective(tmp_path):
    for name, config, stage in (("a", {"criterion": {"name": "word_kd"}}, "st-train"), ("b", {"ft_kd": "none"}, "x"),
                                ("c", {"ft_kd": "l1"}, "slu-finetune"), ("d", {"lr": 1.0}, "slu-pt-kd")):
        _write_run(tmp_path, name, config=config)
        (tmp_path / name / "config.json").write_text(json.dumps({"stage": stage, "config": config}))
    assert [objective(tmp_path / n) for n in "abcd"] == ["criterion word_kd", "CE", "CE + FT-KD (l1)", "slu-pt-kd"]


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
