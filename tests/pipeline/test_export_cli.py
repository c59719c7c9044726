"""`speechkd export` through the CLI: exit 0 and the directory's files (a run by name and by path, fairseq and HF),
exit 2 with one message and no traceback for a missing run, a run of another stage, a model HF has no class for
and a non-empty out_dir; overwrite replaces it; no temporary directory is left beside out_dir. speechkd's own
reader of fairseq S2T directories (st-translate's checkpoint_dir) translates with an export as with its run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from speechkd import api, cli
from support.audio import tone
from support.trained_runs import (PROFILE, TINY_BERARD, TINY_NMT, TINY_S2T, write_prep_run, write_st_train_run,
                                  write_teacher_run)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    runs_dir = tmp_path_factory.mktemp("export_cli") / "runs"
    dictionary = write_prep_run(runs_dir, global_cmvn=True)
    write_st_train_run(runs_dir, "st", "st", "s2t_transformer_s", TINY_S2T, dictionary, cmvn="global")
    write_st_train_run(runs_dir, "berard", "asr", "s2t_berard", TINY_BERARD, dictionary, cmvn="none")
    write_st_train_run(runs_dir, "prenorm_nmt", "nmt", "transformer", {**TINY_NMT, "encoder_normalize_before": True},
                       dictionary)
    write_teacher_run(runs_dir)
    return runs_dir


def export(runs: Path, out: Path, *settings: str) -> int:
    return cli.main(["export", "--set", f"runs_dir={runs}", "--set", f"out_dir={out}",
                     *[arg for s in settings for arg in ("--set", s)]])


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def test_exports_by_name_and_by_path(runs, tmp_path):
    out = tmp_path / "st_fairseq"
    assert export(runs, out, "run=st", "checkpoint=average_last_2") == 0
    assert sorted(p.name for p in out.iterdir()) == ["bpecodes", "checkpoint.pt", "config.yaml", "dict.txt",
                                                     "export.json", "gcmvn.npz"]
    assert "global_cmvn:\n  stats_npz_path: gcmvn.npz" in (out / "config.yaml").read_text()
    facts = json.loads((out / "export.json").read_text())
    assert facts == {"run": "st", "stage": "st-train", "format": "fairseq", "task": "st",
                     "arch": "s2t_transformer_s", "checkpoint": "checkpoint1.pt, checkpoint2.pt"}
    hf = tmp_path / "st_hf"
    assert export(runs, hf, f"run_dir={runs / PROFILE / 'st'}", "format=hf") == 0
    # global CMVN: no preprocessor_config.json (Speech2TextFeatureExtractor cannot apply it), gcmvn.npz instead
    assert sorted(p.name for p in hf.iterdir()) == ["bpecodes", "config.json", "dict.txt", "export.json",
                                                    "gcmvn.npz", "model.safetensors"]
    teacher = tmp_path / "teacher"
    assert export(runs, teacher, "run=teacher", "format=hf") == 0
    assert json.loads((teacher / "config.json").read_text())["architectures"] == ["RobertaForTokenClassification"]
    berard = tmp_path / "berard"
    assert export(runs, berard, "run=berard") == 0
    assert "'*': []" in (berard / "config.yaml").read_text()  # cmvn none: no feature transform
    assert leftovers(out) == leftovers(hf) == leftovers(teacher) == leftovers(berard) == []


@pytest.mark.parametrize("settings, message", [
    (["run=nowhere"], "run 'nowhere' is not finished"),
    (["run_dir=/nonexistent/run"], "run_dir: directory not found"),
    (["run=prep"], "run 'prep' is a st-prep run; export takes st-train or slu-text-finetune"),
    (["run=berard", "format=hf"], "Hugging Face has no s2t_berard model"),
    (["run=prenorm_nmt", "format=hf"], "cannot be written as Hugging Face FSMT: it has post-LN layers only"),
    (["run=teacher"], "export it with format hf"),
    (["run=st", "checkpoint=average_last_5x"], "expected best, last or average_last_N"),
    (["run=st", "run_dir=x"], "set run or run_dir"),
])
def test_bad_input_exits_2(runs, tmp_path, capsys, settings, message):
    out = tmp_path / "out"
    assert export(runs, out, *settings) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not out.exists() and leftovers(out) == []


def test_out_dir_is_required(runs, capsys):
    assert cli.main(["export", "--set", f"runs_dir={runs}", "--set", "run=st"]) == 2
    assert "out_dir" in capsys.readouterr().err


def test_non_empty_out_dir_needs_overwrite(runs, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    assert export(runs, out, "run=st") == 2
    assert "is not empty" in capsys.readouterr().err and (out / "mine.txt").read_text() == "keep me"
    (out.parent / "file").write_text("")
    assert export(runs, out.parent / "file", "run=st") == 2
    assert "not a directory" in capsys.readouterr().err
    assert export(runs, out, "run=st", "overwrite=true") == 0
    assert not (out / "mine.txt").exists() and (out / "checkpoint.pt").is_file()
    assert leftovers(out) == []
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export(runs, empty, "run=st") == 0 and (empty / "checkpoint.pt").is_file()


@pytest.mark.parametrize("name, fmt", [("st", "fairseq"), ("berard", "fairseq"), ("st", "hf")])  # global CMVN, none
def test_st_translate_reads_the_export(runs, tmp_path, name, fmt):
    out = tmp_path / name
    assert export(runs, out, f"run={name}", f"format={fmt}") == 0
    waves = [tone(0.8, freq=220.0), tone(0.5, freq=700.0)]
    from_run = api.load_st(name, runs_dir=runs, profile=PROFILE, device="cpu", max_len_b=12)
    from_export = api.load_st(checkpoint_dir=out, device="cpu", max_len_b=12)
    assert [(h.pieces, h.score) for h in from_export.hypotheses(waves)] == \
        [(h.pieces, h.score) for h in from_run.hypotheses(waves)]


def test_text_teacher_reads_its_hf_export(runs, tmp_path):
    out = tmp_path / "teacher_hf"
    assert export(runs, out, "run=teacher", "format=hf") == 0
    texts = ["Turn on the lights", "increase the volume up", "off"]
    from_run = api.load_text_teacher("teacher", runs_dir=runs, profile=PROFILE).classify_text(texts)
    from_export = api.load_text_teacher(checkpoint_dir=out).classify_text(texts)
    assert [i for i, _ in from_export] == [i for i, _ in from_run]
    assert [p for _, p in from_export] == pytest.approx([p for _, p in from_run], abs=1e-6)
