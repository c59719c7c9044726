"""Shared by test_slu_configs.py and test_st_configs.py: the committed configs of one method and profile."""
from __future__ import annotations

import json
from pathlib import Path

from speechkd import cli
from speechkd.config import load_config

REPO = Path(__file__).resolve().parents[1]
PROFILES = ("embedded", "paper")


def configs(profile: str, method: str) -> dict[str, dict]:
    """configs/<profile>/<method>/*.json by file stem, as raw JSON."""
    return {p.stem: json.loads(p.read_text()) for p in sorted((REPO / "configs" / profile / method).glob("*.json"))}


def assert_every_config_loads(profile: str, method: str) -> None:
    """Each file loads with the stage its $schema names, and is named (and profiled) after its file."""
    for name, raw in configs(profile, method).items():
        stage = raw["$schema"].split("/")[-1].split(".")[0]
        assert stage in cli.STAGES and raw["name"] == name and raw["profile"] == profile
        load_config(cli._stage_module(stage).Config, REPO / "configs" / profile / method / f"{name}.json")
