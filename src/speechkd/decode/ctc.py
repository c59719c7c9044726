"""CTC decoding: greedy (best path) and, when pyctcdecode is installed, beam search.

Greedy decoding is the authors' GreedyDecoder (deepspeech.pytorch `decoder.py`, used in am_pretraining.py for
WER/CER): per frame the arg-max label, consecutive repeats collapsed, then blanks removed.
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..tokenizers.char import LABELS


def greedy_ids(log_probs: torch.Tensor, lengths: torch.Tensor | Sequence[int] | None = None,
               blank: int = 0) -> list[list[int]]:
    """(B, T, V) scores (log-probs, probs or logits: only the arg-max matters) -> label ids per utterance."""
    if log_probs.ndim != 3:
        raise ValueError(f"expected (B, T, V) scores, got shape {tuple(log_probs.shape)}")
    best = log_probs.argmax(dim=-1).cpu()  # (B, T)
    b, t = best.shape
    lens = [t] * b if lengths is None else [int(n) for n in torch.as_tensor(lengths).tolist()]
    out = []
    for row, n in zip(best.tolist(), lens):
        ids, prev = [], None
        for tok in row[:n]:
            if tok != prev and tok != blank:
                ids.append(tok)
            prev = tok
        out.append(ids)
    return out


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor | Sequence[int] | None = None,
                  labels: Sequence[str] = LABELS, blank: int = 0) -> list[str]:
    """(B, T, V) -> one string per utterance, using `labels` (default: the 29 CTC characters)."""
    return ["".join(labels[i] for i in ids) for ids in greedy_ids(log_probs, lengths, blank)]


def beam_decode(log_probs: torch.Tensor, lengths: torch.Tensor | Sequence[int] | None = None,
                labels: Sequence[str] = LABELS, beam_width: int = 100, kenlm_model_path: str | None = None,
                alpha: float = 0.5, beta: float = 1.0) -> list[str]:
    """CTC prefix beam search with pyctcdecode (optionally with a KenLM model); (B, T, V) log-probs -> strings.

    The authors used ctcdecode (BeamCTCDecoder), which does not build here; pyctcdecode is the maintained
    equivalent. Blank ("_", index 0) is passed to pyctcdecode as "".
    """
    try:
        from pyctcdecode import build_ctcdecoder
    except ImportError:
        raise ImportError("CTC beam decoding needs the 'pyctcdecode' package (pip install pyctcdecode); "
                          "greedy_decode works without it") from None
    vocab = ["" if i == 0 else c for i, c in enumerate(labels)]
    decoder = build_ctcdecoder(vocab, kenlm_model_path=kenlm_model_path, alpha=alpha, beta=beta)
    lp = log_probs.detach().float().cpu()
    lens = [lp.shape[1]] * lp.shape[0] if lengths is None else [int(n) for n in torch.as_tensor(lengths).tolist()]
    return [decoder.decode(lp[i, :n].numpy(), beam_width=beam_width) for i, n in enumerate(lens)]
