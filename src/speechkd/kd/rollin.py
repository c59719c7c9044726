"""ImitKD roll-in: per sentence, keep the gold decoder prefix with probability β, otherwise replace it by the
student's greedy hypothesis. Mirrors `generate_imit_batch` of the fork (HubReb/imitkd_ast, e.g.
fairseq/fairseq/criterions/imitKD_CE.py; ast_paper.md §1.2):

    dist = Categorical(torch.tensor([beta, 1 - beta])); samp_mask = dist.sample((B,)) == 1
    replaced row: hypothesis ending with EOS -> [EOS] + hyp[:-1]; otherwise [EOS] + hyp
    kept row: the gold prev_output_tokens row as it is (with its padding); collate_tokens right-pads all rows.

The draw does not depend on the hypotheses, and greedy decoding consumes no random numbers, so a caller may draw
first (draw_replaced_rows), decode only the replaced rows, and then apply_rollin: same result, less decoding.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor


def rollin_max_len(gold_prev: Tensor, pad: int, cap: int = 200) -> int:
    """The greedy roll-in's max_len as fairseq's SequenceGenerator computes it in the fork:
    SequenceGenerator(max_len=L) with L = the longest prev_output_tokens row (longest gold target + EOS), and
    max_len = min(max_len_a·src_len + max_len_b, L - 1) = min(200, L - 1) with fairseq's defaults (a=0, b=200).
    At step max_len EOS is forced, so a hypothesis has at most max_len + 1 tokens including EOS and its rotated
    roll-in is never longer than L. L counts non-pad tokens, which equals the padded width fairseq's collater
    produces (it pads to the longest row) and stays right when a batcher pads further.
    """
    if gold_prev.numel() == 0:
        return 0
    longest = int(gold_prev.ne(pad).sum(dim=-1).max())
    return max(0, min(cap, longest - 1))


def draw_replaced_rows(batch_size: int, beta: float, generator: torch.Generator | None = None) -> Tensor:
    """(B,) bool on the CPU, True = replace this sentence's prefix by the student's hypothesis (probability 1 - β).
    Same draw as the fork's `Categorical(torch.tensor([β, 1 - β])).sample((B,)) == 1`, which is
    torch.multinomial over the normalised probabilities; generator=None uses (and advances) torch's global RNG
    exactly as the fork did, a seeded generator makes the draw independent of it."""
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must be in [0, 1], got {beta}")
    probs = torch.tensor([beta, 1.0 - beta])
    probs = probs / probs.sum(-1, keepdim=True)  # Categorical normalises; keeps the draw bit-identical
    draws = torch.multinomial(probs.reshape(1, 2), batch_size, replacement=True, generator=generator)
    return draws.reshape(batch_size) == 1


def shift_hypothesis(hyp: Tensor, eos: int) -> Tensor:
    """A generated hypothesis (tokens ending with EOS, no BOS) as decoder input: EOS rotated to the front, or EOS
    prepended when the hypothesis does not end with it (fairseq's move_eos_to_beginning)."""
    hyp = hyp.reshape(-1)
    if hyp.numel() == 0:
        return hyp.new_full((1,), eos)
    if int(hyp[-1]) == eos:
        return torch.cat([hyp[-1:], hyp[:-1]])
    return torch.cat([hyp.new_full((1,), eos), hyp])


def apply_rollin(gold_prev: Tensor, hyps: Sequence[Tensor | None], replaced: Tensor, pad: int,
                 eos: int) -> Tensor:
    """The mixed prev_output_tokens (B, U'): kept rows are the gold rows (full padded width U), replaced rows the
    shifted hypotheses, right-padded to the longest row (U' = U when any row is kept). hyps[i] is read only where
    replaced[i] (None elsewhere is fine)."""
    batch, width_gold = gold_prev.shape
    flags = [bool(f) for f in replaced.reshape(-1).tolist()]
    if len(flags) != batch or len(hyps) != batch:
        raise ValueError(f"{batch} gold rows, {len(flags)} replacement flags, {len(hyps)} hypotheses")
    rows: dict[int, Tensor] = {}
    for i, flag in enumerate(flags):
        if flag:
            if hyps[i] is None:
                raise ValueError(f"row {i} is to be replaced but has no hypothesis")
            rows[i] = shift_hypothesis(hyps[i].to(gold_prev.device), eos)
    width = max([width_gold if not all(flags) else 0] + [r.numel() for r in rows.values()])
    out = gold_prev.new_full((batch, width), pad)
    keep = torch.tensor([not f for f in flags], device=gold_prev.device)
    if not all(flags):
        out[keep, :width_gold] = gold_prev[keep]
    for i, row in rows.items():
        out[i, :row.numel()] = row
    return out
