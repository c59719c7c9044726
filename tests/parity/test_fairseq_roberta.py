"""fairseq RoBERTa checkpoints: our renaming (0.9 / 0.12 / the SLU authors' state dicts) round-trips, and parity
with fixtures written by fairseq-fixed 0.12.3.1 (tests/fixtures/fairseq/, skipped with a reason when absent)."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from speechkd.errors import InputError
from speechkd.interop.fairseq_roberta import (load_authors_pt_kd_vq_bert, load_authors_text_classifier,
                                              load_fairseq_roberta, load_masked_lm_dictionary)
from speechkd.models.roberta import RobertaConfig, RobertaModel, TextClassifier
from support.paths import FAIRSEQ_FIXTURES

FIXTURES = FAIRSEQ_FIXTURES
TOKENS = torch.tensor([[0, 5, 6, 7, 8, 2], [0, 9, 10, 2, 1, 1]])


def tiny(vocab: int = 24) -> RobertaModel:
    torch.manual_seed(0)
    model = RobertaModel(RobertaConfig(layers=2, embed_dim=16, heads=2, ffn_dim=32, max_positions=12), vocab)
    model.register_classification_head("slu", 3)
    return model.eval()


def fairseq09_state(model: RobertaModel, prefix: str = "") -> dict[str, torch.Tensor]:
    """Our names -> fairseq 0.9's (decoder.*, emb_layer_norm), with q/k/v stacked as fairseq < 0.8 stored them."""
    out = {}
    sd = model.state_dict()
    for name, value in sd.items():
        name = name.replace("encoder.", "decoder.", 1).replace(".layernorm_embedding.", ".emb_layer_norm.")
        if ".self_attn.q_proj." in name:
            kind = name.rsplit(".", 1)[1]
            stem = name.split(".self_attn.")[0]
            parts = [sd[name.replace("decoder.", "encoder.", 1).replace("q_proj", p)] for p in ("q_proj", "k_proj",
                                                                                              "v_proj")]
            out[f"{prefix}{stem}.self_attn.in_proj_{kind}"] = torch.cat(parts)
        elif ".self_attn.k_proj." in name or ".self_attn.v_proj." in name:
            continue
        else:
            out[prefix + name] = value
    return out


def outputs(model: RobertaModel) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        return (model.extract_features(TOKENS), model(TOKENS)[0],
                model(TOKENS, classification_head_name="slu")[0])


def assert_same_outputs(a: RobertaModel, b: RobertaModel) -> None:
    for x, y in zip(outputs(a), outputs(b)):
        torch.testing.assert_close(x, y, atol=1e-6, rtol=0)


def test_fairseq_09_checkpoint(tmp_path):
    model = tiny()
    args = argparse.Namespace(arch="roberta_base", encoder_attention_heads=2, dropout=0.1, attention_dropout=0.1,
                              activation_fn="gelu", pooler_activation_fn="tanh", max_positions=12)
    torch.save({"args": args, "model": fairseq09_state(model)}, tmp_path / "model.pt")
    loaded, got_args = load_fairseq_roberta(tmp_path / "model.pt")
    assert got_args["arch"] == "roberta_base" and not loaded.training
    assert loaded.cfg == model.cfg and list(loaded.classification_heads) == ["slu"]
    assert loaded.encoder.lm_head.weight is loaded.encoder.sentence_encoder.embed_tokens.weight
    assert_same_outputs(model, loaded)


def test_fairseq_012_checkpoint_and_dictionary_check(tmp_path):
    model = tiny(vocab=12)
    state = {**model.state_dict(), "encoder.sentence_encoder.version": torch.tensor([3.0])}
    cfg = {"model": {"_name": "roberta", "encoder_attention_heads": 2, "dropout": 0.0, "attention_dropout": 0.0},
           "task": {"_name": "masked_lm"}}
    torch.save({"cfg": cfg, "model": state}, tmp_path / "model.pt")
    (tmp_path / "dict.txt").write_text("".join(f"{i} {10 - i}\n" for i in range(7)), encoding="utf-8")
    dictionary = load_masked_lm_dictionary(tmp_path / "dict.txt")
    assert len(dictionary) == 12 and dictionary.index("<mask>") == 11
    loaded, _ = load_fairseq_roberta(tmp_path / "model.pt", dictionary)
    assert loaded.cfg.dropout == 0.0 and loaded.cfg.attention_dropout == 0.0
    assert_same_outputs(model, loaded)
    (tmp_path / "dict.txt").write_text("a 5\nb 4\n", encoding="utf-8")
    with pytest.raises(InputError, match="embedding has 12 rows but the dictionary has 7"):
        load_fairseq_roberta(tmp_path / "model.pt", load_masked_lm_dictionary(tmp_path / "dict.txt"))


def test_bad_checkpoints(tmp_path):
    torch.save({"args": argparse.Namespace(arch="roberta"), "model": {"decoder.x": torch.zeros(1)}}, tmp_path / "a.pt")
    with pytest.raises(InputError, match="not a RoBERTa state dict"):
        load_fairseq_roberta(tmp_path / "a.pt")
    state = fairseq09_state(tiny())
    torch.save({"args": argparse.Namespace(activation_fn="relu"), "model": state}, tmp_path / "b.pt")
    with pytest.raises(InputError, match="activation_fn='relu' is not supported"):
        load_fairseq_roberta(tmp_path / "b.pt")
    state["decoder.sentence_encoder.layers.1.fc2.weight"] = torch.zeros(3, 3)
    torch.save({"args": argparse.Namespace(encoder_attention_heads=2), "model": state}, tmp_path / "c.pt")
    with pytest.raises(InputError, match="do not fit"):
        load_fairseq_roberta(tmp_path / "c.pt")


def test_authors_text_teacher_and_pt_kd_state_dicts(tmp_path):
    model = tiny()
    teacher = TextClassifier(model, 31)
    # text_finetuning.py: torch.save(TextModel.state_dict()) with the hub interface under text_bert
    state = {**fairseq09_state(model, "text_bert.model."), "text_bert._float_tensor": torch.zeros(1),
             "intenter.weight": teacher.intenter.weight.detach(), "intenter.bias": teacher.intenter.bias.detach()}
    torch.save(state, tmp_path / "best_acc.pt")
    loaded = load_authors_text_classifier(tmp_path / "best_acc.pt", heads=2)
    with torch.no_grad():
        for x, y in zip(teacher(TOKENS), loaded(TOKENS)):
            torch.testing.assert_close(x, y, atol=1e-6, rtol=0)
    # PT-KD CrossBert under nn.DataParallel: module.vq_bert.model.*, module.text_bert.model.*, module.vq_lm_head.*
    vq = tiny()
    pt = {**fairseq09_state(vq, "module.vq_bert.model."), **fairseq09_state(model, "module.text_bert.model."),
          **{f"module.vq_lm_head.{k}": v for k, v in vq.encoder.lm_head.state_dict().items()}}
    torch.save(pt, tmp_path / "xbt_recent")
    assert_same_outputs(vq, load_authors_pt_kd_vq_bert(tmp_path / "xbt_recent", heads=2))
    with pytest.raises(InputError, match="intenter"):
        load_authors_text_classifier(tmp_path / "xbt_recent")


# ------------------------------------------------------------------------------------ fairseq-fixed parity


def fixture(name: str) -> Path:
    path = FIXTURES / name
    if not path.is_file():
        pytest.skip(f"{path} missing: fairseq-fixed fixtures not generated (see tests/fixtures/fairseq/README.md)")
    return path


def check_io(model: RobertaModel, io: dict) -> None:
    tokens = io["tokens"]
    with torch.no_grad():
        torch.testing.assert_close(model.extract_features(tokens), io["features"].float(), atol=1e-4, rtol=0)
        if "lm_logits" in io:
            torch.testing.assert_close(model(tokens)[0], io["lm_logits"].float(), atol=1e-4, rtol=0)
        if "inner_states" in io:  # embedding output + every layer (fairseq's are time-first; stored batch-first)
            states = model.extract_features(tokens, return_all_hiddens=True)
            assert len(states) == len(io["inner_states"]) == model.cfg.layers + 1
            for ours, ref in zip(states, io["inner_states"]):
                torch.testing.assert_close(ours, ref.float(), atol=1e-4, rtol=0)
        if "head_logits" in io:
            torch.testing.assert_close(model(tokens, classification_head_name="slu")[0], io["head_logits"].float(),
                                       atol=1e-4, rtol=0)


@pytest.mark.reference
def test_fairseq_012_parity():
    model, _ = load_fairseq_roberta(fixture("roberta.pt"))
    io = torch.load(fixture("roberta.io.pt"), weights_only=True)
    assert bool(io["tokens"].eq(model.padding_idx).any()), "the fixture should exercise padding"
    check_io(model, io)


@pytest.mark.reference
def test_fairseq_09_naming_parity():
    model, _ = load_fairseq_roberta(fixture("roberta_v09.pt"))
    io_path = FIXTURES / "roberta_v09.io.pt"
    io = torch.load(io_path if io_path.is_file() else fixture("roberta.io.pt"), weights_only=True)
    check_io(model, io)


@pytest.mark.reference
def test_fairseq_dictionary_fixture():
    dictionary = load_masked_lm_dictionary(fixture("roberta_dict.txt"))
    model, _ = load_fairseq_roberta(fixture("roberta.pt"), dictionary)
    io = torch.load(fixture("roberta.io.pt"), weights_only=True)
    assert dictionary.index("<mask>") == model.vocab_size - 1 == io["mask_idx"] and len(dictionary) == io["vocab_size"]
    for sentence, row in zip(io["sentences"], io["tokens"]):  # <s> + encode_line (append </s>), right-padded
        ids = [dictionary.bos()] + dictionary.encode_line(sentence).tolist()
        assert row[: len(ids)].tolist() == ids and bool(row[len(ids):].eq(dictionary.pad()).all())
