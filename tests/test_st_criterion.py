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
