"""vq-wav2vec (k-means) as a featuriser: raw 16 kHz wave -> two groups of code indices per 10 ms frame.

Mirrors fairseq (facebookresearch/fairseq, `fairseq/models/wav2vec/wav2vec.py` ConvFeatureExtractionModel and
`fairseq/modules/kmeans_vector_quantizer.py` KmeansVectorQuantizer) with the same parameter names, so the released
`vq-wav2vec_kmeans.pt` loads with `load_state_dict(strict=True)`. Only the two modules the featuriser uses are built
(`examples/wav2vec/vq-wav2vec_featurize.py`, quantize location "encoder", and the authors' `utility/vq_tokenize.py`):

    z = model.feature_extractor(wave)              # (B, 512, T), T = frames at a 160-sample (10 ms) hop
    _, idx = model.vector_quantizer.forward_idx(z)  # (B, T, 2)
    tokens = " ".join(f"{a}-{b}" for a, b in idx[0])

Dropped from the checkpoint (the featuriser never runs them): `feature_aggregator.*` (the context network),
`wav2vec_predictions.*` (the contrastive prediction head) and `project_features.*` (only present with
`project_features=new`). Dropout layers are identity at inference and hold no parameters.
"""
from __future__ import annotations

import argparse
import ast
import math
import os
from typing import Any, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import InputError
from ..train.checkpoint import load_released_checkpoint

MAX_SAMPLES_PER_CHUNK = 1_300_000  # vq-wav2vec_featurize.py --max-size (the authors' preprocessing.json max_size)
DROPPED_PREFIXES = ("feature_aggregator.", "wav2vec_predictions.", "project_features.")

# fairseq base_wav2vec_architecture defaults, used when an (older) checkpoint's args lack a field
_ARCH_DEFAULTS: dict[str, Any] = {
    "conv_feature_layers": "[(512, 10, 5)] + [(512, 8, 4)] + [(512, 4, 2)] * 3",
    "skip_connections_feat": False,
    "residual_scale": 0.5,
    "log_compression": False,
    "non_affine_group_norm": False,
    "activation": "relu",
    "vq_type": "none",
    "vq_vars": 320,
    "vq_groups": 2,
    "vq_dim": 0,
    "combine_groups": False,
    "vq_gamma": 0.25,
}


class Fp32GroupNorm(nn.GroupNorm):
    """GroupNorm computed in float32 (fairseq/modules/fp32_group_norm.py)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.group_norm(x.float(), self.num_groups,
                           self.weight.float() if self.weight is not None else None,
                           self.bias.float() if self.bias is not None else None, self.eps)
        return out.type_as(x)


def parse_conv_layers(spec: str) -> list[tuple[int, int, int]]:
    """fairseq's `conv_feature_layers` string, e.g. "[(512, 10, 5)] + [(512, 4, 2)] * 3", -> [(dim, k, stride)].

    fairseq eval()s this string; we accept the same list/tuple/+/* expressions through a literal-only evaluator so
    that a checkpoint cannot run code.
    """
    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [ev(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            a, b = ev(node.left), ev(node.right)
            return a + b if isinstance(node.op, ast.Add) else a * b
        raise ValueError(f"unsupported element {ast.dump(node)[:60]}")

    try:
        layers = ev(ast.parse(spec, mode="eval"))
        layers = [tuple(int(v) for v in layer) for layer in layers]
    except (SyntaxError, ValueError, TypeError) as e:
        raise InputError(f"conv_feature_layers {spec!r}: not a list of (dim, kernel, stride) tuples ({e})") from None
    if not layers or any(len(layer) != 3 for layer in layers):
        raise InputError(f"conv_feature_layers {spec!r}: expected a non-empty list of (dim, kernel, stride)")
    return layers


class ConvFeatureExtractionModel(nn.Module):
    """wav2vec's convolutional encoder: per layer Conv1d (no bias) -> dropout -> GroupNorm(1) -> activation,
    optional strided skip connections, optional log(|x| + 1) compression. Input (B, S) -> output (B, C, T)."""

    def __init__(self, conv_layers: list[tuple[int, int, int]], log_compression: bool, skip_connections: bool,
                 residual_scale: float, non_affine_group_norm: bool, activation: nn.Module):
        super().__init__()
        self.conv_layers = nn.ModuleList()
        in_d = 1
        for dim, k, stride in conv_layers:
            # index 1 is fairseq's nn.Dropout(p=0.0); kept so the norm stays at index 2 (parameter names)
            self.conv_layers.append(nn.Sequential(
                nn.Conv1d(in_d, dim, k, stride=stride, bias=False),
                nn.Dropout(p=0.0),
                Fp32GroupNorm(1, dim, affine=not non_affine_group_norm),
                activation,
            ))
            in_d = dim
        self.log_compression = log_compression
        self.skip_connections = skip_connections
        self.residual_scale = math.sqrt(residual_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.unsqueeze(1)  # B x S -> B x 1 x S
        for conv in self.conv_layers:
            residual = x
            x = conv(x)
            if self.skip_connections and x.size(1) == residual.size(1):
                tsz, r_tsz = x.size(2), residual.size(2)
                residual = residual[..., :: r_tsz // tsz][..., :tsz]
                x = (x + residual) * self.residual_scale
        if self.log_compression:
            x = (x.abs() + 1).log()
        return x


class KmeansVectorQuantizer(nn.Module):
    """fairseq KmeansVectorQuantizer (time_first=False): grouped 1x1 projection + GroupNorm, then per group the
    nearest codebook vector (Euclidean). `embedding` is (num_vars, groups or 1, var_dim)."""

    def __init__(self, dim: int, num_vars: int, groups: int, combine_groups: bool, vq_dim: int,
                 gamma: float = 0.25):
        super().__init__()
        if vq_dim % groups:
            raise InputError(f"vq_dim {vq_dim} must be divisible by vq_groups {groups}")
        self.groups, self.combine_groups, self.num_vars = groups, combine_groups, num_vars
        self.input_dim, self.vq_dim, self.var_dim = dim, vq_dim, vq_dim // groups
        self.gamma = gamma  # commitment-loss weight; training only, kept for completeness
        num_groups = 1 if combine_groups else groups
        self.embedding = nn.Parameter(0.01 * torch.randn(num_vars, num_groups, self.var_dim))
        self.projection = nn.Sequential(
            nn.Conv1d(dim, dim, kernel_size=1, groups=groups, bias=False),
            Fp32GroupNorm(groups, dim),
        )

    @property
    def expand_embedding(self) -> torch.Tensor:
        if self.combine_groups:
            return self.embedding.expand(self.num_vars, self.groups, self.var_dim)
        return self.embedding

    def forward_idx(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, T) -> (quantised x (B, C, T), indices LongTensor (B, T, groups))."""
        bsz, _, tsz = x.shape
        ze = self.projection(x)
        if ze.shape[1] != self.groups * self.var_dim:
            raise ValueError(f"projected dim {ze.shape[1]} != groups x var_dim {self.groups * self.var_dim}")
        ze_ = ze.view(bsz, self.groups, self.var_dim, tsz).permute(0, 3, 1, 2)  # B T G d
        emb = self.expand_embedding
        idx = torch.empty(bsz, tsz, self.groups, dtype=torch.long, device=x.device)
        for g in range(self.groups):
            # exact differences (no |a|^2 - 2ab + |b|^2 expansion), like fairseq's (ze - e).norm(), but
            # without materialising the (num_vars, B, T, G, d) tensor
            d = torch.cdist(ze_[:, :, g].float().contiguous(), emb[:, g].float()[None].contiguous(),
                            compute_mode="donot_use_mm_for_euclid_dist")
            idx[..., g] = d.argmin(dim=-1)
        zq = torch.stack([emb[idx[..., g], g] for g in range(self.groups)], dim=-2)
        zq = zq.view(bsz, tsz, self.groups * self.var_dim).permute(0, 2, 1)
        # fairseq returns the straight-through value ze + (zq - ze).detach(); numerically that is zq
        return zq.type_as(ze), idx

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_idx(x)[0]


class VqWav2VecKmeans(nn.Module):
    """The featuriser half of fairseq's Wav2VecModel with vq_type="kmeans"."""

    def __init__(self, conv_feature_layers: str | list = _ARCH_DEFAULTS["conv_feature_layers"],
                 log_compression: bool = True, skip_connections_feat: bool = False, residual_scale: float = 0.5,
                 non_affine_group_norm: bool = False, activation: str = "relu", vq_vars: int = 320,
                 vq_groups: int = 2, vq_dim: int = 0, combine_groups: bool = False, vq_gamma: float = 0.25):
        super().__init__()
        layers = parse_conv_layers(conv_feature_layers) if isinstance(conv_feature_layers, str) \
            else [tuple(layer) for layer in conv_feature_layers]
        if activation == "relu":
            act: nn.Module = nn.ReLU()
        elif activation == "gelu":
            act = nn.GELU()
        else:
            raise InputError(f"activation {activation!r}: fairseq wav2vec knows 'relu' and 'gelu'")
        self.feature_extractor = ConvFeatureExtractionModel(layers, log_compression, skip_connections_feat,
                                                            residual_scale, non_affine_group_norm, act)
        embed = layers[-1][0]
        self.vector_quantizer = KmeansVectorQuantizer(embed, vq_vars, vq_groups, combine_groups,
                                                      vq_dim if vq_dim > 0 else embed, vq_gamma)
        self.hop = math.prod(stride for _, _, stride in layers)  # 160 samples = 10 ms for the released model

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> "VqWav2VecKmeans":
        """Build from a fairseq args Namespace (as a dict) or a hydra `cfg.model` dict."""
        a = {**_ARCH_DEFAULTS, **{k: v for k, v in args.items() if v is not None}}
        if a["vq_type"] != "kmeans":
            raise InputError(f"vq_type {a['vq_type']!r}: only the k-means vq-wav2vec is supported")
        if a.get("encoder", "cnn") != "cnn":
            raise InputError(f"encoder {a['encoder']!r}: only fairseq's 'cnn' feature extractor exists")
        if a.get("vq", "encoder") != "encoder":
            raise InputError(f"vq {a['vq']!r}: only quantize location 'encoder' is supported")
        return cls(conv_feature_layers=a["conv_feature_layers"], log_compression=bool(a["log_compression"]),
                   skip_connections_feat=bool(a["skip_connections_feat"]), residual_scale=float(a["residual_scale"]),
                   non_affine_group_norm=bool(a["non_affine_group_norm"]), activation=str(a["activation"]),
                   vq_vars=int(a["vq_vars"]), vq_groups=int(a["vq_groups"]), vq_dim=int(a["vq_dim"]),
                   combine_groups=bool(a["combine_groups"]), vq_gamma=float(a["vq_gamma"]))

    def forward(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """wave (B, S) -> (features z (B, C, T), indices (B, T, groups)). Every row is normalised over its whole
        length (GroupNorm), so feed equal-length or single utterances; `encode` does one utterance."""
        z = self.feature_extractor(wave)
        _, idx = self.vector_quantizer.forward_idx(z)
        return z, idx

    @torch.no_grad()
    def encode(self, wave: torch.Tensor, max_size: int = MAX_SAMPLES_PER_CHUNK) -> torch.Tensor:
        """One utterance (S,) -> indices (T, groups). Longer than `max_size` samples: split with
        `torch.chunk` into the fewest pieces of at most max_size and concatenate, as vq-wav2vec_featurize.py does."""
        wave = torch.as_tensor(wave, dtype=torch.float32)
        if wave.ndim != 1:
            raise ValueError(f"encode expects one 1-D wave, got shape {tuple(wave.shape)}")
        x = wave.unsqueeze(0)
        return torch.cat([self(piece)[1].squeeze(0) for piece in x.chunk(_chunks(x.size(-1), max_size), dim=-1)],
                         dim=0)

    def num_frames(self, n_samples: int, max_size: int = MAX_SAMPLES_PER_CHUNK) -> int:
        """How many frames `encode` makes of `n_samples` samples, without running it: the conv stack's output
        length over each piece torch.chunk cuts (pieces of ceil(n / div), the last one shorter)."""
        div = _chunks(n_samples, max_size)
        size = -(-n_samples // div)
        pieces = [size] * (n_samples // size) + ([n_samples % size] if n_samples % size else [])
        total = 0
        for length in pieces:
            for layer in self.feature_extractor.conv_layers:
                conv = layer[0]
                length = max(0, (length - conv.kernel_size[0]) // conv.stride[0] + 1)
            total += length
        return total

    def tokens(self, wave: torch.Tensor, max_size: int = MAX_SAMPLES_PER_CHUNK) -> str:
        """One utterance -> "a-b a-b ..." (the .src line format of vq-wav2vec_featurize.py)."""
        return " ".join("-".join(str(v) for v in row) for row in self.encode(wave, max_size).tolist())


def _chunks(n_samples: int, max_size: int) -> int:
    """The fewest pieces of at most max_size samples (vq-wav2vec_featurize.py's split)."""
    div = 1
    while n_samples // div > max_size:
        div += 1
    return div


def _checkpoint_args(state: dict, path: str | os.PathLike) -> dict:
    args = state.get("args")
    if isinstance(args, argparse.Namespace):
        return vars(args)
    cfg = state.get("cfg")
    if isinstance(cfg, Mapping) and isinstance(cfg.get("model"), Mapping):
        return dict(cfg["model"])
    raise InputError(f"{path}: no model arguments (expected fairseq 'args' Namespace or 'cfg.model')")


def featurizer_state(model_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The checkpoint's parameters the featuriser needs: DROPPED_PREFIXES removed."""
    return {k: v for k, v in model_state.items() if not k.startswith(DROPPED_PREFIXES)}


def load_fairseq_vq_wav2vec(path: str | os.PathLike) -> VqWav2VecKmeans:
    """Released fairseq vq-wav2vec k-means checkpoint -> VqWav2VecKmeans in eval mode (load_released_checkpoint:
    numpy bookkeeping and unknown classes load, pickled code is refused)."""
    state = load_released_checkpoint(path)
    model = VqWav2VecKmeans.from_args(_checkpoint_args(state, path))
    params = state.get("model")
    if not isinstance(params, Mapping):
        raise InputError(f"{path}: no 'model' state dict")
    try:
        model.load_state_dict(featurizer_state(params), strict=True)
    except RuntimeError as e:
        raise InputError(f"{path}: parameters do not match the vq-wav2vec architecture in its args: "
                         f"{' '.join(str(e).split())[:500]}") from None
    return model.eval()
