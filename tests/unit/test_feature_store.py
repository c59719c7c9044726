"""Feature store in fairseq's zip format: round trip, offsets as get_zip_manifest writes them, clear errors."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from speechkd.data.audio import write_audio
from speechkd.errors import InputError
from speechkd.features.fbank import fbank
from speechkd.features.store import parse_audio_field, read_features, write_feature_zip


def _items(n=4):
    rng = np.random.default_rng(0)
    return [(f"utt{i}", rng.standard_normal((10 + 7 * i, 80)).astype(np.float32)) for i in range(n)]


def test_round_trip_and_relative_field_paths(tmp_path):
    items = _items()
    fields = write_feature_zip(tmp_path / "fbank80.zip", iter(items), field_path="fbank80.zip")
    assert list(fields) == [u for u, _ in items]
    for utt, feats in items:
        assert fields[utt].startswith("fbank80.zip:")
        out = read_features(fields[utt], root=tmp_path)
        assert out.dtype == np.float32
        np.testing.assert_array_equal(out, feats)


def test_offsets_are_fairseq_get_zip_manifest_offsets(tmp_path):
    path = tmp_path / "f.zip"
    fields = write_feature_zip(path, _items())
    raw = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        for info in infos:
            utt = Path(info.filename).stem
            # fairseq: offset = header_offset + 30 + len(filename), size = file_size
            assert fields[utt] == f"{path.as_posix()}:{info.header_offset + 30 + len(info.filename)}:{info.file_size}"
            _, offset, size = parse_audio_field(fields[utt])
            np.testing.assert_array_equal(np.load(io.BytesIO(raw[offset:offset + size])),
                                          np.load(io.BytesIO(zf.read(info))))


def test_zip_bytes_are_deterministic(tmp_path):
    write_feature_zip(tmp_path / "a.zip", _items())
    write_feature_zip(tmp_path / "b.zip", _items())
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()


def test_npy_and_audio_fields(tmp_path):
    feats = _items(1)[0][1]
    np.save(tmp_path / "x.npy", feats)
    np.testing.assert_array_equal(read_features("x.npy", root=tmp_path), feats)
    wave = 0.1 * np.sin(2 * np.pi * 300 * np.arange(8000) / 16000)
    write_audio(tmp_path / "x.wav", wave)
    expected = fbank(np.round(np.clip(wave, -1, 1) * 32767) / 32768)  # what the 16-bit file holds
    np.testing.assert_allclose(read_features(str(tmp_path / "x.wav")), expected, atol=1e-4)


def test_writer_rejects_duplicates_and_bad_ids(tmp_path):
    feats = np.zeros((2, 80), np.float32)
    with pytest.raises(ValueError, match="duplicate"):
        write_feature_zip(tmp_path / "d.zip", [("a", feats), ("a", feats)])
    with pytest.raises(ValueError, match="path separator"):
        write_feature_zip(tmp_path / "d.zip", [("a/b", feats)])
    assert not (tmp_path / "d.zip").exists()  # atomic: nothing half-written is left behind


@pytest.mark.parametrize("field,message", [
    ("fbank80.zip", "expected 'file.zip:offset:size'"),
    ("fbank80.zip:12", "expected 'file.zip:offset:size'"),
    ("fbank80.zip:x:10", "must be integers"),
    ("fbank80.zip:-1:10", "offset must be >= 0"),
    ("missing.zip:0:10", "not found"),
    ("missing.npy", "not found"),
])
def test_bad_fields_are_input_errors(tmp_path, field, message):
    write_feature_zip(tmp_path / "fbank80.zip", _items(2))
    with pytest.raises(InputError, match=message):
        read_features(field, root=tmp_path)


def test_wrong_offset_or_truncated_zip_are_input_errors(tmp_path):
    fields = write_feature_zip(tmp_path / "f.zip", _items(2), field_path="f.zip")
    _, offset, size = parse_audio_field(fields["utt1"])
    with pytest.raises(InputError, match="no .npy data"):
        read_features(f"f.zip:{offset + 3}:{size}", root=tmp_path)
    total = (tmp_path / "f.zip").stat().st_size
    with pytest.raises(InputError, match="has only"):
        read_features(f"f.zip:{offset}:{total}", root=tmp_path)
    with pytest.raises(InputError, match="corrupt .npy"):
        read_features(f"f.zip:{offset}:{size - 100}", root=tmp_path)
