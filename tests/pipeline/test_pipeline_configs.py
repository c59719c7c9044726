"""Every committed config of both methods and both profiles loads with the stage its $schema names, and is named
(and profiled) after its file."""
from __future__ import annotations

import pytest

from support.pipeline_configs import PROFILES, REPO, configs
from speechkd import cli
from speechkd.config import load_config
from speechkd.pipeline import INFERENCE_STAGES


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("method", ("slu", "st"))
def test_every_config_loads_with_its_stage_and_is_named_after_its_file(profile, method):
    for name, raw in configs(profile, method).items():
        stage = raw["$schema"].split("/")[-1].split(".")[0]
        assert stage in cli.STAGES and raw["profile"] == profile
        assert raw["name"] == name if stage not in INFERENCE_STAGES else "name" not in raw  # inference: no run dir
        load_config(cli._stage_module(stage).Config, REPO / "configs" / profile / method / f"{name}.json")
