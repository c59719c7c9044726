"""DeepSpeech2 block (clovaai/textual-kd-slu models/slu.py, ammodel.py; SeanNaren/deepspeech.pytorch naming)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from speechkd.models.deepspeech2 import CtcHead, DeepSpeech2, IntentHead, split_deepspeech_state


def small_model(seed: int = 0, **kw) -> DeepSpeech2:
    torch.manual_seed(seed)
    cfg = dict(input_dim=40, hidden_size=16, num_layers=3, conv_channels=4)
    cfg.update(kw)
    model = DeepSpeech2(**cfg)
    # non-trivial BN statistics so eval mode is not an identity normalisation
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def expected_deepspeech_names(num_layers: int) -> set[str]:
    """The deepspeech.pytorch state-dict keys of conv + rnns, written out from its model.py."""
    bn = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    names = {"conv.seq_module.0.weight", "conv.seq_module.0.bias", "conv.seq_module.3.weight",
             "conv.seq_module.3.bias"}
    names |= {f"conv.seq_module.{i}.{p}" for i in (1, 4) for p in bn}
    lstm = [f"{w}_{k}_l0{sfx}" for sfx in ("", "_reverse") for w in ("weight", "bias") for k in ("ih", "hh")]
    for layer in range(num_layers):
        names |= {f"rnns.{layer}.rnn.{p}" for p in lstm}
        if layer > 0:
            names |= {f"rnns.{layer}.batch_norm.module.{p}" for p in bn}
    return names


def test_paper_scale_names_sizes_and_parameter_count():
    with torch.device("meta"):
        model = DeepSpeech2()  # 768-d input, hidden 768, 5 BiLSTM layers, 32 channels
    assert model.rnn_input_size == 32 * 192 == 6144
    keys = set(model.state_dict())
    assert keys == expected_deepspeech_names(5)
    assert len(keys) == 74  # the authors' slice [203:277]
    # hand count: conv 32*41*11+32, conv 32*32*21*11+32, 2 BN2d(32); LSTM0 2*(4H*6144 + 4H*H + 8H);
    # LSTM1-4 2*(8H*H + 8H) + BN1d(H)
    h = 768
    expected = (32 * 41 * 11 + 32) + 64 + (32 * 32 * 21 * 11 + 32) + 64 \
        + 2 * (4 * h * 6144 + 4 * h * h + 8 * h) + 4 * (2 * (8 * h * h + 8 * h) + 2 * h)
    assert sum(p.numel() for p in model.parameters()) == expected == 80_534_816
    ctc = CtcHead(768)
    assert set(ctc.state_dict()) == {"fc.0.module.0.weight", "fc.0.module.0.bias", "fc.0.module.0.running_mean",
                                     "fc.0.module.0.running_var", "fc.0.module.0.num_batches_tracked",
                                     "fc.0.module.1.weight"}
    assert ctc.fc[0].module[1].weight.shape == (29, 768)
    intent = IntentHead(768, 31)
    assert sum(p.numel() for p in intent.parameters()) == 768 * 31 + 31


def test_output_shapes_lengths_and_zeroed_padding():
    model = small_model()
    lengths = torch.tensor([13, 8, 5, 1])
    x = torch.randn(4, 13, 40)
    out, out_len = model(x, lengths)
    assert out_len.tolist() == [7, 4, 3, 1]  # ceil(T / 2): (T + 10 - 10 - 1) // 2 + 1, then unchanged
    assert out.shape == (4, 7, 16)
    for b, n in enumerate(out_len.tolist()):
        assert torch.all(out[b, n:] == 0)
        assert out[b, :n].abs().sum() > 0


def test_padding_invariance_in_eval_mode():
    model = small_model(1)
    lengths = torch.tensor([21, 9, 14])
    x = torch.randn(3, 21, 40)
    x[1, 9:] = 100.0  # garbage in the padding must not leak into the valid frames
    x[2, 14:] = -7.0
    with torch.no_grad():
        out, out_len = model(x, lengths)
        for b, n in enumerate(lengths.tolist()):
            alone, alone_len = model(x[b:b + 1, :n], lengths[b:b + 1])
            assert alone_len.item() == out_len[b].item()
            torch.testing.assert_close(out[b, :alone_len.item()], alone[0], rtol=1e-5, atol=1e-6)


def test_forward_matches_functional_reference_for_one_utterance():
    """conv -> BN -> hardtanh x2, channel-major collapse, BN before layers >= 1, BiLSTM with directions summed."""
    model = small_model(2)
    x = torch.randn(1, 10, 40)
    with torch.no_grad():
        out, _ = model(x, torch.tensor([10]))
        sd = model.state_dict()
        y = x.unsqueeze(1).transpose(2, 3)  # (1, 1, 40, 10)
        for conv, bn, stride, pad in (("0", "1", (2, 2), (20, 5)), ("3", "4", (2, 1), (10, 5))):
            y = F.conv2d(y, sd[f"conv.seq_module.{conv}.weight"], sd[f"conv.seq_module.{conv}.bias"], stride, pad)
            y = F.batch_norm(y, sd[f"conv.seq_module.{bn}.running_mean"], sd[f"conv.seq_module.{bn}.running_var"],
                             sd[f"conv.seq_module.{bn}.weight"], sd[f"conv.seq_module.{bn}.bias"], False)
            y = y.clamp(0, 20)
        assert y.shape == (1, 4, 10, 5)  # freq 40 -> 20 -> 10, time 10 -> 5
        seq = y.reshape(1, 40, 5).permute(2, 0, 1)  # (T, B, C*D), channel-major
        for layer in range(3):
            if layer > 0:
                p = f"rnns.{layer}.batch_norm.module."
                seq = F.batch_norm(seq.reshape(5, -1), sd[p + "running_mean"], sd[p + "running_var"],
                                   sd[p + "weight"], sd[p + "bias"], False).view(5, 1, -1)
            lstm = torch.nn.LSTM(seq.size(-1), 16, bidirectional=True)
            lstm.load_state_dict({k.split(".rnn.")[1]: v for k, v in sd.items()
                                  if k.startswith(f"rnns.{layer}.rnn.")})
            both, _ = lstm(seq)
            seq = both[..., :16] + both[..., 16:]
        torch.testing.assert_close(out[0], seq[:, 0], rtol=1e-5, atol=1e-6)


def test_heads():
    x = torch.tensor([[[1.0, -5.0], [3.0, -2.0], [9.0, 9.0]],
                      [[-1.0, -4.0], [-3.0, -6.0], [0.0, 0.0]]])
    head = IntentHead(2, 3)
    with torch.no_grad():
        head.audio_intenter.weight.copy_(torch.eye(3, 2))
        head.audio_intenter.bias.zero_()
        logits = head(x, torch.tensor([2, 2]))
    # max over the valid frames only: the padded third frame (9, 9) / (0, 0) is ignored
    torch.testing.assert_close(logits, torch.tensor([[3.0, -2.0, 0.0], [-1.0, -4.0, 0.0]]))
    ctc = CtcHead(2, 29).eval()
    assert ctc(x).shape == (2, 3, 29)


def test_authors_state_dict_maps_by_name():
    """An AM-PT package state dict (VQ-BERT first, then conv/rnns, then fc) loads by name, `module.` or not."""
    src_ds2, src_ctc, src_intent = small_model(3), CtcHead(16), IntentHead(16, 5)
    authors = {"vq_bert.embed_tokens.weight": torch.zeros(3, 2), "vq_bert.layers.0.fc1.weight": torch.zeros(2, 2)}
    authors.update(src_ds2.state_dict())
    authors.update(src_ctc.state_dict())
    authors.update(src_intent.state_dict())
    authors["text_bert.decoder.weight"] = torch.zeros(1)
    for prefix in ("", "module."):
        parts = split_deepspeech_state({prefix + k: v for k, v in authors.items()})
        ds2, ctc, intent = small_model(9), CtcHead(16), IntentHead(16, 5)
        ds2.load_state_dict(parts["ds2"], strict=True)
        ctc.load_state_dict(parts["ctc"], strict=True)
        intent.load_state_dict(parts["intent"], strict=True)
        for a, b in zip(ds2.state_dict().values(), src_ds2.state_dict().values()):
            assert torch.equal(a, b)


def test_training_mode_backward_and_gru_variant():
    model = small_model(4, rnn_type="gru").train()
    x = torch.randn(2, 9, 40, requires_grad=True)
    out, lens = model(x, torch.tensor([9, 6]))
    out.sum().backward()
    assert x.grad is not None and torch.all(x.grad[1, 6:] == 0)  # padded input frames are cut off
    assert model.rnns[0].rnn.weight_ih_l0.shape == (3 * 16, 4 * 10)
