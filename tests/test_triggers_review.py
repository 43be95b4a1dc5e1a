"""Triggers after the attack of issue #18 (tests/test_server_attacks.py): what an anonymous
webhook caller can make the store hold, a delivery to a paused or backing-off trigger, whom a
trigger's runs bill, the trigger tables in a non-admin session's SQL, a service stopped while
a run's end is being recorded, and watch folders under a server's root. Driven by a manual
clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

import fluxnb
from fluxnb.store import Store
from fluxnb.triggers import ManualClock, TriggerService, sign, trigger
from fluxnb.triggers._service import RECORDED_REFUSALS

HOOKED = """
name: hooked
params:
  delivery: {type: str, default: ""}
pipeline:
  - step: got
    with: {delivery: "{{delivery}}"}
"""
START = datetime(2026, 1, 1, tzinfo=UTC)
BODY = b'{"ref": "main"}'


@pytest.fixture
def hooked(monkeypatch: pytest.MonkeyPatch) -> tuple[Store, TriggerService, ManualClock, list]:
    """A webhook trigger 'gh' (secret s3cret) and a service whose step records deliveries."""
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    store = Store(":memory:")
    got: list[str] = []

    def step(delivery: str) -> None:  # (list.append takes no keyword argument)
        got.append(delivery)

    clock = ManualClock(START)
    svc = TriggerService(store, clock=clock, namespace={"got": step}, poll=3600)
    trigger(HOOKED, "gh", webhook={"secret_env": "HOOK_SECRET"}, store=store, now=START)
    return store, svc, clock, got


def _signed(delivery: str, secret: str = "s3cret") -> dict[str, str]:
    return {"X-Fluxnb-Signature": sign(BODY, secret), "X-Fluxnb-Delivery": delivery}


def _one(store: Store, query: str) -> Any:
    with store.connect() as con:
        return con.execute(query).fetchall()[0][0]


def test_a_flood_of_forged_deliveries_records_a_few_rows_a_minute_and_counts_all(
    hooked: tuple[Store, TriggerService, ManualClock, list],
) -> None:
    store, svc, clock, got = hooked
    flood = 3 * RECORDED_REFUSALS

    async def go() -> list[int]:
        answers = [await svc.webhook("gh", BODY, _signed(f"f-{i}", "guess")) for i in range(flood)]
        await svc.tick()  # counts the refusals that got no row
        clock.advance(61)  # a new minute: recorded again, up to the limit
        answers += [await svc.webhook("gh", BODY, _signed(f"g-{i}", "guess")) for i in range(2)]
        return [a.status for a in answers]

    assert set(asyncio.run(go())) == {401}
    assert got == []
    rejected = "SELECT count(*) FROM firings WHERE outcome = 'rejected'"
    assert _one(store, rejected) == RECORDED_REFUSALS + 2
    assert _one(store, "SELECT rejections FROM triggers WHERE trigger_id = 'gh'") == flood + 2
    assert _one(store, "SELECT count(*) FROM firings WHERE claim IS NOT NULL") == 0


@pytest.mark.parametrize(
    "delivery", ["x" * 201, "a b", "a\nb", "ä", "-leading", "id#delivery:x", "a;drop"]
)
def test_a_delivery_id_that_cannot_be_a_key_is_400_and_writes_nothing(
    hooked: tuple[Store, TriggerService, ManualClock, list], delivery: str
) -> None:
    store, svc, _, got = hooked
    for secret in ("s3cret", "guess"):  # signed or not: refused before anything is written
        answer = asyncio.run(svc.webhook("gh", BODY, _signed(delivery, secret)))
        assert answer.status == 400 and "X-Fluxnb-Delivery" in answer.body["error"]["message"]
    assert _one(store, "SELECT count(*) FROM firings") == 0
    assert _one(store, "SELECT rejections FROM triggers") == 0
    assert got == []


def test_an_unset_secret_answers_exactly_as_a_wrong_signature(
    hooked: tuple[Store, TriggerService, ManualClock, list], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, svc, _, _ = hooked
    wrong = asyncio.run(svc.webhook("gh", BODY, _signed("d-1", "guess")))
    monkeypatch.delenv("HOOK_SECRET")
    unset = asyncio.run(svc.webhook("gh", BODY, _signed("d-2", "")))
    unsigned = asyncio.run(svc.webhook("gh", BODY, {"X-Fluxnb-Delivery": "d-3"}))
    assert wrong == unset == unsigned  # status, body and headers: nothing tells them apart
    assert wrong.status == 401
    with store.connect() as con:  # the record says why, for whoever runs the server
        reasons = con.execute("SELECT skipped_because FROM firings ORDER BY key").fetchall()
    assert "does not match" in reasons[0][0] and "HOOK_SECRET is empty" in reasons[1][0]


def test_a_delivery_to_a_paused_trigger_is_503_and_fires_once_resumed(
    hooked: tuple[Store, TriggerService, ManualClock, list],
) -> None:
    store, svc, _, got = hooked
    fluxnb.triggers.pause("gh", store=store)

    async def go() -> tuple[Any, Any, Any]:
        paused = await svc.webhook("gh", BODY, _signed("d-1"))
        fluxnb.triggers.resume("gh", store=store)
        retried = await svc.webhook("gh", BODY, _signed("d-1"))
        again = await svc.webhook("gh", BODY, _signed("d-1"))
        await svc.settle()
        return paused, retried, again

    paused, retried, again = asyncio.run(go())
    assert paused.status == 503 and int(paused.headers["Retry-After"]) > 0
    assert (retried.status, retried.body["outcome"]) == (202, "started")
    assert (again.status, again.body["outcome"]) == (200, "duplicate")
    assert got == ["d-1"]  # the delivery was not lost, and ran once


MANIFEST_TENANT = "name: billed\nrouter: {tenant: globex}\npipeline:\n  - step: work\n"
JOB = "name: job\npipeline:\n  - step: work\n"


@pytest.mark.parametrize(
    ("manifest", "billed"), [(JOB, "acme"), (MANIFEST_TENANT, "globex")], ids=["session", "router"]
)
def test_a_triggers_runs_bill_the_tenant_that_registered_it(manifest: str, billed: str) -> None:
    store = Store(":memory:")
    with fluxnb.session(role="operator", tenant="acme", namespace="team-a"):
        [t] = trigger(manifest, "ping", event="ping", store=store, now=START)
        fluxnb.triggers.emit("ping", store=store)
    assert fluxnb.triggers.list_triggers(store)["trigger"].tolist() == [t.id]
    clock = ManualClock(START)
    svc = TriggerService(store, clock=clock, namespace={"work": lambda: 1}, poll=3600)

    async def go() -> None:  # the service acts as its process's session: tenant 'default'
        await svc.tick()
        await svc.settle()

    asyncio.run(go())
    with store.connect() as con:
        assert con.execute("SELECT tenant FROM runs").fetchall() == [(billed,)]
        assert con.execute("SELECT namespace, tenant FROM triggers").fetchall() == [
            ("team-a", "acme")
        ]


def test_a_non_admin_reads_its_namespaces_trigger_tables_only(
    hooked: tuple[Store, TriggerService, ManualClock, list],
) -> None:
    store, svc, _, _ = hooked  # 'gh' is in namespace 'default'
    asyncio.run(svc.webhook("gh", BODY, _signed("d-1", "guess")))  # a rejected firing
    trigger(JOB, "theirs", event="e", store=store, namespace="team-b", now=START)
    with fluxnb.session(namespace="team-b"):
        fluxnb.triggers.emit("e", store=store)
    query = (
        "SELECT (SELECT list(trigger_id) FROM triggers) AS t, "
        "(SELECT count(*) FROM firings) AS f, (SELECT list(name) FROM bus_events) AS e"
    )
    with fluxnb.session(role="viewer", namespace="team-b"):
        [seen] = fluxnb.sql(query, store=store).to_dict("records")
    assert (list(seen["t"]), seen["f"], list(seen["e"])) == (["theirs"], 0, ["e"])
    with fluxnb.session(role="viewer", namespace="default"):
        [seen] = fluxnb.sql(query, store=store).to_dict("records")
    assert (list(seen["t"]), seen["f"], seen["e"]) == (["gh"], 1, None)


def test_stopping_while_a_runs_end_is_recorded_leaves_it_to_the_next_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    from fluxnb.triggers import _records

    store = Store(":memory:")
    recording, release = threading.Event(), threading.Event()
    finish = _records.finish

    def slow_finish(*args: Any, **kwargs: Any) -> None:
        recording.set()
        release.wait(10)
        finish(*args, **kwargs)

    trigger(JOB, "ping", event="ping", store=store, now=START)
    fluxnb.triggers.emit("ping", store=store)
    clock = ManualClock(START)
    svc = TriggerService(store, clock=clock, namespace={"work": lambda: 1}, poll=3600)
    monkeypatch.setattr(_records, "finish", slow_finish)

    async def go() -> None:
        await svc.tick()
        while not recording.is_set():
            await asyncio.sleep(0.01)
        await svc.stop(runs="leave")  # a server shutting down: no CancelledError out of it
        release.set()

    asyncio.run(go())
    monkeypatch.setattr(_records, "finish", finish)
    after = TriggerService(store, clock=clock, namespace={"work": lambda: 1}, poll=3600)
    asyncio.run(after.tick())
    [row] = fluxnb.triggers.firings("ping", store=store).to_dict("records")
    assert row["outcome"] == "succeeded"  # the next pass read the run's end from the store


def test_a_service_with_a_root_watches_under_it_only(tmp_path: Any) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    store = Store(":memory:")
    paths = {"out": "../outside", "abs": str(tmp_path / "abs"), "link": "link/in", "in": "inbox"}
    for tid, path in paths.items():
        trigger(JOB, tid, watch={"path": path}, store=store, now=START)
    svc = TriggerService(store, clock=ManualClock(START), poll=3600, root=str(root))
    events: list[dict[str, Any]] = []
    svc.subscribe(events.append)

    async def go() -> None:
        await svc.start()  # its loop starts the watchers
        for _ in range(250):
            if (root / "inbox").is_dir():
                break
            await asyncio.sleep(0.02)
        await svc.tick()  # a second pass says nothing new
        await svc.stop()

    asyncio.run(go())
    assert (root / "inbox").is_dir()  # relative to the root, not to the working directory
    assert not any((tmp_path / name).exists() for name in ("outside", "abs", "elsewhere"))
    refused = sorted(e["trigger"] for e in events if e["type"] == "trigger_error")
    assert refused == ["abs", "link", "out"]  # each said once
    assert "outside the server's root" in svc.errors["out"] and "in" not in svc.errors


def test_a_delivery_while_the_trigger_backs_off_is_503_until_the_backoff_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    store = Store(":memory:")
    failing = {"on": True}
    got: list[str] = []

    def step(delivery: str) -> None:
        if failing["on"]:
            raise RuntimeError("the database is down")
        got.append(delivery)

    clock = ManualClock(START)
    svc = TriggerService(store, clock=clock, namespace={"got": step}, poll=3600)
    hook = {"secret_env": "HOOK_SECRET"}
    trigger(HOOKED, "gh", webhook=hook, backoff={"after": 2, "initial": "1m"}, store=store)

    async def go() -> tuple[Any, Any]:
        for n in range(2):  # two failed runs: the trigger backs off for a minute
            assert (await svc.webhook("gh", BODY, _signed(f"f-{n}"))).status == 202
            await svc.settle()
        failing["on"] = False
        held = await svc.webhook("gh", BODY, _signed("d-1"))
        clock.advance(61)
        later = await svc.webhook("gh", BODY, _signed("d-1"))
        await svc.settle()
        return held, later

    held, later = asyncio.run(go())
    assert held.status == 503 and 0 < int(held.headers["Retry-After"]) <= 60
    assert (later.status, later.body["outcome"]) == (202, "started")
    assert got == ["d-1"]  # held back, not lost
