"""Atomic writes: a reader (or a rerun after kill -9) sees the old file or the new one, never half of one.
Also the sha256 of a file, read in blocks, and read_text: a user's UTF-8 file or an InputError naming line and byte."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

from .errors import InputError

_UMASK = os.umask(0)
os.umask(_UMASK)


# the temporaries of atomic_path (files, or folders with fixed_name): ".<name>." + tempfile's 8 random
# characters + ".tmp"
TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, fixed_name: str | None = None) -> Iterator[Path]:
    """Yields a temporary path in the same directory; on success it is fsynced and renamed onto `path`.
    fixed_name: the temporary is <a private temp folder>/<fixed_name>, for writers whose output records its own
    file name (torch.save names the archive's root folder after it), so that the bytes never depend on it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    private = None
    if fixed_name is None:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    else:
        private = tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        tmp = os.path.join(private, fixed_name)
        open(tmp, "wb").close()
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)


def remove_stale_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Delete the atomic_path temporaries under `directory` (recursively) that a killed writer left behind; only
    call it while nothing else writes there (a run directory whose lock this process holds). Returns them."""
    removed = []
    for root, dirs, files in os.walk(directory):
        for name in [d for d in dirs if TEMP_NAME.match(d)]:
            dirs.remove(name)
            shutil.rmtree(Path(root) / name, ignore_errors=True)
            removed.append(Path(root) / name)
        for name in files:
            if TEMP_NAME.match(name):
                path = Path(root) / name
                path.unlink(missing_ok=True)
                removed.append(path)
    return sorted(removed)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks (checkpoints can be GBs)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_BOM = "\ufeff"


def read_text(path: str | os.PathLike, what: str, sep: str | None = None,
              columns: Sequence[str] | None = None, header: bool = False) -> str:
    """The UTF-8 text of a user's file (a UTF-8 BOM is dropped), or InputError naming the file, what it is
    (`what`: "manifest", "intent dict", ...), the line, the column (the `sep`-separated field, named from
    `columns`, or with `header` from the file's first line) and the byte offset of the first byte that is not
    UTF-8. A missing file is an InputError too."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: {what} is a directory, expected a file") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line_start = data.rfind(b"\n", 0, e.start) + 1
        line = data.count(b"\n", 0, e.start) + 1
        prefix = data[line_start:e.start].decode("utf-8", errors="replace")
        where = f"line {line}, byte offset {e.start}"
        if sep is not None:
            i = prefix.count(sep)
            if header and columns is None and line > 1:
                first = data.split(b"\n", 1)[0].decode("utf-8", errors="replace")
                columns = first.lstrip(_BOM).rstrip("\r").split(sep)
            if columns:
                where += f", column {columns[min(i, len(columns) - 1)]}"
            else:
                where += f", field {i + 1}"
        raise InputError(f"{path}:{line}: {what} is not UTF-8 text: byte 0x{data[e.start]:02x} at {where} "
                         f"({e.reason}); expected UTF-8 (convert it, e.g. `iconv -f latin1 -t utf-8 {path}`)") from None
    return text[1:] if text.startswith(_BOM) else text


def read_text_lines(path: str | os.PathLike, what: str, sep: str | None = None,
                    columns: Sequence[str] | None = None, header: bool = False) -> list[str]:
    """read_text(...).splitlines() on "\\n" only (a line may hold other Unicode line breaks inside a field);
    a trailing "\\r" (a Windows file) is dropped."""
    lines = read_text(path, what, sep, columns, header).split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]
