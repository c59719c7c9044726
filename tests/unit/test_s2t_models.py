"""The ST models (s2t_transformer, fairseq transformer NMT, s2t_berard): sizes, incremental decoding, padding,
encoder freezing, beam-shared encoder attention. Parity with fairseq / transformers is in test_fairseq_models.py
and test_hf_models.py."""
import torch

from speechkd.models.rnn_st import BerardModel
from speechkd.models.s2t_transformer import S2TTransformerModel, apply_arch
from speechkd.models.seq2seq import EncoderOut
from speechkd.models.transformer_nmt import TransformerNMTModel

from support.tiny_models import TINY_BERARD, TINY_S2T, _params, _prev, _speech


def test_s2t_transformer_s_has_31_07m_parameters_with_vocab_8000():
    model = S2TTransformerModel.build("s2t_transformer_s", vocab_size=8000)
    assert _params(model) == 31_072_256  # PERFORMANCE.md: 31.07 M
    assert len(model.encoder.transformer_layers) == 12 and len(model.decoder.layers) == 6
    assert model.encoder.subsample.conv_layers[0].out_channels == 1024
    assert model.encoder.transformer_layers[0].fc1.out_features == 2048


def test_arch_defaults_follow_fairseq():
    xs = apply_arch("s2t_transformer_xs")
    assert (xs["encoder_layers"], xs["decoder_layers"], xs["encoder_ffn_embed_dim"], xs["dropout"]) == (6, 3, 1024, 0.3)
    assert xs["attention_dropout"] == 0.3 and xs["encoder_embed_dim"] == 256
    m = apply_arch("s2t_transformer_m", {"dropout": None})  # None counts as unset, as in fairseq cfg dicts
    assert (m["encoder_embed_dim"], m["encoder_attention_heads"], m["dropout"]) == (512, 8, 0.15)
    assert apply_arch("s2t_transformer_s", {"encoder_layers": 3})["encoder_layers"] == 3


def test_wmt19_expert_architecture_is_transformer_big_with_8192_ffn():
    with torch.device("meta"):
        model = TransformerNMTModel.wmt19_en_de()
    assert model.encoder.layers[0].fc1.out_features == 8192 and model.decoder.layers[0].fc1.out_features == 4096
    assert model.decoder.output_projection.weight is model.encoder.embed_tokens.weight
    assert model.encoder.layers[0].self_attn.num_heads == 16
    assert abs(_params(model) / 1e6 - 269.7) < 0.5  # ≈270 M (PERFORMANCE.md)


def _check_incremental(model, src, lens, prev):
    model.eval()
    with torch.no_grad():
        full = model(src, lens, prev)
        enc = model.encode(src, lens)
        cache = model.new_cache()
        steps = torch.cat([model.decode(prev[:, : i + 1], enc, cache) for i in range(prev.size(1))], dim=1)
    assert full.shape == steps.shape
    assert torch.allclose(full, steps, atol=1e-5)


def test_incremental_decoding_equals_full_forward():
    torch.manual_seed(0)
    x, lens = _speech()
    _check_incremental(S2TTransformerModel.build("s2t_transformer_s", 50, **TINY_S2T), x, lens, _prev(3, 7, 50))
    _check_incremental(BerardModel.build("s2t_berard", 50, **TINY_BERARD), x, lens, _prev(3, 7, 50))
    src = torch.randint(4, 40, (3, 9))
    src[2, :4] = 1  # left padding, fairseq's default for sources
    nmt = TransformerNMTModel.build("transformer_tiny", 40, 45, encoder_normalize_before=True,
                                    decoder_normalize_before=True, layernorm_embedding=True)
    _check_incremental(nmt, src, None, _prev(3, 7, 45))


def test_s2t_encoder_rows_do_not_see_each_other():
    """Masks keep padded positions out of attention: a row encodes the same in a batch as alone at the same padded
    width. (The conv subsampler does read the zero frames past a row's end, in fairseq too, so the padded width is
    part of the input, as with fairseq's collater, which pads to the longest utterance.)"""
    torch.manual_seed(0)
    model = S2TTransformerModel.build("s2t_transformer_s", 50, **TINY_S2T).eval()
    x, lens = _speech()
    with torch.no_grad():
        batch = model.encode(x, lens)
        alone = model.encode(x[2:3], lens[2:3])
        first = model.encode(x[:1], lens[:1])
    assert batch.out.shape[1] == 10 and batch.padding_mask[2].tolist() == [False] * 3 + [True] * 7
    assert torch.allclose(batch.out[2, :3], alone.out[0, :3], atol=1e-5)
    assert first.padding_mask is None  # no pads: fairseq returns no mask either
    assert torch.allclose(batch.out[0], first.out[0], atol=1e-5)


def test_nmt_encoder_zeroes_padding_and_handles_left_padding():
    torch.manual_seed(0)
    model = TransformerNMTModel.build("transformer_tiny", 40).eval()
    src = torch.tensor([[5, 6, 7, 2], [1, 1, 8, 2]])
    with torch.no_grad():
        enc = model.encode(src)
        alone = model.encode(src[1:, 2:])
    assert torch.allclose(enc.out[1, 2:], alone.out[0], atol=1e-5)
    assert enc.padding_mask.tolist() == [[False] * 4, [True, True, False, False]]


def test_encoder_freezing_updates():
    torch.manual_seed(0)
    model = S2TTransformerModel.build("s2t_transformer_s", 50, encoder_freezing_updates=2, **TINY_S2T)
    x, lens = _speech()
    prev = _prev(3, 5, 50)
    model(x, lens, prev).sum().backward()
    assert all(p.grad is None for p in model.encoder.parameters())
    assert model.decoder.layers[0].fc1.weight.grad is not None
    model.zero_grad()
    model.set_num_updates(2)
    model(x, lens, prev).sum().backward()
    assert all(p.grad is not None for p in model.encoder.parameters())


def test_shared_encoder_across_beams_equals_expanded_encoder():
    """Beams folded into the encoder-attention queries give the same logits as a per-beam copy of the encoder."""
    torch.manual_seed(0)
    model = S2TTransformerModel.build("s2t_transformer_s", 50, **TINY_S2T).eval()
    x, lens = _speech()
    prev = _prev(3 * 4, 6, 50)
    with torch.no_grad():
        enc = model.encode(x, lens)
        expanded = model.reorder_encoder_out(enc, torch.arange(3).repeat_interleave(4))
        folded_full = model.decode(prev, enc)
        assert torch.allclose(folded_full, model.decode(prev, expanded), atol=1e-5)
        c1, c2 = model.new_cache(), model.new_cache()
        for i in range(prev.size(1)):
            a = model.decode(prev[:, : i + 1], enc, c1)
            b = model.decode(prev[:, : i + 1], expanded, c2)
            assert torch.allclose(a, b, atol=1e-5)
    assert c1.encoder_kv.size(2) == 3 and c2.encoder_kv.size(2) == 12  # (L, 2, rows, H, S, D)


def test_log_softmax_is_float32():
    logits = torch.randn(2, 3, 7).to(torch.bfloat16)
    lprobs = S2TTransformerModel.get_normalized_probs(logits)
    assert lprobs.dtype == torch.float32
    assert torch.allclose(lprobs.exp().sum(-1), torch.ones(2, 3))


def test_encoder_out_lengths_and_index_select():
    enc = EncoderOut(torch.randn(3, 4, 2), torch.tensor([[0, 0, 0, 0], [0, 0, 1, 1], [0, 1, 1, 1]]).bool())
    assert enc.lengths.tolist() == [4, 2, 1]
    sel = enc.index_select(torch.tensor([2, 0]))
    assert sel.lengths.tolist() == [1, 4] and torch.equal(sel.out[1], enc.out[0])


def test_berard_follows_fairseq_layout():
    model = BerardModel.build("s2t_berard", 30)
    names = dict(model.named_parameters())
    # fairseq wraps each input Linear with Dropout in a Sequential when dropout > 0
    assert "encoder.input_layers.0.0.weight" in names and names["encoder.input_layers.1.0.weight"].shape == (128, 256)
    assert names["encoder.lstm.weight_ih_l0"].shape == (4 * 256, 16 * 32)  # 128 features / 2 / 2 × 16 channels
    assert names["decoder.layers.1.weight_ih"].shape == (4 * 512, 512)  # later layers read the context
    assert names["decoder.deep_output_layer.weight"].shape == (128, 512 + 512 + 128)
    assert model.max_decoder_positions() == 1_000_000
    no_dropout = BerardModel.build("s2t_berard", 30, dropout=0.0)
    assert "encoder.input_layers.0.weight" in dict(no_dropout.named_parameters())
