"""vq-wav2vec (k-means) featuriser: fairseq parameter names, checkpoint loading, quantiser maths, chunking, and
parity with a fairseq-fixed fixture (tests/fixtures/fairseq/vq_wav2vec_kmeans*.pt) when it is present."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from speechkd.errors import InputError
from speechkd.models.vq_wav2vec import (VqWav2VecKmeans, featurizer_state, load_fairseq_vq_wav2vec,
                                        parse_conv_layers)
from support.paths import FAIRSEQ_FIXTURES

FIXTURES = FAIRSEQ_FIXTURES
CKPT, IO = FIXTURES / "vq_wav2vec_kmeans.pt", FIXTURES / "vq_wav2vec_kmeans.io.pt"
TINY_LAYERS = "[(16, 10, 5), (16, 8, 4)] + [(16, 4, 2)] * 3"
TINY_ARGS = dict(arch="wav2vec", vq_type="kmeans", vq_vars=12, vq_groups=2, log_compression=True,
                 skip_connections_feat=True, residual_scale=0.5, conv_feature_layers=TINY_LAYERS,
                 conv_aggregator_layers="[(16, 2, 1)]", activation="relu", combine_groups=False, vq_dim=0,
                 vq_gamma=0.25, non_affine_group_norm=False)


def tiny_model(seed: int = 0) -> VqWav2VecKmeans:
    torch.manual_seed(seed)
    model = VqWav2VecKmeans.from_args(TINY_ARGS)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))  # move GroupNorm affine / codebook off their initial values
        model.vector_quantizer.embedding.copy_(torch.randn_like(model.vector_quantizer.embedding))
    return model.eval()


def fairseq_style_checkpoint(path: Path, model: VqWav2VecKmeans, **arg_overrides) -> None:
    """The released layout: {"args": Namespace, "model": full Wav2VecModel state dict} (aggregator included)."""
    state = dict(model.state_dict())
    state["feature_aggregator.conv_layers.0.1.weight"] = torch.randn(16, 16, 2)
    state["wav2vec_predictions.project_to_steps.weight"] = torch.randn(16, 16, 1, 12)
    torch.save({"args": argparse.Namespace(**{**TINY_ARGS, **arg_overrides}), "model": state,
                "optimizer_history": [], "extra_state": {}}, path)


def reference_indices(model: VqWav2VecKmeans, z: torch.Tensor) -> torch.Tensor:
    """fairseq KmeansVectorQuantizer.forward: distances of the full (V, B, T, G, d) difference tensor."""
    vq = model.vector_quantizer
    bsz, _, tsz = z.shape
    ze = vq.projection(z)
    ze_ = ze.view(bsz, vq.groups, vq.var_dim, tsz).permute(0, 3, 1, 2)
    d = (ze_.unsqueeze(0) - vq.expand_embedding.unsqueeze(1).unsqueeze(1)).view(
        vq.num_vars, bsz, tsz, vq.groups, -1).norm(dim=-1, p=2)
    return d.argmin(dim=0)


def test_parameter_names_are_fairseqs():
    names = set(tiny_model().state_dict())
    expected = {f"feature_extractor.conv_layers.{i}.0.weight" for i in range(5)}
    expected |= {f"feature_extractor.conv_layers.{i}.2.{p}" for i in range(5) for p in ("weight", "bias")}
    expected |= {"vector_quantizer.embedding", "vector_quantizer.projection.0.weight",
                 "vector_quantizer.projection.1.weight", "vector_quantizer.projection.1.bias"}
    assert names == expected


def test_released_default_architecture_shapes():
    with torch.device("meta"):
        model = VqWav2VecKmeans.from_args({"vq_type": "kmeans", "log_compression": True})
    assert model.hop == 160  # 5 * 4 * 2 * 2 * 2: 10 ms at 16 kHz
    assert model.vector_quantizer.embedding.shape == (320, 2, 256)
    assert model.vector_quantizer.projection[0].weight.shape == (512, 256, 1)  # grouped 1x1 conv


def test_load_drops_aggregator_and_quantises_like_fairseq(tmp_path):
    model = tiny_model()
    fairseq_style_checkpoint(tmp_path / "vq.pt", model)
    loaded = load_fairseq_vq_wav2vec(tmp_path / "vq.pt")
    assert not loaded.training
    for (k, a), (_, b) in zip(loaded.state_dict().items(), model.state_dict().items()):
        assert torch.equal(a, b), k
    wave = torch.randn(2, 4000)
    with torch.no_grad():
        z, idx = loaded(wave)
        # frames: 4000 -> (4000-10)//5+1 = 799 -> 198 -> 98 -> 48 -> 23
        assert z.shape == (2, 16, 23) and idx.shape == (2, 23, 2)
        assert torch.equal(idx, reference_indices(loaded, z))
        assert len(set(idx[..., 0].flatten().tolist())) > 1  # non-degenerate codes
        zq, _ = loaded.vector_quantizer.forward_idx(z)
        emb = loaded.vector_quantizer.embedding
        torch.testing.assert_close(zq[0, :8, 3], emb[idx[0, 3, 0], 0])  # group 0 = first half of channels
        torch.testing.assert_close(zq[0, 8:, 3], emb[idx[0, 3, 1], 1])


def test_hydra_cfg_checkpoints_and_bad_ones(tmp_path):
    model = tiny_model(1)
    torch.save({"args": None, "cfg": {"model": {"_name": "wav2vec", **TINY_ARGS}}, "model": model.state_dict()},
               tmp_path / "cfg.pt")
    assert torch.equal(load_fairseq_vq_wav2vec(tmp_path / "cfg.pt").vector_quantizer.embedding,
                       model.vector_quantizer.embedding)
    fairseq_style_checkpoint(tmp_path / "gumbel.pt", model, vq_type="gumbel")
    with pytest.raises(InputError, match="only the k-means"):
        load_fairseq_vq_wav2vec(tmp_path / "gumbel.pt")
    fairseq_style_checkpoint(tmp_path / "vars.pt", model, vq_vars=13)
    with pytest.raises(InputError, match="vars.pt: parameters do not match"):
        load_fairseq_vq_wav2vec(tmp_path / "vars.pt")
    kept = featurizer_state({"feature_aggregator.x": 1, "project_features.y": 2, "vector_quantizer.embedding": 3})
    assert set(kept) == {"vector_quantizer.embedding"}


def test_long_utterances_are_chunked_like_the_featurize_script():
    model = tiny_model(2)
    wave = torch.randn(5003)
    with torch.no_grad():
        whole = model.encode(wave, max_size=10_000)
        chunked = model.encode(wave, max_size=2000)  # 5003 // 2 > 2000, 5003 // 3 <= 2000 -> 3 chunks of <= 1668
        pieces = [model(p.unsqueeze(0))[1][0] for p in wave.chunk(3)]
    assert torch.equal(chunked, torch.cat(pieces))
    # 5003 samples -> 999 -> 248 -> 123 -> 60 -> 29 frames; each ~1668-sample chunk -> 332 -> 82 -> 40 -> 19 -> 8
    assert whole.shape[0] == 29 and [p.shape[0] for p in pieces] == [8, 8, 8] and chunked.shape[0] == 24
    tokens = model.tokens(wave, max_size=2000).split()
    assert len(tokens) == 24 and tokens[0] == f"{chunked[0, 0].item()}-{chunked[0, 1].item()}"


def test_conv_layer_spec_is_parsed_without_eval():
    assert parse_conv_layers("[(512, 10, 5)] + [(512, 8, 4)] + [(512, 4, 2)] * 3") == \
        [(512, 10, 5), (512, 8, 4), (512, 4, 2), (512, 4, 2), (512, 4, 2)]
    with pytest.raises(InputError, match="conv_feature_layers"):
        parse_conv_layers("__import__('os').system('true')")


@pytest.mark.reference
@pytest.mark.skipif(not (CKPT.is_file() and IO.is_file()),
                    reason=f"fairseq-fixed fixture missing: {CKPT.name} / {IO.name} in {FIXTURES}")
def test_parity_with_fairseq_fixture():
    """The fixture holds one entry per utterance (each featurised alone, as vq-wav2vec_featurize.py does):
    `wave` (S,), `features` (1, C, T) = feature_extractor output, `quantized` (1, C, T), `indices` (1, T, 2),
    `featurize_lines` (the .src text)."""
    model = load_fairseq_vq_wav2vec(CKPT)
    io = torch.load(IO, map_location="cpu", weights_only=True)
    waves = io["wave"]
    waves = list(waves) if isinstance(waves, (list, tuple)) else [w for w in waves]
    assert len(waves) == len(io["features"]) == len(io["indices"]) >= 1
    with torch.no_grad():
        for i, wave in enumerate(waves):
            z, idx = model(wave.float().unsqueeze(0))
            torch.testing.assert_close(z, io["features"][i].float(), rtol=1e-4, atol=1e-4)
            assert torch.equal(idx, io["indices"][i].long())
            if "quantized" in io:
                zq, _ = model.vector_quantizer.forward_idx(z)
                torch.testing.assert_close(zq, io["quantized"][i].float(), rtol=1e-4, atol=1e-4)
            if "featurize_lines" in io:
                assert model.tokens(wave.float()) == io["featurize_lines"][i]
    if "codebook" in io:
        torch.testing.assert_close(model.vector_quantizer.expand_embedding, io["codebook"].float())
