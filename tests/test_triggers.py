"""Triggers (issue #18): the manifest's triggers:, and the service's firing policies, driven
by a manual clock (no real waiting for cron minutes)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import fluxnb
from fluxnb import ManifestError, TriggerError
from fluxnb.store import Store
from fluxnb.triggers import ManualClock, TriggerService, firings, sign, trigger

BERLIN = ZoneInfo("Europe/Berlin")
JOB = """
name: job
pipeline:
  - step: work
"""


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN).astimezone(UTC)


def rows(store: Store, trigger_id: str | None = None) -> list[dict[str, Any]]:
    return firings(trigger_id, store=store).to_dict("records")


def claimed(store: Store, trigger_id: str | None = None) -> list[dict[str, Any]]:
    """The firings that own their key (not duplicates or rejections)."""
    return [r for r in rows(store, trigger_id) if r["outcome"] not in ("duplicate", "rejected")]


async def walk(svc: TriggerService, clock: ManualClock, until: datetime) -> None:
    """What the service's own loop does, deterministically: pass, jump to the next due
    moment, pass again — until ``until``."""
    await svc.tick()
    await svc.settle()
    while clock.now() < until:
        clock.advance(max(min(svc.next_wait(), (until - clock.now()).total_seconds()), 1e-6))
        await svc.tick()
        await svc.settle()


@pytest.fixture
def store() -> Store:
    return Store(":memory:")


def make(
    store: Store, start: datetime, steps: dict[str, Callable[..., Any]] | None = None, **kw: Any
) -> tuple[TriggerService, ManualClock, list[Any]]:
    calls: list[Any] = []

    def work() -> int:
        calls.append(1)
        return len(calls)

    clock = ManualClock(start)
    ns = {"work": work, **(steps or {})}
    svc = TriggerService(store, clock=clock, namespace=ns, poll=3600, **kw)
    return svc, clock, calls


# ---------------------------------------------------------------- the manifest


def test_manifest_triggers_are_read_with_their_policies() -> None:
    wf = fluxnb.load(
        JOB
        + """
triggers:
  - id: nightly
    schedule: "30 2 * * *"
    timezone: Europe/Berlin
    catch_up: latest
  - {id: hook, webhook: {secret_env: HOOK_SECRET}, overlap: queue, max_concurrency: 2}
  - {id: inbox, watch: {path: in, glob: "*.csv", debounce: 2s}}
  - {id: after, on_run: {workflow: etl, status: failed}}
  - {id: orders, event: order.created, params: {region: eu}, backoff: {after: 2}}
"""
    )
    by_id = {t.id: t for t in wf.triggers}
    assert by_id["nightly"].spec == {"cron": "30 2 * * *", "timezone": "Europe/Berlin"}
    assert by_id["nightly"].catch_up == "latest"
    assert (by_id["hook"].overlap, by_id["hook"].max_concurrency) == ("queue", 2)
    assert by_id["inbox"].spec == {"path": "in", "glob": "*.csv", "debounce": 2.0}
    assert by_id["after"].spec == {"workflow": "etl", "status": "failed"}
    assert by_id["orders"].params == {"region": "eu"} and by_id["orders"].backoff.after == 2
    assert all(t.workflow == "job" for t in wf.triggers)
    assert fluxnb.load(wf.to_yaml()).triggers == wf.triggers  # round trip


def test_bad_triggers_are_reported_with_line_and_key() -> None:
    with pytest.raises(ManifestError) as info:
        fluxnb.load(
            JOB
            + """
triggers:
  - id: a
    schedule: "61 * * * *"
  - id: b
    schedule: "* * * * *"
    webhook: {secret_env: X}
  - id: c
    schedule: "* * * * *"
    timezone: Mars/Olympus
  - id: d
    event: x
  - id: d
    event: y
  - id: e
    webhook: {secret: plain-text-secret}
"""
        )
    problems = {(p.path, p.kind): p for p in info.value.problems}
    assert problems[("triggers[0].schedule", "bad_value")].line == 8
    assert ("triggers[1]", "bad_value") in problems  # two kinds
    assert problems[("triggers[2].timezone", "bad_value")].found == "Mars/Olympus"
    assert problems[("triggers[4].id", "duplicate_id")].line == 17
    assert ("triggers[5].webhook.secret", "unknown_key") in problems
    assert ("triggers[5].webhook", "missing_key") in problems


def test_trigger_from_python_registers_and_refuses_a_taken_id(store: Store) -> None:
    wf = fluxnb.load(JOB)
    [t] = trigger(wf, "hourly", schedule="0 * * * *", store=store)
    assert (t.id, t.workflow, t.kind) == ("hourly", "job", "schedule")
    listed = fluxnb.triggers.list_triggers(store)
    assert listed.to_dict("records")[0]["state"] == "active"
    with pytest.raises(TriggerError) as info:
        trigger("other", "hourly", schedule="0 * * * *", store=store)
    assert (info.value.trigger_id, info.value.workflow) == ("hourly", "job")
    with pytest.raises(ManifestError):
        trigger(wf, "bad", schedule="every hour", store=store)


# ---------------------------------------------------------------- schedules and DST


def test_spring_forward_a_skipped_0230_fires_once_at_0300(store: Store) -> None:
    start = berlin(2026, 3, 28, 12, 0)
    svc, clock, calls = make(store, start)
    trigger(JOB, "nightly", schedule="30 2 * * *", timezone="Europe/Berlin", store=store, now=start)
    run(walk(svc, clock, berlin(2026, 3, 30, 12, 0)))
    fired = [r["scheduled_for"].replace(tzinfo=UTC).astimezone(BERLIN) for r in claimed(store)]
    assert [(t.day, t.hour, t.minute) for t in fired] == [(29, 3, 0), (30, 2, 30)]
    assert len(calls) == 2


def test_fall_back_the_repeated_hour_fires_each_instant_once(store: Store) -> None:
    start = berlin(2026, 10, 25, 1, 0)
    svc, clock, _ = make(store, start)
    trigger(JOB, "half", schedule="*/30 * * * *", timezone="Europe/Berlin", store=store, now=start)
    trigger(JOB, "daily", schedule="30 2 * * *", timezone="Europe/Berlin", store=store, now=start)
    run(walk(svc, clock, berlin(2026, 10, 25, 4, 0) + timedelta(hours=1)))
    half = [r["scheduled_for"].replace(tzinfo=UTC) for r in claimed(store, "half")]
    local = [(t.astimezone(BERLIN).strftime("%H:%M%z")) for t in half]
    assert local[:6] == [
        "01:30+0200",
        "02:00+0200",
        "02:30+0200",
        "02:00+0100",
        "02:30+0100",
        "03:00+0100",
    ]
    assert len(set(half)) == len(half)  # every key a distinct UTC instant
    assert len(claimed(store, "daily")) == 1  # a daily 02:30 runs once on that night


@pytest.mark.parametrize(
    ("policy", "runs", "skipped"), [("skip", 0, 18), ("latest", 1, 17), ("all", 18, 0)]
)
def test_catch_up_after_a_three_hour_outage(
    store: Store, policy: str, runs: int, skipped: int
) -> None:
    start = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    svc, clock, calls = make(store, start)
    trigger(JOB, "every10", schedule="*/10 * * * *", catch_up=policy, store=store, now=start)
    run(svc.tick())
    clock.advance(3 * 3600 + 300)  # down from 09:00 to 12:05: 18 times missed
    run(walk(svc, clock, clock.now()))
    got = claimed(store)
    assert len(got) == 18 and len({r["key"] for r in got}) == 18
    assert len(calls) == runs
    assert sum(r["outcome"] == "skipped" for r in got) == skipped
    if policy == "latest":
        [ran] = [r for r in got if r["outcome"] == "succeeded"]
        assert ran["scheduled_for"] == datetime(2026, 5, 1, 12, 0)
    if skipped:
        assert all("catch_up" in r["skipped_because"] for r in got if r["outcome"] == "skipped")
    # and the schedule goes on as usual after the catch-up
    run(walk(svc, clock, clock.now() + timedelta(minutes=10)))
    assert len(calls) == runs + 1


# ---------------------------------------------------------------- overlap and concurrency


def _gated(store: Store, **settings: Any) -> tuple[TriggerService, ManualClock, dict[str, Any]]:
    """An event trigger whose run waits for a gate the test opens."""
    state: dict[str, Any] = {"running": 0, "most": 0, "done": 0}

    async def slow() -> None:
        state["running"] += 1
        state["most"] = max(state["most"], state["running"])
        try:
            await state["gate"].wait()
        finally:
            state["running"] -= 1
        state["done"] += 1

    svc, clock, _ = make(store, datetime(2026, 1, 1, tzinfo=UTC), {"slow": slow})
    wf = "name: gated\npipeline: [{step: slow}]\n"
    trigger(wf, "go", event="go", store=store, now=clock.now(), **settings)
    return svc, clock, state


async def _three_events(svc: TriggerService, store: Store, state: dict[str, Any]) -> None:
    state["gate"] = asyncio.Event()
    for i in range(3):
        fluxnb.triggers.emit("go", {"n": i}, store=store)
    await svc.tick()
    for _ in range(20):  # let the started runs reach the gate
        await asyncio.sleep(0)


def by_event(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Firings in the order of the events they fired for."""
    return sorted(found, key=lambda r: json.loads(r["payload"])["data"]["n"])


@pytest.mark.parametrize(
    ("settings", "first", "final", "most"),
    [
        ({}, ["started"] * 3, ["succeeded"] * 3, 3),
        (
            {"overlap": "skip"},
            ["started", "skipped", "skipped"],
            ["succeeded", "skipped", "skipped"],
            1,
        ),
        ({"overlap": "queue"}, ["started", "queued", "queued"], ["succeeded"] * 3, 1),
        (
            {"overlap": "cancel_previous"},
            ["cancelled", "cancelled", "started"],
            ["cancelled", "cancelled", "succeeded"],
            1,
        ),
        ({"max_concurrency": 2}, ["started", "started", "queued"], ["succeeded"] * 3, 2),
    ],
)
def test_overlap_policies(
    store: Store, settings: dict[str, Any], first: list[str], final: list[str], most: int
) -> None:
    svc, _, state = _gated(store, **settings)

    async def go() -> None:
        await _three_events(svc, store, state)
        for _ in range(500):  # a cancelled run is recorded from a thread: give it time
            if [r["outcome"] for r in by_event(rows(store))] == first:
                break
            await asyncio.sleep(0.01)
        assert [r["outcome"] for r in by_event(rows(store))] == first
        state["gate"].set()
        for _ in range(5):  # queued firings start as runs end, on the next passes
            await svc.settle()
            await svc.tick()

    run(go())
    order = by_event(rows(store))
    assert [r["outcome"] for r in order] == final
    assert state["most"] == most
    if settings.get("overlap") == "skip":
        assert "overlap: skip" in order[1]["skipped_because"]


# ---------------------------------------------------------------- webhooks


HOOKED = """
name: hooked
params:
  body: {type: str}
  delivery: {type: str}
pipeline:
  - step: got
    with: {body: "{{body}}", delivery: "{{delivery}}"}
"""


def test_webhook_duplicate_delivery_starts_no_second_run_and_bad_signature_is_401(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_SECRET", "s3cret")
    got: list[tuple[str, str]] = []
    svc, clock, _ = make(
        store,
        datetime(2026, 1, 1, tzinfo=UTC),
        {"got": lambda body, delivery: got.append((body, delivery))},
    )
    trigger(HOOKED, "gh", webhook={"secret_env": "HOOK_SECRET"}, store=store, now=clock.now())
    body = b'{"ref": "main"}'
    good = {"X-Fluxnb-Signature": sign(body, "s3cret"), "X-Fluxnb-Delivery": "d-1"}

    async def go() -> list[Any]:
        answers = [await svc.webhook("gh", body, good)]
        answers.append(await svc.webhook("gh", body, {**good}))  # the same delivery again
        bad = {**good, "X-Fluxnb-Signature": sign(body, "wrong"), "X-Fluxnb-Delivery": "d-2"}
        answers.append(await svc.webhook("gh", body, bad))
        answers.append(await svc.webhook("gh", body, {"X-Fluxnb-Delivery": "d-3"}))
        answers.append(await svc.webhook("nope", body, good))
        await svc.settle()
        return answers

    first, again, forged, unsigned, unknown = run(go())
    assert (first.status, first.body["outcome"]) == (202, "started")
    assert (again.status, again.body["outcome"]) == (200, "duplicate")
    assert again.body["run_id"] == first.body["run_id"]
    assert forged.status == unsigned.status == 401
    assert unknown.status == 404
    assert got == [('{"ref": "main"}', "d-1")]  # one run, with the body as a param
    outcomes = [(r["key"], r["outcome"]) for r in rows(store)]
    assert outcomes.count(("gh#delivery:d-1", "succeeded")) == 1
    assert outcomes.count(("gh#delivery:d-1", "duplicate")) == 1
    rejected = [r for r in rows(store) if r["outcome"] == "rejected"]
    assert [r["key"] for r in rejected] == ["gh#delivery:d-2", "gh#delivery:d-3"]
    assert "does not match" in rejected[0]["skipped_because"]


def test_webhook_without_its_secret_set_refuses_everything(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UNSET_SECRET", raising=False)
    svc, clock, calls = make(store, datetime(2026, 1, 1, tzinfo=UTC))
    trigger(JOB, "h", webhook={"secret_env": "UNSET_SECRET"}, store=store, now=clock.now())
    headers = {"X-Fluxnb-Signature": sign(b"x", ""), "X-Fluxnb-Delivery": "1"}
    answer = run(svc.webhook("h", b"x", headers))
    assert answer.status == 401 and calls == []
    with store.connect() as con:  # the secret is never stored
        assert "UNSET_SECRET" in con.execute("SELECT spec FROM triggers").fetchone()[0]


# ---------------------------------------------------------------- watch, on_run, events


def fed(name: str, step: str, param: str, kind: str, arg: str | None = None) -> str:
    """A one-step workflow whose step gets the firing's fact ``param`` as ``arg``."""
    return (
        f"name: {name}\nparams:\n  {param}: {{type: {kind}}}\npipeline:\n  - step: {step}\n"
        f"    with:\n      {arg or param}: {{{{{param}}}}}\n"
    )


def test_a_burst_of_file_changes_is_debounced_to_one_run(store: Store) -> None:
    wf = fed("ingest", "take", "paths", "list")
    seen: list[list[str]] = []
    svc, clock, _ = make(
        store,
        datetime(2026, 1, 1, tzinfo=UTC),
        {"take": lambda paths: seen.append(paths)},  # noqa: PLW0108 - bound by keyword
    )
    trigger(wf, "inbox", watch={"path": "in", "debounce": "1s"}, store=store, now=clock.now())

    async def go() -> None:
        for i in range(5):  # five changes 0.3 s apart: the burst never goes quiet for 1 s
            svc.notice_changes("inbox", [f"in/{i}.csv"])
            clock.advance(0.3)
            await svc.tick()
        assert rows(store) == []
        clock.advance(svc.next_wait())
        await svc.tick()
        await svc.settle()

    run(go())
    assert seen == [[f"in/{i}.csv" for i in range(5)]]
    assert [r["outcome"] for r in rows(store)] == ["succeeded"]


def test_on_run_chains_three_workflows_with_outputs_as_params(store: Store) -> None:
    a = "name: a\npipeline: [{step: first}]\n"
    b = fed("b", "second", "outputs", "dict", arg="up")
    c = fed("c", "third", "outputs", "dict", arg="up")
    got: list[Any] = []
    steps = {
        "first": lambda: 1,
        "second": lambda up: up["first"] + 1,
        "third": lambda up: got.append(up["second"] + 1),
    }
    svc, clock, _ = make(store, datetime(2026, 1, 1, tzinfo=UTC), steps)
    trigger(a, "start", event="kick", store=store, now=clock.now())
    trigger(b, "b-after-a", on_run={"workflow": "a"}, store=store, now=clock.now())
    trigger(
        c,
        "c-after-b",
        on_run={"workflow": "b", "status": "succeeded"},
        store=store,
        now=clock.now(),
    )

    async def go() -> None:
        fluxnb.triggers.emit("kick", store=store)
        for _ in range(4):
            await svc.tick()
            await svc.settle()

    run(go())
    assert got == [3]
    chain = {r["trigger"]: r for r in rows(store)}
    assert set(chain) == {"start", "b-after-a", "c-after-b"}
    assert chain["c-after-b"]["key"] == "c-after-b#run:" + chain["b-after-a"]["run_id"]
    assert all(r["outcome"] == "succeeded" for r in chain.values())


def test_a_step_emits_an_event_that_fires_another_workflow(store: Store) -> None:
    producer = "name: producer\npipeline: [{step: make}]\n"
    consumer = fed("consumer", "use", "data", "dict", arg="order")
    used: list[Any] = []

    def make_order(ctx: Any) -> None:
        ctx.emit("order.created", {"id": 7})

    svc, clock, _ = make(
        store,
        datetime(2026, 1, 1, tzinfo=UTC),
        {"make": make_order, "use": lambda order: used.append(order)},  # noqa: PLW0108 - bound by keyword
    )
    trigger(consumer, "on-order", event="order.created", store=store, now=clock.now())

    async def go() -> None:
        await fluxnb.arun(producer, {"make": make_order}, store=store)
        await svc.tick()
        await svc.settle()
        await svc.tick()  # the event is fired once only

    run(go())
    assert used == [{"id": 7}]
    [row] = rows(store)
    assert row["outcome"] == "succeeded"
    with store.connect() as con:
        assert con.execute("SELECT source, step FROM bus_events").fetchall() == [("step", "make")]


def test_emit_without_a_store_says_so() -> None:
    def make_order(ctx: Any) -> None:
        ctx.emit("x", 1)

    result = fluxnb.run("pipeline: [{step: make}]", {"make": make_order}, store=None)
    assert "no store to post to" in str(result.errors["make"])


# ---------------------------------------------------------------- robustness


def test_repeated_failures_back_off_with_the_reason_shown(store: Store) -> None:
    def broken() -> None:
        raise RuntimeError("database down")

    start = datetime(2026, 1, 1, tzinfo=UTC)
    svc, clock, _ = make(store, start, {"broken": broken})
    wf = "name: fragile\npipeline: [{step: broken}]\n"
    trigger(
        wf,
        "minutely",
        schedule="* * * * *",
        backoff={"after": 2, "initial": "5m"},
        store=store,
        now=start,
    )
    run(walk(svc, clock, start + timedelta(minutes=4)))
    got = [r["outcome"] for r in claimed(store)]
    assert got == ["failed", "failed", "skipped", "skipped"]
    assert "backing off after 2 failed runs" in claimed(store)[2]["skipped_because"]
    assert "database down" in claimed(store)[2]["skipped_because"]
    state = fluxnb.triggers.list_triggers(store).to_dict("records")[0]
    assert state["failures"] == 2 and "database down" in state["last_error"]
    # 5 minutes after the second failure it tries again; failing, it waits twice as long
    run(walk(svc, clock, start + timedelta(minutes=8)))
    assert [r["outcome"] for r in claimed(store)][6:] == ["failed", "skipped"]
    assert "after 3 failed runs" in claimed(store)[7]["skipped_because"]


def test_one_bad_trigger_never_stops_the_others(store: Store) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    svc, clock, calls = make(store, start)
    trigger(JOB, "good", schedule="* * * * *", store=store, now=start)
    trigger("missing-workflow", "orphan", schedule="* * * * *", store=store, now=start)
    trigger(JOB, "corrupt", schedule="* * * * *", store=store, now=start)
    with store.connect() as con:
        con.execute("UPDATE triggers SET spec = '{not json' WHERE trigger_id = 'corrupt'")
    run(walk(svc, clock, start + timedelta(minutes=3)))
    assert len(calls) == 3
    orphan = claimed(store, "orphan")
    assert [r["outcome"] for r in orphan] == ["failed"] * 3
    assert "does not know" in orphan[0]["skipped_because"]


def test_pause_stops_firing_and_resume_does_not_catch_up(store: Store) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    svc, clock, calls = make(store, start)
    trigger(JOB, "m", schedule="* * * * *", catch_up="all", store=store, now=start)
    run(walk(svc, clock, start + timedelta(minutes=2)))
    fluxnb.triggers.pause("m", store=store)
    run(walk(svc, clock, start + timedelta(minutes=10)))
    assert len(calls) == 2
    with store.connect() as con:  # resume "now" (the manual clock's now)
        con.execute(
            "UPDATE triggers SET paused = false, since = ? WHERE trigger_id = 'm'",
            [clock.now().replace(tzinfo=None)],
        )
    run(walk(svc, clock, start + timedelta(minutes=12)))
    assert len(calls) == 4


def test_fire_now_queues_a_firing_that_the_service_starts(store: Store) -> None:
    svc, clock, calls = make(store, datetime(2026, 1, 1, tzinfo=UTC))
    trigger(JOB, "manual", event="never", store=store, now=clock.now())
    key = fluxnb.triggers.fire_now("manual", store=store)
    assert [r["outcome"] for r in rows(store)] == ["queued"]
    run(walk(svc, clock, clock.now()))
    assert calls == [1]
    assert [(r["key"], r["outcome"]) for r in rows(store)] == [(key, "succeeded")]
    with pytest.raises(TriggerError):
        fluxnb.triggers.fire_now("nope", store=store)


def test_firings_reach_subscribers(store: Store) -> None:
    svc, clock, _ = make(store, datetime(2026, 1, 1, tzinfo=UTC))
    trigger(JOB, "e", event="ping", store=store, now=clock.now())
    seen: list[dict[str, Any]] = []
    svc.subscribe(seen.append)
    fluxnb.triggers.emit("ping", store=store)
    run(walk(svc, clock, clock.now()))
    assert [e["outcome"] for e in seen] == ["started", "succeeded"]
    assert {e["trigger"] for e in seen} == {"e"} and seen[0]["run_id"] == seen[1]["run_id"]


def test_a_real_folder_watch_fires_once_for_a_burst_of_files(store: Store, tmp_path: Any) -> None:
    folder = tmp_path / "inbox"
    folder.mkdir()
    seen: list[list[str]] = []
    wf = fed("ingest", "take", "paths", "list")
    trigger(wf, "csvs", watch={"path": str(folder), "glob": "*.csv", "debounce": 0.3}, store=store)
    svc = TriggerService(store, namespace={"take": lambda paths: seen.append(paths)}, poll=0.05)  # noqa: PLW0108 - bound by keyword

    async def go() -> None:
        await svc.start()
        await asyncio.sleep(0.3)  # the watcher is up
        for i in range(5):
            (folder / f"{i}.csv").write_text("a,b\n")
            (folder / f"{i}.txt").write_text("not matched")
            await asyncio.sleep(0.02)
        for _ in range(200):
            if seen:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # nothing more comes
        await svc.stop(runs="wait")

    run(go())
    assert len(seen) == 1
    assert sorted(Path(p).name for p in seen[0]) == [f"{i}.csv" for i in range(5)]


def test_cli_lists_pauses_resumes_and_fires_now(store_path: str, capsys: Any) -> None:
    from fluxnb.cli import main

    trigger(JOB, "nightly", schedule="0 2 * * *", timezone="Europe/Berlin", store=store_path)
    assert main(["triggers", "list", "--store", store_path, "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert (listed["trigger"], listed["kind"], listed["state"]) == ("nightly", "schedule", "active")
    assert main(["triggers", "pause", "nightly", "--store", store_path]) == 0
    assert fluxnb.triggers.list_triggers(store_path)["state"].tolist() == ["paused"]
    assert main(["triggers", "resume", "nightly", "--store", store_path]) == 0
    assert fluxnb.triggers.list_triggers(store_path)["state"].tolist() == ["active"]
    assert main(["triggers", "fire-now", "nightly", "--store", store_path]) == 0
    assert [r["outcome"] for r in rows(Store(store_path))] == ["queued"]
    capsys.readouterr()
    assert main(["triggers", "pause", "nope", "--store", store_path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no trigger 'nope'" in err and "Traceback" not in err


def test_events_and_runs_fire_only_triggers_of_their_namespace(store: Store) -> None:
    svc, clock, calls = make(store, datetime(2026, 1, 1, tzinfo=UTC))
    trigger(JOB, "a-only", event="ping", store=store, now=clock.now(), namespace="team-a")
    with fluxnb.session(namespace="team-b"):
        fluxnb.triggers.emit("ping", store=store)
    run(walk(svc, clock, clock.now()))
    assert calls == [] and rows(store) == []
    with fluxnb.session(namespace="team-a"):
        fluxnb.triggers.emit("ping", store=store)
    run(walk(svc, clock, clock.now()))
    assert calls == [1]


def test_a_service_stopped_mid_run_leaves_the_firing_to_the_next_one(store: Store) -> None:
    svc, clock, state = _gated(store)

    async def go() -> None:
        state["gate"] = asyncio.Event()
        fluxnb.triggers.emit("go", {"n": 0}, store=store)
        await svc.tick()
        for _ in range(20):
            await asyncio.sleep(0)
        await svc.stop(runs="leave")  # a server shutting down mid-run
        assert [r["outcome"] for r in rows(store)] == ["started"]
        state["gate"].set()
        after = TriggerService(store, clock=clock, namespace=svc.launcher.namespace, poll=3600)
        await after.tick()  # finds the started firing with no live owner: resumes its run
        await after.settle()

    run(go())
    [row] = rows(store)
    assert row["outcome"] == "succeeded" and state["done"] == 1
    with store.connect() as con:
        assert con.execute(
            "SELECT status, resumed FROM runs WHERE run_id = ?", [row["run_id"]]
        ).fetchall() == [("succeeded", 1)]


def test_a_viewer_may_not_pause_and_other_namespaces_stay_unseen(store: Store) -> None:
    trigger(JOB, "ours", event="e", store=store, namespace="team-a")
    trigger(JOB, "theirs", event="e", store=store, namespace="team-b")
    fluxnb.triggers.emit("e", store=store)  # (no service runs: nothing fires)
    with fluxnb.session(role="viewer", namespace="team-a"):
        assert fluxnb.triggers.list_triggers(store)["trigger"].tolist() == ["ours"]
        with pytest.raises(fluxnb.PermissionDenied):
            fluxnb.triggers.pause("ours", store=store)
    with fluxnb.session(role="operator", namespace="team-a"):
        fluxnb.triggers.pause("ours", store=store)
        with pytest.raises(TriggerError):  # the same answer as for no trigger at all
            fluxnb.triggers.fire_now("theirs", store=store)
        assert fluxnb.triggers.firings("theirs", store=store).empty
    with store.connect() as con:
        denied = con.execute("SELECT action, outcome FROM audit WHERE outcome = 'denied'")
        assert denied.fetchall() == [("run", "denied")]


@pytest.mark.parametrize("policy", ["skip", "latest", "all"])
def test_whatever_the_outages_every_schedule_time_is_claimed_exactly_once(policy: str) -> None:
    """Property: passes at random moments (some after long outages) claim each cron time
    once — fired or skipped, never missing, never twice; with catch_up: all, each ran."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from fluxnb.triggers._schedule import times_between

    crons = st.sampled_from(["*/15 * * * *", "0 */2 * * *", "30 2 * * *", "*/30 * * * *"])
    jumps = st.lists(st.integers(1, 2 * 3600), min_size=1, max_size=5)  # up to 10 h

    @settings(max_examples=6, deadline=None)  # bounded: a few seconds per policy
    @given(cron=crons, gaps=jumps)
    def check(cron: str, gaps: list[int]) -> None:
        store = Store(":memory:")
        start = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)  # across Berlin's fall-back night
        svc, clock, calls = make(store, start)
        trigger(JOB, "t", schedule=cron, timezone="Europe/Berlin", catch_up=policy,
                store=store, now=start)  # fmt: skip

        async def go() -> None:
            for gap in gaps:
                clock.advance(gap)
                await svc.tick()
                await svc.settle()

        run(go())
        due, _ = times_between(fluxnb.triggers.Trigger("t", "schedule", {"cron": cron,
                               "timezone": "Europe/Berlin"}), start, clock.now())  # fmt: skip
        got = claimed(store)
        keys = [r["key"] for r in got]
        assert len(keys) == len(set(keys))
        assert sorted(r["scheduled_for"] for r in got) == [t.replace(tzinfo=None) for t in due]
        ran = [r for r in got if r["outcome"] == "succeeded"]
        assert len(calls) == len(ran)
        if policy == "all":
            assert len(ran) == len(due)

    check()
