"""The label-smoothed NLL criterion (fairseq `label_smoothed_cross_entropy`), optionally with a CTC term."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ...errors import InputError
from ...kd.sequence_losses import label_smoothed_nll
from ...models.seq2seq import EncoderOut, log_softmax_fp32
from .base import Criterion, LossOut, register


@register("label_smoothed_nll")
class LabelSmoothedNll(Criterion):
    """fairseq `label_smoothed_cross_entropy` (fairseq/criterions/label_smoothed_cross_entropy.py), the NLL rows:
    loss = (1 - ε - ε/(V-1))·NLL + ε/(V-1)·Σ_v -log p(v), summed over non-pad target positions, ε = 0.1;
    sample_size = ntokens (gold target tokens incl. EOS; fairseq's --sentence-avg is off in the recipes).

    With criterion.ctc_weight λ > 0 (ESPnet's hybrid CTC/attention training, Watanabe et al. 2017):
    loss = (1 - λ)·that + λ·CTC(encoder.ctc_proj(encoder states), target without EOS), summed over utterances,
    blank = <s> (fairseq's CTC convention), zero_infinity for utterances shorter than their transcript."""

    def __call__(self, model: torch.nn.Module, batch: dict) -> LossOut:
        args = (batch["source"], batch["source_lengths"], batch["prev_output_tokens"])
        if self.cfg.ctc_weight > 0:
            logits, enc = model(*args, return_encoder_out=True)
        else:
            logits = model(*args)
        loss, nll = label_smoothed_nll(log_softmax_fp32(logits), batch["target"], self.cfg.label_smoothing,
                                       ignore_index=self.pad)
        logs = {"nll_loss": float(nll.detach())}
        if self.cfg.ctc_weight > 0:
            ctc = self.ctc_loss(enc, batch["target"])
            loss = (1.0 - self.cfg.ctc_weight) * loss + self.cfg.ctc_weight * ctc
            logs["ctc_loss"] = float(ctc.detach())
        return loss, int(batch["ntokens"]), logs

    def ctc_loss(self, enc: EncoderOut, target: Tensor) -> Tensor:
        if enc.ctc_logits is None:
            raise InputError("criterion.ctc_weight: the model has no CTC head (s2t_transformer only)")
        lprobs = log_softmax_fp32(enc.ctc_logits).transpose(0, 1)  # (T, B, V)
        keep = (target != self.pad) & (target != self.eos)
        return F.ctc_loss(lprobs, target[keep], enc.lengths, keep.sum(dim=1), blank=self.ctx.tgt_dict.bos(),
                          reduction="sum", zero_infinity=True)
