"""JSON configs -> typed dataclasses, with one clear error per mistake and a JSON Schema for editors.

A stage's config is a dataclass whose fields are declared with `option(default, "help")`. `load_config`
reads a JSON file, applies `--set a.b=value` overrides, rejects unknown keys, wrong types and missing
input files (InputError: file, key, what was expected), and returns the dataclass instance.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from .errors import InputError

SCHEMA_KEY = "$schema"  # editors' pointer to the schema file; accepted and ignored
EXCLUSIVE = "exclusive_options"  # class attribute of a section: tuples of fields of which one alone is set


def option(default: Any = dataclasses.MISSING, help: str = "", *, path: str | None = None,
           hashed: bool = True, required: bool = False, run_ref: bool = False) -> Any:
    """A config field. path="file"|"dir": an input that must exist when set (empty string/None = unset).
    hashed=False: the field does not change results (e.g. num_workers) and is left out of the config hash.
    required=True: a field that decides what the run *is* (a task, a criterion, an architecture): the JSON must
    state it wherever it writes the field's section (a top-level field: always), else `missing required key`;
    `default` then only serves Python callers that build the dataclass directly.
    run_ref=True: the value names another run of the same profile that this run reads (its dependency in
    `speechkd pipeline`; a value that is not a run of the pipeline, e.g. a checkpoint path, is no dependency)."""
    meta = {"help": help, "path": path, "hashed": hashed, "required": required, "run_ref": run_ref}
    if isinstance(default, type) and dataclasses.is_dataclass(default):  # a nested section
        return dataclasses.field(default_factory=default, metadata=meta)
    if dataclasses.is_dataclass(default):  # a nested section with non-default values
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    if isinstance(default, (list, dict)):  # mutable: every instance gets its own copy
        frozen = json.dumps(default)
        return dataclasses.field(default_factory=lambda: json.loads(frozen), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# ----------------------------------------------------------------------------------------- loading

def load_config(cls: type, path: str | Path | None = None, overrides: typing.Sequence[str] = (),
                data: dict | None = None) -> Any:
    """Build `cls` from a JSON file (or `data`) plus `--set key=value` overrides."""
    source = str(path) if path is not None else "<defaults>"
    raw: dict = {} if data is None else json.loads(json.dumps(data))
    if path is not None:
        raw = read_json(path)
    raw.pop(SCHEMA_KEY, None)
    from_cli: set[str] = set()
    for item in overrides:
        key, value = _parse_override(item)
        _set_dotted(raw, key, value)
        from_cli.add(key)
    where = _Where(source, from_cli)
    cfg = _build(cls, raw, where, prefix="")
    lowered = capped_values(cfg, scale_caps(cfg, where))
    if not lowered:
        return cfg
    for key, value in lowered.items():  # rebuilt, so that every cross-field check sees the capped values
        _set_dotted(raw, key, value)
    return _build(cls, raw, where, prefix="")


def read_json(path: str | Path) -> Any:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: config file not found")
    try:
        from .fileio import read_text
        obj = json.loads(read_text(p, "JSON config"))
    except json.JSONDecodeError as e:
        raise InputError(f"{p}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
    if not isinstance(obj, dict):
        raise InputError(f"{p}: expected a JSON object at the top level, got {type(obj).__name__}")
    return obj


def _parse_override(item: str) -> tuple[str, Any]:
    if "=" not in item:
        raise InputError(f"--set {item!r}: expected key=value, e.g. --set train.lr=0.001")
    key, text = item.split("=", 1)
    key = key.strip()
    if not key:
        raise InputError(f"--set {item!r}: empty key")
    try:
        value = json.loads(text)  # numbers, true/false/null, lists, objects, quoted strings
    except json.JSONDecodeError:
        value = text  # a bare string: --set name=my_run
    return key, value


def _set_dotted(raw: dict, key: str, value: Any) -> None:
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise InputError(f"--set {key}: '{part}' is not a section")
        node = child
    node[parts[-1]] = value


class _Where:
    def __init__(self, source: str, from_cli: set[str]):
        self.source, self.from_cli = source, from_cli

    def error(self, key: str, message: str) -> InputError:
        origin = f"--set {key}" if key in self.from_cli else f"{self.source}: key '{key}'"
        return InputError(f"{origin}: {message}")


def _build(cls: type, raw: Any, where: _Where, prefix: str, base: Any = None) -> Any:
    """`base`: the section's default instance (a field declared option(Section(x=1), ...)); keys the JSON omits
    keep its values rather than the section class's defaults."""
    if not isinstance(raw, dict):  # only nested sections get here: the top level is checked by read_json
        raise where.error(prefix.rstrip("."), f"expected an object (section), got {_show(raw)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = typing.get_type_hints(cls)
    unknown = [k for k in raw if k not in fields]
    if unknown:
        k = unknown[0]
        raise where.error(prefix + k, f"unknown key (expected one of: {', '.join(sorted(fields))})")
    # Fields of an exclusive group (e.g. a reference's `run` / `checkpoint`) that the JSON leaves out take the
    # class default, not the section default's value, once the JSON sets another member of the group: a config
    # that sets `checkpoint` means "not the default run".
    reset = {n for group in getattr(cls, EXCLUSIVE, ()) if any(g in raw for g in group) for n in group}
    kwargs = {}
    for name, f in fields.items():
        key = prefix + name
        if name not in raw:
            if f.metadata.get("required"):
                raise where.error(key, f"missing required key ({_type_name(hints[name])}): a config must say it")
            if base is not None and name not in reset:
                kwargs[name] = copy.deepcopy(getattr(base, name))
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise where.error(key, f"missing required key ({_type_name(hints[name])})")
            continue
        if dataclasses.is_dataclass(hints[name]) and isinstance(raw[name], dict):
            nested = getattr(base, name) if base is not None else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            if key in where.from_cli:  # --set section={...} replaces the whole section: class defaults below it
                nested = None
            kwargs[name] = _build(hints[name], raw[name], where, key + ".", nested)
            continue
        value = _coerce(hints[name], raw[name], where, key)
        kind = f.metadata.get("path")
        if kind and value not in (None, ""):
            p = Path(value)
            if (kind == "file" and not p.is_file()) or (kind == "dir" and not p.is_dir()):
                raise where.error(key, f"{kind} not found: {value}")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:  # __post_init__ cross-field checks
        if not prefix:
            raise InputError(f"{where.source}: {e}") from None
        raise where.error(prefix.rstrip("."), str(e)) from None


def _coerce(tp: Any, value: Any, where: _Where, key: str) -> Any:
    origin, args = get_origin(tp), get_args(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, where, key)
            except InputError as e:
                errors.append(e)
        raise where.error(key, f"expected {_type_name(tp)}, got {_show(value)}")
    if origin is Literal:
        if value not in args:
            raise where.error(key, f"expected one of {', '.join(json.dumps(a) for a in args)}, got {_show(value)}")
        return value
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, where, key + ".")
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise where.error(key, f"expected {_type_name(tp)}, got {_show(value)}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise where.error(key, f"expected a list of {len(args)} items, got {len(value)}")
            return tuple(_coerce(a, v, where, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        out = [_coerce(item, v, where, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise where.error(key, f"expected {_type_name(tp)}, got {_show(value)}")
        vt = args[1] if args else Any
        return {str(k): _coerce(vt, v, where, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise where.error(key, f"expected true or false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise where.error(key, f"expected an integer, got {_show(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise where.error(key, f"expected a number, got {_show(value)}")
        if not math.isfinite(value):  # json reads NaN / Infinity literals; no option means them
            raise where.error(key, f"expected a finite number, got {_show(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise where.error(key, f"expected a string, got {_show(value)}")
        return value
    raise TypeError(f"config type {tp!r} of {key} is not supported")  # a bug in a config class, not user input


def _show(value: Any) -> str:
    text = json.dumps(value)
    return (text[:60] + "…") if len(text) > 60 else text


def _type_name(tp: Any) -> str:
    origin, args = get_origin(tp), get_args(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(json.dumps(a) for a in args)
    if origin in (list, tuple):
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return f"object of {_type_name(args[1])}" if args else "object"
    if dataclasses.is_dataclass(tp):
        return "section"
    return {bool: "true/false", int: "integer", float: "number", str: "string", type(None): "null"}.get(tp, str(tp))


# ------------------------------------------------------------------------------------- scale-downs

SCALES_DIR = Path(__file__).resolve().parents[2] / "configs" / "scales"


def scale_caps(cfg: Any, where: "_Where") -> dict[str, float]:
    """The caps of the config's scale-down (`scale` = a name in configs/scales/ or a JSON file): dotted key ->
    upper bound. The file's `caps` apply to every stage that has the key; each `caps_when` entry's caps apply
    only where the config's values equal its `when` (e.g. architecture arguments of one model family)."""
    scale = getattr(cfg, "scale", "")
    if not scale:
        return {}
    path = Path(scale) if scale.endswith(".json") else SCALES_DIR / f"{scale}.json"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in SCALES_DIR.glob("*.json")))
        raise where.error("scale", f"no scale-down {scale!r} (expected one of: {known}, or a .json file)")
    spec = read_json(path)
    sections = [{"when": {}, "caps": spec.get("caps", {})}, *spec.get("caps_when", [])]
    caps: dict[str, float] = {}
    for n, section in enumerate(sections):
        ok = isinstance(section, dict) and isinstance(section.get("caps"), dict) and isinstance(
            section.get("when", {}), dict) and all(isinstance(v, (int, float)) for v in section["caps"].values())
        if not ok:
            raise InputError(f"{path}: section {n}: expected {{'when': {{key: value}}, 'caps': {{key: number}}}}")
        if all(_dotted_get(cfg, k) == v for k, v in section.get("when", {}).items()):
            caps.update(section["caps"])
    return caps


def _dotted_get(cfg: Any, key: str) -> Any:
    node = cfg
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else getattr(node, part, None)
        if node is None:
            return None
    return node


def capped_values(cfg: Any, caps: dict[str, float]) -> dict[str, float]:
    """The dotted keys whose value is above its cap, with the cap. A scale-down only lowers numbers (epochs,
    updates, sizes, batch): every other hyperparameter stays the config's. A `max_*` of 0 means "no limit", so it
    is capped too. A key the config does not have is ignored, except inside a free-form dict (an architecture's
    `args`): there a missing key means the architecture's default, which the cap is written to lower, so it is set."""
    out = {}
    for key, cap in caps.items():
        parent_key, _, leaf = key.rpartition(".")
        node = _dotted_get(cfg, parent_key) if parent_key else cfg
        if isinstance(node, dict):
            value = node.get(leaf)
        elif dataclasses.is_dataclass(node) and hasattr(node, leaf):
            value = getattr(node, leaf)
        else:
            continue
        if value is None and isinstance(node, dict):
            out[key] = cap
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            unlimited = value == 0 and leaf.startswith("max_")
            if value > cap or unlimited:
                out[key] = type(value)(cap)
    return out


# ------------------------------------------------------------------------------- dump, hash, help

def run_references(cfg: Any, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted key, run name) of every set run-reference field (option(run_ref=True)) of a config."""
    out = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out += run_references(value, f"{prefix}{f.name}.")
        elif f.metadata.get("run_ref") and isinstance(value, str) and value:
            out.append((prefix + f.name, value))
    return out


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def config_hash(cfg: Any) -> str:
    """sha256 over the canonical JSON of the fields that change results (option(hashed=False) excluded)."""
    def strip(obj: Any) -> Any:
        if dataclasses.is_dataclass(obj):
            return {f.name: strip(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                    if f.metadata.get("hashed", True)}
        if isinstance(obj, (list, tuple)):
            return [strip(v) for v in obj]
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items()}
        return obj
    blob = json.dumps(strip(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def describe(cls: type, prefix: str = "") -> list[str]:
    """One line per option: dotted key, type, default, help (for `speechkd <stage> --help`)."""
    lines = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key, tp = prefix + f.name, hints[f.name]
        if dataclasses.is_dataclass(tp):
            lines.append(f"  {key}.*  {f.metadata.get('help', '')}")
            lines.extend(describe(tp, key + "."))
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else "REQUIRED")
        shown = "REQUIRED" if f.metadata.get("required") else f"default {json.dumps(default)}"
        lines.append(f"  {key} ({_type_name(tp)}, {shown}): {f.metadata.get('help', '')}")
    return lines


def json_schema(cls: type, title: str | None = None) -> dict:
    schema = _schema_of(cls)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["properties"][SCHEMA_KEY] = {"type": "string"}
    if title:
        schema["title"] = title
    return schema


def _schema_of(tp: Any) -> dict:
    origin, args = get_origin(tp), get_args(tp)
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        props, required = {}, []
        for f in dataclasses.fields(tp):
            prop = _schema_of(hints[f.name])
            if f.metadata.get("help"):
                prop["description"] = f.metadata["help"]
            if f.metadata.get("required"):
                required.append(f.name)
            elif f.default is not dataclasses.MISSING:
                prop["default"] = f.default
            elif f.default_factory is dataclasses.MISSING:
                required.append(f.name)
            props[f.name] = prop
        out = {"type": "object", "properties": props, "additionalProperties": False}
        if required:
            out["required"] = required
        return out
    if origin in (Union, types.UnionType):
        return {"anyOf": [_schema_of(a) for a in args]}
    if origin is Literal:
        return {"enum": list(args)}
    if origin in (list, tuple):
        return {"type": "array", "items": _schema_of(args[0]) if args else {}}
    if origin is dict:
        return {"type": "object", "additionalProperties": _schema_of(args[1]) if args else {}}
    return {bool: {"type": "boolean"}, int: {"type": "integer"}, float: {"type": "number"},
            str: {"type": "string"}, type(None): {"type": "null"}}.get(tp, {})


# ---------------------------------------------------------------------------------- common base

@dataclasses.dataclass
class RunConfig:
    """Fields every stage has: where its run directory is and which seed it uses."""
    name: str = option("", "run name: the run directory is <runs_dir>/<profile>/<name> (default: the stage name)")
    profile: str = option("embedded", "profile: embedded (generated data) or paper (real corpora)")
    runs_dir: str = option("runs", "root of all run directories", hashed=False)
    seed: int = option(1, "random seed of the run (python, numpy, torch)")
    scale: str = option("", "a scale-down: a name in configs/scales/ (e.g. smoke) or a JSON file of caps on "
                            "epochs, updates, sizes and batch; every other hyperparameter stays the config's")


@dataclasses.dataclass
class DataRunConfig(RunConfig):
    """A stage that reads external inputs (corpora, released checkpoints) given as paths relative to data_root.
    Not hashed: moving the corpora changes no result."""
    data_root: str = option("", "directory that relative data and checkpoint paths are resolved against "
                                "(run_all.sh --data-root; '' = the working directory)", hashed=False)


def exactly_one(section: Any, key: str, *names: str) -> str:
    """Exactly one of the named string fields of `section` must be set; returns its name."""
    set_ = [n for n in names if getattr(section, n)]
    if len(set_) != 1:
        raise InputError(f"{key}: set exactly one of {', '.join(names)} (got {', '.join(set_) or 'none'})")
    return set_[0]

