"""The SLU configs (that they load: test_pipeline_configs.py): the run names are the table specs' contract, rows
are cumulative as in the paper, and the paper configs carry the authors' hyperparameters."""
from __future__ import annotations

import json

import pytest

from support.pipeline_configs import PROFILES, configs, table_runs
from speechkd.config import load_config
from speechkd.stages import slu_finetune as finetune
from speechkd.stages import slu_text_finetune as text_finetune


@pytest.mark.parametrize("profile", PROFILES)
def test_table_runs_exist_and_rows_add_up_as_in_the_paper(profile):
    have = configs(profile, "slu")
    for table in ("slu_table2_fsc", "slu_table3_snips"):
        for row, column, run in table_runs(table):
            assert run in have, f"{profile}: {table} row {row} needs configs/{profile}/slu/{run}.json"
    rows = [n for n in have if n.endswith("_base")]
    assert rows
    for base in rows:
        prefix = base[: -len("base")]
        cfg = {r: load_config(finetune.Config, data=have[prefix + r]) for r in ("base", "ptkd", "ftkd", "ampt", "da")}
        has = {r: (bool(c.pt_kd_checkpoint.run or c.pt_kd_checkpoint.checkpoint), c.ft_kd != "none",
                   bool(c.am_pt_checkpoint.run or c.am_pt_checkpoint.checkpoint),
                   c.da.token_masking and c.da.emb_masking) for r, c in cfg.items()}
        assert has == {"base": (False, False, False, False), "ptkd": (True, False, False, False),
                       "ftkd": (True, True, False, False), "ampt": (True, True, True, False),
                       "da": (True, True, True, True)}, prefix
        same = {(c.corpus, c.subset, c.train.max_epochs, c.train.lr, c.seed) for c in cfg.values()}
        assert len(same) == 1, f"{prefix}*: rows must differ only in the method"


def test_embedded_snips_runs_are_the_smartlights_close_ones_on_another_corpus():
    # the SNIPS stand-in has the size of SmartLights close, so its column reads the same recipe
    have = configs("embedded", "slu")
    for run in ("slu_text_snips", *(f"slu_snips_{r}" for r in ("base", "ptkd", "ftkd", "ampt", "da"))):
        lights = json.loads(json.dumps(have[run.replace("snips", "lights_close")]).replace("lights_close", "snips"))
        assert have[run] == lights, run


def test_paper_configs_carry_the_authors_hyperparameters():
    paper = configs("paper", "slu")
    ft = load_config(finetune.Config, data=paper["slu_fsc_full_da"])
    t = ft.train
    assert (t.optimizer, t.lr, t.eps, t.weight_decay, t.betas, t.max_epochs) == ("adam", 1e-4, 1e-6, 0.01,
                                                                                 [0.9, 0.999], 100)
    assert t.lr_decay == pytest.approx(1 / 1.05) and ft.batching.batch_size == 32
    assert (ft.da.select_prob, ft.da.max_span, ft.da.time_prob, ft.da.time_span, ft.da.channel_prob,
            ft.da.channel_span) == (0.2, 5, 0.5, 10, 0.4, 5)
    assert (ft.ds2.hidden_size, ft.ds2.num_layers, ft.ds2.conv_channels) == (768, 5, 32)
    assert ft.ft_kd == "l1" and ft.ft_kd_weight == 1.0 and not ft.finetune_vq_bert and ft.vq_bert_train_mode
    text = load_config(text_finetune.Config, data=paper["slu_text_fsc"])
    assert (text.train.lr, text.train.eps, text.train.max_epochs, text.batching.batch_size) == (1e-5, 1e-6, 100, 32)
    assert text.train.lr_decay == pytest.approx(1 / 1.1) and text.text.bpe == "gpt2"
    am = paper["slu_ampt"]["train"]
    assert (am["optimizer"], am["lr"], am["momentum"], am["weight_decay"]) == ("sgd_nesterov", 1e-4, 0.9, 1e-5)
    assert paper["slu_ampt"]["batching"]["batch_size"] == 20


def test_a_partial_section_keeps_the_sections_own_defaults():
    # finetune's default train section is the authors' (lr 1e-4, Adam eps 1e-6, /1.05): overriding one key
    # must not reset the others to TrainConfig's class defaults
    cfg = load_config(finetune.Config, overrides=["train.max_epochs=3"])
    assert (cfg.train.max_epochs, cfg.train.lr, cfg.train.eps, cfg.train.best_metric) == (3, 1e-4, 1e-6,
                                                                                           "valid_accuracy")
    assert cfg.train.lr_decay == pytest.approx(1 / 1.05)
