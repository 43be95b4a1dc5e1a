"""An adversarial review of the control plane (issue #17) and the triggers' HTTP surface
(issue #18): each test here documents a bug found by attacking a real server, marked
``xfail(strict=True)`` so that it fails loudly once the bug is fixed (then drop the mark).

Users and roles are tests/server_api.py's: alice admin, otto operator and vic viewer of
team-a (tenant acme), bea operator of team-b, gus viewer of both, nobody without a role.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, cli_env
from tests.server_api import GATED, ROLES, SUMS, USERS, Client, server_config

pytest_plugins = ["pytest_jupyter.jupyter_server"]


# ---------------------------------------------------------------------- step callables
# (the server's workers import them as tests.test_server_attacks:NAME)
def marked_wait(**_: Any) -> int:
    """Writes a start line, waits for the gate file, writes an end line: how many calls are
    executing at once is the number of starts without an end."""
    gate = Path(os.environ["FLUXNB_TEST_GATE"])
    log = gate.with_name("calls")
    with log.open("a") as f:
        f.write("start\n")
    deadline = time.monotonic() + 20
    while not gate.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    with log.open("a") as f:
        f.write("end\n")
    return 1


# ---------------------------------------------------------------------- fixtures
@pytest.fixture
def store_file(tmp_path: Path) -> str:
    return str(tmp_path / "plane" / "fluxnb.duckdb")


@pytest.fixture
def gate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "gate"
    monkeypatch.setenv("FLUXNB_TEST_GATE", str(path))
    return path


@pytest.fixture
def jp_server_config(store_file: str, gate: Path) -> dict[str, Any]:
    return server_config(store_file)


@pytest.fixture
def api(jp_fetch: Any) -> Client:
    return Client(jp_fetch)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Subprocess:
    """A Jupyter Server with the extension and tests/server_api.py's users and roles, in a
    process of its own (a request that ends the server's process must not end pytest)."""

    def __init__(self, url: str, process: subprocess.Popen[bytes]) -> None:
        self.url = url
        self.process = process

    def call(self, method: str, path: str, token: str, body: Any = None) -> tuple[int, bytes]:
        request = urllib.request.Request(
            f"{self.url}/fluxnb/api/v1/{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except OSError as e:
            return 0, repr(e).encode()


@pytest.fixture
def roles_server(tmp_path: Path) -> Iterator[Subprocess]:
    folder = tmp_path / "served"
    folder.mkdir()
    port = _free_port()
    config = server_config(str(folder / "s.duckdb"), eager_workers=True)
    config["ServerApp"].update(
        identity_provider_class="tests.server_users.TokenUsers",
        ip="127.0.0.1", port=port, port_retries=0, open_browser=False, allow_root=True,
    )  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    log = (folder / "log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", f"--config={folder / 'config.json'}"],
        cwd=folder, env={**cli_env(), "PYTHONPATH": str(ROOT)},
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    served = Subprocess(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + 60
        while served.call("GET", "readyz", "A")[0] != 200:
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("server did not start: " + (folder / "log").read_text()[-2000:])
            time.sleep(0.2)
        yield served
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(10)
        log.close()


def _one_step(name: str, ref: str, with_: str = "") -> str:
    step = f"  - step: a\n    with: {with_}\n" if with_ else "  - step: a\n"
    return f'name: {name}\nagents:\n  - {{id: a, run: "{ref}"}}\npipeline:\n{step}'


# ---------------------------------------------------------------------- findings
def test_a_viewer_cannot_end_the_server_with_a_validate(roles_server: Subprocess) -> None:
    assert USERS["V"][0] == "vic" and ROLES["vic"]["role"] == "viewer"
    manifest = _one_step("x", "unittest.__main__:main")
    code, body = roles_server.call("POST", "workflows/x/validate", "V", {"manifest": manifest})
    time.sleep(0.5)
    assert roles_server.process.poll() is None, "the server process ended"
    assert roles_server.call("GET", "healthz", "V")[0] == 200
    assert code in (400, 422), body


async def test_an_operator_cannot_register_a_shell_command(api: Client, tmp_path: Path) -> None:
    proof = tmp_path / "shell-ran"
    manifest = _one_step("evil", "subprocess:getoutput", f'{{cmd: "id > {proof}"}}')
    put = await api.put("workflows/evil", "O", {"manifest": manifest})
    if put.code in (200, 201):
        await api.post("workflows/evil/runs", "O", {"run_id": "evil-1"})
        await api.wait_status("evil-1", "O", ("succeeded", "failed"))
    assert not proof.exists(), proof.read_text()
    assert put.code in (403, 422)


async def test_an_admin_reads_the_trigger_tables_over_sql(api: Client) -> None:
    for table in ("triggers", "firings", "bus_events"):
        r = await api.post("sql", "A", {"query": f"SELECT count(*) AS n FROM {table}"})
        assert r.code == 200, (table, r.body)


HOOKED = _one_step("hooked", "tests.server_steps:noop")


async def test_a_refused_delivery_does_not_store_what_the_caller_sent(
    api: Client, jp_fetch: Any, store_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fluxnb

    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    await api.register("hooked", HOOKED)
    put = await api.put(
        "workflows/hooked/triggers/gh", "O", {"webhook": {"secret_env": "HOOK_SECRET"}}
    )
    assert put.code == 201
    headers = {"X-Fluxnb-Signature": "sha256=00", "X-Fluxnb-Delivery": "x" * 20_000}
    r = await jp_fetch("fluxnb", "hooks", "gh", method="POST", body=b"{}", headers=headers,
                       raise_error=False)  # fmt: skip
    assert r.code in (400, 401)
    with fluxnb.Store(store_file).connect() as con:
        longest = con.execute("SELECT max(length(key)) FROM firings").fetchone()[0]
    assert longest is None or longest <= 300


EVENTED = SUMS + "triggers:\n  - {id: on-ping, event: ping}\n"


async def test_a_triggered_run_bills_the_tenant_of_who_registered_it(
    api: Client, store_file: str
) -> None:
    import fluxnb

    await api.register("sums", EVENTED)  # otto: team-a, tenant acme
    assert (await api.post("events/ping", "O", {})).code == 202
    tenants: list[tuple] = []
    for _ in range(400):  # until the firing's run ended (none left going at teardown)
        with fluxnb.Store(store_file).connect() as con:
            tenants = con.execute("SELECT tenant FROM runs WHERE workflow = 'sums'").fetchall()
            going = con.execute(
                "SELECT count(*) FROM firings WHERE outcome IN ('started', 'queued')"
            ).fetchone()[0]
        if tenants and not going:
            break
        await asyncio.sleep(0.05)
    assert tenants == [("acme",)]


async def test_a_trigger_error_reaches_its_own_namespace_only(
    api: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fluxnb.triggers import _records

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("the bus table is unreadable")

    monkeypatch.setattr(_records, "pending_events", broken)
    await api.register("sums", EVENTED)
    await api.post("events/ping", "O", {})  # wakes the trigger service: its pass fails
    everything = {"timeout": "0", "last_event_id": "0-0"}  # another boot's id: all it holds
    seen = b""
    for _ in range(100):
        seen = (await api.get("stream", "O", params=everything)).body
        if b"trigger_error" in seen:
            break
        await asyncio.sleep(0.05)
    assert b"trigger_error" in seen
    assert b"trigger_error" not in (await api.get("stream", "B", params=everything)).body


MARKED = GATED.replace("tests.server_steps:wait_for_file", "tests.test_server_attacks:marked_wait")


async def test_a_cancelled_run_is_not_resumed_while_its_step_still_executes(
    api: Client, gate: Path
) -> None:
    calls = gate.with_name("calls")
    await api.register("gated", MARKED)
    await api.post("workflows/gated/runs", "O", {"run_id": "g-1"})
    for _ in range(400):
        if calls.exists():
            break
        await asyncio.sleep(0.05)
    assert (await api.post("runs/g-1/cancel", "O")).code == 202
    await api.wait_status("g-1", "O", ("cancelled",))
    resumed = await api.post("runs/g-1/resume", "O")
    await asyncio.sleep(1.5)
    lines = calls.read_text().split()
    executing = lines.count("start") - lines.count("end")
    gate.touch()
    assert executing <= 1, f"{executing} calls of step 'wait' at once (resume: {resumed.code})"


async def test_a_bad_name_in_any_route_is_a_documented_answer(api: Client) -> None:
    failures = []
    for method, path in [
        ("PUT", "workflows/bad%20name"),
        ("GET", "invoices/bad%20name/2026-11"),
        ("POST", "events/bad%20name"),
    ]:
        try:
            r = await api.call(method, path, "A", {"manifest": SUMS} if method == "PUT" else {})
            assert r.code == 404
        except Exception as exc:  # the validator: a status code the document does not list
            failures.append(f"{method} {path}: {type(exc).__name__}")
    assert not failures, failures


async def test_a_viewers_slow_queries_do_not_stall_other_users(api: Client) -> None:
    query = "SELECT count(*) FROM range(100000) a, range(3000) b WHERE a.range + b.range = -1"

    async def other_user() -> float:
        await asyncio.sleep(0.3)  # the four queries hold the threads by now
        start = time.monotonic()
        assert (await api.get("runs", "B")).code == 200
        return time.monotonic() - start

    *answers, waited = await asyncio.gather(
        *[api.post("sql", "V", {"query": query}) for _ in range(4)], other_user()
    )
    assert all(a.code in (200, 422, 503) for a in answers)
    assert waited < 0.5, f"bea's GET /runs waited {waited:.2f} s for vic's queries"


async def test_a_delivery_to_a_paused_trigger_is_not_lost(
    api: Client, jp_fetch: Any, store_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fluxnb.store import Store
    from fluxnb.triggers import firings, sign

    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    await api.register("hooked", HOOKED)
    await api.put("workflows/hooked/triggers/gh", "O", {"webhook": {"secret_env": "HOOK_SECRET"}})
    assert (await api.post("triggers/gh/pause", "O")).code == 200
    headers = {"X-Fluxnb-Signature": sign(b"{}", "s3cret"), "X-Fluxnb-Delivery": "d-1"}

    async def deliver() -> Any:
        return await jp_fetch("fluxnb", "hooks", "gh", method="POST", body=b"{}",
                              headers=headers, raise_error=False)  # fmt: skip

    while_paused = await deliver()
    assert while_paused.code == 503 and int(while_paused.headers["Retry-After"]) > 0
    [row] = firings("gh", store=Store(store_file)).to_dict("records")
    assert (row["outcome"], row["key"]) == ("rejected", "gh#delivery:d-1")  # claims nothing
    assert (await api.post("triggers/gh/resume", "O")).code == 200
    retried = await deliver()
    for _ in range(400):  # let the run end before the server stops
        rows = firings("gh", store=Store(store_file)).to_dict("records")
        if not any(r["outcome"] in ("started", "queued") for r in rows):
            break
        await asyncio.sleep(0.05)
    assert while_paused.code >= 300 or retried.code == 202, (while_paused.body, retried.body)
