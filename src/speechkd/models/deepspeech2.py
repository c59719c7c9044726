"""The authors' DeepSpeech2 block over VQ-BERT hidden states, plus its CTC and intent heads.

Source: clovaai/textual-kd-slu `models/slu.py` (SpeechModel) and `models/ammodel.py` (DeepSpeech), both copies of
SeanNaren/deepspeech.pytorch `model.py` with the spectrogram replaced by the 768-d VQ-BERT sequence:

- input (B, T, D) viewed as an image (B, 1, D "frequency", T);
- Conv2d(1->32, k(41,11), s(2,2), p(20,5)) BN Hardtanh(0,20); Conv2d(32->32, k(21,11), s(2,1), p(10,5)) BN
  Hardtanh(0,20); `MaskConv` zeroes the padded frames after every module; time is halved, D -> D/4;
- RNN input = channels x conv-reduced D (32 x 192 = 6144 for D = 768);
- 5 bidirectional LSTM layers (hidden 768) over packed sequences (on CPU here without packing, same outputs,
  faster: `models/padded_birnn.py`), the two directions SUMMED; a SequenceWise
  BatchNorm1d before every layer but the first.

Parameter names are deepspeech.pytorch's (`conv.seq_module.N.*`, `rnns.N.rnn.*`, `rnns.N.batch_norm.module.*`,
CTC head `fc.0.module.{0,1}.*`, intent head `audio_intenter.*`), so an AM-PT package (`xbt_asr.pth`, `state_dict`)
or an SLU state dict maps onto these modules BY NAME (`split_deepspeech_state`); the authors sliced keys [203:277]
by position instead.

Deliberate differences from the authors' code, both for batch-independence (documented, not silent):
- the padded input frames are zeroed before the first convolution (deepspeech.pytorch's spectrogram collate pads
  with zeros; VQ-BERT outputs at padded positions are not zero), so an utterance's output in eval mode does not
  depend on what it is batched with;
- `IntentHead` max-pools over the valid frames only; the authors' `x.max(dim=1)` also sees the zero-filled padded
  frames of shorter utterances in the batch.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Mapping

import torch
import torch.nn as nn

from .padded_birnn import bidirectional_over_padded
from .seq2seq import lengths_to_padding_mask

RNN_TYPES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}  # deepspeech.pytorch supported_rnns
NUM_CTC_LABELS = 29  # manifest/labels.json: "_", "'", A-Z, " "


class SequenceWise(nn.Module):
    """Applies a module to (T, N, H) by collapsing it to (T*N, H) (deepspeech.pytorch SequenceWise)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, n = x.size(0), x.size(1)
        return self.module(x.reshape(t * n, -1)).view(t, n, -1)


class MaskConv(nn.Module):
    """Runs `seq_module` on (B, C, D, T), zeroing time steps >= length after every module (deepspeech.pytorch
    MaskConv), so padding never leaks into the valid frames through the next convolution."""

    def __init__(self, seq_module: nn.Sequential):
        super().__init__()
        self.seq_module = seq_module

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for module in self.seq_module:
            x = module(x)
            pad = lengths_to_padding_mask(lengths.to(x.device), x.size(3))  # (B, T)
            x = x.masked_fill(pad[:, None, None, :], 0.0)
        return x, lengths


class BatchRNN(nn.Module):
    """[SequenceWise BatchNorm1d] -> bidirectional RNN over a packed sequence -> directions summed
    (deepspeech.pytorch BatchRNN). Input/output (T, N, H)."""

    def __init__(self, input_size: int, hidden_size: int, rnn_type: str = "lstm", batch_norm: bool = True):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.batch_norm = SequenceWise(nn.BatchNorm1d(input_size)) if batch_norm else None
        self.rnn = RNN_TYPES[rnn_type](input_size=input_size, hidden_size=hidden_size, bidirectional=True, bias=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.batch_norm is not None:
            x = self.batch_norm(x)
        out = bidirectional_over_padded(self.rnn, x, lengths)  # what the authors' packed sequence gives, faster
        return out.view(out.size(0), out.size(1), 2, -1).sum(2)  # (T, N, 2H) -> (T, N, H) by sum


def conv_output_dim(dim: int, kernel: int, stride: int, padding: int) -> int:
    return (dim + 2 * padding - kernel) // stride + 1


class DeepSpeech2(nn.Module):
    """2 x Conv2d + `num_layers` bidirectional RNNs. forward((B, T, input_dim), lengths) -> ((B, T', hidden), lengths')
    with T' = ceil(T / 2)."""

    def __init__(self, input_dim: int = 768, hidden_size: int = 768, num_layers: int = 5, conv_channels: int = 32,
                 rnn_type: str = "lstm"):
        super().__init__()
        if rnn_type not in RNN_TYPES:
            raise ValueError(f"rnn_type {rnn_type!r}: expected one of {sorted(RNN_TYPES)}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.input_dim, self.hidden_size, self.num_layers, self.rnn_type = input_dim, hidden_size, num_layers, rnn_type
        c = conv_channels
        self.conv = MaskConv(nn.Sequential(
            nn.Conv2d(1, c, kernel_size=(41, 11), stride=(2, 2), padding=(20, 5)),
            nn.BatchNorm2d(c),
            nn.Hardtanh(0, 20, inplace=True),
            nn.Conv2d(c, c, kernel_size=(21, 11), stride=(2, 1), padding=(10, 5)),
            nn.BatchNorm2d(c),
            nn.Hardtanh(0, 20, inplace=True),
        ))
        freq = input_dim
        for m in self.conv.seq_module:
            if isinstance(m, nn.Conv2d):
                freq = conv_output_dim(freq, m.kernel_size[0], m.stride[0], m.padding[0])
        if freq < 1:
            raise ValueError(f"input_dim {input_dim} is too small for the two frequency convolutions")
        self.rnn_input_size = c * freq  # 32 * 192 = 6144 for 768
        rnns = [("0", BatchRNN(self.rnn_input_size, hidden_size, rnn_type, batch_norm=False))]
        rnns += [(str(i), BatchRNN(hidden_size, hidden_size, rnn_type)) for i in range(1, num_layers)]
        self.rnns = nn.Sequential(OrderedDict(rnns))

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames after the convolutions (deepspeech.pytorch get_seq_lens, on the time axis)."""
        seq_len = torch.as_tensor(lengths).long()
        for m in self.conv.seq_module:
            if isinstance(m, nn.Conv2d):
                seq_len = (seq_len + 2 * m.padding[1] - m.dilation[1] * (m.kernel_size[1] - 1) - 1) \
                    // m.stride[1] + 1
        return seq_len

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.ndim != 3 or x.size(2) != self.input_dim:
            raise ValueError(f"expected input (B, T, {self.input_dim}), got {tuple(x.shape)}")
        lengths = torch.as_tensor(lengths, device=x.device).long()
        out_lengths = self.output_lengths(lengths)
        x = x.masked_fill(lengths_to_padding_mask(lengths, x.size(1))[:, :, None], 0.0)  # see module docstring
        x = x.unsqueeze(1).transpose(2, 3)  # (B, 1, D, T)
        x, _ = self.conv(x, out_lengths)
        b, c, d, t = x.size()
        x = x.view(b, c * d, t).permute(2, 0, 1).contiguous()  # (T, B, C*D)
        for rnn in self.rnns:
            x = rnn(x, out_lengths)
        return x.transpose(0, 1), out_lengths


class CtcHead(nn.Module):
    """AM-PT output layer: SequenceWise(BatchNorm1d(H) + Linear(H -> 29, no bias)) (ammodel.py `fc`). Returns logits;
    the authors' InferenceBatchSoftmax (softmax in eval mode) is left to the caller (log_softmax for CTC)."""

    def __init__(self, hidden_size: int = 768, num_classes: int = NUM_CTC_LABELS):
        super().__init__()
        self.fc = nn.Sequential(SequenceWise(nn.Sequential(
            nn.BatchNorm1d(hidden_size),
            nn.Linear(hidden_size, num_classes, bias=False),
        )))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, H) -> logits (B, T, num_classes)."""
        return self.fc(x)


class IntentHead(nn.Module):
    """SLU classifier: max over the valid time steps, then Linear(H, num_classes) (slu.py `audio_intenter`)."""

    def __init__(self, hidden_size: int, num_classes: int):
        super().__init__()
        self.audio_intenter = nn.Linear(hidden_size, num_classes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, H), lengths (B,) -> logits (B, num_classes)."""
        pad = lengths_to_padding_mask(torch.as_tensor(lengths).to(x.device), x.size(1))
        pooled = x.masked_fill(pad[:, :, None], float("-inf")).max(dim=1).values
        return self.audio_intenter(pooled)


def split_deepspeech_state(state_dict: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """Split an authors' state dict (AM-PT package `state_dict`, SLU model, with or without a DataParallel
    `module.` prefix) by parameter name into {"ds2": conv+rnns, "ctc": fc, "intent": audio_intenter}; the keys of
    each part are the names of DeepSpeech2 / CtcHead / IntentHead. Everything else (vq_bert, text_bert, ...) is
    ignored."""
    parts: dict[str, dict[str, torch.Tensor]] = {"ds2": {}, "ctc": {}, "intent": {}}
    for key, value in state_dict.items():
        name = key[len("module."):] if key.startswith("module.") else key
        if name.startswith(("conv.", "rnns.")):
            parts["ds2"][name] = value
        elif name.startswith("fc."):
            parts["ctc"][name] = value
        elif name.startswith("audio_intenter."):
            parts["intent"][name] = value
    return parts
