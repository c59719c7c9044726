"""End to end, tiny: every SLU stage through the CLI, from the committed embedded configs (tiny sizes by --set),
on freshly synthesised corpora (espeak) in a temp dir: slu-units -> slu-mlm-pretrain (VQ-BERT, text RoBERTa)
-> slu-text-finetune -> slu-pt-kd -> slu-am-pretrain -> slu-finetune (+FT-KD and the +DA row,
which adds AM-PT; and a 10 % row) -> slu-infer."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from speechkd import cli
from speechkd.config import load_config
from speechkd.data.manifests import read_intent_dict, read_slu_csv
from speechkd.stages import synth
from support.paths import REPO

pytestmark = pytest.mark.slow

CONFIGS = REPO / "configs" / "embedded" / "slu"
TINY_SYNTH = ["corpora=[\"fsc\",\"smartlights\",\"snips\",\"read\"]",
              "fsc.train_speakers=2", "fsc.valid_speakers=1", "fsc.test_speakers=1", "fsc.utts_per_speaker=31",
              "smartlights.train_speakers=3", "smartlights.valid_speakers=1", "smartlights.test_speakers=1",
              "smartlights.utts_per_speaker=24",
              "snips.train_speakers=1", "snips.valid_speakers=1", "snips.test_speakers=1", "snips.utts_per_speaker=7",
              "read.train_speakers=2", "read.dev_speakers=1", "read.test_speakers=1", "read.utts_per_speaker=12",
              "read.text_only_lines=400"]
ARCH = {"layers": 1, "embed_dim": 32, "heads": 2, "ffn_dim": 64, "max_positions": 512}
DS2 = {"hidden_size": 32, "num_layers": 1, "conv_channels": 2}
QUIET = {"train.progress": False, "train.tensorboard": False}


def speechkd(tmp: Path, name: str, **settings) -> dict:
    config = CONFIGS / f"{name}.json"
    stage = json.loads(config.read_text())["$schema"].split("/")[-1].split(".")[0]
    args = [stage, "--config", str(config), "--set", f"runs_dir={tmp / 'runs'}", "--set", f"data_root={tmp}"]
    for key, value in settings.items():
        args += ["--set", f"{key}={json.dumps(value)}"]
    assert cli.main(args) == 0, f"speechkd {stage} ({name}) failed"
    run = tmp / "runs" / "embedded" / settings.get("name", name)
    assert (run / "DONE").is_file()
    return json.loads((run / "metrics.json").read_text())


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("slu_smoke")
    cfg = load_config(synth.Config, overrides=[*TINY_SYNTH, f"output_dir={tmp / 'data' / 'embedded'}",
                                               f"runs_dir={tmp / 'synth_runs'}", "workers=2"])
    synth.run(cfg)
    return tmp


def test_slu_pipeline_end_to_end(data, capsys):
    tmp = data
    units = speechkd(tmp, "slu_units", num_codes=16, fit_max_frames=4000, kmeans_iters=5)
    assert units["fsc_train_utts"] == 62 and units["lights_far_train_utts"] == 72 and units["dict_units"] > 20
    assert units["snips_train_utts"] == 7 and units["snips_intents"] == 7
    vq = speechkd(tmp, "slu_vq_bert", arch=ARCH, **{"train.max_epochs": 1}, **QUIET)
    text = speechkd(tmp, "slu_text_roberta", arch=ARCH, **{"train.max_epochs": 1}, **QUIET)
    assert vq["num_updates"] > 0 and text["vocab_size"] > 100
    teacher = speechkd(tmp, "slu_text_lights_close", **{"train.max_epochs": 15, "train.lr": 3e-3}, **QUIET)
    assert teacher["test_accuracy"] > 100 / 6 + 10  # 6 intents: well above chance
    speechkd(tmp, "slu_ptkd", **{"train.max_epochs": 1}, **QUIET)
    am = speechkd(tmp, "slu_ampt", ds2=DS2, **{"train.max_epochs": 1}, **QUIET)
    assert 0 < am["greedy_valid_cer"] <= 100
    ftkd = speechkd(tmp, "slu_lights_close_ftkd", ds2=DS2, **{"train.max_epochs": 30}, **QUIET)
    assert ftkd["pt_kd"] and ftkd["ft_kd"] == "l1" and not ftkd["am_pt"] and not ftkd["da"]
    assert 0 < ftkd["best_epoch"] <= 30 and ftkd["test_accuracy"] > 100 / 6 + 10, ftkd  # well above chance
    da = speechkd(tmp, "slu_lights_close_da", ds2=DS2, **{"train.max_epochs": 2}, **QUIET)
    assert da["pt_kd"] and da["am_pt"] and da["ft_kd"] == "l1" and da["da"]
    sub = speechkd(tmp, "slu_fsc_10pct_base", ds2=DS2, **{"train.max_epochs": 1}, **QUIET)
    assert sub["train_utterances"] == 31 and sub["full_train_utterances"] == 62  # one per intent
    for key in ("valid_accuracy", "test_accuracy", "best_epoch"):
        assert key in sub
    run_dir = tmp / "runs" / "embedded" / "slu_lights_close_da"
    assert {"model.pt", "dict.txt", "intent_dict", "units.json", "tokenizer.pt"} <= {p.name for p in run_dir.iterdir()}

    # inference from the saved run: one line per wav, the intent as its intent_dict line
    corpus = tmp / "data" / "embedded" / "smartlights" / "close"
    wavs = [str(corpus / e.path) for e in read_slu_csv(corpus / "test.csv")[:3]]
    capsys.readouterr()
    out = tmp / "predictions.tsv"
    infer = ["slu-infer", *wavs, "--config", str(CONFIGS / "slu_infer.json"), "--set", f"runs_dir={tmp / 'runs'}",
             "--set", "model_run=slu_lights_close_da", "--set", f"out={out}"]
    assert cli.main(infer) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    intents = read_intent_dict(corpus / "intent_dict")
    assert [line.split("\t")[0] for line in lines] == wavs
    assert all(line.split("\t")[1] in intents for line in lines)
    rows = [row.split("\t") for row in out.read_text().splitlines()]
    assert rows[0] == ["path", "intent", "probability"] and [r[:2] for r in rows[1:]] == [x.split("\t") for x in lines]
    # an inference is no run: called again with other wavs, it rewrites its output and moves nothing aside
    assert cli.main(infer[:1] + wavs[:1] + infer[1 + len(wavs):]) == 0
    assert len(out.read_text().splitlines()) == 2
    assert not [p for p in (tmp / "runs" / "embedded").iterdir() if "slu_infer" in p.name or "slu-infer" in p.name]
