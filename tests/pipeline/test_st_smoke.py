"""End to end, tiny: every ST stage through the CLI on a freshly synthesised corpus (espeak) in a temp runs dir:
st-prep (expert text, learning the BPE; speech, taking it over) -> st-train nmt (the expert) -> st-train asr ->
st-synthetic (ASR transcripts + expert translations) -> st-train st (NLL, ASR-initialised encoder, frozen for the
first updates; and one on the synthetic data) -> st-generate (checkpoint averaging) -> st-score -> st-eval, and the
cascade's evaluation (ASR transcribes, the NMT student translates)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from speechkd import cli
from speechkd.data.manifests import read_s2t_tsv
from speechkd.synth.st_corpus import StCorpusSpec, TextParallelSpec, build_st_corpus, build_text_parallel

pytestmark = pytest.mark.slow

TINY_T = {"encoder_layers": 1, "decoder_layers": 1, "encoder_embed_dim": 32, "encoder_ffn_embed_dim": 64,
          "encoder_attention_heads": 2, "decoder_attention_heads": 2}
TRAIN = {"optimizer": "adamw", "lr": 0.003, "scheduler": "inverse_sqrt", "warmup_updates": 4, "max_epochs": 2,
         "log_interval": 5, "progress": False, "tensorboard": False, "keep_last_epochs": 2, "clip_norm": 10.0}


def speechkd(tmp: Path, stage: str, **settings) -> dict:
    args = [stage, "--set", f"runs_dir={tmp / 'runs'}", "--set", "profile=smoke"]
    for key, value in settings.items():
        args += ["--set", f"{key}={json.dumps(value)}"]
    assert cli.main(args) == 0, f"speechkd {stage} failed"
    name = settings["name"]
    run = tmp / "runs" / "smoke" / name
    assert (run / "DONE").is_file()
    return json.loads((run / "metrics.json").read_text())


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("st_smoke")
    st = tmp / "st"
    build_st_corpus(StCorpusSpec(style="read", n_train=16, n_dev=4, n_test=4, speakers_train=2, speakers_dev=1,
                                 speakers_test=1, seed=5), st, workers=2)
    build_text_parallel(TextParallelSpec(n_train=300, n_valid=20, n_test=20, seed=9), tmp / "text", [st])
    return tmp


def test_st_pipeline_end_to_end(corpora):
    tmp = corpora
    prep_nmt = speechkd(tmp, "st-prep", name="prep_nmt", corpus="parallel_text", corpus_dir=str(tmp / "text"),
                        bpe={"learn_merges": 200}, workers=1)
    prep = speechkd(tmp, "st-prep", name="prep", corpus="embedded", corpus_dir=str(tmp / "st"),
                    bpe={"from_run": "prep_nmt"}, workers=1)
    assert prep["train_utterances"] == 16 and prep["vocab_size"] == prep_nmt["vocab_size"]
    expert = speechkd(tmp, "st-train", name="expert", task="nmt",
                      data={"prep_run": "prep_nmt", "valid_subset": "valid", "max_tokens": 1000},
                      model={"arch": "transformer", "args": {**TINY_T, "share_all_embeddings": True}},
                      train={**TRAIN, "max_epochs": 1})
    assert expert["epochs"] == 1 and expert["valid_loss"] < 20
    speech_model = {"arch": "s2t_transformer_s", "args": {**TINY_T, "conv_channels": 32, "conv_kernel_sizes": "5,5,5"}}
    # with the embedded ASR's CTC head: the students, st-synthetic and st-eval below load it without the head
    asr = speechkd(tmp, "st-train", name="asr", task="asr", data={"prep_run": "prep", "max_tokens": 4000},
                   model=speech_model, train=TRAIN, criterion={"name": "label_smoothed_nll", "ctc_weight": 0.3})
    assert asr["num_updates"] > 0
    # the same under torchrun with 2 processes: DDP must see the CTC head used in the one forward
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "speechkd.cli", "st-train", "--set", f"runs_dir={tmp / 'runs'}", "--set",
                          "profile=smoke", "--set", "name=asr_ddp", "--set", "task=asr", "--set",
                          'data={"prep_run": "prep", "max_tokens": 4000}', "--set", f"model={json.dumps(speech_model)}",
                          "--set", f"train={json.dumps({**TRAIN, 'max_epochs': 1})}", "--set",
                          'criterion={"name": "label_smoothed_nll", "ctc_weight": 0.3}'],
                         env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert (tmp / "runs" / "smoke" / "asr_ddp" / "DONE").is_file()
    syn = speechkd(tmp, "st-synthetic", name="syn", prep_run="prep", asr_run="asr", expert_run="expert",
                   generation={"beam": 2, "max_len_b": 30})
    assert syn["utterances"] == 16 and syn["src_replaced"] + syn["src_unchanged"] == 16
    synthetic = read_s2t_tsv(tmp / "runs" / "smoke" / "syn" / "data" / "train.tsv")
    gold = read_s2t_tsv(tmp / "runs" / "smoke" / "prep" / "data" / "train.tsv")
    assert [r["audio"] for r in synthetic] == [r["audio"] for r in gold]
    st = speechkd(tmp, "st-train", name="st_nll", task="st", data={"prep_run": "prep", "max_tokens": 4000},
                  model=speech_model, train=TRAIN, load_pretrained_encoder_from="asr", encoder_freezing_updates=2)
    assert st["pretrained_encoder"].endswith("checkpoint_best.pt") and st["criterion"] == "label_smoothed_nll"
    st_syn = speechkd(tmp, "st-train", name="st_syn", task="st", model=speech_model, train=TRAIN,
                      data={"prep_run": "prep", "train_run": "syn", "max_tokens": 4000})
    assert st_syn["train_items"] == 16
    gen = speechkd(tmp, "st-generate", name="st_nll_gen", model_run="st_nll", splits=["dev", "test"],
                   generation={"checkpoint": "average_last_2", "beam": 3, "max_len_b": 30})
    assert gen["checkpoint"] == "checkpoint1.pt, checkpoint2.pt" and gen["dev_sentences"] == 4
    scored = speechkd(tmp, "st-score", name="st_nll_score", generate_run="st_nll_gen")
    evaluated = speechkd(tmp, "st-eval", name="st_nll_eval", model_run="st_nll",
                         generation={"checkpoint": "average_last_2", "beam": 3, "max_len_b": 30})
    for key in ("dev_bleu", "test_bleu", "dev_chrf", "test_ter", "bleu_signature"):
        assert key in evaluated
    assert evaluated["dev_bleu"] == scored["dev_bleu"] and evaluated["test_bleu"] == scored["test_bleu"]
    asr_eval = speechkd(tmp, "st-eval", name="asr_eval", model_run="asr", generation={"beam": 2, "max_len_b": 30})
    assert 0 <= asr_eval["dev_wer"] and "dev_bleu" not in asr_eval
    expert_eval = speechkd(tmp, "st-eval", name="expert_eval", model_run="expert", data_run="prep",
                           generation={"beam": 2, "max_len_b": 30})
    assert expert_eval["task"] == "nmt" and expert_eval["test_bleu"] >= 0
    # the cascade (generate_with_pipeline.py): an NMT student trained on the ASR's on-the-fly transcripts is
    # evaluated by transcribing with that ASR, then translating
    speechkd(tmp, "st-train", name="cascade", task="nmt", data={"prep_run": "prep", "source": "audio",
                                                                "max_tokens": 4000},
             model={"arch": "transformer", "args": {**TINY_T, "share_all_embeddings": True}},
             criterion={"name": "cascade_nmt_imitkd", "expert": {"run": "expert"}, "asr_run": "asr"},
             train={**TRAIN, "max_epochs": 1, "max_updates": 4})
    cascade = speechkd(tmp, "st-eval", name="cascade_eval", model_run="cascade",
                       generation={"beam": 2, "max_len_b": 30})
    assert cascade["task"] == "nmt" and cascade["dev_bleu"] >= 0
    transcribed = (tmp / "runs" / "smoke" / "cascade_eval" / "generate-dev.txt").read_text()
    assert "S-" in transcribed  # the NMT part's source lines are the ASR's transcripts
    # a rerun of a finished stage is skipped (DONE with the same config hash)
    assert speechkd(tmp, "st-eval", name="st_nll_eval", model_run="st_nll",
                    generation={"checkpoint": "average_last_2", "beam": 3, "max_len_b": 30}) == evaluated
