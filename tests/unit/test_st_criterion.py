"""The ST criterion registry: fairseq's label-smoothed NLL (value by hand), the gold-NLL validation loss, the
registration contract the KD criteria use, and the expert that such a criterion receives (frozen, held by the
task, same vocabulary as the student)."""
from __future__ import annotations


import pytest
import torch

from speechkd.errors import InputError
from speechkd.st.criteria import (CRITERIA, Criterion, CriterionConfig, CriterionContext, LabelSmoothedNll,
                                  criterion_class, register)
from speechkd.st.expert import Expert, ExpertConfig, load_expert
from speechkd.st.models import ModelConfig, build_model
from speechkd.tokenizers.dictionary import Dictionary


class FixedLogits(torch.nn.Module):
    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = logits

    def forward(self, src, src_lengths, prev):
        return self.logits


def small_dict(n: int = 4) -> Dictionary:
    d = Dictionary()
    for i in range(n):
        d.add_symbol(f"w{i}")
    return d  # 4 specials + n symbols


def test_label_smoothed_nll_matches_fairseq_formula():
    d = small_dict()
    V = len(d)
    logits = torch.randn(2, 3, V, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([[4, 5, 2], [6, 2, d.pad()]])
    batch = {"source": torch.zeros(2, 1), "source_lengths": torch.ones(2), "prev_output_tokens": target,
             "target": target, "ntokens": 5, "nsentences": 2}
    crit = LabelSmoothedNll(CriterionConfig(label_smoothing=0.1), CriterionContext(d))
    loss, size, logs = crit(FixedLogits(logits), batch)
    lp = torch.log_softmax(logits.double(), -1)
    eps, eps_i = 0.1, 0.1 / (V - 1)
    expect, nll = 0.0, 0.0
    for b in range(2):
        for t in range(3):
            y = int(target[b, t])
            if y == d.pad():
                continue
            nll += -lp[b, t, y].item()
            expect += (1 - eps - eps_i) * -lp[b, t, y].item() + eps_i * -lp[b, t].sum().item()
    assert size == 5
    assert loss.item() == pytest.approx(expect, rel=1e-5)
    assert logs["nll_loss"] == pytest.approx(nll, rel=1e-5)
    valid, n = crit.valid_loss(FixedLogits(logits), batch)
    assert n == 5 and valid.item() == pytest.approx(nll, rel=1e-5)  # validation: NLL, no smoothing


def test_registry_contract():
    assert criterion_class("label_smoothed_nll") is LabelSmoothedNll
    with pytest.raises(InputError, match="unknown criterion 'nope'.*label_smoothed_nll"):
        criterion_class("nope")

    @register("_test_constant")
    class Constant(Criterion):
        needs_expert = True

        def __call__(self, model, batch):
            return torch.tensor(1.0), 1, {}

        def on_update(self, n):
            self.seen = n

    try:
        assert CRITERIA["_test_constant"] is Constant and Constant.name == "_test_constant"
        with pytest.raises(ValueError, match="registered twice"):
            register("_test_constant")(type("Other", (Criterion,), {}))
    finally:
        CRITERIA.pop("_test_constant")


def test_expert_is_frozen_and_reads_its_own_source():
    d = small_dict()
    nmt = build_model(ModelConfig("transformer_tiny", {"share_all_embeddings": True}), len(d))
    expert = Expert(nmt, "nmt", d, None, "test")
    assert not nmt.training and not any(p.requires_grad for p in nmt.parameters())
    src = torch.tensor([[4, 5, 2], [6, 2, 1]])
    prev = torch.tensor([[2, 4], [2, 6]])
    batch = {"expert_source": src, "expert_source_lengths": torch.tensor([3, 2]), "source": torch.zeros(2, 5, 80)}
    nmt.train()  # a caller switching the module tree to training must not turn dropout on in the expert
    logits = expert.logits(batch, prev)
    assert logits.shape == (2, 2, len(d)) and not logits.requires_grad
    torch.testing.assert_close(logits, nmt.eval()(src, torch.tensor([3, 2]), prev))
    with pytest.raises(InputError, match="expert_source"):
        expert.logits({"source": torch.zeros(2, 5, 80)}, prev)


def test_load_expert_needs_a_source_and_rejects_config_conflicts(tmp_path):
    with pytest.raises(InputError, match="needs an expert"):
        load_expert(ExpertConfig(), object(), small_dict())
    with pytest.raises(ValueError, match="not both"):
        ExpertConfig(run="a", checkpoint="b.pt")
    with pytest.raises(InputError, match="checkpoint"):
        load_expert(ExpertConfig(checkpoint="model1.pt"), object(), small_dict(), data_root=str(tmp_path))


def test_ctc_weight_interpolates_espnet_style_and_the_head_stays_out_of_students(tmp_path):
    """(1-λ)·label-smoothed NLL + λ·CTC on encoder.ctc_proj, blank = <s>; the head is dropped when an ASR
    checkpoint initialises a student encoder or is rebuilt for decoding."""
    from speechkd.interop.fairseq_models import load_pretrained_encoder
    from speechkd.models.s2t_transformer import drop_ctc_head
    d = small_dict(6)
    args = {"encoder_layers": 1, "decoder_layers": 1, "encoder_embed_dim": 16, "encoder_ffn_embed_dim": 32,
            "encoder_attention_heads": 2, "decoder_attention_heads": 2, "conv_channels": 8,
            "input_feat_per_channel": 5, "dropout": 0.0, "attention_dropout": 0.0, "activation_dropout": 0.0}
    torch.manual_seed(0)
    asr = build_model(ModelConfig("s2t_transformer_s", args), len(d), ctc_head=True)
    target = torch.tensor([[4, 5, 5, 2], [6, 2, d.pad(), d.pad()]])
    prev = torch.tensor([[2, 4, 5, 5], [2, 6, d.pad(), d.pad()]])
    batch = {"source": torch.randn(2, 40, 5), "source_lengths": torch.tensor([40, 30]),
             "prev_output_tokens": prev, "target": target, "ntokens": 6, "nsentences": 2}
    plain, _, _ = LabelSmoothedNll(CriterionConfig(), CriterionContext(d))(asr, batch)
    loss, size, logs = LabelSmoothedNll(CriterionConfig(ctc_weight=0.3), CriterionContext(d))(asr, batch)
    enc = asr.encode(batch["source"], batch["source_lengths"])
    lp = torch.log_softmax(enc.ctc_logits.float(), -1).transpose(0, 1)
    assert torch.equal(enc.ctc_logits, asr.encoder.ctc_proj(enc.out))
    ctc = torch.nn.functional.ctc_loss(lp, torch.tensor([4, 5, 5, 6]), enc.lengths, torch.tensor([3, 1]),
                                       blank=d.bos(), reduction="sum")
    assert size == 6 and logs["ctc_loss"] == pytest.approx(ctc.item(), rel=1e-5)
    assert loss.item() == pytest.approx(0.7 * plain.item() + 0.3 * ctc.item(), rel=1e-5)
    loss.backward()
    assert asr.encoder.ctc_proj.weight.grad.abs().sum() > 0

    path = tmp_path / "asr.pt"
    torch.save({"model": asr.state_dict()}, path)
    student = build_model(ModelConfig("s2t_transformer_s", args), len(d))
    assert student.encoder.ctc_proj is None
    load_pretrained_encoder(student, path)
    assert torch.equal(student.encoder.subsample.conv_layers[0].weight, asr.encoder.subsample.conv_layers[0].weight)
    assert not any(k.startswith("encoder.ctc_proj.") for k in drop_ctc_head(asr.state_dict()))
    with pytest.raises(ValueError, match="ctc_weight"):
        CriterionConfig(name="word_kd", ctc_weight=0.3)
    with pytest.raises(InputError, match="no CTC head"):
        build_model(ModelConfig("s2t_berard", {}), len(d), ctc_head=True)
