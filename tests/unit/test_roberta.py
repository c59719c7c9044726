"""RoBERTa (models/roberta.py) against a functional re-statement of fairseq's computation, and the MLM
objective (models/mlm.py): masking statistics and a loss over masked positions only."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from speechkd.models.mlm import (VQ_BERT_MASKING, mask_tokens, masked_lm_loss, span_mask_for_mlm)
from speechkd.models.roberta import RobertaConfig, RobertaModel, TextClassifier

PAD, MASK, VOCAB = 1, 39, 40


def tiny(**kw) -> RobertaModel:
    torch.manual_seed(0)
    cfg = RobertaConfig(**{"layers": 2, "embed_dim": 16, "heads": 2, "ffn_dim": 32, "max_positions": 20, **kw})
    return RobertaModel(cfg, VOCAB).eval()


def batch() -> torch.Tensor:
    return torch.tensor([[0, 5, 6, 7, 8, 9, 2], [0, 10, 11, 2, PAD, PAD, PAD], [0, 12, 2, PAD, PAD, PAD, PAD]])


def reference_features(model: RobertaModel, tokens: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """fairseq TransformerSentenceEncoder / roberta TransformerEncoder written out from their source."""
    p = {k: v.double() for k, v in model.state_dict().items()}
    se = "encoder.sentence_encoder."
    cfg = model.cfg
    ln = lambda x, name: F.layer_norm(x, (cfg.embed_dim,), p[name + ".weight"], p[name + ".bias"], 1e-5)  # noqa: E731
    lin = lambda x, name: x @ p[name + ".weight"].T + p[name + ".bias"]  # noqa: E731
    pad = tokens.eq(PAD)
    positions = torch.cumsum(~pad, 1) * ~pad + PAD  # utils.make_positions
    x = p[se + "embed_tokens.weight"][tokens] + p[se + "embed_positions.weight"][positions]
    x = ln(x, se + "layernorm_embedding")
    x = x * (~pad).unsqueeze(-1)
    states = [x]
    b, t, c = x.shape
    h, d = cfg.heads, c // cfg.heads
    for i in range(cfg.layers):
        pre = f"{se}layers.{i}."
        q, k, v = (lin(x, pre + f"self_attn.{n}_proj").view(b, t, h, d).transpose(1, 2) for n in "qkv")
        scores = (q * d ** -0.5) @ k.transpose(-1, -2)
        scores = scores.masked_fill(pad[:, None, None, :], float("-inf"))
        attn = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, c)
        x = ln(x + lin(attn, pre + "self_attn.out_proj"), pre + "self_attn_layer_norm")
        x = ln(x + lin(F.gelu(lin(x, pre + "fc1")), pre + "fc2"), pre + "final_layer_norm")
        states.append(x)
    return x, states


def test_features_match_the_functional_reference_with_padding():
    model, tokens = tiny(), batch()
    ref, ref_states = reference_features(model, tokens)
    with torch.no_grad():
        got = model.extract_features(tokens)
        states = model.extract_features(tokens, return_all_hiddens=True)
    assert got.shape == (3, 7, 16)
    torch.testing.assert_close(got.double(), ref, atol=1e-5, rtol=0)
    assert len(states) == 3
    for s, r in zip(states, ref_states):
        torch.testing.assert_close(s.double(), r, atol=1e-5, rtol=0)
    assert states[0][1, 4:].abs().max() == 0  # pads zeroed after the embedding, as fairseq does


def test_padding_does_not_change_real_positions():
    model, tokens = tiny(), batch()
    with torch.no_grad():
        padded = model.extract_features(tokens)[1, :4]
        alone = model.extract_features(tokens[1, :4])[0]
    torch.testing.assert_close(padded, alone, atol=1e-5, rtol=0)


def test_lm_head_tied_and_masked_positions_only():
    model, tokens = tiny(), batch()
    head = model.encoder.lm_head
    assert head.weight is model.encoder.sentence_encoder.embed_tokens.weight
    with torch.no_grad():
        logits, extra = model(tokens)
        feats = model.extract_features(tokens)
        manual = F.layer_norm(F.gelu(feats @ head.dense.weight.T + head.dense.bias), (16,), head.layer_norm.weight,
                              head.layer_norm.bias, 1e-5) @ head.weight.T + head.bias
        masked = torch.zeros_like(tokens, dtype=torch.bool)
        masked[0, 2] = masked[1, 1] = True
        only, _ = model(tokens, masked_tokens=masked)
    assert logits.shape == (3, 7, VOCAB) and extra["inner_states"] is None
    torch.testing.assert_close(logits, manual, atol=1e-5, rtol=0)
    torch.testing.assert_close(only, logits[masked], atol=1e-6, rtol=0)
    untied = tiny(untie_weights=True).encoder.lm_head
    assert untied.weight is not tiny().encoder.sentence_encoder.embed_tokens.weight
    assert "encoder.lm_head.weight" in tiny().state_dict()


def test_classification_head_and_names():
    model, tokens = tiny(), batch()
    model.register_classification_head("slu", num_classes=5)
    names = set(model.state_dict())
    assert {"classification_heads.slu.dense.weight", "classification_heads.slu.out_proj.bias",
            "encoder.sentence_encoder.layernorm_embedding.weight", "encoder.lm_head.dense.weight",
            "encoder.sentence_encoder.layers.1.self_attn.k_proj.weight",
            "encoder.sentence_encoder.layers.1.final_layer_norm.bias"} <= names
    head = model.classification_heads["slu"]
    with torch.no_grad():
        logits, _ = model(tokens, classification_head_name="slu")
        cls = model.extract_features(tokens)[:, 0]
    torch.testing.assert_close(logits, torch.tanh(cls @ head.dense.weight.T + head.dense.bias) @ head.out_proj.weight.T
                               + head.out_proj.bias, atol=1e-6, rtol=0)


def test_text_classifier_is_a_linear_on_the_s_vector():
    model, tokens = tiny(), batch()
    clf = TextClassifier(model, num_classes=31).eval()
    with torch.no_grad():
        logits, cls = clf(tokens)
        feats = model.extract_features(tokens)
    torch.testing.assert_close(cls, feats[:, 0])
    torch.testing.assert_close(logits, cls @ clf.intenter.weight.T + clf.intenter.bias)
    assert logits.shape == (3, 31) and set(dict(clf.named_children())) == {"roberta", "intenter"}


def test_prenorm_and_max_positions():
    model = tiny(normalize_before=True, layernorm_embedding=False)
    assert model.encoder.sentence_encoder.layer_norm is not None
    assert "encoder.sentence_encoder.layernorm_embedding.weight" not in model.state_dict()
    with torch.no_grad():
        states = model.extract_features(batch(), return_all_hiddens=True)
        feats = model.extract_features(batch())
    norm = model.encoder.sentence_encoder.layer_norm
    torch.testing.assert_close(feats, norm(states[-1]))  # inner states are taken before the final norm
    with pytest.raises(ValueError, match="max_positions"):
        model.extract_features(torch.full((1, 21), 5))


def test_roberta_base_size():
    """roberta.base: vocab 50265, 514 positions; encoder + LM head (tied) = 124,696,665 parameters."""
    with torch.device("meta"):
        model = RobertaModel(RobertaConfig(), 50265)  # the defaults are fairseq roberta_base
    n = sum(p.numel() for p in model.parameters())
    layer = 4 * (768 * 768 + 768) + 3072 * 768 + 3072 + 768 * 3072 + 768 + 2 * 2 * 768
    expected = 50265 * 768 + 514 * 768 + 2 * 768 + 12 * layer + (768 * 768 + 768 + 2 * 768 + 50265)
    assert n == expected == 124_696_665


# ------------------------------------------------------------------------------------------------ masking


def test_token_masking_statistics_80_10_10():
    rng = np.random.default_rng(0)
    vocab, n_seq, length = 1000, 3000, 100
    selected = masked = randomised = kept = 0
    for _ in range(n_seq):
        tokens = torch.from_numpy(rng.integers(4, vocab - 1, size=length))
        source, target = mask_tokens(tokens, vocab - 1, vocab, rng)
        sel = target.ne(PAD)
        assert torch.equal(target[sel], tokens[sel]) and torch.equal(source[~sel], tokens[~sel])
        selected += int(sel.sum())
        masked += int(source[sel].eq(vocab - 1).sum())
        changed = sel & source.ne(vocab - 1) & source.ne(tokens)
        randomised += int(changed.sum())
        kept += int((sel & source.eq(tokens)).sum())
        assert bool((source[changed] >= 4).all())  # never a special symbol
    assert abs(selected / (n_seq * length) - 0.15) < 0.003
    # random replacements that happen to equal the original count as kept (p = 1/996)
    assert abs(masked / selected - 0.8) < 0.01
    assert abs(randomised / selected - 0.1) < 0.01
    assert abs(kept / selected - 0.1) < 0.01


def test_span_masking_vq_bert_recipe_coverage():
    """mask_prob 0.5, span 10: k = int(0.05 n + U) starts without replacement; a position j is selected
    unless none of the starts j-9..j was drawn: P = C(n - w, k) / C(n, k) with w = min(j + 1, 10)."""
    rng = np.random.default_rng(1)
    n, trials = 200, 2000
    cover = np.zeros(n)
    for _ in range(trials):
        _, target = mask_tokens(torch.full((n,), 7), MASK, VOCAB, rng, **VQ_BERT_MASKING)
        cover += target.ne(PAD).numpy()
    k = 10  # 0.5 * 200 / 10 = 10.0 exactly, so int(10 + U) = 10
    expected = np.array([1 - math.comb(n - min(j + 1, 10), k) / math.comb(n, k) for j in range(n)])
    assert np.abs(cover / trials - expected).max() < 0.05
    assert abs(cover.mean() / trials - expected.mean()) < 0.005  # about 0.40, not the nominal 0.5


def test_pt_kd_span_masking_targets():
    rng = np.random.default_rng(2)
    tokens = torch.arange(4, 4 + 400) % 38 + 2
    source, target = span_mask_for_mlm(tokens, MASK, rng, seqfreq=0.025, span=20)
    sel = target.ne(PAD)
    assert bool(source[sel].eq(MASK).all()) and torch.equal(target[sel], tokens[sel])
    assert torch.equal(source[~sel], tokens[~sel]) and not bool(sel[0])
    assert 0.25 < sel.float().mean() <= 0.5  # ceil(0.025 * 400) = 10 spans of 20 = at most 200 tokens


def test_masked_lm_loss_counts_only_masked_positions():
    model = tiny()
    tokens = batch()
    target = torch.full_like(tokens, PAD)
    target[0, 3], target[1, 1], target[2, 1] = 7, 10, 12
    source = tokens.clone()
    source[target.ne(PAD)] = MASK
    with torch.no_grad():
        loss, n = masked_lm_loss(model, source, target)
        logits, _ = model(source)
    manual = F.cross_entropy(logits.reshape(-1, VOCAB), target.reshape(-1), ignore_index=PAD, reduction="sum")
    assert n == 3
    torch.testing.assert_close(loss, manual, atol=1e-5, rtol=0)
    # changing predictions at unmasked positions cannot change the loss; features passed in are used as is
    feats = model.extract_features(source).detach()
    feats_changed = feats.clone()
    feats_changed[0, 5] += 3.0
    torch.testing.assert_close(masked_lm_loss(model, None, target, features=feats_changed)[0].detach(),
                               manual, atol=1e-5, rtol=0)
    zero, n0 = masked_lm_loss(model, source, torch.full_like(tokens, PAD))
    assert n0 == 0 and zero.item() == 0.0 and zero.requires_grad
