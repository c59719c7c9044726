"""Greedy and beam search (decode/search.py) against a plain per-sentence implementation of fairseq's
SequenceGenerator rules, greedy == beam 1, batching invariance and the max-length rule. Parity with
fairseq-generate itself is in test_fairseq_models.py, with transformers' generate in test_hf_models.py."""
import math

import pytest
import torch

from speechkd.decode.search import beam_search, greedy, greedy_tokens, max_decode_len
from speechkd.models.rnn_st import BerardModel
from speechkd.models.s2t_transformer import S2TTransformerModel
from speechkd.models.seq2seq import Seq2SeqModel
from speechkd.models.transformer_nmt import TransformerNMTModel

from support.tiny_models import TINY_BERARD, TINY_S2T, _speech

EOS, PAD, UNK = 2, 1, 3


def _bias_towards_eos(model, strength):
    """Add `strength` to the EOS logit through the final layer norm's bias, so that random models end
    hypotheses at varied lengths (otherwise they run to max_len)."""
    with torch.no_grad():
        w = model.decoder.output_projection.weight[EOS]
        norm = model.decoder.layer_norm or model.decoder.layers[-1].final_layer_norm
        norm.bias.add_(strength * w / w.dot(w))
    return model


@pytest.fixture(scope="module")
def s2t():
    torch.manual_seed(0)
    model = S2TTransformerModel.build("s2t_transformer_s", 50, **TINY_S2T).eval()
    return _bias_towards_eos(model, 2.5)


@pytest.fixture(scope="module")
def speech():
    return _speech(bsz=6, frames=41, lengths=(41, 37, 30, 22, 15, 9), seed=3)


def reference_beam(model, enc_row, beam, max_len, lenpen=1.0, min_len=1, unk_penalty=0.0):
    """fairseq's beam search for ONE sentence, written plainly: full forward per step, no cache, no batching."""
    beams = [([EOS], 0.0, [])]  # (tokens with BOS, cumulative score, positional scores)
    finalized = []
    for step in range(max_len + 1):
        prefixes = torch.tensor([b[0] for b in beams])
        with torch.no_grad():
            enc = model.reorder_encoder_out(enc_row, torch.zeros(len(beams), dtype=torch.long))
            lprobs = model.get_normalized_probs(model.decode(prefixes, enc))[:, -1, :].clone()
        lprobs[:, PAD] = -math.inf
        lprobs[:, UNK] -= unk_penalty
        if step >= max_len:
            eos = lprobs[:, EOS].clone()
            lprobs.fill_(-math.inf)
            lprobs[:, EOS] = eos
        elif step < min_len:
            lprobs[:, EOS] = -math.inf
        live = beams if step > 0 else beams[:1]
        totals = lprobs[: len(live)] + torch.tensor([b[1] for b in live]).unsqueeze(1)
        order = torch.sort(totals.reshape(-1), descending=True, stable=True)[1][: 2 * beam].tolist()
        vocab = lprobs.size(1)
        cands = [(float(totals.reshape(-1)[i]), i // vocab, i % vocab) for i in order]
        for score, b, v in cands[:beam]:
            if v == EOS and score != -math.inf and len(finalized) < beam:
                toks, cum, pos = beams[b]
                finalized.append((toks[1:] + [EOS], score / (step + 1) ** lenpen, pos + [score - cum]))
        if len(finalized) == beam or step == max_len:
            break
        beams = [(beams[b][0] + [v], s, beams[b][2] + [s - beams[b][1]]) for s, b, v in cands if v != EOS][:beam]
    return sorted(finalized, key=lambda h: -h[1])


@pytest.mark.parametrize("lenpen,min_len,unk_penalty", [(1.0, 1, 0.0), (0.6, 3, 0.5), (1.5, 1, -0.3)])
def test_beam_search_matches_plain_fairseq_rules(s2t, speech, lenpen, min_len, unk_penalty):
    x, lens = speech
    with torch.no_grad():
        enc = s2t.encode(x, lens)
    hyps = beam_search(s2t, enc, beam=4, max_len_b=12, lenpen=lenpen, min_len=min_len, unk_penalty=unk_penalty)
    lengths = set()
    for i, nbest in enumerate(hyps):
        ref = reference_beam(s2t, enc.index_select(torch.tensor([i])), 4, 12, lenpen, min_len, unk_penalty)
        assert [h.tokens.tolist() for h in nbest] == [r[0] for r in ref]
        for h, r in zip(nbest, ref):
            assert h.score == pytest.approx(r[1], abs=1e-4)
            assert h.positional_scores.tolist() == pytest.approx(r[2], abs=1e-4)
            assert h.positional_scores.sum().item() / h.tokens.numel() ** lenpen == pytest.approx(h.score, abs=1e-4)
        lengths.update(h.tokens.numel() for h in nbest)
        assert all(h.tokens.numel() >= min_len + 1 for h in nbest)
    assert len(lengths) > 3  # hypotheses end at different steps: sentences leave the batch at different times


def test_beam_search_with_per_beam_encoder_copies_is_identical(s2t, speech):
    """The shared-encoder path (transformers) and the expanded path (RNN models) give the same n-best lists."""
    x, lens = speech
    with torch.no_grad():
        enc = s2t.encode(x, lens)
    shared = beam_search(s2t, enc, beam=3, max_len_b=10)
    s2t.encoder_shared_across_beams = False
    try:
        expanded = beam_search(s2t, enc, beam=3, max_len_b=10)
    finally:
        del s2t.encoder_shared_across_beams
    for a, b in zip(shared, expanded):
        assert [h.tokens.tolist() for h in a] == [h.tokens.tolist() for h in b]
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-5)


@pytest.mark.parametrize("beam", [1, 2])
def test_hypotheses_ending_at_step_zero(speech, beam):
    """min_len 0 and a strong EOS bias: hypotheses end at step 0, where one row per sentence is decoded (with beam
    1 whole sentences leave the batch there); the shared and the per-beam encoder paths both follow fairseq."""
    torch.manual_seed(0)
    model = _bias_towards_eos(S2TTransformerModel.build("s2t_transformer_s", 50, **TINY_S2T).eval(), 4.0)
    x, lens = speech
    with torch.no_grad():
        enc = model.encode(x, lens)
    refs = [reference_beam(model, enc.index_select(torch.tensor([i])), beam, 8, min_len=0) for i in range(6)]
    assert any(len(r[0]) == 1 for ref in refs for r in ref)
    for shared in (True, False):
        model.encoder_shared_across_beams = shared
        hyps = beam_search(model, enc, beam=beam, max_len_b=8, min_len=0)
        for nbest, ref in zip(hyps, refs):
            assert [h.tokens.tolist() for h in nbest] == [r[0] for r in ref]
            assert [h.score for h in nbest] == pytest.approx([r[1] for r in ref], abs=1e-4)


def _models():
    torch.manual_seed(0)
    s2t = _bias_towards_eos(S2TTransformerModel.build("s2t_transformer_s", 50, **TINY_S2T).eval(), 2.0)
    berard = BerardModel.build("s2t_berard", 50, **TINY_BERARD).eval()
    with torch.no_grad():
        berard.decoder.output_projection.bias[EOS] += 2.0
    nmt = _bias_towards_eos(TransformerNMTModel.build("transformer_tiny", 40, 50).eval(), 2.0)
    return s2t, berard, nmt


def test_greedy_equals_beam_one_for_every_model(speech):
    x, lens = speech
    src = torch.randint(4, 40, (6, 8), generator=torch.Generator().manual_seed(5))
    src[3, :5] = PAD
    for model in _models():
        with torch.no_grad():
            enc = model.encode(src, None) if isinstance(model, TransformerNMTModel) else model.encode(x, lens)
        hyps = greedy(model, enc, max_len=15)
        beam1 = beam_search(model, enc, beam=1, max_len_b=15)
        assert [h.tolist() for h in hyps] == [b[0].tokens.tolist() for b in beam1]
        assert all(h[-1].item() == EOS and EOS not in h[:-1].tolist() for h in hyps)


class EndsAfterEncoderLength(Seq2SeqModel):
    """Wraps a model and makes EOS overwhelmingly likely once a row's prefix is longer than its encoder output,
    so that rows finish at known, different steps (random models otherwise loop until max_len)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.encoder_shared_across_beams = inner.encoder_shared_across_beams

    def encode(self, src, src_lengths):
        return self.inner.encode(src, src_lengths)

    def decode(self, prev, enc, cache=None):
        logits = self.inner.decode(prev, enc, cache).clone()
        limit = enc.lengths.repeat_interleave(prev.size(0) // enc.out.size(0))
        logits[prev.size(1) > limit, -1, EOS] += 100.0
        return logits

    def new_cache(self):
        return self.inner.new_cache()


def test_greedy_rows_are_independent_of_the_batch(speech):
    """Finished rows leave the batch (compaction); every row equals its own decoding."""
    torch.manual_seed(0)
    model = EndsAfterEncoderLength(S2TTransformerModel.build("s2t_transformer_s", 50, **TINY_S2T).eval())
    x, lens = speech
    with torch.no_grad():
        enc = model.encode(x, lens)
    tokens, lengths = greedy_tokens(model, enc, max_len=20)
    assert lengths.tolist() == (enc.lengths + 1).tolist() == [12, 11, 9, 7, 5, 4]
    assert tokens.shape == (6, 12)
    for i in range(6):
        alone, n = greedy_tokens(model, enc.index_select(torch.tensor([i])), max_len=20)
        assert int(n) == int(lengths[i])
        assert tokens[i, : lengths[i]].tolist() == alone[0, : int(n)].tolist()
        assert (tokens[i, lengths[i]:] == PAD).all()
    assert not torch.is_inference(tokens)  # usable as training inputs (ImitKD roll-in)
    beam1 = beam_search(model, enc, beam=1, max_len_b=20)
    assert [b[0].tokens.tolist() for b in beam1] == [t[:n].tolist() for t, n in zip(tokens, lengths)]


def test_max_length_forces_eos_and_follows_fairseq_rule():
    torch.manual_seed(0)
    model = S2TTransformerModel.build("s2t_transformer_s", 50, max_target_positions=8, **TINY_S2T).eval()
    _bias_towards_eos(model, -50.0)  # never ends by itself
    x, lens = _speech()
    with torch.no_grad():
        enc = model.encode(x, lens)
    assert max_decode_len(model, 0.0, 200, None) == 7  # capped by max_target_positions - 1
    assert max_decode_len(model, 0.1, 2, 40) == 6
    with pytest.raises(ValueError):
        max_decode_len(model, 0.5, 2, None)
    hyps = beam_search(model, enc, beam=2, max_len_a=0.1, max_len_b=2, src_len=40)
    assert all(h.tokens.numel() == 7 and h.tokens[-1].item() == EOS for nbest in hyps for h in nbest)
    assert all(len(nbest) == 2 for nbest in hyps)
    assert [h.numel() for h in greedy(model, enc, max_len=4)] == [5, 5, 5]
