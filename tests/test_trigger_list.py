"""``GET /triggers`` (the JupyterLab Runs panel's Triggers section) over real HTTP: every
trigger the caller may read, a schedule's next time, each trigger's last firing; answers
checked against openapi.json."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.server_api import SUMS, Client, server_config

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def jp_server_config(tmp_path: Path) -> dict[str, Any]:
    return server_config(str(tmp_path / "plane" / "fluxnb.duckdb"))


@pytest.fixture
def api(jp_fetch: Any) -> Client:
    return Client(jp_fetch)


async def _listed(api: Client, token: str) -> dict[str, dict[str, Any]]:
    r = await api.get("triggers", token)
    assert r.code == 200, r.body
    return {t["id"]: t for t in r.json["triggers"]}


async def test_triggers_list_next_fire_and_last_outcome_per_namespace(api: Client) -> None:
    await api.register("sums", SUMS)
    nightly = {"schedule": "30 2 * * *", "timezone": "Europe/Berlin"}
    assert (await api.put("workflows/sums/triggers/nightly", "O", nightly)).code == 201
    assert (await api.put("workflows/sums/triggers/on-ping", "O", {"event": "ping"})).code == 201

    seen = await _listed(api, "V")  # a viewer of team-a reads them
    assert set(seen) == {"nightly", "on-ping"}
    upcoming = datetime.fromisoformat(seen["nightly"]["next_fire"])
    assert upcoming > datetime.now(upcoming.tzinfo)
    assert seen["on-ping"]["next_fire"] is None and seen["on-ping"]["last_outcome"] is None
    assert await _listed(api, "B") == {}  # team-b sees none of team-a's

    assert (await api.post("triggers/nightly/pause", "V")).code == 403  # a viewer may not
    assert (await api.post("triggers/nightly/pause", "B")).code == 404  # nor see it
    assert (await api.post("triggers/nope/fire", "O")).code == 404
    paused = await api.post("triggers/nightly/pause", "O")
    assert paused.code == 200 and paused.json["paused"] is True
    assert (await _listed(api, "V"))["nightly"]["next_fire"] is None  # paused: no next time
    resumed = await api.post("triggers/nightly/resume", "O")
    assert resumed.json["paused"] is False and resumed.json["next_fire"]

    fired = await api.post("triggers/on-ping/fire", "O")  # by hand, as Fire now does
    assert fired.code == 200 and fired.json["key"].startswith("on-ping#manual:")
    for _ in range(400):
        last = (await _listed(api, "V"))["on-ping"]
        if last["last_outcome"] not in (None, "started", "queued"):
            break
        await asyncio.sleep(0.05)
    assert last["last_outcome"] == "succeeded" and last["last_run_id"]
    assert (await api.get("triggers", "N")).code == 403
