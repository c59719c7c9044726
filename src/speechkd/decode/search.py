"""Autoregressive search for Seq2SeqModel: batched greedy decoding and fairseq's beam search.

`beam_search` reproduces fairseq's SequenceGenerator + search.BeamSearch (fairseq/sequence_generator.py,
fairseq/search.py, fairseq 0.12) step for step, so hypotheses, scores and positional scores agree with
fairseq-generate:
- decoding starts from EOS (fairseq's BOS for generation); pad is never chosen; `unk_penalty` is subtracted from
  the unk log-prob; EOS is forbidden before `min_len` and forced at step max_len, where
  max_len = min(int(max_len_a·src_len + max_len_b), model.max_decoder_positions() − 1), src_len = padded input
  length (frames for speech);
- each step takes the top 2·beam candidates over beam × vocabulary (first beam only at step 0); EOS candidates among
  the first `beam` finish hypotheses with score cumulative/(length ** lenpen), length counting the EOS; a sentence
  is done when it has `beam` finished hypotheses (or at max_len) and leaves the batch;
- n-best lists are sorted by score, best first.
The encoder output is not copied per beam when the model shares it across beams (transformers), and the
incremental decoder state follows the surviving hypotheses with `cache.reorder`. Step 0 decodes one row per
sentence (all its beams hold the same BOS, and fairseq keeps only the first beam's scores there); the cache, and
an encoder output that is not shared, grow to one row per beam at the first reorder.

`greedy` is beam search with beam 1 (the same rules, hence the same hypotheses), written as one batched loop
without the beam bookkeeping: finished rows are carried along (their outputs ignored) and the batch is compacted
only when at least half of it has finished. ImitKD calls it every training step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..models.seq2seq import EncoderOut, Seq2SeqModel


@dataclass
class Hypothesis:
    """One finished hypothesis: tokens (L,) ending with EOS (no BOS); score = Σ positional_scores / L**lenpen
    (fairseq normalize_scores); positional_scores (L,) log-prob of each token."""

    tokens: Tensor
    score: float
    positional_scores: Tensor


def max_decode_len(model: Seq2SeqModel, max_len_a: float, max_len_b: int, src_len: int | None) -> int:
    """fairseq SequenceGenerator: min(int(max_len_a·src_len + max_len_b), max_decoder_positions − 1)."""
    if max_len_a and src_len is None:
        raise ValueError("max_len_a != 0 needs src_len (the padded source length)")
    return min(int(max_len_a * (src_len or 0) + max_len_b), model.max_decoder_positions() - 1)


def _step_lprobs(model: Seq2SeqModel, tokens: Tensor, enc: EncoderOut, cache, pad: int, unk: int | None,
                 unk_penalty: float) -> Tensor:
    lprobs = model.get_normalized_probs(model.decode(tokens, enc, cache))[:, -1, :]
    if bool(lprobs.sum().isnan()):  # log-probs are <= 0 or NaN: one reduction finds a NaN
        lprobs.masked_fill_(lprobs.isnan(), -math.inf)
    lprobs[:, pad] = -math.inf  # never select pad
    if unk is not None and unk_penalty:
        lprobs[:, unk] -= unk_penalty
    return lprobs


def greedy_tokens(model: Seq2SeqModel, enc: EncoderOut, max_len: int, bos: int = 2, eos: int = 2, pad: int = 1,
                  min_len: int = 1, unk: int | None = 3, unk_penalty: float = 0.0) -> tuple[Tensor, Tensor]:
    """Greedy decoding of every row of `enc` -> (tokens (B, L) right-padded with pad, lengths (B,)): each row
    ends with EOS (forced at step max_len), L ≤ max_len + 1, no BOS. Runs under inference_mode; the results
    are ordinary tensors."""
    bsz = enc.out.size(0)
    device = enc.out.device
    if bsz == 0:
        return torch.empty(0, 0, dtype=torch.long, device=device), torch.empty(0, dtype=torch.long, device=device)
    with torch.inference_mode():
        out = torch.full((bsz, max_len + 1), pad, dtype=torch.long, device=device)
        lengths = torch.full((bsz,), max_len + 1, dtype=torch.long, device=device)
        rows = torch.arange(bsz, device=device)  # original index of each active row
        prefix = torch.full((bsz, 1), bos, dtype=torch.long, device=device)
        done = torch.zeros(bsz, dtype=torch.bool, device=device)
        cache = model.new_cache()
        for step in range(max_len + 1):
            lprobs = _step_lprobs(model, prefix, enc, cache, pad, unk, unk_penalty)
            if step >= max_len:
                nxt = torch.full_like(rows, eos)
            else:
                if step < min_len:
                    lprobs[:, eos] = -math.inf
                nxt = lprobs.argmax(dim=-1)
            nxt = nxt.masked_fill(done, pad)
            out[rows, step] = nxt
            ended = nxt.eq(eos)
            lengths[rows[ended]] = step + 1
            done = done | ended
            n_done = int(done.sum())
            if n_done == done.numel():
                break
            prefix = torch.cat([prefix, nxt.unsqueeze(1)], dim=1)
            if 2 * n_done >= done.numel():  # compact: drop finished rows from the batch
                keep = (~done).nonzero().squeeze(1)
                rows, prefix, done = rows[keep], prefix[keep], done[keep]
                enc = model.reorder_encoder_out(enc, keep)
                cache.reorder(keep, keep)
        width = int(lengths.max())
    return out[:, :width].clone(), lengths.clone()


def greedy(model: Seq2SeqModel, enc: EncoderOut, max_len: int, bos: int = 2, eos: int = 2, pad: int = 1,
           min_len: int = 1, unk: int | None = 3, unk_penalty: float = 0.0) -> list[Tensor]:
    """Per row, the greedy hypothesis including its final EOS (1-D LongTensors); same as beam_search(beam=1)."""
    tokens, lengths = greedy_tokens(model, enc, max_len, bos, eos, pad, min_len, unk, unk_penalty)
    return [tokens[i, :n] for i, n in enumerate(lengths.tolist())]


def beam_search(model: Seq2SeqModel, enc: EncoderOut, beam: int = 5, max_len_a: float = 0.0, max_len_b: int = 200,
                lenpen: float = 1.0, min_len: int = 1, unk_penalty: float = 0.0, src_len: int | None = None,
                bos: int = 2, eos: int = 2, pad: int = 1, unk: int | None = 3) -> list[list[Hypothesis]]:
    """fairseq SequenceGenerator.generate for one model: per input row, `beam` hypotheses, best first."""
    max_len = max_decode_len(model, max_len_a, max_len_b, src_len)
    if min_len > max_len:
        raise ValueError(f"min_len {min_len} cannot be larger than max_len {max_len}")
    if enc.out.size(0) == 0:
        return []
    with torch.inference_mode():
        nbests = _beam_search(model, enc, beam, max_len, lenpen, min_len, unk_penalty, bos, eos, pad, unk)
    # ordinary tensors (not inference tensors), so that hypotheses may feed training (e.g. sequence-level KD)
    return [[Hypothesis(h.tokens.clone(), h.score, h.positional_scores.clone()) for h in nbest] for nbest in nbests]


def _beam_search(model, enc: EncoderOut, beam_size: int, max_len: int, lenpen: float, min_len: int,
                 unk_penalty: float, bos: int, eos: int, pad: int, unk: int | None) -> list[list[Hypothesis]]:
    bsz = enc.out.size(0)
    device = enc.out.device
    shared = model.encoder_shared_across_beams
    cache = model.new_cache()
    scores = torch.zeros(bsz * beam_size, max_len + 1, device=device)
    tokens = torch.full((bsz * beam_size, max_len + 2), pad, dtype=torch.long, device=device)
    tokens[:, 0] = bos
    cands_to_ignore = torch.zeros(bsz, beam_size, dtype=torch.bool, device=device)
    finalized: list[list[Hypothesis]] = [[] for _ in range(bsz)]
    finished = [False] * bsz
    num_remaining = bsz
    cand_size = 2 * beam_size
    bbsz_offsets = (torch.arange(bsz, device=device) * beam_size).unsqueeze(1)
    cand_offsets = torch.arange(cand_size, device=device)
    reorder_state: Tensor | None = None
    batch_idxs: Tensor | None = None

    for step in range(max_len + 1):
        if reorder_state is not None:
            enc_order = None
            if batch_idxs is not None:
                # sentences left the batch: map beam rows to the reduced batch
                corr = batch_idxs - torch.arange(batch_idxs.numel(), device=device)
                reorder_state.view(-1, beam_size).add_(corr.unsqueeze(-1) * beam_size)
                enc_order = batch_idxs if shared else reorder_state
            order = reorder_state
            if step == 1:  # the cache (and an unshared encoder output) still has one row per sentence
                order = torch.div(reorder_state, beam_size, rounding_mode="floor")
                if not shared:
                    enc_order = order
            if enc_order is not None:
                enc = model.reorder_encoder_out(enc, enc_order)
            cache.reorder(order, enc_order)
        # step 0: every beam of a sentence holds the same BOS, so one row per sentence is decoded
        prefix = tokens[::beam_size, :1] if step == 0 else tokens[:, : step + 1]
        lprobs = _step_lprobs(model, prefix, enc, cache, pad, unk, unk_penalty)
        vocab = lprobs.size(-1)
        if step >= max_len:
            eos_col = lprobs[:, eos].clone()
            lprobs.fill_(-math.inf)
            lprobs[:, eos] = eos_col
        elif step < min_len:
            lprobs[:, eos] = -math.inf

        # search.BeamSearch.step
        lp = lprobs.view(bsz, -1, vocab)  # step 0: (bsz, 1, vocab), fairseq's lprobs[:, ::beam_size]
        if step > 0:
            lp.add_(scores.view(bsz, beam_size, -1)[:, :, step - 1: step])
        flat = lp.view(bsz, -1)
        cand_scores, cand_indices = torch.topk(flat, k=min(cand_size, flat.size(1) - 1))
        cand_beams = torch.div(cand_indices, vocab, rounding_mode="trunc")
        cand_indices = cand_indices.fmod(vocab)

        cand_bbsz_idx = cand_beams + bbsz_offsets
        eos_mask = cand_indices.eq(eos) & cand_scores.ne(-math.inf)
        eos_mask[:, :beam_size][cands_to_ignore] = False
        eos_bbsz_idx = torch.masked_select(cand_bbsz_idx[:, :beam_size], mask=eos_mask[:, :beam_size])

        finalized_sents: list[int] = []
        if eos_bbsz_idx.numel() > 0:
            eos_scores = torch.masked_select(cand_scores[:, :beam_size], mask=eos_mask[:, :beam_size])
            finalized_sents = _finalize(step, eos_bbsz_idx, eos_scores, tokens, scores, finalized, finished,
                                        beam_size, max_len, lenpen, eos)
            num_remaining -= len(finalized_sents)
        if num_remaining == 0:
            break
        assert step < max_len, f"{step} < {max_len}"

        if finalized_sents:
            new_bsz = bsz - len(finalized_sents)
            batch_mask = torch.ones(bsz, dtype=torch.bool, device=device)
            batch_mask[finalized_sents] = False
            batch_idxs = torch.arange(bsz, device=device).masked_select(batch_mask)
            eos_mask = eos_mask[batch_idxs]
            cand_beams = cand_beams[batch_idxs]
            bbsz_offsets = bbsz_offsets[:new_bsz]
            cand_bbsz_idx = cand_beams + bbsz_offsets
            cand_scores = cand_scores[batch_idxs]
            cand_indices = cand_indices[batch_idxs]
            cands_to_ignore = cands_to_ignore[batch_idxs]
            scores = scores.view(bsz, -1)[batch_idxs].view(new_bsz * beam_size, -1)
            tokens = tokens.view(bsz, -1)[batch_idxs].view(new_bsz * beam_size, -1)
            bsz = new_bsz
        else:
            batch_idxs = None

        # the first beam_size candidates that are neither EOS nor ignored continue
        eos_mask[:, :beam_size] = ~((~cands_to_ignore) & (~eos_mask[:, :beam_size]))
        active_mask = eos_mask.long() * cand_size + cand_offsets[: eos_mask.size(1)]
        new_cands_to_ignore, active_hypos = torch.topk(active_mask, k=beam_size, dim=1, largest=False)
        cands_to_ignore = new_cands_to_ignore.ge(cand_size)[:, :beam_size]
        assert (~cands_to_ignore).any(dim=1).all()
        active_bbsz_idx = torch.gather(cand_bbsz_idx, dim=1, index=active_hypos).view(-1)

        tokens[:, : step + 1] = tokens[:, : step + 1].index_select(0, active_bbsz_idx)
        tokens.view(bsz, beam_size, -1)[:, :, step + 1] = torch.gather(cand_indices, dim=1, index=active_hypos)
        if step > 0:
            scores[:, :step] = scores[:, :step].index_select(0, active_bbsz_idx)
        scores.view(bsz, beam_size, -1)[:, :, step] = torch.gather(cand_scores, dim=1, index=active_hypos)
        reorder_state = active_bbsz_idx

    for sent, hyps in enumerate(finalized):
        order = torch.sort(torch.tensor([h.score for h in hyps], dtype=torch.float64), descending=True)[1].tolist()
        finalized[sent] = [hyps[i] for i in order]
    return finalized


def _finalize(step: int, bbsz_idx: Tensor, eos_scores: Tensor, tokens: Tensor, scores: Tensor,
              finalized: list[list[Hypothesis]], finished: list[bool], beam_size: int, max_len: int,
              lenpen: float, eos: int) -> list[int]:
    """fairseq SequenceGenerator.finalize_hypos: store hypotheses ending in EOS at this step; return the indices
    (in the current, reduced batch) of the sentences that are now finished."""
    tokens_clone = tokens.index_select(0, bbsz_idx)[:, 1: step + 2]
    tokens_clone[:, step] = eos
    pos_scores = scores.index_select(0, bbsz_idx)[:, : step + 1]
    pos_scores[:, step] = eos_scores
    pos_scores[:, 1:] = pos_scores[:, 1:] - pos_scores[:, :-1]
    norm_scores = (eos_scores / (step + 1) ** lenpen).tolist()

    # map rows of the reduced batch to the original sentence index
    cum_unfin: list[int] = []
    prev = 0
    for f in finished:
        if f:
            prev += 1
        else:
            cum_unfin.append(prev)
    unfin_idx = torch.div(bbsz_idx, beam_size, rounding_mode="trunc").tolist()
    sents = [u + cum_unfin[u] for u in unfin_idx]

    for i, sent in enumerate(sents):
        if len(finalized[sent]) < beam_size:
            finalized[sent].append(Hypothesis(tokens_clone[i], norm_scores[i], pos_scores[i]))

    newly_finished: list[int] = []
    for sent, unfin in sorted(set(zip(sents, unfin_idx))):
        if not finished[sent] and (len(finalized[sent]) == beam_size or step == max_len):
            finished[sent] = True
            newly_finished.append(unfin)
    return newly_finished
