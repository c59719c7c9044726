"""speechkd export -> fairseq-fixed and transformers (interop/export_fairseq.py, export_hf.py, stages/export.py).

Finished runs with random tiny models (tests/support/trained_runs.py: an ST student s2t_transformer, an ASR
s2t_transformer with tied embeddings, an ST s2t_berard, the NMT expert transformer, the SLU text teacher) are
exported; fairseq-fixed (a subprocess of $FAIRSEQ_PYTHON, torch.load forced to weights_only) loads every fairseq
directory with checkpoint_utils.load_model_ensemble_and_task, and its decoder logits on a fixed random batch and
its beam-5 n-best lists (SequenceGenerator) are compared with speechkd's model of the run; transformers loads
every HF directory with from_pretrained (logits, and generate(num_beams=5) where its rows end with EOS). speechkd's
own importers read every export back to identical parameters."""
from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest
import torch

from speechkd.config import load_config
from speechkd.decode.search import beam_search
from speechkd.interop.fairseq_models import load_fairseq_model
from speechkd.interop.hf_models import load_hf_fsmt, load_hf_speech2text
from speechkd.interop.hf_roberta import load_hf_text_classifier, read_safetensors, write_safetensors
from speechkd.slu.batching import pad
from speechkd.slu.teacher import load_teacher
from speechkd.slu.text import encode_for_finetuning
from speechkd.stages import export
from speechkd.st.models import load_trained_model
from speechkd.st.vocab import TextEncoder
from support.trained_runs import (PROFILE, SENTENCES, TINY_BERARD, TINY_NMT, TINY_S2T, write_prep_run,
                                  write_st_train_run, write_teacher_run)

pytestmark = pytest.mark.reference

EOS, PAD = 2, 1
MAX_LEN_B = 20
LOGIT_ATOL = 1e-5  # float32 on both sides, the same operations in another order
# run name -> (task, arch, args, checkpoint exported)
MODELS = {"st": ("st", "s2t_transformer_s", TINY_S2T, "best"),
          "asr": ("asr", "s2t_transformer_s", {**TINY_S2T, "share_decoder_input_output_embed": True}, "last"),
          "berard": ("st", "s2t_berard", TINY_BERARD, "best"),
          "expert": ("nmt", "transformer", TINY_NMT, "average_last_2")}
# eos_friendly's push per run, chosen so that beams end at several lengths, some at max length (fairseq forces
# EOS there; transformers' rows that end with EOS are compared)
EOS_PUSH = {"st": 3.0, "asr": 2.0, "berard": 0.0, "expert": 3.5}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    runs_dir = tmp_path_factory.mktemp("export") / "runs"
    dictionary = write_prep_run(runs_dir)
    for seed, (name, (task, arch, args, _)) in enumerate(MODELS.items()):
        write_st_train_run(runs_dir, name, task, arch, args, dictionary, seed=seed, push=EOS_PUSH[name])
    write_teacher_run(runs_dir)
    return runs_dir


def exported(runs: Path, name: str, fmt: str) -> Path:
    out = runs.parent / "exports" / f"{name}_{fmt}"
    if not out.exists():
        checkpoint = MODELS[name][3] if name in MODELS else "best"
        export.run(load_config(export.Config, data={"runs_dir": str(runs), "run": name, "format": fmt,
                                                    "checkpoint": checkpoint, "out_dir": str(out)}))
    return out


def ours(runs: Path, name: str):
    return load_trained_model(export.Config(runs_dir=str(runs), run=name, out_dir="x"), name, "run",
                              MODELS[name][3]).model


def batch(name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(source, source lengths, prev_output_tokens): fbank-like frames or BPE token ids, right-padded."""
    g = torch.Generator().manual_seed(7)
    if MODELS[name][0] == "nmt":
        src = torch.randint(4, 30, (3, 9), generator=g)
        lens = torch.tensor([9, 6, 3])
        src[torch.arange(9)[None] >= lens[:, None]] = PAD
        src[torch.arange(3), lens - 1] = EOS
    else:
        lens = torch.tensor([41, 30, 17])
        src = torch.randn(3, 41, 80, generator=g) * (torch.arange(41)[None, :, None] < lens[:, None, None])
    prev = torch.randint(4, 30, (3, 6), generator=g)
    prev[:, 0] = EOS
    return src, lens, prev


def same_parameters(a: torch.nn.Module, b: torch.nn.Module, only: str = "") -> None:
    sa = {k: v for k, v in a.state_dict().items() if k.startswith(only)}
    sb = {k: v for k, v in b.state_dict().items() if k.startswith(only)}
    assert sa.keys() == sb.keys() and sa
    for key, value in sa.items():
        assert torch.equal(value, sb[key]), key


# ---------------------------------------------------------------------------------------------- fairseq

FAIRSEQ_SCRIPT = textwrap.dedent("""
    import json, sys, torch
    from fairseq import checkpoint_utils
    from fairseq.sequence_generator import SequenceGenerator
    jobs = json.loads(sys.argv[1])
    results = {}
    for name, (directory, inputs) in jobs.items():
        models, cfg, task = checkpoint_utils.load_model_ensemble_and_task(
            [directory + "/checkpoint.pt"], arg_overrides={"data": directory})
        model = models[0].eval()
        src, lens, prev = (torch.load(inputs)[k] for k in ("src", "lens", "prev"))
        with torch.no_grad():
            logits = model(src, lens, prev)[0]
            hyps = SequenceGenerator([model], task.target_dictionary, beam_size=5, max_len_b=%d).generate(
                [model], {"net_input": {"src_tokens": src, "src_lengths": lens}})
        results[name] = {"logits": logits, "task": cfg.task._name, "arch": cfg.model._name,
                         "vocab": len(task.target_dictionary), "class": type(model).__name__,
                         "tokens": [[h["tokens"] for h in nbest] for nbest in hyps],
                         "scores": [[float(h["score"]) for h in nbest] for nbest in hyps]}
    torch.save(results, sys.argv[2])
    """ % MAX_LEN_B)


@pytest.fixture(scope="module")
def fairseq_outputs(runs) -> dict:
    python = os.environ.get("FAIRSEQ_PYTHON")
    if not python:
        pytest.skip("FAIRSEQ_PYTHON (a python with fairseq-fixed) is not set: no fairseq reference")
    jobs = {}
    for name in MODELS:
        src, lens, prev = batch(name)
        inputs = runs.parent / f"{name}.inputs.pt"
        torch.save({"src": src, "lens": lens, "prev": prev}, inputs)
        jobs[name] = (str(exported(runs, name, "fairseq")), str(inputs))
    script = runs.parent / "fairseq_load.py"
    script.write_text(FAIRSEQ_SCRIPT)
    out = runs.parent / "fairseq_outputs.pt"
    env = {**os.environ, "TORCH_FORCE_WEIGHTS_ONLY_LOAD": "1", "OMP_NUM_THREADS": "1"}  # fairseq's loader, no code
    done = subprocess.run([python, str(script), json.dumps(jobs), str(out)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(out, weights_only=True)


@pytest.mark.parametrize("name", list(MODELS))
def test_fairseq_loads_the_export_and_agrees(runs, fairseq_outputs, name):
    ref = fairseq_outputs[name]
    task, arch, _, _ = MODELS[name]
    model = ours(runs, name)
    assert ref["arch"] == arch and ref["task"] == ("translation" if task == "nmt" else "speech_to_text")
    assert ref["vocab"] == model.decoder.embed_tokens.num_embeddings
    src, lens, prev = batch(name)
    with torch.no_grad():
        logits = model(src, lens, prev)
        torch.testing.assert_close(logits, ref["logits"], atol=LOGIT_ATOL, rtol=0)
        hyps = beam_search(model, model.encode(src, lens), beam=5, max_len_b=MAX_LEN_B)
    for nbest, ref_tokens, ref_scores in zip(hyps, ref["tokens"], ref["scores"], strict=True):
        assert [h.tokens.tolist() for h in nbest] == [t.tolist() for t in ref_tokens]
        assert [h.score for h in nbest] == pytest.approx(ref_scores, abs=1e-5)


@pytest.mark.parametrize("name", list(MODELS))
def test_fairseq_export_round_trips(runs, name):
    """load_fairseq_model reads the export back to the run's parameters; the file is plain (weights_only)."""
    out = exported(runs, name, "fairseq")
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["args"] is None and state["cfg"]["model"]["_name"] == MODELS[name][1]
    back, _ = load_fairseq_model(out / "checkpoint.pt")
    same_parameters(ours(runs, name), back)
    files = {p.name for p in out.iterdir()}
    if MODELS[name][0] == "nmt":
        assert files == {"checkpoint.pt", "dict.en.txt", "dict.de.txt", "bpecodes", "export.json"}
    else:
        assert files == {"checkpoint.pt", "config.yaml", "dict.txt", "bpecodes", "export.json"}
        assert "vocab_filename: dict.txt" in (out / "config.yaml").read_text()
    facts = json.loads((out / "export.json").read_text())
    assert facts["run"] == name and facts["arch"] == MODELS[name][1]
    if MODELS[name][3] == "average_last_2":
        assert facts["checkpoint"] == "checkpoint1.pt, checkpoint2.pt"


# ------------------------------------------------------------------------------------------ transformers

@pytest.fixture(scope="module")
def transformers():
    return pytest.importorskip("transformers", reason="transformers is not installed (optional reference)")


def generate(hf, **inputs) -> tuple[torch.Tensor, torch.Tensor]:
    """fairseq's search settings in transformers (as tests/parity/test_hf_models.py)."""
    out = hf.generate(**inputs, num_beams=5, max_new_tokens=MAX_LEN_B + 1, early_stopping=True, min_new_tokens=1,
                      suppress_tokens=[PAD], forced_eos_token_id=None, do_sample=False, length_penalty=1.0,
                      output_scores=True, return_dict_in_generate=True)
    return out.sequences, out.sequences_scores


def compare_beams(sequences, scores, nbests) -> int:
    """Best hypotheses agree on every row transformers ended with EOS (at max length fairseq forces EOS,
    transformers stops without it); returns how many rows were compared."""
    compared = 0
    for seq, score, nbest in zip(sequences.tolist(), scores.tolist(), nbests, strict=True):
        seq = seq[1:]  # the decoder start token
        if EOS in seq:
            assert nbest[0].tokens.tolist() == seq[: seq.index(EOS) + 1]
            assert nbest[0].score == pytest.approx(score, abs=1e-4)
            compared += 1
    return compared


@pytest.mark.parametrize("name", ["st", "asr"])
def test_speech2text_export(runs, transformers, name):
    out = exported(runs, name, "hf")
    model = ours(runs, name)
    hf = transformers.Speech2TextForConditionalGeneration.from_pretrained(out).eval()
    assert hf.config.tie_word_embeddings is (name == "asr")
    src, lens, prev = batch(name)
    mask = (torch.arange(src.size(1))[None] < lens[:, None]).long()
    with torch.no_grad():
        ref = hf(input_features=src, attention_mask=mask, decoder_input_ids=prev).logits
        torch.testing.assert_close(model(src, lens, prev), ref, atol=LOGIT_ATOL, rtol=0)
        sequences, scores = generate(hf, input_features=src, attention_mask=mask)
    assert compare_beams(sequences, scores, beam_search(model, model.encode(src, lens), beam=5,
                                                        max_len_b=MAX_LEN_B)) >= 2
    same_parameters(model, load_hf_speech2text(out))
    extractor = transformers.Speech2TextFeatureExtractor.from_pretrained(out)
    assert extractor.feature_size == 80 and extractor.do_ceptral_normalize


def test_fsmt_export(runs, transformers):
    out = exported(runs, "expert", "hf")
    model = ours(runs, "expert")
    hf = transformers.FSMTForConditionalGeneration.from_pretrained(out).eval()
    assert hf.config.tie_word_embeddings  # share_all_embeddings: one matrix
    src, lens, prev = batch("expert")
    with torch.no_grad():
        # use_cache=False: with the cache on, FSMT's forward skips its causal mask (a transformers quirk)
        ref = hf(input_ids=src, attention_mask=src.ne(PAD).long(), decoder_input_ids=prev, use_cache=False).logits
        torch.testing.assert_close(model(src, lens, prev), ref, atol=LOGIT_ATOL, rtol=0)
        sequences, scores = generate(hf, input_ids=src, attention_mask=src.ne(PAD).long())
    assert compare_beams(sequences, scores, beam_search(model, model.encode(src, lens), beam=5,
                                                        max_len_b=MAX_LEN_B)) >= 2
    same_parameters(model, load_hf_fsmt(out))
    # FSMTTokenizer with the converted vocabulary gives the ids of the prep run's BPE + dictionary
    prep = runs / PROFILE / "prep" / "data"
    encoder = TextEncoder.load(prep / "bpecodes", prep / "dict.txt")
    tokenizer = transformers.FSMTTokenizer.from_pretrained(out)
    for sentence in SENTENCES[:3]:
        assert tokenizer(sentence)["input_ids"] == encoder.encode(sentence).tolist()


def test_text_teacher_export(runs, transformers):
    """RobertaForTokenClassification: its logits at <s> are the teacher's intent logits."""
    out = exported(runs, "teacher", "hf")
    teacher, text, intents = load_teacher(runs / PROFILE / "teacher")
    hf = transformers.AutoModelForTokenClassification.from_pretrained(out).eval()
    assert [hf.config.id2label[i] for i in range(len(intents))] == intents
    tokens, _ = pad([encode_for_finetuning(text, s) for s in ("Turn on the lights", "increase the volume up", "off")],
                    PAD)
    with torch.no_grad():
        ref = hf(input_ids=tokens, attention_mask=tokens.ne(PAD).long()).logits[:, 0]
        torch.testing.assert_close(teacher(tokens)[0], ref, atol=LOGIT_ATOL, rtol=0)
    assert (ref[0] - ref[1]).abs().max() > 1e-2  # the inputs tell the logits apart: the comparison is not vacuous
    back, _ = load_hf_text_classifier(out)
    same_parameters(teacher, back, only="roberta.encoder.sentence_encoder.")
    same_parameters(teacher, back, only="intenter.")


def test_safetensors_writer_matches_the_library(tmp_path):
    """write_safetensors (no safetensors package at run time) -> the safetensors library and our reader."""
    safetensors_torch = pytest.importorskip("safetensors.torch", reason="safetensors is not installed (reference)")
    tensors = {"w": torch.randn(3, 5), "half": torch.randn(2, 2).half(), "bf": torch.randn(4).bfloat16(),
               "ids": torch.tensor([7, -1, 3]), "flag": torch.tensor([True, False]), "scalar": torch.tensor(2.5),
               "empty": torch.zeros(0, 4), "strided": torch.arange(12.0).reshape(3, 4).t()}
    write_safetensors(tmp_path / "x.safetensors", tensors, {"note": "speechkd"})
    for got in (safetensors_torch.load_file(tmp_path / "x.safetensors"), read_safetensors(tmp_path / "x.safetensors")):
        assert got.keys() == tensors.keys()
        for name, value in tensors.items():
            assert got[name].dtype == value.dtype and torch.equal(got[name], value), name
