"""fairseq S2T data configs (the `config.yaml` of a speech_to_text checkpoint directory), read without PyYAML.

fairseq writes them with yaml.dump (examples/speech_to_text/data_utils.py gen_config_yaml) and reads them as
S2TDataConfig. We read the block-style subset those files use: nested mappings, sequences of scalars (`- x`, at the
key's indentation or deeper, or `[a, b]`), plain / single- / double-quoted scalars (int, float, true/false,
null), comments. Anything else is an InputError naming the line.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..fileio import read_text

_COMMENT = re.compile(r"(^|\s)#.*$")


def read_s2t_data_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: fairseq S2T data config not found")
    return parse_yaml_subset(read_text(path, "fairseq S2T data config"), str(path))


def parse_yaml_subset(text: str, source: str = "<yaml>") -> dict[str, Any]:
    lines = []  # (line number, indentation, content)
    for n, raw in enumerate(text.splitlines(), 1):
        content = _strip_comment(raw).rstrip()
        if content.strip() in ("", "---"):
            continue
        if "\t" in raw[:len(raw) - len(raw.lstrip())]:
            raise InputError(f"{source}:{n}: tab indentation (YAML indents with spaces)")
        lines.append((n, len(content) - len(content.lstrip()), content.strip()))
    if not lines:
        return {}
    value, end = _block(lines, 0, lines[0][1], source)
    if end != len(lines) or not isinstance(value, dict):
        n = lines[min(end, len(lines) - 1)][0]
        raise InputError(f"{source}:{n}: expected a mapping of `key: value` lines")
    return value


def _strip_comment(line: str) -> str:
    if "#" not in line or ("'" not in line and '"' not in line):
        return _COMMENT.sub("", line)
    out, quote = [], ""
    for i, ch in enumerate(line):  # a '#' inside quotes is text
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            break
        out.append(ch)
    return "".join(out)


def _block(lines: list, i: int, indent: int, source: str) -> tuple[Any, int]:
    """The mapping or sequence whose lines start at lines[i] with this indentation; (value, next line index)."""
    if lines[i][2].startswith("- ") or lines[i][2] == "-":
        items = []
        while i < len(lines) and lines[i][1] == indent and (lines[i][2].startswith("- ") or lines[i][2] == "-"):
            items.append(_scalar(lines[i][2][1:].strip(), source, lines[i][0]))
            i += 1
        return items, i
    mapping: dict[str, Any] = {}
    while i < len(lines) and lines[i][1] == indent:
        n, _, content = lines[i]
        if content.startswith("-"):
            raise InputError(f"{source}:{n}: a sequence item where a `key: value` line was expected")
        key, rest = _key(content, source, n)
        i += 1
        if rest:
            mapping[key] = _scalar(rest, source, n)
        elif i < len(lines) and (lines[i][1] > indent or (lines[i][1] == indent and lines[i][2].startswith("-"))):
            mapping[key], i = _block(lines, i, lines[i][1], source)
        else:
            mapping[key] = None
    if i < len(lines) and lines[i][1] > indent:
        raise InputError(f"{source}:{lines[i][0]}: unexpected indentation")
    return mapping, i


def _key(content: str, source: str, n: int) -> tuple[str, str]:
    if content[0] in "'\"":
        end = content.find(content[0], 1)
        if end < 0 or not content[end + 1:].startswith(":"):
            raise InputError(f"{source}:{n}: expected a quoted key followed by ':'")
        return content[1:end], content[end + 2:].strip()
    key, sep, rest = content.partition(": ")
    if not sep:
        if not content.endswith(":"):
            raise InputError(f"{source}:{n}: expected `key: value` or `key:`, got {content!r}")
        key, rest = content[:-1], ""
    return key.strip(), rest.strip()


def _scalar(text: str, source: str, n: int) -> Any:
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [_scalar(part.strip(), source, n) for part in inner.split(",")] if inner else []
    if text.startswith(("{", "[", "&", "*", "!", "|", ">")):
        raise InputError(f"{source}:{n}: unsupported YAML value {text!r} (expected a plain or quoted scalar)")
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("''", "'")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise InputError(f"{source}:{n}: malformed double-quoted string {text}") from None
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "~", ""):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
