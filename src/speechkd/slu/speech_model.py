"""The speech models of the SLU pipeline: VQ-BERT -> DeepSpeech2 block -> (intent head | CTC head).

SpeechIntentModel is the authors' SpeechModel (models/slu.py): VQ-BERT hidden sequence (all positions, `<s>`
included) -> DS2 (2 conv + BiLSTMs, directions summed) -> max over time -> Linear. AcousticModel is their AM-PT
DeepSpeech (models/ammodel.py): the same DS2 -> SequenceWise(BatchNorm1d + Linear(H, 29)).

VQ-BERT is frozen by default, as coded (SpeechModel.forward and DeepSpeech.forward call it under torch.no_grad()),
and `finetune_vq_bert` trains it too. The authors' frozen VQ-BERT was still put in train mode by model.train(),
so its dropout (0.1) was active while fine-tuning; `vq_bert_train_mode` keeps that (true) or runs it in eval mode
(false), which makes its features deterministic and lets them be computed once (feature_cache.py).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

from ..config import option
from ..errors import InputError
from ..models.deepspeech2 import CtcHead, DeepSpeech2, IntentHead, split_deepspeech_state
from ..models.roberta import RobertaModel
from ..tokenizers.char import LABELS
from ..train.checkpoint import load_checkpoint, save_checkpoint


@dataclasses.dataclass
class Ds2Config:
    """DS2 block size (paper: am_pre.json hidden_size 768, hidden_layers 5; 32 conv channels in ammodel.py)."""
    hidden_size: int = option(768, "BiLSTM hidden size (directions summed)")
    num_layers: int = option(5, "BiLSTM layers")
    conv_channels: int = option(32, "channels of the two Conv2d layers")
    rnn_type: Literal["lstm", "gru", "rnn"] = option("lstm", "recurrent cell (am_pre.json rnn-type lstm)")

    def build(self, input_dim: int) -> DeepSpeech2:
        return DeepSpeech2(input_dim, self.hidden_size, self.num_layers, self.conv_channels, self.rnn_type)


class _FrozenEncoderMixin(nn.Module):
    vq_bert: RobertaModel
    finetune_vq_bert: bool
    vq_bert_train_mode: bool

    def _setup_encoder(self, vq_bert: RobertaModel, finetune_vq_bert: bool, vq_bert_train_mode: bool) -> None:
        self.vq_bert, self.finetune_vq_bert, self.vq_bert_train_mode = vq_bert, finetune_vq_bert, vq_bert_train_mode
        if not finetune_vq_bert:
            vq_bert.requires_grad_(False)

    def train(self, mode: bool = True):  # type: ignore[override]
        super().train(mode)
        if mode and not self.finetune_vq_bert and not self.vq_bert_train_mode:
            self.vq_bert.eval()
        return self

    def encode(self, tokens: Tensor) -> Tensor:
        """(B, L) unit ids -> (B, L, D) VQ-BERT features (no gradient when frozen)."""
        if self.finetune_vq_bert:
            return self.vq_bert.extract_features(tokens)
        with torch.no_grad():
            return self.vq_bert.extract_features(tokens)


class SpeechIntentModel(_FrozenEncoderMixin):
    def __init__(self, vq_bert: RobertaModel, ds2: DeepSpeech2, num_classes: int, finetune_vq_bert: bool = False,
                 vq_bert_train_mode: bool = True):
        super().__init__()
        self._setup_encoder(vq_bert, finetune_vq_bert, vq_bert_train_mode)
        self.ds2 = ds2
        self.head = IntentHead(ds2.hidden_size, num_classes)

    def forward(self, lengths: Tensor, tokens: Tensor | None = None, features: Tensor | None = None,
                hidden_keep: Tensor | None = None) -> Tensor:
        """Intent logits (B, C) from unit ids or precomputed VQ-BERT features; `hidden_keep` (B, L, D) is the
        0/1 mask of the hidden (embedding) masking, applied to the VQ-BERT output (SpeechModel.forward)."""
        h = self.encode(tokens) if features is None else features
        if hidden_keep is not None:
            h = h * hidden_keep
        x, out_lengths = self.ds2(h, lengths)
        return self.head(x, out_lengths)


class AcousticModel(_FrozenEncoderMixin):
    def __init__(self, vq_bert: RobertaModel, ds2: DeepSpeech2, vq_bert_train_mode: bool = True):
        super().__init__()
        self._setup_encoder(vq_bert, False, vq_bert_train_mode)
        self.ds2 = ds2
        self.ctc = CtcHead(ds2.hidden_size, len(LABELS))

    def forward(self, lengths: Tensor, tokens: Tensor | None = None,
                features: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(CTC logits (B, T', 29), output lengths (B,))."""
        h = self.encode(tokens) if features is None else features
        x, out_lengths = self.ds2(h, lengths)
        return self.ctc(x), out_lengths


# ------------------------------------------------------------------------------ AM-PT package

def save_am_package(path: Path, model: AcousticModel, ds2_cfg: Ds2Config, extra: dict) -> None:
    """deepspeech.pytorch's DeepSpeech.serialize layout (the authors' xbt_asr.pth): `state_dict` with `conv.*`,
    `rnns.*`, `fc.*` names, plus hidden_size, hidden_layers, rnn_type, labels, bidirectional. The frozen VQ-BERT
    is not included (the authors' package carried it; fine-tuning ignored it)."""
    state = {k: v.detach().cpu().clone() for k, v in model.ds2.state_dict().items()}
    state.update({k: v.detach().cpu().clone() for k, v in model.ctc.state_dict().items()})
    save_checkpoint(path, {"version": "0.0.1", "hidden_size": ds2_cfg.hidden_size,
                           "hidden_layers": ds2_cfg.num_layers, "rnn_type": ds2_cfg.rnn_type,
                           "labels": "".join(LABELS), "bidirectional": True, "state_dict": state,
                           "conv_channels": ds2_cfg.conv_channels, "input_dim": model.ds2.input_dim, **extra})


def load_am_into(ds2: DeepSpeech2, path: Path) -> int:
    """Copy the conv + BiLSTM weights of an AM-PT package (ours or the authors' xbt_asr.pth) into `ds2`, BY NAME
    (the authors sliced keys [203:277] by position). Returns the number of tensors copied."""
    package = load_checkpoint(path)
    state = package.get("state_dict", package)
    part = split_deepspeech_state(state)["ds2"]
    if not part:
        raise InputError(f"{path}: no DeepSpeech2 conv./rnns. weights (keys: {sorted(state)[:5]})")
    try:
        ds2.load_state_dict(part, strict=True)
    except RuntimeError as e:
        raise InputError(f"{path}: its DS2 block does not fit this model's (ds2.* sizes and the VQ-BERT hidden "
                         f"size must match the AM-PT run): {' '.join(str(e).split())[:300]}") from None
    return len(part)
