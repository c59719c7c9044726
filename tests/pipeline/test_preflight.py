"""speechkd preflight, and manifests/paper_inputs.json kept in step with what configs/paper/ actually read."""
from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import importlib
import json
import re
import typing
from pathlib import Path

from speechkd import cli
from speechkd.stages.preflight import load_manifest
from support.paths import REPO

ROOT = REPO
MANIFEST = load_manifest()
DOCS = ROOT / MANIFEST["docs"]

# Config keys whose values are paths relative to data_root ('*' = any dict key or list index).
PATH_KEYS = (
    "vq_wav2vec", "corpora.*", "read", "text_files.*", "wavs.*", "wav_list", "corpus_dir",
    "text.checkpoint", "text.dict", "text.gpt2_encoder_json", "text.gpt2_vocab_bpe",
    "vq_bert.checkpoint", "vq_bert.dict", "vq_bert.gpt2_encoder_json", "vq_bert.gpt2_vocab_bpe",
    "pt_kd_checkpoint.checkpoint", "pt_kd_checkpoint.dict",
    "pt_kd_checkpoint.gpt2_encoder_json", "pt_kd_checkpoint.gpt2_vocab_bpe",
    "am_pt_checkpoint.checkpoint", "bpe.codes", "bpe.dict",
    "criterion.expert.checkpoint", "criterion.expert.src_dict", "criterion.expert.tgt_dict",
    "criterion.expert.bpe_codes", "logs.*", "references.*", "asr_log", "expert_log",
)
# a run name, or a checkpoint path when it looks like one
RUN_OR_PATH_KEYS = ("load_pretrained_encoder_from",)
FILE_LIKE = re.compile(r"/|\.(pt|pth|txt|json|bpe|tsv|csv|yaml|wav|flac|mp3)$|bpecodes$")


def _leaves(obj, prefix=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, f"{prefix}{k}.")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, f"{prefix}{i}.")
    else:
        yield prefix[:-1], obj


def _is_path_key(key: str) -> bool:
    return any(fnmatch.fnmatchcase(key, p) for p in PATH_KEYS)


def _paper_config_paths() -> dict[str, set[str]]:
    """data_root-relative path -> the paper configs that read it."""
    out: dict[str, set[str]] = {}
    for cfg in sorted((ROOT / "configs" / "paper").rglob("*.json")):
        for key, value in _leaves(json.loads(cfg.read_text())):
            if key == "$schema" or not isinstance(value, str) or not value:
                continue
            path_like = bool(FILE_LIKE.search(value))
            if _is_path_key(key) or (key.rsplit(".", 1)[-1] in RUN_OR_PATH_KEYS and path_like):
                out.setdefault(value, set()).add(cfg.name)
            else:  # a new path field must be added to PATH_KEYS, or it escapes the manifest check
                assert not path_like, f"{cfg.name}: {key}={value!r} looks like a path; add the key to PATH_KEYS"
    return out


def _manifest_config_paths() -> set[str]:
    return {p for item in MANIFEST["inputs"] for p in item["config_paths"]}


def _make_data_root(root: Path, inputs=None) -> None:
    """Empty placeholders for every required path."""
    for item in inputs or MANIFEST["inputs"]:
        for rel in item["required"]:
            target = root / rel
            if rel.endswith("/"):
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.touch()


def _preflight(*sets: str) -> int:
    return cli.main(["preflight", *[a for s in sets for a in ("--set", s)]])


# ------------------------------------------------------------------------- manifest <-> configs

def test_every_paper_config_path_is_in_the_manifest_and_back():
    configs = _paper_config_paths()
    listed = _manifest_config_paths()
    assert configs, "no data_root paths found in configs/paper/"
    unlisted = {p: sorted(c) for p, c in configs.items() if p not in listed}
    assert not unlisted, f"paths read by paper configs but missing from manifests/paper_inputs.json: {unlisted}"
    unread = listed - set(configs)
    assert not unread, f"manifest config_paths that no paper config reads: {sorted(unread)}"


def test_required_paths_lie_under_their_config_paths():
    for item in MANIFEST["inputs"]:
        for cp in item["config_paths"]:
            assert not Path(cp).is_absolute()
            assert any(r.rstrip("/") == cp or r.startswith(cp + "/") for r in item["required"]), \
                f"{item['id']}: nothing under {cp} is required"
        for r in item["required"]:
            assert any(r.rstrip("/") == cp or r.startswith(cp + "/") for cp in item["config_paths"]), \
                f"{item['id']}: required {r} is not under its config_paths"


def test_path_keys_cover_every_field_documented_as_relative_to_data_root():
    fields = set()

    def walk(cls, prefix=""):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if dataclasses.is_dataclass(hints[f.name]):
                walk(hints[f.name], f"{prefix}{f.name}.")
            elif "relative to data_root" in f.metadata.get("help", ""):
                fields.add(prefix + f.name)

    for module, _ in cli.STAGES.values():
        walk(importlib.import_module(module).Config)
    assert fields
    uncovered = [f for f in fields if not (_is_path_key(f) or _is_path_key(f + ".0"))]
    assert not uncovered, f"config fields relative to data_root missing from PATH_KEYS: {sorted(uncovered)}"


def test_manifest_entries_are_complete():
    ids = [i["id"] for i in MANIFEST["inputs"]]
    assert len(ids) == len(set(ids))
    docs = DOCS.read_text()
    for item in MANIFEST["inputs"]:
        assert set(item["pipelines"]) <= {"slu", "st"} and item["pipelines"], item["id"]
        assert item["required"] and item["licence"] and item["obtain"], item["id"]
        assert f'<a id="{item["id"]}"></a>' in docs, f"{DOCS.name} has no anchor for {item['id']}"
        for d in item["downloads"]:
            assert d["sha256"] is None or re.fullmatch(r"[0-9a-f]{64}", d["sha256"]), (item["id"], d)
            assert d["source"], f"{item['id']}: say where the checksum comes from, or why there is none"
            if d.get("path"):
                assert d["path"] in item["required"], (item["id"], d["path"])


def test_the_inputs_the_brief_names_are_listed():
    ids = {i["id"] for i in MANIFEST["inputs"]}
    assert {"fsc", "snips", "smartlights_close", "smartlights_far", "librispeech", "covost2_en_de",
            "common_voice_en_v4", "mustc_en_de", "vq_wav2vec_kmeans", "bert_kmeans", "roberta_base", "gpt2_bpe",
            "wmt19_en_de"} <= ids


# ------------------------------------------------------------------------------ the command

def test_all_present_exits_0(tmp_path, capsys):
    _make_data_root(tmp_path)
    assert _preflight("profile=paper", f"data_root={tmp_path}", "only=") == 0
    assert "present under" in capsys.readouterr().out


def test_missing_inputs_exit_2_naming_each_path_and_where_to_get_it(tmp_path, capsys):
    _make_data_root(tmp_path)
    (tmp_path / "checkpoints" / "roberta.base" / "model.pt").unlink()
    (tmp_path / "covost2" / "en" / "covost_v2.en_de.tsv").unlink()
    assert _preflight("profile=paper", f"data_root={tmp_path}") == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "checkpoints" / "roberta.base" / "model.pt") in err
    assert str(tmp_path / "covost2" / "en" / "covost_v2.en_de.tsv") in err
    assert "https://dl.fbaipublicfiles.com/fairseq/models/roberta.base.tar.gz" in err
    assert "docs/data_and_checkpoints.md#roberta_base" in err
    assert "2 of 14 inputs" in err
    assert "Traceback" not in err


def test_only_checks_one_pipeline(tmp_path):
    _make_data_root(tmp_path, [i for i in MANIFEST["inputs"] if "slu" in i["pipelines"]])
    assert _preflight(f"data_root={tmp_path}", "only=slu") == 0
    assert _preflight(f"data_root={tmp_path}", "only=st") == 2


def test_a_directory_must_be_a_directory(tmp_path, capsys):
    _make_data_root(tmp_path)
    wavs = tmp_path / "fsc" / "wavs"
    wavs.rmdir()
    wavs.touch()  # a file where the wav directory should be
    assert _preflight(f"data_root={tmp_path}", "only=slu") == 2
    assert f"{wavs}/" in capsys.readouterr().err


def test_bad_data_root_exits_2(tmp_path, capsys):
    assert _preflight("data_root=") == 2
    assert _preflight(f"data_root={tmp_path / 'nope'}") == 2
    assert _preflight("profile=embedded", f"data_root={tmp_path}") == 2
    assert "Traceback" not in capsys.readouterr().err


def _tiny_manifest(tmp_path: Path, digest: str) -> Path:
    manifest = {"docs": "docs/data_and_checkpoints.md", "inputs": [{
        "id": "thing", "name": "a thing", "kind": "checkpoint", "pipelines": ["slu"], "config_paths": ["thing.bin"],
        "required": ["thing.bin"], "urls": ["https://example.org/thing.bin"], "licence": "x", "obtain": "download",
        "downloads": [
            {"file": "thing.bin", "url": "https://example.org/thing.bin", "path": "thing.bin", "sha256": digest,
             "source": "test"},
            {"file": "thing.tar", "url": "https://example.org/thing.tar", "sha256": digest, "source": "test"},
            {"file": "other.tar", "url": None, "sha256": None, "source": "none published"}]}]}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path


def test_verify_compares_published_checksums(tmp_path, capsys):
    data = tmp_path / "data"
    (data / "downloads").mkdir(parents=True)
    (data / "thing.bin").write_bytes(b"weights")
    (data / "downloads" / "thing.tar").write_bytes(b"weights")  # an archive kept in downloads/ is checked too
    good = hashlib.sha256(b"weights").hexdigest()
    manifest = _tiny_manifest(tmp_path, good)
    assert _preflight(f"data_root={data}", f"manifest={manifest}", "verify=true") == 0
    assert "sha256 verified for 2 files, 1 downloads have no published checksum" in capsys.readouterr().out

    (data / "downloads" / "thing.tar").write_bytes(b"truncated")
    assert _preflight(f"data_root={data}", f"manifest={manifest}", "verify=true") == 2
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and str(data / "downloads" / "thing.tar") in err
    # without verify the (present) files pass
    assert _preflight(f"data_root={data}", f"manifest={manifest}") == 0
