"""Hugging Face Speech2Text / FSMT checkpoints -> our models (interop/hf_models.py): tiny random models are saved
with save_pretrained, loaded with our loader and compared with transformers (encoder states, decoder logits,
beam-5 generate with fairseq's stopping rules)."""
import json

import pytest
import torch

from speechkd.decode.search import beam_search
from speechkd.errors import InputError
from speechkd.interop.hf_models import load_hf_model

transformers = pytest.importorskip("transformers", reason="transformers is not installed (optional reference)")

EOS, PAD = 2, 1


def _randomise(model, std, eos_weight, norm_bias):
    """Larger random weights than HF's init (so outputs depend on the input) and an EOS-friendly final bias (so
    beams end before max length, where fairseq forces EOS and transformers does not)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1 and "embed_positions" not in name:
                p.normal_(0.0, std)
        norm_bias.add_(3.0 * eos_weight / eos_weight.dot(eos_weight))


def _generate(hf, **inputs):
    out = hf.generate(**inputs, num_beams=5, max_new_tokens=41, early_stopping=True, min_new_tokens=1,
                      suppress_tokens=[PAD], forced_eos_token_id=None, do_sample=False, length_penalty=1.0,
                      output_scores=True, return_dict_in_generate=True)
    return out.sequences, out.sequences_scores


def _compare_beams(sequences, scores, ours, min_rows):
    """Best hypotheses agree wherever transformers ended the row with EOS (at max length fairseq forces EOS and
    transformers stops without it, so rows that run that long are not comparable); at least `min_rows` did."""
    assert len(ours) == sequences.size(0)
    compared = 0
    for seq, score, nbest in zip(sequences.tolist(), scores.tolist(), ours):
        seq = seq[1:]  # decoder start token (EOS)
        if EOS not in seq:
            continue
        seq = seq[: seq.index(EOS) + 1]  # transformers pads finished rows
        assert nbest[0].tokens.tolist() == seq
        assert nbest[0].score == pytest.approx(score, abs=1e-4)
        compared += 1
    assert compared >= min_rows


def test_speech2text_matches_transformers(tmp_path):
    torch.manual_seed(0)
    cfg = transformers.Speech2TextConfig(vocab_size=60, d_model=32, encoder_layers=2, decoder_layers=2,
                                         encoder_attention_heads=4, decoder_attention_heads=4, encoder_ffn_dim=64,
                                         decoder_ffn_dim=64, conv_channels=48, input_feat_per_channel=80)
    hf = transformers.Speech2TextForConditionalGeneration(cfg).eval()
    _randomise(hf, 0.3, hf.lm_head.weight[EOS], hf.model.decoder.layer_norm.bias)
    hf.save_pretrained(tmp_path)
    ours = load_hf_model(tmp_path)
    assert ours.decoder.output_projection.weight is ours.decoder.embed_tokens.weight  # tie_word_embeddings
    x = torch.randn(4, 41, 80)
    lens = torch.tensor([41, 33, 20, 9])
    x = x * (torch.arange(41)[None, :, None] < lens[:, None, None])
    attention_mask = (torch.arange(41)[None] < lens[:, None]).long()
    prev = torch.randint(4, 60, (4, 6))
    prev[:, 0] = EOS
    with torch.no_grad():
        ref = hf(input_features=x, attention_mask=attention_mask, decoder_input_ids=prev)
        enc = ours.encode(x, lens)
        valid = ~enc.padding_mask
        assert torch.allclose(enc.out[valid], ref.encoder_last_hidden_state[valid], atol=1e-4)
        assert torch.allclose(ours.decode(prev, enc), ref.logits, atol=1e-4)
        sequences, scores = _generate(hf, input_features=x, attention_mask=attention_mask)
    _compare_beams(sequences, scores, beam_search(ours, enc, beam=5, max_len_b=40), min_rows=4)


@pytest.mark.parametrize("tied", [False, True])
def test_fsmt_matches_transformers(tmp_path, tied):
    torch.manual_seed(3 if tied else 0)  # tied random models mostly repeat one token; this seed ends two rows
    cfg = transformers.FSMTConfig(langs=["en", "de"], src_vocab_size=60 if tied else 50, tgt_vocab_size=60,
                                  d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                                  decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=48,
                                  tie_word_embeddings=tied)
    hf = transformers.FSMTForConditionalGeneration(cfg).eval()
    decoder = hf.model.decoder
    _randomise(hf, 0.3, decoder.output_projection.weight[EOS], decoder.layers[-1].final_layer_norm.bias)
    hf.save_pretrained(tmp_path)
    ours = load_hf_model(tmp_path)
    assert ours.cfg.share_all_embeddings is tied
    assert (ours.encoder.embed_tokens.num_embeddings, ours.decoder.embed_tokens.num_embeddings) == (
        cfg.src_vocab_size, 60)
    src = torch.randint(4, 50, (4, 9))
    src[:, -1] = EOS
    src[2, 6:], src[2, 5] = PAD, EOS
    src[3, 3:], src[3, 2] = PAD, EOS
    prev = torch.randint(4, 60, (4, 6))
    prev[:, 0] = EOS
    with torch.no_grad():
        # use_cache=False: with the cache on, FSMT's forward skips its causal mask (a transformers quirk)
        ref = hf(input_ids=src, attention_mask=src.ne(PAD).long(), decoder_input_ids=prev, use_cache=False)
        enc = ours.encode(src)
        valid = src.ne(PAD)
        assert torch.allclose(enc.out[valid], ref.encoder_last_hidden_state[valid], atol=1e-4)
        assert torch.allclose(ours.decode(prev, enc), ref.logits, atol=1e-4)
        sequences, scores = _generate(hf, input_ids=src, attention_mask=src.ne(PAD).long())
    _compare_beams(sequences, scores, beam_search(ours, enc, beam=5, max_len_b=40), min_rows=2 if tied else 4)


def test_pytorch_model_bin_and_errors(tmp_path):
    from safetensors.torch import load_file

    torch.manual_seed(0)
    cfg = transformers.FSMTConfig(langs=["en", "de"], src_vocab_size=30, tgt_vocab_size=30, d_model=16,
                                  encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                                  decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32)
    transformers.FSMTForConditionalGeneration(cfg).save_pretrained(tmp_path / "st")
    (tmp_path / "bin").mkdir()
    torch.save(load_file(tmp_path / "st" / "model.safetensors"), tmp_path / "bin" / "pytorch_model.bin")
    (tmp_path / "bin" / "config.json").write_text((tmp_path / "st" / "config.json").read_text())
    a, b = load_hf_model(tmp_path / "st"), load_hf_model(tmp_path / "bin")
    src, prev = torch.tensor([[5, 6, 2]]), torch.tensor([[2, 7]])
    with torch.no_grad():
        assert torch.equal(a(src, None, prev), b(src, None, prev))
    config = json.loads((tmp_path / "bin" / "config.json").read_text())
    (tmp_path / "bin" / "config.json").write_text(json.dumps({**config, "model_type": "marian"}))
    with pytest.raises(InputError, match="model_type 'marian'"):
        load_hf_model(tmp_path / "bin")
    (tmp_path / "bin" / "config.json").write_text(json.dumps({**config, "activation_function": "swish"}))
    with pytest.raises(InputError, match="activation_function 'swish'"):
        load_hf_model(tmp_path / "bin")
    with pytest.raises(InputError, match="config.json"):
        load_hf_model(tmp_path / "nowhere")
