"""Precomputed features in fairseq's own S2T format.

An uncompressed zip (ZIP_STORED) holds one `<utt_id>.npy` per utterance; a manifest's `audio` field points at the
.npy bytes inside it as "path/to/fbank80.zip:byte_offset:byte_size", exactly what fairseq's get_zip_manifest
writes (offset = the entry's local header offset + 30 + name length), so fairseq can read our manifests and we
can read fairseq's. read_features also takes a plain ".npy" path, or a ".wav"/".flac" path (fbank on the fly).
"""
from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path
from typing import Iterable

import numpy as np

from ..data.audio import read_audio
from ..errors import InputError
from ..fileio import atomic_path
from .fbank import fbank

NPY_MAGIC = b"\x93NUMPY"
AUDIO_SUFFIXES = {".wav", ".flac"}
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed entry timestamps: the same features give the same zip bytes
_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, ..., file name length, extra field length


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


def _data_offset(f, info: zipfile.ZipInfo) -> int:
    """Start of the entry's data: read from its local header (robust to extra fields, unlike name-length math)."""
    f.seek(info.header_offset)
    signature, name_len, extra_len = _LOCAL_HEADER.unpack(f.read(_LOCAL_HEADER.size))
    if signature != b"PK\x03\x04":
        raise ValueError(f"bad local header for {info.filename}")
    return info.header_offset + 30 + name_len + extra_len


def write_feature_zip(path: str | Path, items: Iterable[tuple[str, np.ndarray]],
                      field_path: str | None = None) -> dict[str, str]:
    """Writes `<utt_id>.npy` entries (in the order given, streamed) into an uncompressed zip, atomically.

    Returns utt_id -> "field_path:offset:size" audio fields; `field_path` defaults to `path` as given (fairseq
    manifests usually hold a path relative to the data root, e.g. "fbank80.zip").
    """
    path = Path(path)
    prefix = path.as_posix() if field_path is None else field_path
    seen: set[str] = set()
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for utt_id, array in items:
                if not utt_id or "/" in utt_id or "\\" in utt_id:
                    raise ValueError(f"{path}: utterance id {utt_id!r} is empty or contains a path separator")
                if utt_id in seen:
                    raise ValueError(f"{path}: duplicate utterance id {utt_id!r}")
                seen.add(utt_id)
                info = zipfile.ZipInfo(f"{utt_id}.npy", date_time=_ZIP_EPOCH)
                info.compress_type = zipfile.ZIP_STORED
                zf.writestr(info, _npy_bytes(array))
        fields = {}
        with zipfile.ZipFile(tmp) as zf, open(tmp, "rb") as f:
            for info in zf.infolist():
                fields[info.filename[:-len(".npy")]] = f"{prefix}:{_data_offset(f, info)}:{info.file_size}"
    return fields


def _resolve(p: str, root: Path | None) -> Path:
    path = Path(p)
    return path if root is None or path.is_absolute() else Path(root) / path


def parse_audio_field(audio_field: str) -> tuple[str, int | None, int | None]:
    """"x.zip:offset:size" -> ("x.zip", offset, size); "x.npy" / "x.wav" -> (path, None, None)."""
    if Path(audio_field).suffix.lower() in AUDIO_SUFFIXES | {".npy"}:
        return audio_field, None, None
    parts = audio_field.rsplit(":", 2)
    if len(parts) != 3:
        raise InputError(f"audio field {audio_field!r}: expected 'file.zip:offset:size', a .npy, .wav or .flac path")
    try:
        offset, size = int(parts[1]), int(parts[2])
    except ValueError:
        raise InputError(f"audio field {audio_field!r}: offset and size must be integers") from None
    if offset < 0 or size <= 0:
        raise InputError(f"audio field {audio_field!r}: offset must be >= 0 and size > 0")
    return parts[0], offset, size


def _load_npy(data: bytes, where: str) -> np.ndarray:
    if not data.startswith(NPY_MAGIC):
        raise InputError(f"{where}: no .npy data there (is the offset the one get_zip_manifest / "
                         "write_feature_zip wrote for this zip?)")
    try:
        return np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise InputError(f"{where}: corrupt .npy data: {e}") from None


def read_features(audio_field: str, root: Path | None = None) -> np.ndarray:
    """Features for one manifest `audio` field; relative paths are taken relative to `root`.

    Zip slices are read with one seek + read of exactly `size` bytes (the zip is never loaded whole).
    """
    file_part, offset, size = parse_audio_field(audio_field)
    path = _resolve(file_part, root)
    if not path.is_file():
        raise InputError(f"audio field {audio_field!r}: file {path} not found")
    suffix = path.suffix.lower()
    if offset is None:
        if suffix in AUDIO_SUFFIXES:
            return fbank(read_audio(path))
        return _load_npy(path.read_bytes(), str(path))
    with open(path, "rb") as f:
        f.seek(offset)
        data = f.read(size)
    if len(data) != size:
        raise InputError(f"audio field {audio_field!r}: {path} has only {offset + len(data)} bytes, "
                         f"the field asks for bytes {offset}..{offset + size}")
    return _load_npy(data, f"audio field {audio_field!r}")
