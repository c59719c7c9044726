"""HF RoBERTa -> our model: tiny random transformers models saved with save_pretrained, loaded without
transformers, compared on padded batches (skipped with a reason when transformers is missing)."""
from __future__ import annotations

import json
import struct

import pytest
import torch

from speechkd.errors import InputError
from speechkd.interop.hf_roberta import load_hf_roberta, read_safetensors

TOKENS = torch.tensor([[0, 5, 6, 7, 8, 9, 2], [0, 10, 11, 2, 1, 1, 1], [0, 12, 13, 14, 2, 1, 1]])
REAL = TOKENS.ne(1)


def hf_config(transformers, **kw):
    base = dict(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                max_position_embeddings=22, pad_token_id=1, bos_token_id=0, eos_token_id=2, type_vocab_size=1,
                num_labels=4)
    return transformers.RobertaConfig(**{**base, **kw})  # layer_norm_eps stays HF's default 1e-12


@pytest.fixture
def transformers():
    return pytest.importorskip("transformers", reason="transformers not installed: no HF reference")


def save(model, path, **kw):
    torch.manual_seed(0)
    with torch.no_grad():  # HF zero-inits some biases and the token type row; make every tensor matter
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.eval().save_pretrained(path, **kw)
    return model


@pytest.mark.reference
def test_masked_lm_features_and_logits(transformers, tmp_path):
    hf = save(transformers.RobertaForMaskedLM(hf_config(transformers)), tmp_path)
    ours, config = load_hf_roberta(tmp_path, require_lm_head=True)
    assert config["model_type"] == "roberta" and ours.max_positions == 20 and ours.cfg.layer_norm_eps == 1e-12
    assert ours.encoder.lm_head.weight is ours.encoder.sentence_encoder.embed_tokens.weight
    with torch.no_grad():
        out = hf(input_ids=TOKENS, attention_mask=REAL.long(), output_hidden_states=True)
        feats = ours.extract_features(TOKENS)
        states = ours.extract_features(TOKENS, return_all_hiddens=True)
        logits, _ = ours(TOKENS)
    torch.testing.assert_close(feats[REAL], out.hidden_states[-1][REAL], atol=1e-4, rtol=0)
    torch.testing.assert_close(logits[REAL], out.logits[REAL], atol=1e-4, rtol=0)
    assert len(states) == len(out.hidden_states) == 3
    for a, b in zip(states, out.hidden_states):
        torch.testing.assert_close(a[REAL], b[REAL], atol=1e-4, rtol=0)


@pytest.mark.reference
def test_base_model_and_sequence_classification(transformers, tmp_path):
    hf = save(transformers.RobertaModel(hf_config(transformers)), tmp_path / "base")
    ours, _ = load_hf_roberta(tmp_path / "base")
    with torch.no_grad():
        ref = hf(input_ids=TOKENS, attention_mask=REAL.long()).last_hidden_state
        torch.testing.assert_close(ours.extract_features(TOKENS)[REAL], ref[REAL], atol=1e-4, rtol=0)
    with pytest.raises(InputError, match="no MLM head"):
        load_hf_roberta(tmp_path / "base", require_lm_head=True)

    clf = save(transformers.RobertaForSequenceClassification(hf_config(transformers)), tmp_path / "clf")
    ours, _ = load_hf_roberta(tmp_path / "clf", head_name="slu")
    with torch.no_grad():
        ref = clf(input_ids=TOKENS, attention_mask=REAL.long()).logits
        torch.testing.assert_close(ours(TOKENS, classification_head_name="slu")[0], ref, atol=1e-4, rtol=0)


@pytest.mark.reference
def test_pytorch_model_bin(transformers, tmp_path):
    hf = save(transformers.RobertaForMaskedLM(hf_config(transformers)), tmp_path)
    state = read_safetensors(tmp_path / "model.safetensors")
    (tmp_path / "model.safetensors").unlink()
    torch.save(state, tmp_path / "pytorch_model.bin")
    ours, _ = load_hf_roberta(tmp_path, require_lm_head=True)
    with torch.no_grad():
        ref = hf(input_ids=TOKENS, attention_mask=REAL.long()).logits
        torch.testing.assert_close(ours(TOKENS)[0][REAL], ref[REAL], atol=1e-4, rtol=0)


def test_read_safetensors_hand_written(tmp_path):
    a = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    b = torch.tensor([7, -1], dtype=torch.int64)
    header = {"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
              "b": {"dtype": "I64", "shape": [2], "data_offsets": [24, 40]}, "__metadata__": {"format": "pt"}}
    raw = json.dumps(header).encode()
    (tmp_path / "x.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + a.numpy().tobytes()
                                             + b.numpy().tobytes())
    got = read_safetensors(tmp_path / "x.safetensors")
    assert torch.equal(got["a"], a) and torch.equal(got["b"], b) and set(got) == {"a", "b"}
    (tmp_path / "bad.safetensors").write_bytes(b"\x01")
    with pytest.raises(InputError, match="not a readable safetensors"):
        read_safetensors(tmp_path / "bad.safetensors")
    with pytest.raises(InputError, match="no config.json"):
        load_hf_roberta(tmp_path)
