"""The incremental state of TransformerDecoder (models/transformer.py) for greedy and beam search (decode/search.py).

Inference only: the buffers are written in place, so no autograd runs through them.
- Self-attention keys/values of every layer live in one preallocated buffer, doubled when full: a step writes one
  position instead of concatenating, and `reorder` gathers the filled positions into a spare buffer.
- Encoder-attention keys/values of every layer are projected from the encoder output once, in one matmul.
- The step's matrices (StepWeights): per layer the fused q/k/v projection; on CPU in float32, oneDNN's matmul, whose
  kernel beats MKL's sgemm for the few rows of a step, with weights packed in its layout once they are known to
  stay (see StepWeights).
"""
from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

if TYPE_CHECKING:
    from .transformer import TransformerDecoder

_ONEDNN = torch.backends.mkldnn.is_available()
# the ops torch.compile's CPU backend calls for linear layers (present in CPU builds with oneDNN)
_ONEDNN_LINEAR = getattr(torch.ops.mkldnn, "_linear_pointwise", None) if _ONEDNN else None
_ONEDNN_PACK = getattr(torch.ops.mkldnn, "_reorder_linear_weight", None) if _ONEDNN else None


def _onednn_applies(x: Tensor, weight: Tensor) -> bool:
    return (_ONEDNN_LINEAR is not None and x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32
            and not torch.is_grad_enabled())


def step_linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """F.linear for the few rows of a decoding step: oneDNN's matmul on CPU in float32 without autograd."""
    if _onednn_applies(x, weight):
        return _ONEDNN_LINEAR(x, weight, bias, "none", [], "")
    return F.linear(x, weight, bias)


class _Signature:
    """What identifies a decoder's current weights: each parameter's storage and version, and its content (sum and
    sum of magnitudes). The content is needed because torch's fused optimisers (train.optimizer_impl = fused, the
    default) update weights in place without bumping their versions: with versions alone a training-time greedy
    roll-in decoded with the weights of an earlier update. Reading the decoder's weights once costs far less than
    one decoding step."""

    def __init__(self, params: list[Tensor]):
        self.storage = tuple((p.data_ptr(), p._version) for p in params)
        with torch.no_grad():
            self.content = torch.stack([torch.stack([p.sum(), p.abs().sum()]) for p in params])

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, _Signature) and self.storage == other.storage
                and torch.equal(self.content, other.content))


def _signature(decoder: "TransformerDecoder") -> _Signature | None:
    """None for inference tensors, which keep no version (their weights are then never cached)."""
    try:
        return _Signature([p.detach() for p in decoder.parameters()])
    except RuntimeError:
        return None


_STEP_WEIGHTS: "weakref.WeakKeyDictionary[TransformerDecoder, StepWeights]" = weakref.WeakKeyDictionary()


class StepWeights:
    """A decoder's matrices as its incremental step uses them, kept per decoder while its weights are unchanged.

    Per layer the self-attention q/k/v projections are fused into one (weight, bias). On CPU in float32 the step's
    matrices are also packed in oneDNN's blocked layout (−13% decoding time on the standard beam batch,
    bench/bench_s2t.py). Packing them all costs about one decoding step, so it happens on the second search that
    finds the weights unchanged: generation packs once for all its batches, and training-time greedy roll-ins,
    whose weights change at every update, never pack.
    """

    def __init__(self, decoder: "TransformerDecoder", signature: "_Signature | None"):
        self.signature, self.searches = signature, 1
        self.qkv = [(torch.cat([l.self_attn.q_proj.weight, l.self_attn.k_proj.weight, l.self_attn.v_proj.weight]),
                     torch.cat([l.self_attn.q_proj.bias, l.self_attn.k_proj.bias, l.self_attn.v_proj.bias]))
                    for l in decoder.layers]
        self.packed: dict[int, Tensor] = {}  # id(matrix) -> packed copy

    @classmethod
    def of(cls, decoder: "TransformerDecoder", rows: int) -> "StepWeights":
        signature = _signature(decoder)
        weights = _STEP_WEIGHTS.get(decoder)
        if signature is None or weights is None or weights.signature != signature:
            weights = cls(decoder, signature)
            if signature is not None:
                _STEP_WEIGHTS[decoder] = weights
            return weights
        weights.searches += 1
        if not weights.packed:
            weights._pack(decoder, rows)
        return weights

    def _pack(self, decoder: "TransformerDecoder", rows: int) -> None:
        matrices = [w for w, _ in self.qkv] + [decoder.output_projection.weight] + [
            m.weight for l in decoder.layers for m in (l.self_attn.out_proj, l.encoder_attn.q_proj,
                                                       l.encoder_attn.out_proj, l.fc1, l.fc2)]
        probe = matrices[0].new_empty(1)
        if _ONEDNN_PACK is None or not all(_onednn_applies(probe, w) for w in matrices):
            return
        hint = max(rows, 16)  # the layout oneDNN picks for very few rows is slow for more
        self.packed = {id(w): _ONEDNN_PACK(w, hint) for w in matrices}

    def linear(self, x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        packed = self.packed.get(id(weight))
        if packed is not None and _onednn_applies(x, weight):
            return _ONEDNN_LINEAR(x, packed, bias, "none", [], "")
        return step_linear(x, weight, bias)


class DecoderCache:
    """Incremental state of a TransformerDecoder:
    - self_kv (L, 2, N, H, capacity, D): every layer's self-attention keys and values, positions 0 .. step − 1;
    - encoder_kv (L, 2, B, H, S, D): the encoder-attention keys/values; encoder_mask (B, 1, 1, S) True at valid
      frames, or None;
    - weights: the decoder's StepWeights (`linear` runs the step's matrices).
    """

    initial_capacity = 16

    def __init__(self) -> None:
        self.step = 0
        self.self_kv: Tensor | None = None
        self.encoder_kv: Tensor | None = None
        self.encoder_mask: Tensor | None = None
        self.weights: StepWeights | None = None
        self._spare: Tensor | None = None  # where `reorder` gathers to

    def start(self, decoder: "TransformerDecoder", encoder_out: Tensor, encoder_padding_mask: Tensor | None,
              rows: int) -> None:
        """First step: project the encoder output, take the step's weights, allocate the self-attention buffer."""
        layers = decoder.layers
        projections = [p for l in layers for p in (l.encoder_attn.k_proj, l.encoder_attn.v_proj)]
        attn = layers[0].encoder_attn
        b, s, _ = encoder_out.shape
        kv = F.linear(encoder_out, torch.cat([p.weight for p in projections]), torch.cat([p.bias for p in projections]))
        self.encoder_kv = kv.view(b, s, len(layers), 2, attn.num_heads, attn.head_dim).permute(2, 3, 0, 4, 1, 5)
        self.encoder_kv = self.encoder_kv.contiguous()
        self.encoder_mask = None if encoder_padding_mask is None else ~encoder_padding_mask[:, None, None, :]
        self.weights = StepWeights.of(decoder, rows)
        sa = layers[0].self_attn
        self.self_kv = kv.new_empty(len(layers), 2, rows, sa.num_heads, self.initial_capacity, sa.head_dim)

    def linear(self, x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
        return self.weights.linear(x, weight, bias)

    def make_room(self) -> None:
        """Double the self-attention buffer when the next position does not fit."""
        if self.self_kv is not None and self.step == self.self_kv.size(4):
            grown = self.self_kv.new_empty(*self.self_kv.shape[:4], 2 * self.step, self.self_kv.size(5))
            grown[:, :, :, :, : self.step] = self.self_kv
            self.self_kv, self._spare = grown, None

    def reorder(self, order: Tensor, encoder_order: Tensor | None = None) -> None:
        """Select batch rows (beam search: hypotheses that survive a step). Self-attention states follow
        `order`. Encoder-attention states are projections of the encoder output: they follow
        `encoder_order` (the order the caller applied to the encoder output) and stay as they are when it is
        None, i.e. when the encoder rows did not change (beam search reorders hypotheses within a sentence,
        whose encoder rows are identical)."""
        if self.self_kv is not None:
            shape = list(self.self_kv.shape)
            shape[2] = order.numel()
            if self._spare is None or list(self._spare.shape) != shape:
                self._spare = self.self_kv.new_empty(shape)
            filled = slice(0, self.step)
            torch.index_select(self.self_kv[:, :, :, :, filled], 2, order, out=self._spare[:, :, :, :, filled])
            self.self_kv, self._spare = self._spare, self.self_kv
        if encoder_order is not None and self.encoder_kv is not None:
            self.encoder_kv = self.encoder_kv.index_select(2, encoder_order)
            if self.encoder_mask is not None:
                self.encoder_mask = self.encoder_mask.index_select(0, encoder_order)
