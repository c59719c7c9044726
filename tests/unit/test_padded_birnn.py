"""bidirectional_without_packing gives what a packed sequence gives: outputs at valid frames, gradients, zero
padding."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from speechkd.models.padded_birnn import _flip_index, _gather_time, bidirectional_over_padded, bidirectional_without_packing


def _packed(rnn: nn.RNNBase, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
    out, _ = rnn(packed)
    return nn.utils.rnn.pad_packed_sequence(out, total_length=x.size(0))[0]


def flip_within_lengths(x, lengths):
    """(T, B, ...) -> each sequence's first `lengths[b]` frames reversed, padded frames left where they are."""
    return _gather_time(x, _flip_index(lengths, x.size(0)))


def test_flip_within_lengths_reverses_valid_frames_only():
    x = torch.arange(4.0)[:, None].expand(4, 2).clone()  # (T=4, B=2)
    flipped = flip_within_lengths(x, torch.tensor([4, 2]))
    assert flipped[:, 0].tolist() == [3, 2, 1, 0]
    assert flipped[:, 1].tolist() == [1, 0, 2, 3]


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU, nn.RNN])
@pytest.mark.parametrize("num_layers", [1, 3])
def test_same_outputs_and_gradients_as_packing(cls, num_layers):
    torch.manual_seed(0)
    rnn = cls(input_size=5, hidden_size=4, num_layers=num_layers, bidirectional=True)
    lengths = torch.tensor([7, 3, 5, 1])
    x = torch.randn(7, 4, 5, requires_grad=True)
    reference = _packed(rnn, x, lengths)
    weights = torch.randn(reference.shape)  # a loss that weighs every output differently
    ref_grads = torch.autograd.grad((reference * weights).sum(), [x, *rnn.parameters()])
    out = bidirectional_without_packing(rnn, x, lengths)
    grads = torch.autograd.grad((out * weights).sum(), [x, *rnn.parameters()])
    torch.testing.assert_close(out, reference, rtol=1e-5, atol=1e-6)
    assert out[3:, 1].abs().sum() == 0  # padded frames are zero
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)


def test_padding_content_does_not_leak_into_valid_frames():
    torch.manual_seed(0)
    rnn = nn.LSTM(3, 2, bidirectional=True)
    lengths = torch.tensor([5, 2])
    x = torch.randn(5, 2, 3)
    noisy = x.clone()
    noisy[2:, 1] = 1e3
    torch.testing.assert_close(bidirectional_without_packing(rnn, x, lengths),
                               bidirectional_without_packing(rnn, noisy, lengths))


def test_refuses_unidirectional_or_batch_first():
    with pytest.raises(ValueError, match="bidirectional, time-major"):
        bidirectional_without_packing(nn.LSTM(3, 2), torch.zeros(2, 1, 3), torch.tensor([2]))
    with pytest.raises(ValueError, match="bidirectional, time-major"):
        bidirectional_without_packing(nn.LSTM(3, 2, bidirectional=True, batch_first=True), torch.zeros(1, 2, 3),
                             torch.tensor([2]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (the packed cuDNN path)")
def test_cuda_packed_path_matches_the_cpu_padded_path():
    torch.manual_seed(0)
    rnn = nn.LSTM(5, 4, num_layers=2, bidirectional=True)
    lengths = torch.tensor([6, 2, 4])
    x = torch.randn(6, 3, 5)
    on_cpu = bidirectional_over_padded(rnn, x, lengths)
    on_cuda = bidirectional_over_padded(rnn.cuda(), x.cuda(), lengths)
    torch.testing.assert_close(on_cuda.cpu(), on_cpu, rtol=1e-4, atol=1e-5)
