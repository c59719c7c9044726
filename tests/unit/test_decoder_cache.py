"""models/decoder_cache.py: the incremental state follows reorders and outgrows its first buffer with the same
logits as full forwards, and the step's weights (fused, oneDNN-packed on CPU) follow the model's weights."""
import copy

import torch

from speechkd.decode.search import beam_search
from speechkd.models import decoder_cache
from speechkd.models.s2t_transformer import S2TTransformerModel

from support.tiny_models import TINY_S2T, _speech


def _model(seed=0):
    torch.manual_seed(seed)
    return S2TTransformerModel.build("s2t_transformer_s", 50, **TINY_S2T).eval()


def test_reordered_and_grown_cache_equals_full_forward():
    """40 steps (the buffer doubles at 16 and 32) of 2 rows per sentence over the unexpanded encoder output,
    rows shuffled within their sentence and one sentence dropped on the way, as beam search does."""
    model = _model()
    x, lens = _speech()
    g = torch.Generator().manual_seed(4)
    with torch.inference_mode():
        enc = model.encode(x, lens)
        prefix = torch.full((6, 1), 2)
        cache = model.new_cache()
        for step in range(40):
            logits = model.decode(prefix, enc, cache)
            assert torch.allclose(logits, model.decode(prefix, enc)[:, -1:], atol=1e-5)
            nxt = logits[:, -1].argmax(-1, keepdim=True)
            sentences = enc.out.size(0)
            order = (torch.arange(sentences).repeat_interleave(2) * 2
                     + torch.randint(0, 2, (2 * sentences,), generator=g))
            enc_order = None
            if step == 20:  # the middle sentence leaves
                keep = torch.tensor([0, 2])
                order = order.view(sentences, 2)[keep].view(-1)
                enc_order = keep
                enc = model.reorder_encoder_out(enc, keep)
            cache.reorder(order, enc_order)
            prefix = torch.cat([prefix, nxt], dim=1)[order]
    assert cache.self_kv.size(4) == 64 and cache.self_kv.size(2) == 4 and cache.encoder_kv.size(2) == 2


def test_step_weights_are_packed_when_unchanged_and_follow_updates():
    model = _model()
    x, lens = _speech()
    with torch.inference_mode():
        enc = model.encode(x, lens)

    def search(m):
        return [[(h.tokens.tolist(), h.score) for h in nbest] for nbest in beam_search(m, enc, beam=3, max_len_b=10)]

    def same(a, b):
        return all([t for t, _ in x] == [t for t, _ in y] and
                   all(abs(s - r) < 1e-4 for (_, s), (_, r) in zip(x, y)) for x, y in zip(a, b))

    first = search(model)
    weights = decoder_cache._STEP_WEIGHTS[model.decoder]
    assert not weights.packed  # the first search with these weights does not pack
    assert same(search(model), first)
    assert decoder_cache._STEP_WEIGHTS[model.decoder] is weights
    if decoder_cache._ONEDNN_PACK is not None and decoder_cache._ONEDNN_LINEAR is not None:
        assert weights.packed
    with torch.no_grad():  # an optimizer-like in-place update: stale fused or packed weights would show
        for p in model.decoder.parameters():
            p.mul_(1.5)
    updated = search(model)
    assert decoder_cache._STEP_WEIGHTS[model.decoder] is not weights
    assert same(updated, search(copy.deepcopy(model)))
    assert not same(updated, first)


def test_step_weights_follow_a_fused_optimizer_update():
    """torch's fused Adam (the trainer's default) updates weights in place without bumping their versions: the
    cached step weights must still follow it, or an ImitKD roll-in decodes with an earlier update's weights."""
    from speechkd.decode.search import greedy_tokens
    from speechkd.train.config import TrainConfig
    from speechkd.train.optim import build_optimizer
    model = _model().eval()
    x, lengths = _speech()
    optimizer = build_optimizer(TrainConfig(optimizer="adam", lr=0.1, optimizer_impl="fused"), model.parameters())

    def greedy(m):
        with torch.no_grad():
            return greedy_tokens(m, m.encode(x, lengths), 10, bos=2, eos=2, pad=1, unk=3)

    for _ in range(3):
        greedy(model)  # twice: the second search caches (and on CPU packs) the step weights
        cached, fresh = greedy(model), greedy(copy.deepcopy(model))
        assert all(torch.equal(a, b) for a, b in zip(cached, fresh))
        model.train()
        model.get_normalized_probs(model(x, lengths, torch.full((x.size(0), 5), 2))).sum().backward()
        optimizer.step()
        optimizer.zero_grad()
        model.eval()
