"""Config loading: typed values, --set overrides, one clear error per mistake, schema export, hashing."""
from __future__ import annotations

import dataclasses
import json
from typing import Literal, Optional

import pytest

from speechkd.config import RunConfig, config_hash, describe, json_schema, load_config, option
from speechkd.errors import InputError


@dataclasses.dataclass
class Optim:
    name: Literal["adam", "sgd"] = option("adam", "optimiser")
    lr: float = option(1e-3, "learning rate")
    betas: list[float] = option([0.9, 0.999], "Adam betas")


@dataclasses.dataclass
class Example(RunConfig):
    manifest: str = option("", "input manifest", path="file")
    epochs: int = option(3, "epochs")
    mask: Optional[float] = option(None, "masking probability")
    optim: Optim = option(Optim, "optimiser section")
    workers: int = option(0, "loader workers", hashed=False)


def write(tmp_path, obj, name="c.json"):
    p = tmp_path / name
    p.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return p


def test_defaults_and_nested_values(tmp_path):
    cfg = load_config(Example, write(tmp_path, {"epochs": 5, "optim": {"lr": 0.5}}))
    assert cfg.epochs == 5 and cfg.optim.lr == 0.5 and cfg.optim.name == "adam"
    assert cfg.optim.betas == [0.9, 0.999] and cfg.mask is None
    a, b = load_config(Example), load_config(Example)
    a.optim.betas.append(1.0)  # mutable defaults are per instance
    assert b.optim.betas == [0.9, 0.999]


def test_int_accepted_for_float_and_schema_key_ignored(tmp_path):
    cfg = load_config(Example, write(tmp_path, {"$schema": "x.json", "optim": {"lr": 1}}))
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)


def test_set_overrides_parse_json_then_string(tmp_path):
    p = write(tmp_path, {"epochs": 5})
    cfg = load_config(Example, p, ["epochs=7", "optim.lr=2e-3", "name=my_run", "mask=null", "optim.betas=[0.8,0.9]"])
    assert (cfg.epochs, cfg.optim.lr, cfg.name, cfg.mask, cfg.optim.betas) == (7, 2e-3, "my_run", None, [0.8, 0.9])


@pytest.mark.parametrize("obj, needle", [
    ({"epoch": 3}, "c.json: key 'epoch': unknown key (expected one of:"),
    ({"optim": {"lrr": 1}}, "key 'optim.lrr': unknown key"),
    ({"epochs": "three"}, "key 'epochs': expected an integer, got \"three\""),
    ({"epochs": 2.5}, "key 'epochs': expected an integer"),
    ({"epochs": True}, "key 'epochs': expected an integer"),
    ({"optim": {"name": "adagrad"}}, "key 'optim.name': expected one of \"adam\", \"sgd\""),
    ({"optim": {"betas": [0.9, "x"]}}, "key 'optim.betas[1]': expected a number"),
    ({"optim": 3}, "key 'optim': expected an object"),
    ({"manifest": "does/not/exist.csv"}, "key 'manifest': file not found: does/not/exist.csv"),
])
def test_errors_name_file_key_and_expectation(tmp_path, obj, needle):
    with pytest.raises(InputError) as e:
        load_config(Example, write(tmp_path, obj))
    assert needle in str(e.value)
    assert str(tmp_path / "c.json") in str(e.value)


def test_errors_from_set_name_the_override(tmp_path):
    with pytest.raises(InputError, match=r"--set epochs: expected an integer"):
        load_config(Example, write(tmp_path, {}), ["epochs=abc"])
    with pytest.raises(InputError, match=r"expected key=value"):
        load_config(Example, write(tmp_path, {}), ["epochs"])
    with pytest.raises(InputError, match=r"--set nope: unknown key"):
        load_config(Example, write(tmp_path, {}), ["nope=1"])


def test_invalid_json_names_line_and_column(tmp_path):
    with pytest.raises(InputError, match=r"c.json:3:\d+: invalid JSON"):
        load_config(Example, write(tmp_path, '{\n  "epochs": 3,\n  oops\n}'))
    with pytest.raises(InputError, match="config file not found"):
        load_config(Example, tmp_path / "missing.json")
    with pytest.raises(InputError, match="expected a JSON object"):
        load_config(Example, write(tmp_path, "[1, 2]"))


def test_hash_ignores_unhashed_fields_only():
    a, b = Example(workers=0), Example(workers=8)
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash(Example(epochs=4))
    assert config_hash(Example(runs_dir="elsewhere")) == config_hash(a)


def test_schema_and_describe():
    schema = json_schema(Example, title="t")
    assert schema["additionalProperties"] is False
    assert schema["properties"]["optim"]["properties"]["name"]["enum"] == ["adam", "sgd"]
    assert schema["properties"]["epochs"] == {"type": "integer", "default": 3, "description": "epochs"}
    lines = "\n".join(describe(Example))
    assert "optim.lr (number, default 0.001): learning rate" in lines


@dataclasses.dataclass
class _Ref:
    exclusive_options = (("run", "checkpoint"),)
    run: str = option("", "a run")
    checkpoint: str = option("", "a file")
    dict: str = option("", "its dictionary")


@dataclasses.dataclass
class _WithRef:
    ref: _Ref = option(_Ref(run="default_run", dict="d.txt"), "a reference with a default run")


def test_setting_one_member_of_an_exclusive_group_clears_the_default_of_the_other(tmp_path):
    # the paper configs set only `checkpoint` where the dataclass default names a run (issue 12)
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"ref": {"checkpoint": "model.pt"}}))
    cfg = load_config(_WithRef, path)
    assert (cfg.ref.run, cfg.ref.checkpoint, cfg.ref.dict) == ("", "model.pt", "d.txt")
    assert load_config(_WithRef).ref.run == "default_run"  # untouched default stays


def test_set_of_a_whole_section_replaces_it(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"ref": {"run": "mine", "dict": "x.txt"}}))
    cfg = load_config(_WithRef, path, ['ref={"checkpoint": "model.pt"}'])
    assert (cfg.ref.run, cfg.ref.checkpoint, cfg.ref.dict) == ("", "model.pt", "")
    cfg = load_config(_WithRef, path, ["ref.dict=y.txt"])  # a dotted key still merges
    assert (cfg.ref.run, cfg.ref.dict) == ("mine", "y.txt")


@dataclasses.dataclass
class _Train:
    max_epochs: int = option(100, "epochs")
    max_updates: int = option(0, "0 = no limit")
    lr: float = option(0.1, "learning rate")


@dataclasses.dataclass
class _Scaled(RunConfig):
    train: _Train = option(_Train, "training")
    args: dict[str, int] = option({}, "architecture arguments")
    arch: str = option("big", "architecture")


def test_a_scale_down_only_lowers_its_capped_numbers(tmp_path):
    scale = tmp_path / "tiny.json"
    scale.write_text(json.dumps({"caps": {"train.max_epochs": 2, "train.max_updates": 4, "train.lr": 1.0,
                                          "absent.key": 1},
                                 "caps_when": [{"when": {"arch": "big"}, "caps": {"args.layers": 2}},
                                               {"when": {"arch": "other"}, "caps": {"args.width": 8}}]}))
    cfg = load_config(_Scaled, overrides=[f"scale={scale}", "args={\"depth\": 3}"])
    # 100 -> 2; 0 (no limit) -> 4; lr 0.1 is below its cap and stays; the arch's default layers is set
    assert (cfg.train.max_epochs, cfg.train.max_updates, cfg.train.lr) == (2, 4, 0.1)
    assert cfg.args == {"depth": 3, "layers": 2}
    assert config_hash(cfg) != config_hash(load_config(_Scaled, overrides=["args={\"depth\": 3}"]))
    with pytest.raises(InputError, match="no scale-down 'nope'"):
        load_config(_Scaled, overrides=["scale=nope"])
