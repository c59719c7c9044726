"""Hostile manifests and text files (issue 13): valid controls that must read, and defects that must end in ONE
InputError naming the file, the line (or byte offset) and the field, before any work; end to end, `speechkd
slu-units` / `speechkd st-prep` exit 2 without a traceback, a DONE or an output manifest."""
from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from speechkd.config import load_config, read_json
from speechkd.data.manifests import read_intent_dict, read_s2t_tsv, read_slu_csv, write_tsv
from speechkd.errors import InputError
from speechkd.st import corpora
from speechkd.stages import st_prep as prep
from speechkd.stages import slu_units as units_stage
from speechkd.stages.slu_units import read_slu_corpus
from speechkd.tokenizers.dictionary import Dictionary
from support.audio import write_wav

BOM = b"\xef\xbb\xbf"
INTENTS = ["activate lights none", "deactivate music none"]
SEED_HEADER = "index,path,speaker,action,object,location,transcript"
SEED_ROWS = [["0", "wavs/a.wav", "s1", "activate", "lights", "none", "turn on the lights"],
             ["1", "wavs/b.wav", "s2", "deactivate", "music", "none", "stop the music, please"]]
FSC_HEADER = ",path,speakerId,transcription,action,object,location"
S2T_COLUMNS = ["id", "audio", "n_frames", "tgt_text", "speaker", "src_text"]


def csv_text(rows: list[list[str]], header: str | None = None) -> str:
    buf = io.StringIO()
    if header is not None:
        buf.write(header + "\n")
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def seed_corpus(root: Path, header: str | None = None, bom: bool = False,
                rows: dict[str, list[list[str]]] | None = None) -> Path:
    """{train,valid,test}.csv in the seed's format + intent_dict + a wav for every row."""
    corpus = root / "slu"
    corpus.mkdir(parents=True, exist_ok=True)
    for i, split in enumerate(("train", "valid", "test")):
        split_rows = (rows or {}).get(split, SEED_ROWS)
        (corpus / f"{split}.csv").write_bytes((BOM if bom else b"") + csv_text(split_rows, header).encode())
        for k, r in enumerate(split_rows):
            if not (corpus / r[1]).exists() and "missing" not in r[1]:
                write_wav(corpus / r[1], 0.3, 300 + 40 * k + 7 * i)
    (corpus / "intent_dict").write_text("".join(f"{i}\n" for i in INTENTS))
    return corpus


def fsc_corpus(root: Path, bom: bool = False) -> Path:
    corpus = root / "fsc"
    (corpus / "data").mkdir(parents=True)
    for split in ("train", "valid", "test"):
        rows = [["0", "wavs/speakers/x/a.wav", "x", "Switch on the lights", "activate", "lights", "none"],
                ["1", "wavs/speakers/x/b.wav", "x", "Stop", "deactivate", "music", "none"]]
        (corpus / "data" / f"{split}_data.csv").write_bytes((BOM if bom else b"") +
                                                           csv_text(rows, FSC_HEADER).encode())
    write_wav(corpus / "wavs/speakers/x/a.wav")
    write_wav(corpus / "wavs/speakers/x/b.wav", freq=330)
    return corpus


def s2t_corpus(root: Path, n: int = 2, seconds: float = 0.5, header_only: bool = False) -> Path:
    """An S2T TSV split (read speech / the embedded ST layout) with `n` utterances of `seconds`."""
    corpus = root / "s2t"
    for split in ("train", "dev", "test"):
        rows = []
        for k in range(0 if header_only else n):
            utt = f"u{k}" if split == "train" else f"{split}{k}"
            write_wav(corpus / f"wav/{utt}.wav", seconds, 250 + 60 * k)
            rows.append({"id": utt, "audio": f"wav/{utt}.wav", "n_frames": 0, "tgt_text": f"Hallo Welt {k}.",
                         "speaker": "s1", "src_text": f"Hello world {k}."})
        write_tsv(corpus / f"{split}.tsv", rows, S2T_COLUMNS)
    return corpus


def replace_bytes(path: Path, old: bytes, new: bytes) -> int:
    """Replaces the first `old` in the file by `new` and returns its byte offset."""
    data = path.read_bytes()
    at = data.index(old)
    path.write_bytes(data[:at] + new + data[at + len(old):])
    return at


# --------------------------------------------------------------------------------------------- valid controls

def _seed_plain(tmp: Path) -> None:
    splits, intents = read_slu_corpus(seed_corpus(tmp), check_audio=True)
    assert [e.index for e in splits["train"]] == ["0", "1"] and intents == INTENTS
    assert splits["train"][1].transcript == "stop the music, please"


def _seed_header(tmp: Path) -> None:
    splits, _ = read_slu_corpus(seed_corpus(tmp, header=SEED_HEADER), check_audio=True)
    assert [e.index for e in splits["valid"]] == ["0", "1"]


def _seed_fsc_style_header(tmp: Path) -> None:  # the header FSC-style manifests (',wav,...') often carry
    splits, _ = read_slu_corpus(seed_corpus(tmp, header=",wav,speakerId,action,object,location,transcription"),
                                check_audio=True)
    assert len(splits["test"]) == 2 and splits["test"][0].intent == "activate lights none"


def _seed_bom(tmp: Path) -> None:
    for header in (None, SEED_HEADER):
        corpus = seed_corpus(tmp / str(header is None), header=header, bom=True)
        assert read_slu_csv(corpus / "train.csv")[0].index == "0"  # not '\ufeff0'


def _seed_fsc_order_header(tmp: Path) -> None:  # a seed-layout train.csv in FSC's column order
    corpus = seed_corpus(tmp)
    rows = [[r[0], r[1], r[2], r[6], r[3], r[4], r[5]] for r in SEED_ROWS]
    (corpus / "train.csv").write_text(csv_text(rows, FSC_HEADER))
    e = read_slu_csv(corpus / "train.csv")[1]
    assert (e.transcript, e.intent) == ("stop the music, please", "deactivate music none")


def _fsc_original(tmp: Path) -> None:
    splits, intents = read_slu_corpus(fsc_corpus(tmp, bom=True), check_audio=True)
    assert intents == INTENTS and splits["train"][0].transcript == "Switch on the lights"


def _s2t_tsv(tmp: Path) -> None:
    corpus = s2t_corpus(tmp)
    (corpus / "bom.tsv").write_bytes(BOM + (corpus / "train.tsv").read_bytes())
    assert read_s2t_tsv(corpus / "bom.tsv")[0]["id"] == "u0"
    assert [u.id for u in corpora.embedded_st(corpus, ["train"])["train"]] == ["u0", "u1"]


def _dict_txt(tmp: Path) -> None:
    (tmp / "dict.txt").write_bytes(BOM + "Hallo 3\nWelt 2\nSch\u00f6n 1\n".encode())
    d = Dictionary.load(tmp / "dict.txt")
    assert d.index("Hallo") == d.nspecial and d.index("Sch\u00f6n") == d.nspecial + 2


def _intent_dict_and_json(tmp: Path) -> None:
    (tmp / "intent_dict").write_bytes(BOM + "\n".join(INTENTS).encode() + b"\n")
    assert read_intent_dict(tmp / "intent_dict") == INTENTS
    (tmp / "c.json").write_bytes(BOM + b'{"name": "caf\xc3\xa9"}\n')
    assert read_json(tmp / "c.json") == {"name": "caf\u00e9"}


VALID: dict[str, Callable[[Path], None]] = {
    "seed csv": _seed_plain, "seed csv with a header": _seed_header,
    "seed csv with an FSC-style header": _seed_fsc_style_header, "seed csv with a BOM": _seed_bom,
    "seed csv with FSC's header and column order": _seed_fsc_order_header,
    "FSC original csv (with a BOM)": _fsc_original, "S2T TSV": _s2t_tsv, "dict.txt": _dict_txt,
    "intent dict and JSON config with a BOM": _intent_dict_and_json,
}


@pytest.mark.parametrize("case", list(VALID))
def test_valid_inputs_are_read(tmp_path, case):
    VALID[case](tmp_path)


# ---------------------------------------------------------------------------------------------------- defects
# each case: (tmp) -> (call, [patterns the one message must match]); the patterns name file, line/offset, field

def _csv_latin1(tmp: Path):
    corpus = seed_corpus(tmp)
    at = replace_bytes(corpus / "train.csv", b"please", b"s'il vous pla\xeet")
    return (lambda: read_slu_corpus(corpus)), [r"train\.csv:2: ", rf"byte 0xee at line 2, byte offset {at + 13}",
                                              "column transcript", "UTF-8"]


def _fsc_latin1(tmp: Path):
    corpus = fsc_corpus(tmp)
    at = replace_bytes(corpus / "data" / "valid_data.csv", b"x,Stop", b"\xe9,Stop")
    return (lambda: read_slu_corpus(corpus)), [r"valid_data\.csv:3: ", rf"byte offset {at}", "column speakerId"]


def _tsv_latin1(tmp: Path):
    corpus = s2t_corpus(tmp)
    at = replace_bytes(corpus / "train.tsv", b"Welt 1", b"W\xe9lt 1")
    return (lambda: read_s2t_tsv(corpus / "train.tsv")), [r"train\.tsv:3: ", rf"byte offset {at + 1}",
                                                         "column tgt_text"]


def _dict_latin1(tmp: Path):
    (tmp / "dict.txt").write_bytes(b"Hallo 3\nSch\xf6n 1\n")
    return (lambda: Dictionary.load(tmp / "dict.txt")), [r"dict\.txt:2: ", "byte 0xf6", "byte offset 11",
                                                        "column symbol"]


def _intent_dict_latin1(tmp: Path):
    corpus = seed_corpus(tmp)
    (corpus / "intent_dict").write_bytes(b"activate lights none\nd\xe9activate music none\n")
    return (lambda: read_slu_corpus(corpus)), [r"intent_dict:2: ", "intent dict", "byte offset 22"]


def _json_latin1(tmp: Path):
    (tmp / "c.json").write_bytes(b'{\n  "name": "caf\xe9"\n}\n')
    return (lambda: read_json(tmp / "c.json")), [r"c\.json:2: ", "JSON config", "byte offset 16"]


def _empty_transcript(tmp: Path):
    rows = [SEED_ROWS[0], ["1", "wavs/b.wav", "s2", "deactivate", "music", "none", " "]]
    corpus = seed_corpus(tmp, rows={"valid": rows})
    return (lambda: read_slu_corpus(corpus)), [r"valid\.csv:2: ", "column transcript", "empty transcript"]


def _duplicate_index(tmp: Path):
    rows = SEED_ROWS + [["0", "wavs/c.wav", "s3", "activate", "lights", "none", "lights on"]]
    corpus = seed_corpus(tmp, header=SEED_HEADER, rows={"train": rows})
    return (lambda: read_slu_corpus(corpus)), [r"train\.csv:4: ", "column index", r"duplicate index '0'",
                                              "line 2"]


def _unknown_intent(tmp: Path):
    rows = [SEED_ROWS[0], ["1", "wavs/b.wav", "s2", "dance", "party", "none", "party time"]]
    corpus = seed_corpus(tmp, rows={"test": rows})
    return (lambda: read_slu_corpus(corpus)), [re.escape(f"{corpus / 'test.csv'}:2: "),
                                              "columns action,object,location", "'dance party none'",
                                              re.escape(str(corpus / "intent_dict"))]


def _fsc_unknown_intent(tmp: Path):  # FSC as released: valid/test intents come from train
    corpus = fsc_corpus(tmp)
    replace_bytes(corpus / "data" / "test_data.csv", b"deactivate,music", b"increase,volume")
    return (lambda: read_slu_corpus(corpus)), [r"test_data\.csv:3: ", "'increase volume none'",
                                              r"train_data\.csv"]


def _missing_audio(tmp: Path):
    rows = [SEED_ROWS[0], ["1", "wavs/missing.wav", "s2", "deactivate", "music", "none", "stop"]]
    corpus = seed_corpus(tmp, rows={"train": rows})
    return (lambda: read_slu_corpus(corpus, check_audio=True)), [r"train\.csv:2: ", "column path",
                                                                r"wavs/missing\.wav not found"]


def _missing_st_audio(tmp: Path):
    corpus = s2t_corpus(tmp)
    (corpus / "wav/u1.wav").unlink()
    return (lambda: corpora.embedded_st(corpus, ["train"])), [r"train\.tsv:3: ", "column audio",
                                                              r"u1\.wav not found"]


def _slu_units_cfg(tmp: Path, read: Path, **extra):
    return load_config(units_stage.Config, data={
        "runs_dir": str(tmp / "runs"), "corpora": {"c": str(seed_corpus(tmp))}, "read": str(read),
        "read_splits": ["train"], "workers": 1, "num_codes": 2, "kmeans_iters": 2, **extra})


def _header_only_tsv(tmp: Path):
    cfg = _slu_units_cfg(tmp, s2t_corpus(tmp, header_only=True))
    return (lambda: units_stage.run(cfg)), [r"train\.tsv: no utterances after the header line"]


def _missing_read_audio(tmp: Path):
    read = s2t_corpus(tmp)
    (read / "wav/u0.wav").unlink()
    cfg = _slu_units_cfg(tmp, read)
    return (lambda: units_stage.run(cfg)), [r"train\.tsv:2: ", "column audio", r"u0\.wav not found"]


def _st_prep_cfg(tmp: Path, corpus: Path, **extra):
    (tmp / "codes").write_text("H a 3\n")
    (tmp / "dict.txt").write_text("Ha 3\n")
    return load_config(prep.Config, data={
        "runs_dir": str(tmp / "runs"), "name": "prep", "corpus": "embedded", "corpus_dir": str(corpus),
        "splits": ["train", "dev"], "workers": 1, "bpe": {"codes": str(tmp / "codes"), "dict": str(tmp / "dict.txt")},
        **extra})


def _st_prep_all_filtered(tmp: Path):
    cfg = _st_prep_cfg(tmp, s2t_corpus(tmp, n=3), max_train_frames=10)
    return (lambda: prep.run(cfg)), [r"train\.tsv: split 'train': 0 of 3 utterances left: ",
                                     "3 longer than max_train_frames=10"]


def _st_prep_empty_split(tmp: Path):
    corpus = s2t_corpus(tmp)
    write_tsv(corpus / "dev.tsv", [], S2T_COLUMNS)
    cfg = _st_prep_cfg(tmp, corpus)
    return (lambda: prep.run(cfg)), [r"dev\.tsv: split 'dev' has no utterances"]


def _st_prep_duplicate_id(tmp: Path):
    corpus = s2t_corpus(tmp)
    replace_bytes(corpus / "dev.tsv", b"dev1\t", b"u1\t")
    cfg = _st_prep_cfg(tmp, corpus)
    return (lambda: prep.run(cfg)), [r"dev\.tsv:3: column id: duplicate utterance id 'u1' \(also in split 'train'\)"]


DEFECTS = {
    "non-UTF-8 seed csv": _csv_latin1, "non-UTF-8 FSC csv": _fsc_latin1, "non-UTF-8 TSV": _tsv_latin1,
    "non-UTF-8 dict.txt": _dict_latin1, "non-UTF-8 intent_dict": _intent_dict_latin1,
    "non-UTF-8 JSON config": _json_latin1, "empty transcript": _empty_transcript,
    "duplicate index": _duplicate_index, "unknown intent": _unknown_intent,
    "FSC test intent not in train": _fsc_unknown_intent, "missing audio (SLU csv)": _missing_audio,
    "missing audio (ST TSV)": _missing_st_audio, "slu-units: header-only read TSV": _header_only_tsv,
    "slu-units: missing read audio": _missing_read_audio,
    "st-prep: split empty after filtering": _st_prep_all_filtered, "st-prep: empty split": _st_prep_empty_split,
    "st-prep: duplicate utterance id": _st_prep_duplicate_id,
}


@pytest.mark.parametrize("case", list(DEFECTS))
def test_defects_raise_one_input_error_naming_file_line_and_field(tmp_path, case):
    call, patterns = DEFECTS[case](tmp_path)
    with pytest.raises(InputError) as err:
        call()
    message = str(err.value)
    assert "\n" not in message.strip(), message
    for pattern in patterns:
        assert re.search(pattern, message), f"{pattern!r} not in {message!r}"
    runs = tmp_path / "runs"
    assert not list(runs.rglob("DONE")) if runs.exists() else True
    assert not [p for p in runs.rglob("*") if p.suffix in (".csv", ".tsv")] if runs.exists() else True


# ------------------------------------------------------------------------------------------------ end to end

def speechkd(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "speechkd.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def assert_refused(out: subprocess.CompletedProcess, runs: Path, *patterns: str) -> None:
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    for pattern in patterns:
        assert re.search(pattern, out.stderr), f"{pattern!r} not in {out.stderr!r}"
    assert not list(runs.rglob("DONE"))
    assert not [p for p in runs.rglob("*") if p.suffix in (".csv", ".tsv")]


def test_cli_slu_units_refuses_an_unknown_intent_naming_the_users_file(tmp_path):
    rows = [SEED_ROWS[0], ["1", "wavs/b.wav", "s2", "dance", "party", "none", "party time"]]
    corpus = seed_corpus(tmp_path, header=SEED_HEADER, bom=True, rows={"valid": rows})
    config = tmp_path / "units.json"
    config.write_text(json.dumps({"runs_dir": str(tmp_path / "runs"), "corpora": {"c": str(corpus)},
                                  "read": str(s2t_corpus(tmp_path)), "read_splits": ["train"], "workers": 1,
                                  "num_codes": 2, "kmeans_iters": 2}))
    out = speechkd("slu-units", "--config", str(config))
    assert_refused(out, tmp_path / "runs", re.escape(f"{corpus / 'valid.csv'}:3: "), "'dance party none'",
                   "intent_dict")


def test_cli_slu_units_refuses_a_non_utf8_manifest(tmp_path):
    corpus = seed_corpus(tmp_path)
    at = replace_bytes(corpus / "test.csv", b"lights,none,turn", b"lights,none,t\xfcrn")
    config = tmp_path / "units.json"
    config.write_text(json.dumps({"runs_dir": str(tmp_path / "runs"), "corpora": {"c": str(corpus)},
                                  "read": str(s2t_corpus(tmp_path)), "read_splits": ["train"], "workers": 1}))
    out = speechkd("slu-units", "--config", str(config))
    assert_refused(out, tmp_path / "runs", r"test\.csv:1: ", rf"byte offset {at + 13}", "column transcript")


def test_cli_st_prep_refuses_a_split_the_filters_empty(tmp_path):
    cfg = _st_prep_cfg(tmp_path, s2t_corpus(tmp_path, n=2))  # writes the codes and dict files
    config = tmp_path / "prep.json"
    config.write_text(json.dumps({"runs_dir": cfg.runs_dir, "name": "prep", "corpus": "embedded",
                                  "corpus_dir": cfg.corpus_dir, "splits": ["train"], "workers": 1,
                                  "max_train_frames": 10, "bpe": {"codes": cfg.bpe.codes, "dict": cfg.bpe.dict}}))
    out = speechkd("st-prep", "--config", str(config))
    assert_refused(out, tmp_path / "runs", r"train\.tsv: split 'train': 0 of 2 utterances left: 2 longer than "
                                           r"max_train_frames=10")


def test_slu_units_runs_on_a_headed_bom_corpus_and_later_stages_read_its_copies(tmp_path):
    from speechkd.slu.corpus import read_intents, read_slu_split
    corpus = seed_corpus(tmp_path, header=SEED_HEADER, bom=True)
    cfg = load_config(units_stage.Config, data={
        "runs_dir": str(tmp_path / "runs"), "corpora": {"c": str(corpus)}, "read": str(s2t_corpus(tmp_path)),
        "read_splits": ["train"], "workers": 1, "num_codes": 2, "kmeans_iters": 2})
    metrics = units_stage.run(cfg)
    assert metrics["c_train_utts"] == 2 and metrics["c_intents"] == 2
    done = list((tmp_path / "runs").rglob("DONE"))
    assert len(done) == 1
    out = done[0].parent / "c"
    split = read_slu_split(out, "valid", read_intents(out))
    assert split.labels == [0, 1] and split.examples[1].transcript == "stop the music, please"
