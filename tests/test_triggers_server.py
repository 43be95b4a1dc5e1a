"""Triggers in the control plane (issue #18) over real HTTP: registering triggers, a
webhook with no Jupyter token (its signature authenticates), a posted event, firings in
the stream. Answers under /fluxnb/api/v1 are checked against openapi.json."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from fluxnb.store import Store
from fluxnb.triggers import firings, sign
from tests.server_api import SUMS, Client, server_config

pytest_plugins = ["pytest_jupyter.jupyter_server"]

HOOKED = """name: hooked
params:
  body: {type: str, default: ""}  # the registry loads it without params
agents:
  - {id: first, run: "tests.server_steps:noop"}
pipeline:
  - step: first
    with: {seen: "{{body}}"}
"""
WITH_TRIGGERS = (
    SUMS
    + """triggers:
  - {id: sums-on-ping, event: ping}
"""
)


@pytest.fixture
def store_file(tmp_path: Path) -> str:
    return str(tmp_path / "plane" / "fluxnb.duckdb")


@pytest.fixture
def jp_server_config(store_file: str) -> dict[str, Any]:
    config = server_config(store_file)  # and "D": dora, a viewer of namespace 'default'
    config["TokenUsers"]["users"] = {**config["TokenUsers"]["users"], "D": ("dora", [])}
    dora = {"role": "viewer", "namespaces": ["default"]}
    config["FluxnbServer"]["roles"] = {**config["FluxnbServer"]["roles"], "dora": dora}
    return config


@pytest.fixture
def api(jp_fetch: Any) -> Client:
    return Client(jp_fetch)


async def hooked_trigger(api: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workflow 'hooked' and its webhook trigger 'gh' (secret 's3cret'), as otto."""
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    await api.register("hooked", HOOKED)
    r = await api.put(
        "workflows/hooked/triggers/gh", "O", {"webhook": {"secret_env": "HOOK_SECRET"}}
    )
    assert r.code == 201


async def settled(store_file: str, trigger_id: str, count: int = 1) -> list[dict[str, Any]]:
    """The trigger's firings once there are ``count`` and none is going (20 s at most)."""
    rows: list[dict[str, Any]] = []
    for _ in range(400):
        rows = firings(trigger_id, store=Store(store_file)).to_dict("records")
        going = [r for r in rows if r["outcome"] in ("started", "queued")]
        if len(rows) >= count and not going:
            return rows
        await asyncio.sleep(0.05)
    return rows


async def test_put_get_delete_a_trigger_with_roles_and_namespaces(api: Client) -> None:
    await api.register("sums", SUMS)
    r = await api.put("workflows/sums/triggers/nightly", "O",
                      {"schedule": "30 2 * * *", "timezone": "Europe/Berlin"})  # fmt: skip
    assert r.code == 201 and r.json["kind"] == "schedule" and r.json["namespace"] == "team-a"
    again = await api.put("workflows/sums/triggers/nightly", "O", {"schedule": "0 3 * * *"})
    assert again.code == 200 and again.json["schedule"] == "0 3 * * *"
    assert (await api.get("workflows/sums/triggers/nightly", "V")).json["paused"] is False
    assert (await api.put("workflows/sums/triggers/x", "V", {"event": "e"})).code == 403
    assert (await api.get("workflows/sums/triggers/nightly", "B")).code == 404  # team-b
    bad = await api.put("workflows/sums/triggers/bad", "O", {"schedule": "61 * * * *"})
    assert bad.code == 400 and bad.error["problems"][0]["path"] == "schedule"
    assert (await api.put("workflows/nope/triggers/t", "O", {"event": "e"})).code == 404
    assert (await api.delete("workflows/sums/triggers/nightly", "O")).code == 204
    assert (await api.get("workflows/sums/triggers/nightly", "O")).code == 404


async def test_webhook_needs_no_token_and_fires_once_per_delivery(
    api: Client, jp_fetch: Any, store_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await hooked_trigger(api, monkeypatch)

    async def deliver(body: bytes, delivery: str, secret: str) -> Any:
        headers = {"X-Fluxnb-Signature": sign(body, secret), "X-Fluxnb-Delivery": delivery}
        return await jp_fetch("fluxnb", "hooks", "gh", method="POST", body=body,
                              headers=headers, raise_error=False)  # fmt: skip

    body = b'{"ref": "main"}'
    first = await deliver(body, "d-1", "s3cret")  # no Authorization header at all
    assert first.code == 202, first.body
    fired = json.loads(first.body)
    assert fired["outcome"] == "started" and fired["key"] == "gh#delivery:d-1"
    repeat = await deliver(body, "d-1", "s3cret")
    assert repeat.code == 200 and json.loads(repeat.body)["outcome"] == "duplicate"
    forged = await deliver(body, "d-2", "guess")
    assert forged.code == 401 and json.loads(forged.body)["error"]["kind"] == "Unauthorized"
    unknown = await jp_fetch("fluxnb", "hooks", "nope", method="POST", body=body,
                             raise_error=False)  # fmt: skip
    assert unknown.code == 404
    rows = await settled(store_file, "gh")
    outcomes = sorted((r["key"], r["outcome"]) for r in rows)
    assert outcomes == [
        ("gh#delivery:d-1", "duplicate"),
        ("gh#delivery:d-1", "succeeded"),
        ("gh#delivery:d-2", "rejected"),
    ]
    run = (await api.get(f"runs/{fired['run_id']}", "O")).json
    assert run["status"] == "succeeded"  # run by a worker process of the server


async def test_posted_event_and_manifest_triggers_fire_and_reach_the_stream(
    api: Client, store_file: str
) -> None:
    registered = await api.put("workflows/sums", "O", {"manifest": WITH_TRIGGERS})
    assert registered.code == 201
    assert (await api.get("workflows/sums/triggers/sums-on-ping", "V")).json["kind"] == "event"
    posted = await api.post("events/ping", "O", {"order": 7})
    assert posted.code == 202 and posted.json["name"] == "ping"
    assert (await api.post("events/ping", "V", {})).code == 403  # a viewer may not
    [row] = await settled(store_file, "sums-on-ping")
    assert row["outcome"] == "succeeded"
    assert json.loads(row["payload"])["data"] == {"order": 7}
    stream = await api.get("stream", "O", params={"timeout": "0", "last_event_id": "0-0"})
    firing = [json.loads(line[6:]) for line in stream.body.decode().splitlines()
              if line.startswith("data: ") and '"firing"' in line]  # fmt: skip
    assert {(e["trigger"], e["outcome"]) for e in firing} >= {
        ("sums-on-ping", "started"),
        ("sums-on-ping", "succeeded"),
    }


async def test_a_trigger_id_taken_by_another_workflow_is_a_conflict(api: Client) -> None:
    await api.register("sums", SUMS)
    await api.register("hooked", HOOKED)
    assert (await api.put("workflows/sums/triggers/t1", "O", {"event": "a"})).code == 201
    taken = await api.put("workflows/hooked/triggers/t1", "O", {"event": "a"})
    assert taken.code == 409 and "already starts workflow 'sums'" in taken.error["message"]
    # another namespace cannot take it (nor learn whose it is)
    await api.register("sums", SUMS, token="B")
    other = await api.put("workflows/sums/triggers/t1", "B", {"event": "a"})
    assert other.code == 409 and "team-a" not in other.error["message"]


async def test_a_failed_trigger_pass_reaches_admins_only(
    api: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fluxnb.triggers import _records

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("the firings table is unreadable")

    await api.register("sums", WITH_TRIGGERS)
    monkeypatch.setattr(_records, "last_scheduled", broken)  # every pass fails from now on
    await api.post("events/ping", "O", {})  # wakes the service
    everything = {"timeout": "0", "last_event_id": "0-0"}
    seen = b""
    for _ in range(100):
        seen = (await api.get("stream", "A", params=everything)).body
        if b"trigger_error" in seen:
            break
        await asyncio.sleep(0.05)
    assert b"the firings table is unreadable" in seen
    for user in ("O", "V", "B", "D"):  # of no namespace: no non-admin reads it
        assert b"trigger_error" not in (await api.get("stream", user, params=everything)).body


async def test_the_run_a_delivery_started_is_known_as_soon_as_it_is_answered(
    api: Client, jp_fetch: Any, store_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await hooked_trigger(api, monkeypatch)
    for n in range(3):
        headers = {"X-Fluxnb-Signature": sign(b"{}", "s3cret"), "X-Fluxnb-Delivery": f"d-{n}"}
        r = await jp_fetch("fluxnb", "hooks", "gh", method="POST", body=b"{}", headers=headers,
                           raise_error=False)  # fmt: skip
        assert r.code == 202
        run_id = json.loads(r.body)["run_id"]
        assert (await api.get(f"runs/{run_id}", "O")).code == 200  # at once: no 404 first
    await settled(store_file, "gh", 3)  # (GET /runs/{id} may 404 just after a run ends)


async def test_a_watch_outside_the_servers_root_is_refused_where_it_is_wrong(
    api: Client,
) -> None:
    await api.register("sums", SUMS)
    for path in ("/etc", "../up"):
        r = await api.put("workflows/sums/triggers/w", "O", {"watch": {"path": path}})
        assert r.code == 400
        [problem] = r.error["problems"]
        assert (problem["path"], problem["kind"], problem["found"]) == (
            "watch.path",
            "outside_root",
            path,
        )
    assert (await api.get("workflows/sums/triggers/w", "O")).code == 404  # nothing registered
