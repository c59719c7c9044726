"""Shared by the config tests (test_pipeline_configs.py, test_slu_configs.py, test_st_configs.py): the committed
configs of one method and profile, and the runs the paper tables read."""
from __future__ import annotations

import json

from speechkd.tables.spec import TABLES_DIR, load_table_spec

from support.paths import REPO
PROFILES = ("embedded", "paper")


def configs(profile: str, method: str) -> dict[str, dict]:
    """configs/<profile>/<method>/*.json by file stem, as raw JSON."""
    return {p.stem: json.loads(p.read_text()) for p in sorted((REPO / "configs" / profile / method).glob("*.json"))}


def table_runs(table: str) -> list[tuple[str, str, str]]:
    """(row id, column, run name) of every cell of configs/tables/<table>.json."""
    return [(row.id, column, run) for row in load_table_spec(TABLES_DIR / f"{table}.json").rows
            for column, run in row.runs.items()]
