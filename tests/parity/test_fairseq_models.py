"""fairseq checkpoints -> our models (interop/fairseq_models.py): parity with fairseq-fixed 0.12.3.1 outputs
recorded in tests/fixtures/fairseq/ (encoder states, decoder logits, incremental logits, beam-5 n-best lists,
greedy hypotheses), the old checkpoint format, the state-dict upgrades, errors, --load-pretrained-encoder-from,
and (when FAIRSEQ_PYTHON points at a python with fairseq) s2t_berard against fairseq run live."""
import argparse
import dataclasses
import os
import subprocess
import textwrap

import pytest
import torch

from speechkd.decode.search import beam_search, greedy
from speechkd.errors import InputError
from speechkd.interop.fairseq_models import load_fairseq_model, load_pretrained_encoder
from speechkd.models.s2t_transformer import S2TTransformerModel
from speechkd.models.transformer_nmt import TransformerNMTModel
from support.paths import FAIRSEQ_FIXTURES

FIXTURES = FAIRSEQ_FIXTURES
NAMES = ("s2t_transformer", "transformer_nmt", "transformer_nmt_oldformat")


def _fixture(name):
    ckpt, io = FIXTURES / f"{name}.pt", FIXTURES / f"{name}.io.pt"
    if not (ckpt.exists() and io.exists()):
        pytest.skip(f"fairseq fixture {ckpt.name} / {io.name} not present (made with fairseq-fixed)")
    return ckpt, torch.load(io, weights_only=False)


@pytest.mark.parametrize("name", NAMES)
def test_forward_matches_fairseq(name):
    ckpt, io = _fixture(name)
    model, args = load_fairseq_model(ckpt)
    assert not model.training and isinstance(args, argparse.Namespace)
    src = io["fbank"] if "fbank" in io else io["src_tokens"]
    lengths = io["fbank_lengths"] if "fbank" in io else io["src_lengths"]
    with torch.no_grad():
        enc = model.encode(src, lengths)
        ref_mask = io["encoder_padding_mask"]
        got_mask = enc.padding_mask if enc.padding_mask is not None else torch.zeros_like(ref_mask)
        assert torch.equal(got_mask, ref_mask)
        valid = ~ref_mask
        assert torch.allclose(enc.out[valid], io["encoder_out"].transpose(0, 1)[valid], atol=1e-4)
        logits = model.decode(io["prev_output_tokens"], enc)
        nonpad = io["nonpad_mask"]
        assert torch.allclose(logits[nonpad], io["decoder_logits"][nonpad], atol=1e-4)
        cache = model.new_cache()
        prev = io["prev_output_tokens"]
        steps = torch.cat([model.decode(prev[:, : i + 1], enc, cache) for i in range(prev.size(1))], dim=1)
        assert torch.allclose(steps[nonpad], io["incremental_logits"][nonpad], atol=1e-4)


@pytest.mark.parametrize("name", NAMES)
def test_beam_and_greedy_match_fairseq_generate(name):
    ckpt, io = _fixture(name)
    model, _ = load_fairseq_model(ckpt)
    src = io["fbank"] if "fbank" in io else io["src_tokens"]
    lengths = io["fbank_lengths"] if "fbank" in io else io["src_lengths"]
    s = io["generator_settings"]
    with torch.no_grad():
        enc = model.encode(src, lengths)
    hyps = beam_search(model, enc, beam=s["beam"], max_len_a=s["max_len_a"], max_len_b=s["max_len_b"],
                       min_len=s["min_len"], lenpen=s["lenpen"], unk_penalty=s["unkpen"], src_len=src.size(1))
    for nbest, ref_tokens, ref_scores in zip(hyps, io["beam_nbest_tokens"], io["beam_nbest_scores"]):
        assert [h.tokens.tolist() for h in nbest] == [t.tolist() for t in ref_tokens]
        assert [h.score for h in nbest] == pytest.approx(ref_scores.tolist(), abs=1e-4)
    for h, ref in zip((nbest[0] for nbest in hyps), io["beam_positional_scores"]):
        assert torch.allclose(h.positional_scores, ref, atol=1e-4)
    g = io["greedy_settings"]
    hyps1 = greedy(model, enc, max_len=int(g["max_len_a"] * src.size(1) + g["max_len_b"]), min_len=g["min_len"])
    assert [h.tolist() for h in hyps1] == [t.tolist() for t in io["greedy_tokens"]]


# --- checkpoint formats without fairseq -------------------------------------------------------------------------

def _tiny_nmt(**kw):
    torch.manual_seed(0)
    return TransformerNMTModel.build("transformer", 30, 30, encoder_layers=2, decoder_layers=2, encoder_embed_dim=16,
                                     encoder_ffn_embed_dim=32, encoder_attention_heads=2,
                                     decoder_attention_heads=2, **kw).eval()


def _old_format(model):
    """Our state dict written the way fairseq < 0.8 stored it: stacked in_proj, layer_norms.N, embed_out."""
    old = {}
    for key, value in model.state_dict().items():
        for proj in ("q_proj", "k_proj", "v_proj"):
            if f".{proj}." in key:
                break
        else:
            if key.startswith("encoder.layers."):
                key = key.replace("self_attn_layer_norm", "layer_norms.0").replace("final_layer_norm", "layer_norms.1")
            if key.startswith("decoder.layers."):
                key = (key.replace("self_attn_layer_norm", "layer_norms.0")
                       .replace("encoder_attn_layer_norm", "layer_norms.1").replace("final_layer_norm", "layer_norms.2"))
            if key == "decoder.output_projection.weight":
                key = "decoder.embed_out"
            old[key] = value.clone()
            continue
        prefix, kind = key.split(f".{proj}.")
        if proj == "q_proj":
            parts = [model.state_dict()[f"{prefix}.{p}.{kind}"] for p in ("q_proj", "k_proj", "v_proj")]
            old[f"{prefix}.in_proj_{kind}"] = torch.cat(parts)
    old["encoder.version"] = old["decoder.version"] = torch.tensor([3.0])
    return old


def _same_outputs(a, b):
    src = torch.tensor([[5, 6, 7, 8, 2], [1, 1, 9, 10, 2]])
    prev = torch.tensor([[2, 5, 6, 7], [2, 8, 9, 1]])
    with torch.no_grad():
        return torch.allclose(a(src, None, prev), b(src, None, prev), atol=1e-6)


def test_old_and_new_checkpoint_formats_load(tmp_path):
    model = _tiny_nmt(decoder_normalize_before=True, encoder_normalize_before=True)
    args = argparse.Namespace(arch="transformer", encoder_layers=2, decoder_layers=2, encoder_embed_dim=16,
                              encoder_ffn_embed_dim=32, encoder_attention_heads=2, decoder_attention_heads=2,
                              encoder_normalize_before=True, decoder_normalize_before=True)
    torch.save({"args": args, "model": _old_format(model)}, tmp_path / "old.pt")
    loaded, loaded_args = load_fairseq_model(tmp_path / "old.pt")
    assert loaded_args.decoder_embed_dim == 16 and loaded_args.dropout == 0.1  # filled by the arch defaults
    assert _same_outputs(model, loaded)
    new = {"cfg": {"model": {**vars(args), "_name": "transformer", "arch": None}, "task": {"max_source_positions": 7}},
           "model": {**model.state_dict(), "encoder.version": torch.tensor([3.0]),
                     "decoder.version": torch.tensor([3.0])}}
    torch.save(new, tmp_path / "new.pt")
    loaded, loaded_args = load_fairseq_model(tmp_path / "new.pt")
    assert _same_outputs(model, loaded) and loaded_args.max_source_positions == 7


def test_old_decoder_version_drops_final_layer_norm(tmp_path):
    """fairseq: decoder version <= 2 (checkpoints without the weights) means no layer norm after the decoder stack."""
    model = _tiny_nmt(decoder_normalize_before=True)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("decoder.layer_norm.")}
    args = argparse.Namespace(arch="transformer_tiny", encoder_layers=2, decoder_layers=2, encoder_embed_dim=16,
                              encoder_ffn_embed_dim=32, encoder_attention_heads=2, decoder_attention_heads=2,
                              decoder_normalize_before=True)
    torch.save({"args": args, "model": state}, tmp_path / "v1.pt")
    loaded, _ = load_fairseq_model(tmp_path / "v1.pt")
    assert loaded.decoder.layer_norm is None
    model.decoder.layer_norm = None
    assert _same_outputs(model, loaded)


def test_clear_errors(tmp_path):
    model = _tiny_nmt()
    args = dict(encoder_layers=2, decoder_layers=2, encoder_embed_dim=16, encoder_ffn_embed_dim=32,
                encoder_attention_heads=2, decoder_attention_heads=2)
    torch.save({"args": argparse.Namespace(arch="lstm_wiseman_iwslt_de_en", **args), "model": model.state_dict()},
               tmp_path / "lstm.pt")
    with pytest.raises(InputError, match="unsupported fairseq architecture 'lstm_wiseman_iwslt_de_en'"):
        load_fairseq_model(tmp_path / "lstm.pt")
    state = model.state_dict()
    state["decoder.layers.1.fc1.weight"] = torch.zeros(5, 16)
    torch.save({"args": argparse.Namespace(arch="transformer", **args), "model": state}, tmp_path / "shape.pt")
    with pytest.raises(InputError, match=r"decoder\.layers\.1\.fc1\.weight.*\(5, 16\).*\(32, 16\)"):
        load_fairseq_model(tmp_path / "shape.pt")
    del state["decoder.layers.1.fc1.weight"]
    torch.save({"args": argparse.Namespace(arch="transformer", **args), "model": state}, tmp_path / "missing.pt")
    with pytest.raises(InputError, match=r"decoder\.layers\.1\.fc1\.weight.*missing"):
        load_fairseq_model(tmp_path / "missing.pt")
    torch.save({"args": argparse.Namespace(arch="transformer", adaptive_softmax_cutoff="10,20", **args),
                "model": model.state_dict()}, tmp_path / "adaptive.pt")
    with pytest.raises(InputError, match="adaptive_softmax_cutoff"):
        load_fairseq_model(tmp_path / "adaptive.pt")


def test_load_pretrained_encoder_copies_only_the_encoder(tmp_path):
    torch.manual_seed(0)
    kw = dict(encoder_layers=2, decoder_layers=1, encoder_embed_dim=16, encoder_ffn_embed_dim=32, conv_channels=24,
              encoder_attention_heads=2, decoder_attention_heads=2)
    asr = S2TTransformerModel.build("s2t_transformer_s", 20, **kw)
    torch.save({"model": asr.state_dict()}, tmp_path / "asr.pt")
    st = S2TTransformerModel.build("s2t_transformer_s", 40, **kw)  # different target vocabulary
    decoder_before = {k: v.clone() for k, v in st.decoder.state_dict().items()}
    load_pretrained_encoder(st, tmp_path / "asr.pt")
    for key, value in asr.encoder.state_dict().items():
        assert torch.equal(st.encoder.state_dict()[key], value)
    assert all(torch.equal(v, decoder_before[k]) for k, v in st.decoder.state_dict().items())
    small = S2TTransformerModel.build("s2t_transformer_s", 40, **{**kw, "encoder_ffn_embed_dim": 8})
    with pytest.raises(InputError, match=r"encoder\.transformer_layers\.0\.fc1\.weight"):
        load_pretrained_encoder(small, tmp_path / "asr.pt")


def test_load_pretrained_encoder_from_fairseq_checkpoint():
    """fairseq's --load-pretrained-encoder-from with an ASR checkpoint: an ST model with another vocabulary and
    decoder gets exactly the checkpoint's encoder."""
    ckpt, io = _fixture("s2t_transformer")
    asr, _ = load_fairseq_model(ckpt)
    st = S2TTransformerModel(dataclasses.replace(asr.cfg, vocab_size=77, decoder_layers=1))
    load_pretrained_encoder(st, ckpt)
    with torch.no_grad():
        assert torch.equal(st.eval().encode(io["fbank"], io["fbank_lengths"]).out,
                           asr.encode(io["fbank"], io["fbank_lengths"]).out)


# --- s2t_berard against fairseq, run live -----------------------------------------------------------------------

BERARD_SCRIPT = textwrap.dedent("""
    import argparse, sys, torch
    from fairseq.data import Dictionary
    from fairseq.models.speech_to_text.berard import BerardModel, berard
    from fairseq.sequence_generator import SequenceGenerator
    torch.manual_seed(0)
    d = Dictionary()
    for i in range(40):
        d.add_symbol(f"w{i}")
    class Task:
        target_dictionary = d
    a = argparse.Namespace(input_feat_per_channel=80, input_channels=1, input_layers="[24, 16]",
                           conv_layers="[(4, 3, 2), (4, 3, 2)]", num_blstm_layers=2, lstm_size=12,
                           decoder_embed_dim=8, decoder_num_layers=2, decoder_hidden_dim=24, attention_dim=10,
                           output_layer_dim=8)
    berard(a)
    a.arch = "s2t_berard"
    m = BerardModel.build_model(a, Task()).eval()
    with torch.no_grad():
        m.decoder.output_projection.bias[2] += 2.0
    x = torch.randn(4, 41, 80)
    lens = torch.tensor([41, 37, 22, 9])
    x = x * (torch.arange(41)[None, :, None] < lens[:, None, None])
    prev = torch.randint(4, len(d), (4, 6))
    prev[:, 0] = 2
    with torch.no_grad():
        eo = m.encoder(x, lens)
        logits = m.decoder(prev, eo)[0]
        hyps = SequenceGenerator([m], d, beam_size=3, max_len_b=15).generate(
            [m], {"net_input": {"src_tokens": x, "src_lengths": lens}})
    torch.save({"model": m.state_dict(), "cfg": {"model": a}}, sys.argv[1] + "/berard.pt")
    torch.save({"x": x, "lens": lens, "prev": prev, "enc": eo["encoder_out"], "logits": logits,
                "tokens": [[h["tokens"] for h in hs] for hs in hyps],
                "scores": [[float(h["score"]) for h in hs] for hs in hyps]}, sys.argv[1] + "/berard.io.pt")
    """)


def test_berard_matches_fairseq_live(tmp_path):
    python = os.environ.get("FAIRSEQ_PYTHON")
    if not python:
        pytest.skip("FAIRSEQ_PYTHON (a python with fairseq-fixed) is not set")
    (tmp_path / "make.py").write_text(BERARD_SCRIPT)
    env = {**os.environ, "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD": "1"}
    subprocess.run([python, str(tmp_path / "make.py"), str(tmp_path)], check=True, env=env, capture_output=True)
    io = torch.load(tmp_path / "berard.io.pt", weights_only=False)
    model, args = load_fairseq_model(tmp_path / "berard.pt")
    assert args.arch == "s2t_berard"
    with torch.no_grad():
        enc = model.encode(io["x"], io["lens"])
        valid = ~enc.padding_mask
        assert torch.allclose(enc.out[valid], io["enc"].transpose(0, 1)[valid], atol=1e-4)
        assert torch.allclose(model.decode(io["prev"], enc), io["logits"], atol=1e-4)
    hyps = beam_search(model, enc, beam=3, max_len_b=15)
    for nbest, ref_tokens, ref_scores in zip(hyps, io["tokens"], io["scores"]):
        assert [h.tokens.tolist() for h in nbest] == [t.tolist() for t in ref_tokens]
        assert [h.score for h in nbest] == pytest.approx(ref_scores, abs=1e-4)
