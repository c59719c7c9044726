"""Hostile audio (issue 13): every reader of user audio (read_audio, st-prep's load_audio, slu-infer) accepts the
lossless formats (and mp3 only where asked) and refuses every defect with one InputError naming the file and the
problem; through the CLI that is exit code 2, no traceback, no DONE."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from speechkd.data.audio import read_audio
from speechkd.data.manifests import write_tsv
from speechkd.errors import InputError
from speechkd.slu import classify as infer
from speechkd.st import corpora
from support.audio import SR, tone
from support.paths import REPO



def write(subtype: str | None, fmt: str = "WAV", sr: int = SR, channels: int = 1, seconds: float = 0.5):
    return lambda p: sf.write(str(p), tone(seconds, sr, channels), sr, format=fmt, subtype=subtype)


def truncated(p: Path) -> None:
    write("PCM_16")(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])  # the header still promises 8000 samples


def float_with(value: float, at: int):
    def make(p: Path) -> None:
        wave = tone().astype(np.float32)
        wave[at] = value
        sf.write(str(p), wave, SR, format="WAV", subtype="FLOAT")
    return make


# name, file name, writer, read_audio kwargs, expected length in samples
VALID = [
    ("pcm16", "a.wav", write("PCM_16"), {}, 8000),
    ("pcm24", "a.wav", write("PCM_24"), {}, 8000),
    ("pcm32", "a.wav", write("PCM_32"), {}, 8000),
    ("float", "a.wav", write("FLOAT"), {}, 8000),
    ("double", "a.wav", write("DOUBLE"), {}, 8000),
    ("wavex24", "a.wav", write("PCM_24", fmt="WAVEX"), {}, 8000),
    ("flac", "a.flac", write("PCM_16", fmt="FLAC"), {}, 8000),
    ("flac24", "a.flac", write("PCM_24", fmt="FLAC"), {}, 8000),
    ("mp3_allowed", "a.mp3", write("MPEG_LAYER_III", fmt="MP3"), {"allow_mp3": True}, None),
    ("48k_resampled", "a.wav", write("PCM_16", sr=48000), {"resample": True}, 8000),
    ("48k_mp3_resampled", "a.mp3", write("MPEG_LAYER_III", fmt="MP3", sr=48000),
     {"allow_mp3": True, "resample": True}, None),
]


@pytest.mark.parametrize("name, filename, make, kwargs, length", VALID, ids=[v[0] for v in VALID])
def test_valid_audio_is_read(tmp_path, name, filename, make, kwargs, length):
    path = tmp_path / filename
    make(path)
    wave = read_audio(path, **kwargs)
    assert wave.dtype == np.float32 and wave.ndim == 1 and np.isfinite(wave).all()
    if length is None:  # mp3: the decoder's priming/padding shifts the length a little
        assert abs(len(wave) - 8000) < 2000
    else:
        assert len(wave) == length
        np.testing.assert_allclose(wave, tone(), atol=2e-2 if "resampled" in name else 1e-3)


# name, file name, writer, read_audio kwargs, substrings the message must hold (besides the path)
DEFECTS = [
    ("truncated_wav", "t.wav", truncated, {},
     ["truncated", "promises 8000 samples", "holds 3989"]),
    ("mp3_named_wav", "m.wav", write("MPEG_LAYER_III", fmt="MP3"), {},
     ["content is MP3 (MPEG_LAYER_III) although the name says .wav", "not accepted", "WAV PCM_16"]),
    ("mp3_named_wav_allowed", "m.wav", write("MPEG_LAYER_III", fmt="MP3"), {"allow_mp3": True},
     ["content is MP3 (MPEG_LAYER_III) although the name says .wav"]),
    ("mp3_not_allowed", "m.mp3", write("MPEG_LAYER_III", fmt="MP3"), {},
     ["MP3/MPEG_LAYER_III", "not accepted", "ffmpeg"]),
    ("flac_named_wav", "f.wav", write("PCM_16", fmt="FLAC"), {}, ["content is FLAC (PCM_16)", ".wav"]),
    ("pcm_u8", "u.wav", write("PCM_U8"), {}, ["WAV/PCM_U8 (8-bit audio) is not accepted", "accepted: WAV PCM_16"]),
    ("ulaw", "u.wav", write("ULAW"), {}, ["WAV/ULAW", "not accepted"]),
    ("ogg_vorbis", "o.ogg", write("VORBIS", fmt="OGG"), {}, ["OGG/VORBIS (lossy) is not accepted"]),
    ("nan_float", "n.wav", float_with(np.nan, 1234), {}, ["sample 1234 is nan"]),
    ("inf_float", "i.wav", float_with(-np.inf, 77), {}, ["sample 77 is -inf"]),
    ("rate_and_stereo", "s.wav", write("PCM_16", sr=8000, channels=2), {},
     ["sample rate 8000 Hz, expected 16000 Hz", "2 channels, expected mono", "`resample: true`", "ffmpeg"]),
    ("stereo_resample", "s.wav", write("PCM_16", sr=48000, channels=2), {"resample": True},
     ["2 channels, expected mono"]),
    ("empty_audio", "e.wav", write("PCM_16", seconds=0), {}, ["empty audio (0 samples)"]),
    ("empty_file", "e.wav", lambda p: p.write_bytes(b""), {}, ["empty file (0 bytes)"]),
    ("not_audio", "x.wav", lambda p: p.write_bytes(b"this is not audio at all" * 10), {},
     ["cannot read audio", "not a recognised audio file"]),
    ("missing", "x.wav", lambda p: None, {}, ["audio file not found"]),
]


@pytest.mark.parametrize("name, filename, make, kwargs, needles", DEFECTS, ids=[d[0] for d in DEFECTS])
def test_defective_audio_is_refused_by_name(tmp_path, name, filename, make, kwargs, needles):
    path = tmp_path / filename
    make(path)
    with pytest.raises(InputError) as e:
        read_audio(path, **kwargs)
    message = str(e.value)
    assert message.startswith(f"{path}: ")
    for needle in needles:
        assert needle in message, message
    if name == "stereo_resample":
        assert "sample rate" not in message  # resampling takes care of the rate


def test_truncated_flac_is_refused(tmp_path):
    path = tmp_path / "t.flac"
    sf.write(str(path), np.random.default_rng(0).uniform(-0.5, 0.5, 32000), SR, format="FLAC")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError, match=r"t\.flac: .*(truncated|corrupt)"):
        read_audio(path)


def test_segment_reads_check_the_whole_file(tmp_path):
    """MuST-C segments: a partial read of a valid talk works; a truncated talk, NaN inside the segment, or a
    segment past the end are refused naming the file and the segment."""
    good, bad, nan = tmp_path / "talk.wav", tmp_path / "cut.wav", tmp_path / "nan.wav"
    sf.write(str(good), tone(2.0), SR, subtype="PCM_16")
    truncated(bad)
    wave = tone(2.0).astype(np.float32)
    wave[20000] = np.nan
    sf.write(str(nan), wave, SR, subtype="FLOAT")

    def utt(path: Path, offset: int, n: int) -> corpora.Utterance:
        return corpora.Utterance("talk_0", "dev", "spk", "en", "de", str(path), offset=offset, num_samples=n)

    assert len(corpora.load_audio(utt(good, 16000, 8000))) == 8000
    with pytest.raises(InputError, match=r"cut\.wav: truncated.*segment talk_0"):
        corpora.load_audio(utt(bad, 0, 1000))
    with pytest.raises(InputError, match=r"nan\.wav: sample 20000 is nan.*segment talk_0"):
        corpora.load_audio(utt(nan, 16000, 8000))
    with pytest.raises(InputError, match=r"talk\.wav: samples \[30000, 38000\) requested, the file holds 32000"):
        corpora.load_audio(utt(good, 30000, 8000))


def test_st_prep_mp3_only_for_the_corpus_that_ships_it(tmp_path):
    """covost2 utterances (the reader sets allow_mp3 and resample) may be mp3; an embedded/MuST-C one may not."""
    clip = tmp_path / "c.mp3"
    write("MPEG_LAYER_III", fmt="MP3", sr=48000)(clip)
    common_voice = corpora.Utterance("c", "train", "spk", "en", "de", str(clip), resample=True, allow_mp3=True)
    assert abs(len(corpora.load_audio(common_voice)) - 8000) < 2000
    with pytest.raises(InputError, match=r"c\.mp3: .*MP3/MPEG_LAYER_III .*not accepted"):
        corpora.load_audio(corpora.Utterance("c", "train", "spk", "en", "de", str(clip)))


def _kmeans_source():
    from speechkd.slu.unit_source import UnitSource
    return UnitSource(kmeans=object(), stack=2)  # only the unit count is asked of it


def test_slu_infer_refuses_too_long_utterances_by_name(tmp_path):
    path = tmp_path / "long.wav"
    # k-means units with stack 2: 50 units/s; max_positions 512 -> 511 units -> about 10.2 s
    infer.check_length(path, np.zeros(10 * SR, np.float32), _kmeans_source(), 512)  # 499 units + <s>: fits
    with pytest.raises(InputError) as e:
        infer.check_length(path, np.zeros(60 * SR, np.float32), _kmeans_source(), 512)
    message = str(e.value)
    assert message.startswith(f"{path}: 60.0 s") and "at most 512 positions" in message and "10.2 s" in message
    with pytest.raises(InputError, match=r"short\.wav: 0\.0 s of audio is too short for one unit"):
        infer.check_length(tmp_path / "short.wav", np.zeros(300, np.float32), _kmeans_source(), 512)


def test_unit_count_matches_vq_wav2vec_encode():
    import torch

    from speechkd.models.vq_wav2vec import VqWav2VecKmeans
    from speechkd.slu.unit_source import UnitSource
    vq = VqWav2VecKmeans(conv_feature_layers="[(8, 10, 5)] + [(8, 8, 4)] + [(8, 4, 2)] * 3", vq_vars=4)
    source = UnitSource(vq=vq)
    for n in (1234, 16001):
        assert source.num_units(n) == len(vq.encode(torch.zeros(n))), n
    for n in (2000, 2101):  # encode splits into chunks: counted per chunk
        assert vq.num_frames(n, max_size=700) == len(vq.encode(torch.zeros(n), max_size=700)), n


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "speechkd.cli", *args], capture_output=True, text=True, env=env,
                          cwd=REPO, timeout=300)


@pytest.mark.parametrize("defect", ["truncated", "stereo_8k"])
def test_cli_slu_units_on_bad_audio_exits_2_without_traceback(tmp_path, defect):
    """slu-units fitting k-means on a read-speech split with one bad wav: exit 2, one message, no DONE."""
    read = tmp_path / "read"
    (read / "wav").mkdir(parents=True)
    rows = []
    for i in range(3):
        path = read / "wav" / f"u{i}.wav"
        sf.write(str(path), tone(0.5), SR, subtype="PCM_16")
        rows.append({"id": f"u{i}", "audio": f"wav/u{i}.wav", "n_frames": 48, "tgt_text": "hello",
                     "speaker": "s", "src_text": "hello"})
    bad = read / "wav" / "u1.wav"
    truncated(bad) if defect == "truncated" else write("PCM_16", sr=8000, channels=2)(bad)
    write_tsv(read / "train.tsv", rows, ["id", "audio", "n_frames", "tgt_text", "speaker", "src_text"])
    config = tmp_path / "units.json"
    config.write_text(json.dumps({"runs_dir": str(tmp_path / "runs"), "data_root": str(tmp_path), "name": "u",
                                  "corpora": {}, "read": "read", "read_splits": ["train"], "workers": 1}))
    result = _cli("slu-units", "--config", str(config))
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert str(bad) in result.stderr
    if defect == "truncated":
        assert "truncated: the WAV header promises 8000 samples" in result.stderr
    else:
        assert "sample rate 8000 Hz" in result.stderr and "2 channels" in result.stderr
        assert "`resample: true`" in result.stderr
    assert not list((tmp_path / "runs").rglob("DONE"))
