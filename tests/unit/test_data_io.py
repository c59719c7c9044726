"""Audio I/O and manifest readers: round trips, and one clear InputError per kind of bad input."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from speechkd.data.audio import read_audio, write_audio
from speechkd.data.manifests import (SluExample, read_intent_dict, read_s2t_tsv, read_slu_csv, read_tsv,
                                     write_intent_dict, write_slu_csv, write_tsv)
from speechkd.errors import InputError


def test_audio_round_trip_is_16bit_exact(tmp_path):
    t = np.arange(1600) / 16000
    wave = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    write_audio(tmp_path / "a.wav", wave)
    back = read_audio(tmp_path / "a.wav")
    assert back.dtype == np.float32 and back.shape == wave.shape
    assert np.max(np.abs(back - wave)) <= 1 / 32767
    assert sf.info(str(tmp_path / "a.wav")).subtype == "PCM_16"


@pytest.mark.parametrize("make, needle", [
    (lambda p: None, "audio file not found"),
    (lambda p: p.write_bytes(b"not audio at all"), "cannot read audio"),
    (lambda p: sf.write(str(p), np.zeros(100), 8000), "sample rate 8000 Hz, expected 16000 Hz"),
    (lambda p: sf.write(str(p), np.zeros((100, 2)), 16000), "2 channels, expected mono"),
    (lambda p: sf.write(str(p), np.zeros(0), 16000), "empty audio"),
])
def test_bad_audio_is_named(tmp_path, make, needle):
    path = tmp_path / "x.wav"
    make(path)
    with pytest.raises(InputError) as e:
        read_audio(path)
    assert str(path) in str(e.value) and needle in str(e.value)


def test_mp3_error_says_how_to_convert(tmp_path):
    path = tmp_path / "clip.mp3"
    path.write_bytes(b"ID3garbage")
    with pytest.raises(InputError, match="ffmpeg"):
        read_audio(path)


def test_s2t_tsv_round_trip_and_errors(tmp_path):
    rows = [{"id": "u1", "audio": "a.wav", "n_frames": 98, "tgt_text": "Hallo Welt.", "speaker": "s1",
             "src_text": "Hello, world."}]
    cols = ["id", "audio", "n_frames", "tgt_text", "speaker", "src_text"]
    write_tsv(tmp_path / "t.tsv", rows, cols)
    assert read_s2t_tsv(tmp_path / "t.tsv")[0]["src_text"] == "Hello, world."
    (tmp_path / "bad.tsv").write_text("id\taudio\tn_frames\ttgt_text\tspeaker\nu1\ta.wav\tten\tx\ts\n")
    with pytest.raises(InputError, match=r"bad.tsv:2: n_frames 'ten'"):
        read_s2t_tsv(tmp_path / "bad.tsv")
    (tmp_path / "short.tsv").write_text("id\taudio\nu1\n")
    with pytest.raises(InputError, match=r"short.tsv:1: missing column\(s\) n_frames"):
        read_s2t_tsv(tmp_path / "short.tsv")
    with pytest.raises(InputError, match=r"short.tsv:2: 1 fields, expected 2"):
        read_tsv(tmp_path / "short.tsv")
    with pytest.raises(ValueError, match="tab or newline"):
        write_tsv(tmp_path / "x.tsv", [{"id": "a\tb"}], ["id"])


def test_slu_csv_keeps_commas_in_transcript_and_spaces_in_action(tmp_path):
    ex = [SluExample("0", "w/0.wav", "s1", "change language", "German", "none", "switch to German, please")]
    write_slu_csv(tmp_path / "m.csv", ex)
    back = read_slu_csv(tmp_path / "m.csv")
    assert back == ex and back[0].intent == "change language German none"
    (tmp_path / "bad.csv").write_text("0,a.wav,s1,activate\n")
    with pytest.raises(InputError, match=r"bad.csv:1: 4 fields, expected 7"):
        read_slu_csv(tmp_path / "bad.csv")


def test_intent_dict(tmp_path):
    write_intent_dict(tmp_path / "d", ["activate lights kitchen", "change language none none"])
    assert read_intent_dict(tmp_path / "d")[1] == "change language none none"
    (tmp_path / "dup").write_text("a b c\na b c\n")
    with pytest.raises(InputError, match="duplicate"):
        read_intent_dict(tmp_path / "dup")
