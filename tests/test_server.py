"""The control plane (fluxnb.server) through real HTTP: pytest-jupyter starts a Jupyter
Server with the extension; every answer is checked against fluxnb/server/openapi.json.

Users (tests/server_api.py): alice admin, otto operator and vic viewer of team-a, bea
operator of team-b (team-a must stay invisible to her), gus a viewer of both through a
Hub group, nobody without a role.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.server_api import CRASHY, GATED, SUMS, TICKET, Client, server_config

pytest_plugins = ["pytest_jupyter.jupyter_server"]


@pytest.fixture
def store_file(tmp_path: Path) -> str:
    return str(tmp_path / "plane" / "fluxnb.duckdb")


@pytest.fixture
def gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The file a ``wait_for_file`` step waits for; set before the server and its workers
    start, so that every worker process has it."""
    path = tmp_path / "gate"
    monkeypatch.setenv("FLUXNB_TEST_GATE", str(path))
    return path


@pytest.fixture
def jp_server_config(store_file: str, gate: Path) -> dict[str, Any]:
    return server_config(store_file)


@pytest.fixture
def api(jp_fetch: Any) -> Client:
    return Client(jp_fetch)


def audit_rows(store_file: str) -> list[tuple]:
    import fluxnb

    with fluxnb.Store(store_file).connect() as con:
        return con.execute(
            "SELECT user_name, role, action, target, outcome FROM audit ORDER BY occurred_at"
        ).fetchall()


# ---------------------------------------------------------------------- the server itself
async def test_extension_loads_from_the_package_root_and_probes_answer(api: Client) -> None:
    import fluxnb
    from fluxnb.server import FluxnbServer

    assert fluxnb._jupyter_server_extension_points()[0]["app"] is FluxnbServer
    assert (await api.get("healthz", None)).json == {"ok": True}
    ready = await _until_ready(api)  # 503 while the workers start (import fluxnb)
    assert ready.code == 200 and ready.json["store"] is True and ready.json["workers"] >= 1
    served = await api.get("openapi.json", None)
    assert served.json == json.loads(
        (Path(fluxnb.__file__).parent / "server" / "openapi.json").read_text()
    )
    who = await api.get("whoami", "G")
    assert who.json["role"] == "viewer" and who.json["namespaces"] == ["team-a", "team-b"]


def test_openapi_document_is_valid_and_generated_from_its_script() -> None:
    import runpy

    from openapi_spec_validator import validate

    script = runpy.run_path(str(Path(__file__).parents[1] / "scripts" / "openapi.py"))
    committed = Path(script["OUT"]).read_text()
    assert committed == script["text"](), "run python scripts/openapi.py"
    assert Path(script["DOC"]).read_text() == script["doc_text"](), "docs/server.md: the same"
    validate(json.loads(committed))


async def test_every_route_refuses_an_unknown_user_and_no_token(api: Client) -> None:
    for method, path in [
        ("GET", "workflows"), ("PUT", "workflows/sums"), ("GET", "runs"),
        ("POST", "workflows/sums/runs"), ("GET", "runs/x"), ("POST", "sql"),
        ("GET", "tenants"), ("GET", "invoices/acme/2026-11"), ("GET", "stream"),
        ("POST", "nets/ticket/instances"), ("GET", "metrics"),
    ]:  # fmt: skip
        body = {"manifest": SUMS} if method == "PUT" else None
        for token in ("N", "wrong-token"):
            r = await api.call(method, path, token, body, params={"timeout": "0"})
            assert r.code == 403, (method, path, token, r.body)
            assert r.error["kind"] == "PermissionDenied"


def test_roles_config_errors_name_the_entry() -> None:
    from fluxnb import FluxError
    from fluxnb.server._access import Roles

    with pytest.raises(FluxError, match=r"roles\['x'\]\['role'\] is 'boss'"):
        Roles({"x": {"role": "boss"}})
    with pytest.raises(FluxError, match="unknown keys"):
        Roles({"x": {"role": "admin", "rol": 1}})
    with pytest.raises(FluxError, match="namespaces"):
        Roles({"x": {"role": "admin", "namespaces": "team-a"}})
    roles = Roles({"x": "viewer", "group:g": {"role": "operator"}, "*": "viewer"})
    assert roles.grant("someone", ["g"]).role == "operator"
    assert roles.grant("x", ["g"]).role == "viewer"  # a user's own entry wins over groups
    assert Roles({}).grant("owner").role == "admin"  # a single-user server: its owner


# ---------------------------------------------------------------------- registry
async def test_registry_keeps_versions_and_checks_roles(api: Client, store_file: str) -> None:
    first = await api.put("workflows/sums", "O", {"manifest": SUMS})
    assert first.code == 201 and first.json["version"] == 1
    assert first.json["namespace"] == "team-a" and first.json["created_by"] == "otto"
    again = await api.put("workflows/sums", "O", {"manifest": SUMS})
    assert again.code == 200 and again.json["version"] == 1 and not again.json["created"]
    changed = await api.put("workflows/sums", "O", {"manifest": SUMS + "# v2\n"})
    assert changed.json["version"] == 2
    assert (await api.get("workflows/sums", "V", params={"version": "1"})).json["manifest"] == SUMS
    listed = (await api.get("workflows", "V")).json["workflows"]
    assert [(w["name"], w["version"]) for w in listed] == [("sums", 2)]

    viewer = await api.put("workflows/other", "V", {"manifest": SUMS.replace("sums", "other")})
    assert viewer.code == 403 and viewer.error["kind"] == "PermissionDenied"
    # team-b sees nothing of team-a: the same 404 as for a name nobody registered
    hidden = await api.get("workflows/sums", "B")
    missing = await api.get("workflows/nope", "B")
    assert hidden.code == missing.code == 404
    assert hidden.error["message"].replace("sums", "X") == missing.error["message"].replace(
        "nope", "X"
    )
    assert (await api.get("workflows", "B")).json["workflows"] == []

    assert (await api.delete("workflows/sums", "O")).code == 403  # admin only
    assert (await api.delete("workflows/sums", "A")).code == 204
    assert (await api.get("workflows/sums", "O")).code == 404
    rows = audit_rows(store_file)
    assert ("vic", "viewer", "run", "register other", "denied") in rows
    assert ("otto", "operator", "manage workflows", "delete workflow sums", "denied") in rows
    assert ("alice", "admin", "manage workflows", "delete workflow sums", "allowed") in rows


async def test_bad_manifests_and_bodies_get_located_errors(api: Client) -> None:
    bad = await api.put("workflows/sums", "O", {"manifest": SUMS.replace("depends_on", "depend")})
    assert bad.code == 400 and bad.error["kind"] == "ManifestError"
    problem = bad.error["problems"][0]
    assert (problem["kind"], problem["line"]) == ("unknown_key", 8)
    unresolved = await api.put(
        "workflows/sums", "O", {"manifest": SUMS.replace(":total", ":no_such_step")}
    )
    assert unresolved.code == 422 and unresolved.error["kind"] == "ResolutionError"
    assert unresolved.error["problems"][0]["kind"] == "unresolved_callable"
    named = await api.put("workflows/other", "O", {"manifest": SUMS})
    assert named.code == 422 and "named 'sums'" in named.error["message"]
    assert (await api.put("workflows/sums", "O", raw=b"{not json")).code == 400
    assert (await api.put("workflows/sums", "O", raw=b"[1]")).code == 400
    assert (await api.put("workflows/sums", "O", {"manifest": 3})).code == 422
    huge = await api.put("workflows/sums", "O", {"manifest": "x" * (2 << 20)})
    assert huge.code == 413 and huge.error["kind"] == "TooLarge"
    # a one-line manifest is text, never a file of the server's read by its path
    secret = await api.put("workflows/sums", "O", {"manifest": "/etc/hostname"})
    assert secret.code == 400 and secret.error["problems"][0]["found"] == "/etc/hostname"


async def test_billion_laughs_manifest_is_refused_fast(api: Client) -> None:
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    bomb = "name: sums\n" + "\n".join(lines) + "\npipeline:\n  - step: numbers\n"
    started = time.perf_counter()
    r = await api.put("workflows/sums", "O", {"manifest": bomb})
    assert r.code == 400 and r.error["kind"] == "ManifestError"
    assert time.perf_counter() - started < 2


async def test_validate_answers_valid_or_422_with_problems(api: Client) -> None:
    await api.register("sums", SUMS)
    ok = await api.post("workflows/sums/validate", "V")
    assert ok.json == {"valid": True, "name": "sums", "kind": "workflow"}
    bad = await api.post(
        "workflows/sums/validate", "V", {"manifest": SUMS.replace("numbers\n", "numbrs\n", 1)}
    )
    assert bad.code == 422 and bad.error["problems"]
    assert (await api.post("workflows/nope/validate", "V")).code == 404


# ---------------------------------------------------------------------- runs
async def test_run_lifecycle_over_http(api: Client, store_file: str) -> None:
    await api.register("sums", SUMS)
    viewer = await api.post("workflows/sums/runs", "V")
    assert viewer.code == 403  # a viewer posting a run
    started = await api.post("workflows/sums/runs", "O", {"run_id": "r-1", "seed": 3})
    assert started.code == 202 and started.json["run_id"] == "r-1"
    run = await api.wait_status("r-1", "O", ("succeeded", "failed"))
    assert run["status"] == "succeeded" and run["version"] == 1
    assert run["namespace"] == "team-a" and run["tenant"] == "acme" and run["seed"] == 3
    assert [(s["step"], s["status"]) for s in run["steps"]] == [
        ("numbers", "succeeded"), ("total", "succeeded"),
    ]  # fmt: skip
    events = (await api.get("runs/r-1/events", "V")).json["events"]
    assert [e["step"] for e in events] == ["numbers", "total"]
    svg = await api.get("runs/r-1/timeline.svg", "V")
    assert svg.code == 200 and svg.body.startswith(b"<svg")

    replayed = await api.post("workflows/sums/runs", "O", {"run_id": "r-1"})
    assert replayed.code == 409 and replayed.error["kind"] == "Conflict"
    assert (await api.post("workflows/sums/runs", "O", {"bogus": 1})).code == 422
    assert (await api.post("workflows/sums/runs", "O", {"params": [1]})).code == 422
    assert (await api.post("workflows/sums/runs", "O", {"tenant": "globex"})).code == 403

    # another namespace's run: the same 404 as a run that does not exist, on every route
    for path in ("runs/r-1", "runs/r-1/events", "runs/r-1/timeline.svg"):
        assert (await api.get(path, "B")).code == 404
    for path in ("runs/r-1/cancel", "runs/r-1/replay", "runs/r-1/resume"):
        assert (await api.post(path, "B")).code == 404
    assert (
        (await api.get("runs/nope", "B"))
        .error["message"]
        .endswith("in the namespaces you can read")
    )
    assert (await api.get("runs", "B")).json["runs"] == []
    assert [r["run_id"] for r in (await api.get("runs", "G")).json["runs"]] == ["r-1"]

    report = await api.post("runs/r-1/replay", "O")
    assert report.code == 200 and report.json["identical"] is True
    assert (await api.post("runs/r-1/replay", "V")).code == 403
    assert (await api.post("runs/r-1/resume", "O")).code == 409  # it succeeded
    assert (await api.post("runs/r-1/cancel", "O")).code == 409  # not running

    for i in range(3):
        await api.post("workflows/sums/runs", "O", {"run_id": f"p-{i}"})
    for i in range(3):
        await api.wait_status(f"p-{i}", "O", ("succeeded",))
    page = (await api.get("runs", "O", params={"limit": "2"})).json
    rest = (await api.get("runs", "O", params={"limit": "2", "offset": "2"})).json
    ids = [r["run_id"] for r in page["runs"] + rest["runs"]]
    assert sorted(ids) == ["p-0", "p-1", "p-2", "r-1"] and page["next_offset"] == 2
    assert rest["next_offset"] is None
    only = (await api.get("runs", "O", params={"workflow": "nope"})).json["runs"]
    assert only == []
    assert (await api.get("runs", "O", params={"limit": "0"})).code == 422
    assert ("vic", "viewer", "run", "sums", "denied") in audit_rows(store_file)


async def test_stream_is_filtered_per_namespace_and_resumes(api: Client) -> None:
    await run_in_both_namespaces(api, "a-1", "b-1")
    first = _events(
        (await api.get("stream", "O", params={"timeout": "0", "last_event_id": "0-0"})).body
    )
    # an id of another server process: everything kept is new to that client (gap first)
    assert first[0][0] == "gap"
    seen = {(e["type"], e.get("run_id")) for _, e in first[1:]}
    assert {("run.started", "a-1"), ("run.finished", "a-1")} <= seen
    assert not any(e.get("run_id") == "b-1" for _, e in first[1:])  # team-b's
    assert ("step.status", "a-1") in seen
    # resuming after the last id gives only what came after
    last = first[-1][1]["id"]
    await api.post("workflows/sums/runs", "O", {"run_id": "a-2"})
    await api.wait_status("a-2", "O", ("succeeded",))
    later = _events(
        (
            await api.get("stream", "O", params={"timeout": "0"}, headers={"Last-Event-ID": last})
        ).body
    )
    assert {e.get("run_id") for _, e in later} == {"a-2"}
    assert (await api.get("stream", "O", params={"timeout": "x"})).code == 422


async def run_in_both_namespaces(api: Client, team_a: str, team_b: str) -> None:
    """Register ``sums`` in team-a (otto) and team-b (bea) and run it once in each."""
    for token, run_id in (("O", team_a), ("B", team_b)):
        await api.register("sums", SUMS, token=token)
        await api.post("workflows/sums/runs", token, {"run_id": run_id})
    await api.wait_status(team_a, "O", ("succeeded",))
    await api.wait_status(team_b, "B", ("succeeded",))


def _events(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in body.decode().split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in block.splitlines() if not line.startswith(":")
        )
        if "data" in fields:
            out.append((fields.get("event", "message"), json.loads(fields["data"])))
    return out


async def test_killed_worker_leaves_the_run_interrupted_and_resumable(
    api: Client, gate: Path, jp_serverapp: Any
) -> None:
    await api.register("gated", GATED)
    await api.post("workflows/gated/runs", "O", {"run_id": "k-1"})
    await api.wait_status("k-1", "O", ("running",))
    for _ in range(200):  # until 'wait' is running
        steps = {s["step"]: s["status"] for s in (await api.get("runs/k-1", "O")).json["steps"]}
        if steps.get("first") == "succeeded":
            break
        await asyncio.sleep(0.05)
    plane = jp_serverapp.web_app.settings["fluxnb_plane"]
    worker = plane.pool.where["k-1"]
    os.kill(worker.process.pid, signal.SIGKILL)
    run = await api.wait_status("k-1", "O", ("interrupted",))
    assert run["status"] == "interrupted"
    assert (await api.get("healthz", None)).code == 200
    ready = await _until_ready(api)
    assert ready.json["workers"] == 1 and plane.pool.restarts == 1
    assert (await api.post("runs/k-1/resume", "V")).code == 403
    gate.write_text("go")
    resumed = await api.post("runs/k-1/resume", "O")
    assert resumed.code == 202
    run = await api.wait_status("k-1", "O", ("succeeded", "failed"))
    assert run["status"] == "succeeded"
    assert {s["step"]: s["status"] for s in run["steps"]}["last"] == "succeeded"


async def _until_ready(api: Client) -> Any:
    for _ in range(100):
        r = await api.get("readyz", None)
        if r.code == 200:
            return r
        await asyncio.sleep(0.1)
    return r


async def test_cancel_a_running_run(api: Client) -> None:
    await api.register("gated", GATED)  # its gate file is never written: 'wait' waits
    await api.post("workflows/gated/runs", "O", {"run_id": "c-1"})
    await api.wait_status("c-1", "O", ("running",))
    assert (await api.post("runs/c-1/cancel", "V")).code == 403
    cancelling = await api.post("runs/c-1/cancel", "O")
    assert cancelling.code == 202
    run = await api.wait_status("c-1", "O", ("cancelled",))
    assert run["status"] == "cancelled"


# ---------------------------------------------------------------------- nets
async def test_net_instances_take_tokens_and_fire(api: Client) -> None:
    await api.register("ticket", TICKET)
    await api.register("sums", SUMS)
    assert (await api.post("nets/sums/instances", "O")).code == 422  # a DAG
    assert (await api.post("nets/ticket/instances", "V")).code == 403
    made = await api.post("nets/ticket/instances", "O")
    assert made.code == 201 and made.json["marking"] == {"open": 1, "closed": 0, "archived": 0}
    iid = made.json["instance_id"]
    assert made.json["enabled"] == ["close"]
    fired = await api.post(
        f"instances/{iid}/fire", "O", {"transition": "close", "data": {"by": "otto"}}
    )
    assert fired.code == 200 and fired.json["marking"]["closed"] == 1
    assert fired.json["tokens"]["closed"][0]["data"] == {"by": "otto"}
    again = await api.post(f"instances/{iid}/fire", "O", {"transition": "close"})
    assert again.code == 409 and again.error["kind"] == "NotEnabled"
    put = await api.post(f"instances/{iid}/tokens", "O", {"place": "open", "data": 7})
    assert put.json["marking"]["open"] == 1
    assert (await api.post(f"instances/{iid}/tokens", "O", {"place": "nowhere"})).code == 404
    assert (await api.post(f"instances/{iid}/fire", "V", {"transition": "close"})).code == 403
    state = await api.get(f"instances/{iid}", "V")
    assert [h["transition"] for h in state.json["history"]][:1] == ["close"]
    assert (await api.get(f"instances/{iid}", "B")).code == 404
    assert (await api.get("instances/nope", "O")).code == 404


async def test_a_net_action_that_kills_its_process_leaves_the_server_up(api: Client) -> None:
    await api.register("crashy", CRASHY)
    made = await api.post("nets/crashy/instances", "O")
    iid = made.json["instance_id"]
    await api.post(f"instances/{iid}/tokens", "O", {"place": "inbox", "data": 1})
    fired = await api.post(f"instances/{iid}/fire", "O", {"transition": "crash"})
    assert fired.code == 503 and fired.error["kind"] == "WorkerDied"
    assert (await api.get("healthz", None)).code == 200
    gone = await api.get(f"instances/{iid}", "O")
    assert gone.code == 404 and "ended with its worker process" in gone.error["message"]
    await _until_ready(api)  # a new worker took its place
    again = await api.post("nets/crashy/instances", "O")
    assert again.code == 201 and again.json["marking"] == {"inbox": 0, "done": 0}


# ---------------------------------------------------------------------- SQL and money
async def test_sql_is_sealed_and_scoped(api: Client) -> None:
    await run_in_both_namespaces(api, "s-a", "s-b")
    q = {"query": "SELECT run_id FROM runs ORDER BY run_id"}
    assert (await api.post("sql", "O", q)).json["rows"] == [{"run_id": "s-a"}]
    assert (await api.post("sql", "B", q)).json["rows"] == [{"run_id": "s-b"}]
    assert [r["run_id"] for r in (await api.post("sql", "A", q)).json["rows"]] == ["s-a", "s-b"]
    with_params = await api.post(
        "sql", "V", {"query": "SELECT count(*) AS n FROM events WHERE step = $s",
                     "params": {"s": "total"}},
    )  # fmt: skip
    assert with_params.json == {"columns": ["n"], "rows": [{"n": 1}], "truncated": False}
    # sealed for an admin too: no files of the server, no secrets
    for query in ("SELECT * FROM read_csv('/etc/hostname')", "SELECT * FROM fluxnb_secrets"):
        r = await api.post("sql", "A", {"query": query})
        assert r.code == 422 and r.error["kind"] == "QueryError"
    assert (await api.post("sql", "O", {"query": 1})).code == 422
    assert (await api.post("sql", "O", {"query": "SELEC"})).code == 422


async def test_billing_routes(api: Client) -> None:
    card = (Path(__file__).parents[1] / "examples" / "rate_card.yaml").read_text()
    assert (await api.post("tenants", "O", {"tenant": "acme"})).code == 403
    assert (await api.post("tenants", "A", {"tenant": "acme"})).code == 201
    assert (await api.post("tenants", "A", {"tenant": "acme"})).code == 422  # exists
    assert (await api.put("rate-cards", "O", {"card": card})).code == 403
    saved = await api.put("rate-cards", "A", {"card": card})
    assert saved.code == 201 and saved.json["version"] == 1
    assert (await api.put("rate-cards", "A", {"card": "rate_card: 3"})).code == 422
    assert (await api.get("rate-cards", "V")).json["rate_cards"]["rows"]
    await api.register("sums", SUMS)
    await api.post("workflows/sums/runs", "O", {"run_id": "m-1"})
    run = await api.wait_status("m-1", "O", ("succeeded",))
    period = run["started_at"][:7]
    usage = (await api.get("usage", "V", params={"tenant": "acme"})).json["usage"]
    assert {r["unit"] for r in usage["rows"]} >= {"invocations"}
    inv = await api.get(f"invoices/acme/{period}", "V")
    assert inv.code == 200 and inv.json["tenant"] == "acme"
    assert isinstance(inv.json["total"], str)  # money exact, never a float
    csv = await api.get(f"invoices/acme/{period}", "V", params={"format": "csv"})
    assert csv.headers["Content-Type"].startswith("text/csv") and b"invocations" in csv.body
    html = await api.get(f"invoices/acme/{period}", "V", headers={"Accept": "text/html"})
    assert html.headers["Content-Type"].startswith("text/html")
    assert (await api.get(f"invoices/acme/{period}", "V", params={"format": "pdf"})).code == 422
    assert (await api.get("invoices/acme/not-a-month", "V")).code == 422
    assert (await api.get("tenants", "V")).json["tenants"]["rows"][0]["tenant"] == "acme"
    sla = await api.get("sla", "V", params={"kind": "runs"})
    assert [r["run_id"] for r in sla.json["rows"]] == ["m-1"]
    assert (await api.get("sla", "V", params={"kind": "nope"})).code == 422
    metrics = await api.get("metrics", "V")
    assert b"fluxnb_server_workers 1" in metrics.body
    assert (await api.get("sla", "B", params={"kind": "runs"})).json["rows"] == []


# ---------------------------------------------------------------------- pieces
async def test_bus_resumes_after_an_id_and_says_when_events_are_gone() -> None:
    from fluxnb.server._bus import Bus

    bus = Bus(3)
    for i in range(5):
        bus.publish("team-a" if i % 2 == 0 else "team-b", {"type": "x", "n": i})
    events, gap = bus.after(None, None)
    assert events == [] and not gap  # a new client starts from now
    events, gap = bus.after(f"{bus.boot}-3", None)
    assert [e["n"] for e in events] == [3, 4] and not gap
    events, gap = bus.after(f"{bus.boot}-1", ("team-a",))  # 2 and 3 are gone (3 kept)
    assert gap and [e["n"] for e in events] == [2, 4]
    events, gap = bus.after("12345-1", None)  # an id of another server process
    assert gap and [e["n"] for e in events] == [2, 3, 4]


def test_load_benchmark_loses_nothing_quick() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    from server_load import main

    report = main(["--quick"])
    assert report["nothing_lost"], report
    assert report["healthz_probes"] > 0


async def test_a_request_picks_one_of_its_namespaces_and_no_other(api: Client) -> None:
    await api.register("sums", SUMS, token="B")  # team-b's
    asked = await api.get("workflows/sums", "G", params={"namespace": "team-b"})
    assert asked.code == 200 and asked.json["namespace"] == "team-b"
    header = await api.get("workflows/sums", "G", headers={"X-Fluxnb-Namespace": "team-b"})
    assert header.code == 200
    assert (await api.get("workflows/sums", "G")).code == 404  # gus acts in team-a first
    other = await api.get("workflows/sums", "G", params={"namespace": "team-c"})
    assert other.code == 403 and other.error["kind"] == "PermissionDenied"
    admin = await api.get("workflows/sums", "A", params={"namespace": "team-b"})
    assert admin.code == 200  # an admin acts in any namespace
    bad = await api.get("workflows", "A", params={"namespace": "Team B"})
    assert bad.code == 422


def test_answers_keep_money_exact_and_nulls_null() -> None:
    from datetime import datetime
    from decimal import Decimal

    import numpy as np
    import pandas as pd

    from fluxnb.server._jsonable import jsonable

    values = [Decimal("0.10"), pd.NaT, float("nan"), np.int64(3), datetime(2026, 11, 30, 8)]
    assert jsonable(values) == ["0.10", None, None, 3, "2026-11-30T08:00:00+00:00"]
    assert json.dumps(jsonable({"token": object()})).startswith('{"token": "<object')


def test_a_run_id_is_known_once_the_plane_noted_it_even_before_its_run_row(
    store_file: str,
) -> None:
    import fluxnb
    from fluxnb.store import _registry as registry

    store = fluxnb.Store(store_file)
    wf, _ = registry.put(store, "team-a", "sums", "workflow", SUMS, "otto")
    assert not registry.run_known(store, "q-1")
    registry.record_runs(store, [("q-1", wf, "otto")])
    registry.record_runs(store, [("q-1", wf, "otto")])  # written twice: kept once
    assert registry.run_known(store, "q-1")
    with store.connect() as con:
        assert con.execute("SELECT count(*) FROM workflow_runs").fetchone()[0] == 1
