"""preflight: before any training, check that every external input of the paper profile is under data_root.

The inputs (corpora, released checkpoints), the paths the configs in configs/paper/ read relative to data_root,
their URLs and published checksums are listed in manifests/paper_inputs.json. A missing input stops the command
with one message (exit code 2) that lists every missing path with where to get it and
docs/data_and_checkpoints.md. A required path ending in "/" must be a directory, any other a file.

verify=true also compares sha256 checksums where one is published: of files kept as downloaded under data_root
(e.g. checkpoints/gpt2_bpe/vocab.bpe) and of archives kept in <data_root>/downloads/ (optional; hashing a
60 GB archive takes minutes).
"""
from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path
from typing import Any, Literal

from ..config import option
from ..errors import InputError
from ..fileio import sha256_file
from ..runs import REPO_ROOT

DEFAULT_MANIFEST = "manifests/paper_inputs.json"  # relative to the repository, so the schema is machine-independent
DOWNLOADS_DIR = "downloads"


@dataclasses.dataclass
class Config:
    profile: Literal["paper"] = option("paper", "the profile whose inputs are checked (only paper reads external "
                                                "data; the embedded profile generates its own)")
    data_root: str = option("", "directory the corpora and checkpoints were unpacked to (run_all.sh --data-root)")
    only: str = option("", "check one part's inputs only: a pipeline (slu, st), a corpus (fsc, snips, smartlights, "
                           "mustc, covost2) or a table (table2, table3); the parts are listed in the manifest "
                           "('' = everything)")
    verify: bool = option(False, "also compare the sha256 of files and archives (in <data_root>/downloads/) that "
                                 "have a published checksum")
    manifest: str = option(DEFAULT_MANIFEST, "the list of inputs (relative to the repository root)")


def load_manifest(path: str | Path = DEFAULT_MANIFEST) -> dict[str, Any]:
    p = Path(path)
    p = p if p.is_absolute() else REPO_ROOT / p
    try:
        manifest = json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"manifest: cannot read {p} ({e.strerror})") from None
    except ValueError as e:
        raise InputError(f"{p}: invalid JSON ({e})") from None
    if not isinstance(manifest.get("inputs"), list):
        raise InputError(f"{p}: expected an object with an 'inputs' list")
    return manifest


def part(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    """One selectable part of the paper profile (manifest `parts`): its inputs, the runs of each pipeline (regex
    on config names), the SLU corpora slu_units tokenises and the tables it fills."""
    parts = {k: v for k, v in manifest.get("parts", {}).items() if not k.startswith("_")}
    if name not in parts:
        raise InputError(f"only: unknown part {name!r} (expected one of: {', '.join(parts)})")
    return parts[name]


def selected(manifest: dict[str, Any], only: str = "") -> list[dict[str, Any]]:
    if not only:
        return list(manifest["inputs"])
    wanted = set(part(manifest, only)["inputs"])
    return [i for i in manifest["inputs"] if i["id"] in wanted]


def shell_selection(only: str, manifest_path: str | Path = DEFAULT_MANIFEST) -> str:
    """`speechkd part NAME`: the part as shell assignments that run_all.sh evals, so that the selection is
    written once (here, in the manifest). '' = everything."""
    p = part(load_manifest(manifest_path), only) if only else {"slu_runs": ".", "st_runs": "."}
    values = {"slu_runs": p.get("slu_runs", ""), "st_runs": p.get("st_runs", ""),
              "slu_corpora": json.dumps(p["slu_corpora"]) if p.get("slu_corpora") else "",
              "tables": ",".join(p.get("tables", []))}
    return "\n".join(f"{k}={shlex.quote(v)}" for k, v in values.items())


def exists(root: Path, rel: str) -> bool:
    return (root / rel).is_dir() if rel.endswith("/") else (root / rel).is_file()


def missing_inputs(root: Path, inputs: list[dict[str, Any]]) -> list[tuple[dict[str, Any], list[str]]]:
    out = []
    for item in inputs:
        gone = [rel for rel in item["required"] if not exists(root, rel)]
        if gone:
            out.append((item, gone))
    return out


def _how_to(item: dict[str, Any], docs: str) -> str:
    where = f" ({', '.join(item['urls'])})" if item["urls"] else ""
    return f"{item['name']}: {item['obtain']}{where}; see {docs}#{item['id']}"



def verify_checksums(root: Path, inputs: list[dict[str, Any]]) -> tuple[list[str], list[str], int]:
    """-> (verified paths, mismatch messages, downloads without a published checksum)."""
    ok, bad, unpublished = [], [], 0
    for item in inputs:
        for d in item["downloads"]:
            if not d.get("sha256"):
                unpublished += 1
                continue
            candidates = [root / d["path"]] if d.get("path") else []
            if d.get("file"):
                candidates.append(root / DOWNLOADS_DIR / d["file"])
            for path in (c for c in candidates if c.is_file()):
                got = sha256_file(path)
                if got == d["sha256"]:
                    ok.append(str(path))
                else:
                    bad.append(f"  - {path}: sha256 {got}, expected {d['sha256']} ({d['source']}); "
                               f"download it again from {d.get('url') or ', '.join(item['urls'])}")
    return ok, bad, unpublished


def run(cfg: Config) -> dict[str, Any]:
    if not cfg.data_root:
        raise InputError("data_root: give the directory of the paper corpora and checkpoints "
                         "(speechkd preflight --set data_root=DIR, or ./run_all.sh --profile paper --data-root DIR)")
    root = Path(cfg.data_root)
    if not root.is_dir():
        raise InputError(f"data_root: {root} is not a directory")
    manifest = load_manifest(cfg.manifest)
    docs = manifest.get("docs", "docs/data_and_checkpoints.md")
    inputs = selected(manifest, cfg.only)
    missing = missing_inputs(root, inputs)
    if missing:
        lines = [f"preflight: {len(missing)} of {len(inputs)} inputs of the paper profile are missing under {root} "
                 f"(how to obtain each: {docs}):"]
        for item, gone in missing:
            lines += [f"  - {root / rel}" + ("/" if rel.endswith("/") else "") for rel in gone]
            lines.append(f"    -> {_how_to(item, docs)}")
        raise InputError("\n".join(lines))
    result: dict[str, Any] = {"inputs": len(inputs), "paths": sum(len(i["required"]) for i in inputs)}
    if cfg.verify:
        ok, bad, unpublished = verify_checksums(root, inputs)
        if bad:
            raise InputError("preflight: checksum mismatch:\n" + "\n".join(bad))
        result.update(verified=len(ok), without_published_checksum=unpublished)
    which = cfg.only or "slu + st"
    print(f"[preflight] paper ({which}): all {result['inputs']} inputs ({result['paths']} paths) present under {root}"
          + (f"; sha256 verified for {result['verified']} files, {result['without_published_checksum']} downloads "
             f"have no published checksum" if cfg.verify else ""))
    return result
