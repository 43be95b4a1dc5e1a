"""Attacks on ``_net_run.INLINE_ENDS``: in a plain automatic net run (no streams, firings
not kept), an action that suspended reports its end and starts the next firings from inside
its own task (``NetEngine.poke`` pumps inline, the executor may hand the next action to that
task). Every scenario runs with the switch on and off, without a store, with a
MemoryRecorder and with a DuckDB file, and compares what a user sees (status, ending,
reason, marking, tokens with their data and history, sequence, outputs, errors, events rows
without clocks, tasks left behind); each run is bounded (a hang fails the test). Tests
are named "found here, fixed" (each failed before its fix) or "DIFFERENCE (intended)"."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import math
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import fluxnb
from fluxnb.engine import _net_run
from fluxnb.engine._breaker import BREAKERS
from fluxnb.engine._net_run import NetEngine, plan_net
from fluxnb.spec import Arc, Net, OnError, RetryPolicy, RouterSettings, Transition
from fluxnb.testing import MemoryRecorder

BOUND = 5.0  # seconds: a run (or a scenario's runs) that takes longer has hung
MODES = (True, False)  # INLINE_ENDS on, off
STORES = ("none", "memory", "duckdb")


# ---------------------------------------------------------------------- machinery
@contextmanager
def inline(on: bool) -> Iterator[None]:
    """INLINE_ENDS set to ``on`` for the block, restored after."""
    old = _net_run.INLINE_ENDS
    _net_run.INLINE_ENDS = on
    try:
        yield
    finally:
        _net_run.INLINE_ENDS = old


def in_thread(fn: Callable[[], Any], bound: float = BOUND, collect: bool = False) -> Any:
    """``fn()`` in a daemon thread (its own event loop, if it makes one), bounded: a hang
    fails the test instead of blocking it; what ``fn`` raised is raised here."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # handed to the test's thread
            out["error"] = exc

    th = threading.Thread(target=target, daemon=True, name="net-inline-attack")
    th.start()
    th.join(bound)
    if collect:  # the run's garbage (tasks with their errors) here, not in pytest's report
        gc.collect()
    if th.is_alive():
        pytest.fail(f"hung: still running after {bound} s")
    if "error" in out:
        raise out["error"]
    return out["value"]


def on_loop(go: Callable[[], Awaitable[Any]], collect: bool = False) -> tuple[Any, list[str]]:
    """Await ``go()`` on a fresh loop (in a bounded thread); returns its value and what was
    left behind: the tasks still on the loop once it returned (cancelled, so nothing leaks)
    and the errors the loop's exception handler got ("Task exception was never retrieved":
    an error that escaped into a task nobody awaits, seen when ``collect``: the run's
    garbage is collected in here, also so that a task's finalizer does not run while
    pytest parses a failure's source, which crashed pytest: "AST constructor recursion
    depth mismatch")."""

    async def main() -> tuple[Any, list[str]]:
        lost: list[str] = []
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(
            lambda _, ctx: lost.append(f"{ctx.get('message')}: {ctx.get('exception')!r}")
        )
        value = await go()
        me = asyncio.current_task()
        left = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
        for t in left:
            t.cancel()
        await asyncio.sleep(0)
        if collect:
            gc.collect()
        return value, [repr(t) for t in left] + lost

    try:
        return in_thread(lambda: asyncio.run(main()), collect=collect)
    finally:
        if collect:
            gc.collect()


def observe(r: Any) -> dict[str, Any]:
    """What a user reads off a NetResult, without the clock."""
    return {
        "status": r.status.value,
        "ending": r.ending,
        "reason": r.reason,
        "marking": dict(r.marking),
        "sequence": list(r.sequence),
        "outputs": dict(r.outputs),
        "errors": dict(r.errors),
        "tokens": {
            p: [(t.id, t.data, [(m.transition, m.firing, m.place) for m in t.history]) for t in ts]
            for p, ts in r.tokens.items()
        },
        "recording_error": r.recording_error is not None,
    }


def mem_rows(rec: MemoryRecorder) -> list[tuple[Any, ...]]:
    """A MemoryRecorder's events in seq order, without run id and clocks (seq, step,
    attempt, status, final, delay, error type, message, traceback, executor, worker,
    output)."""
    out = [(*r[1:6], *r[9:15], repr(r[15]) if len(r) > 15 else None) for r in rec.events]
    return sorted(out, key=lambda r: (r[0], r[2]))


def db_rows(path: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """A DuckDB store's events in seq order without run id and clocks, and its runs' status
    and error."""
    st = fluxnb.store(str(path))
    ev = st.sql(
        "SELECT * EXCLUDE (run_id, started_at, ended_at, duration_s) FROM events "
        "ORDER BY seq, attempt"
    )
    runs = st.sql("SELECT status, error FROM runs")

    def clean(v: Any) -> Any:
        return None if isinstance(v, float) and math.isnan(v) else v

    return (
        [tuple(clean(v) for v in row) for row in ev.itertuples(index=False)],
        [tuple(clean(v) for v in row) for row in runs.itertuples(index=False)],
    )


Scenario = Callable[[], tuple[Net, dict[str, Any]]]


def one_run(scenario: Scenario, on: bool, kind: str, tmp_path: Path, **kw: Any) -> dict[str, Any]:
    """One run of a fresh ``scenario()`` with INLINE_ENDS ``on`` into a store of ``kind``."""
    net, ns = scenario()
    BREAKERS.clear()  # breakers outlive runs: each run starts with closed ones
    rec: Any = None
    if kind == "memory":
        rec = MemoryRecorder()
    elif kind == "duckdb":
        rec = tmp_path / f"{on}-{len(list(tmp_path.iterdir()))}.duckdb"
    with inline(on):
        result, left = on_loop(lambda: fluxnb.arun(net, ns, store=rec, **kw))
    seen = observe(result)
    seen["left"] = left
    if kind == "memory":
        seen["rows"] = mem_rows(rec)
        seen["runs"] = [(x.status, x.error) for x in rec.runs]
    elif kind == "duckdb":
        seen["rows"], seen["runs"] = db_rows(rec)
    return seen


def compare(
    scenario: Scenario,
    tmp_path: Path,
    stores: tuple[str, ...] = STORES,
    view: Callable[[dict[str, Any]], Any] | None = None,
    **kw: Any,
) -> dict[bool, dict[str, dict[str, Any]]]:
    """Every store kind with INLINE_ENDS on and off; asserts on == off for each kind (all of
    it, or what ``view`` keeps), that the store does not change the game (each way: runs are
    reproducible), and that no task is left behind."""
    seen = {on: {k: one_run(scenario, on, k, tmp_path, **kw) for k in stores} for on in MODES}
    see = view or (lambda s: s)
    for kind in stores:
        assert see(seen[True][kind]) == see(seen[False][kind]), kind
    for on in MODES:
        game = [
            {k: v for k, v in s.items() if k not in ("rows", "runs")} for s in seen[on].values()
        ]
        assert all(g == game[0] for g in game), on
        for s in seen[on].values():
            assert s["left"] == [], s["left"]
    return seen


def unordered(s: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on the order of overlapping ends, in a net whose outcome does
    not: status, ending, marking, each place's token data (as a multiset), firings per
    transition, errors, and the rows' steps, attempts and statuses (as a multiset)."""
    return {
        "status": s["status"],
        "ending": s["ending"],
        "reason": s["reason"],
        "marking": s["marking"],
        "data": {p: sorted(repr(d) for _, d, _ in q) for p, q in s["tokens"].items()},
        "counts": Counter(s["sequence"]),
        "errors": s["errors"],
        "rows": Counter((r[1], r[2], r[3], r[4]) for r in s.get("rows", [])),
    }


def total(seen: dict[str, Any], *places: str) -> int:
    return sum(seen["marking"][p] for p in places)


def settled_rows(rows: list[tuple[Any, ...]]) -> None:
    """Every firing that has rows ends with exactly one final row, none 'running'."""
    finals = Counter(r[0] for r in rows if r[4])
    assert all(n == 1 for n in finals.values()), finals
    assert {r[0] for r in rows} == set(finals), rows
    assert all(r[3] in ("succeeded", "failed", "skipped", "cancelled") for r in rows), rows


def unique_ids(s: dict[str, Any]) -> None:
    ids = [t[0] for q in s["tokens"].values() for t in q]
    assert len(ids) == len(set(ids)), ids


# ---------------------------------------------------------------------- actions and nets
async def hop(token: Any) -> Any:
    """Suspends once (sleep(0)) and passes its token's data on, counted."""
    await asyncio.sleep(0)
    return {**token, "hops": token.get("hops", 0) + 1}


async def hop_b(token: Any) -> Any:  # the same, another function (its own first call)
    await asyncio.sleep(0)
    return {**token, "hops": token.get("hops", 0) + 1}


async def at_once(token: Any) -> Any:
    """Ends inside its call (never suspends)."""
    return {**token, "quick": token.get("quick", 0) + 1}


async def twice(token: Any) -> Any:
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    return {**token, "hops": token.get("hops", 0) + 1}


async def same(token: Any) -> Any:
    """Suspends once, returns None: the token's data goes on unchanged."""
    await asyncio.sleep(0)


async def same_b(token: Any) -> Any:
    await asyncio.sleep(0)


async def long(token: Any) -> Any:
    await asyncio.sleep(0.2)
    return token


FNS = {
    "hop": hop,
    "hop_b": hop_b,
    "at_once": at_once,
    "twice": twice,
    "same": same,
    "same_b": same_b,
}


def cycle_net(tokens: int, run1: str = "act", run2: str = "act", **t1: Any) -> Net:
    """a -> t1 -> b (+ a token in log) -> t2 -> a; ``tokens`` tokens {"n": i} in a."""
    return Net(
        "cyc",
        ("a", "b", "log"),
        (tokens, 0, 0),
        (
            Transition("t1", (Arc(0),), (Arc(1), Arc(2)), run=run1, **t1),
            Transition("t2", (Arc(1),), (Arc(0),), run=run2),
        ),
        tokens={0: [{"n": i} for i in range(tokens)]},
    )


def laps_net(tokens: int, laps: int, run1: str, run2: str, **t1: Any) -> Net:
    """Each token goes round a -> t1 -> b -> t2 -> a until it has ``laps`` hops (t1 counts
    them), then leaves to out (final: every token out). Its outcome does not depend on the
    order of the firings."""
    return Net(
        "laps",
        ("a", "b", "out"),
        (tokens, 0, 0),
        (
            Transition("t1", (Arc(0),), (Arc(1),), run=run1, guard=f"token.hops < {laps}", **t1),
            Transition("t2", (Arc(1),), (Arc(0),), run=run2),
            Transition("leave", (Arc(0),), (Arc(2),), guard=f"token.hops >= {laps}"),
        ),
        tokens={0: [{"n": i, "hops": 0} for i in range(tokens)]},
        final={2: tokens},
    )


def with_router(net: Net, **router: Any) -> Net:
    return Net(
        net.name,
        net.places,
        net.initial,
        net.transitions,
        final=net.final,
        tokens=net.tokens,
        router=RouterSettings(**router),
    )


# ---------------------------------------------------------------------- one token: equal
@pytest.mark.parametrize(
    "acts",
    [("hop", "hop"), ("hop", "at_once"), ("at_once", "twice"), ("hop", "hop_b"), ("same", "twice")],
)
def test_a_one_token_cycle_runs_alike_both_ways(acts: tuple[str, str], tmp_path: Path) -> None:
    def scenario() -> tuple[Net, dict[str, Any]]:
        return cycle_net(1, *acts), {a: FNS[a] for a in acts}

    s = compare(scenario, tmp_path, max_firings=24)[True]["duckdb"]
    assert s["ending"] == "max_firings" and len(s["sequence"]) == 24
    assert total(s, "a", "b") == 1 and s["marking"]["log"] == 12
    assert s["sequence"] == ["t1", "t2"] * 12
    settled_rows(s["rows"])
    assert len(s["rows"]) == 24  # every started firing has its row


def test_a_one_token_counter_with_guards_runs_alike_both_ways(tmp_path: Path) -> None:
    def scenario() -> tuple[Net, dict[str, Any]]:
        return laps_net(1, 6, "hop", "twice"), dict(FNS)

    s = compare(scenario, tmp_path)[True]["memory"]
    assert (s["status"], s["ending"]) == ("succeeded", "final")
    ((_, data, history),) = s["tokens"]["out"]
    assert data["hops"] == 6 and len(history) == 7  # t1 and t2 each count a hop: 3 laps


def test_a_seeded_random_choice_with_one_token_runs_alike_both_ways(tmp_path: Path) -> None:
    def scenario() -> tuple[Net, dict[str, Any]]:
        net = Net(
            "race",
            ("a", "b"),
            (1, 0),
            (
                Transition("left", (Arc(0),), (Arc(1),), run="hop"),
                Transition("right", (Arc(0),), (Arc(1),), run="hop_b"),
                Transition("back", (Arc(1),), (Arc(0),), run="at_once"),
            ),
            tokens={0: [{"n": 0}]},
            choice="random",
        )
        return net, dict(FNS)

    by_seed = {
        seed: compare(scenario, tmp_path, ("none", "memory"), max_firings=40, seed=seed)
        for seed in (1, 2)
    }
    assert by_seed[1][True]["memory"]["sequence"] != by_seed[2][True]["memory"]["sequence"]


def test_priorities_with_one_token_run_alike_both_ways(tmp_path: Path) -> None:
    def scenario() -> tuple[Net, dict[str, Any]]:
        net = Net(
            "prio1",
            ("a", "b", "c"),
            (1, 0, 0),
            (
                Transition("low", (Arc(0),), (Arc(1),), run="hop", priority=-1),
                Transition("high", (Arc(0),), (Arc(1),), run="hop_b", priority=3),
                Transition("back", (Arc(1),), (Arc(0),), run="same", guard="token.hops < 5"),
                Transition("out", (Arc(1),), (Arc(2),), guard="token.hops >= 5"),
            ),
            tokens={0: [{"hops": 0}]},
            final={2: 1},
        )
        return net, dict(FNS)

    s = compare(scenario, tmp_path)[True]["memory"]
    assert s["sequence"] == ["high", "back"] * 4 + ["high", "out"]


@pytest.mark.parametrize("where", ["first line", "after an await"])
@pytest.mark.parametrize("strategy", ["stop", "skip", "continue"])
def test_a_failing_action_with_one_token_runs_alike_both_ways(
    strategy: str, where: str, tmp_path: Path
) -> None:
    def scenario() -> tuple[Net, dict[str, Any]]:
        net = cycle_net(
            1, "bad", "hop", on_error=OnError(strategy), default={"n": -1, "default": True}
        )
        return net, {"bad": failing({3, 4}, where), "hop": hop}

    s = compare(scenario, tmp_path, max_firings=20)[True]["duckdb"]
    settled_rows(s["rows"])
    assert total(s, "a", "b") == 1
    if strategy == "stop":
        assert (s["status"], s["ending"]) == ("failed", "failed")
        assert "on_error: stop" in s["reason"] and s["marking"] == {"a": 1, "b": 0, "log": 2}
    elif strategy == "continue":
        assert s["status"] == "failed" and "blocked transitions: t1" in s["reason"]
    else:
        assert s["ending"] == "max_firings"
        assert [r[3] for r in s["rows"] if r[1] == "t1"][2:4] == ["skipped", "skipped"]


def failing(at: set[int], where: str = "after an await") -> Callable[..., Any]:
    """Fails on its calls numbered in ``at`` (1-based), at its first line or after an
    await; passes its token on otherwise."""
    calls = [0]

    async def act(token: Any) -> Any:
        calls[0] += 1
        me = calls[0]
        if me in at and where == "first line":
            raise ValueError(f"bad call {me}")
        await asyncio.sleep(0)
        if me in at:
            raise ValueError(f"bad call {me}")
        return {**token, "calls": me}

    return act


@pytest.mark.parametrize("backoff", ["none", "linear"])
@pytest.mark.parametrize("where", ["first line", "after an await"])
def test_retries_with_backoff_run_alike_both_ways(backoff: str, where: str, tmp_path: Path) -> None:
    def scenario() -> tuple[Net, dict[str, Any]]:
        policy = RetryPolicy(max_attempts=3, backoff=backoff, initial_delay=0.001)
        net = cycle_net(1, "bad", "hop", retry=policy, on_error=OnError("continue"))
        return net, {"bad": failing({2, 3, 5, 6, 7}, where), "hop": hop}

    s = compare(scenario, tmp_path, max_firings=10)[True]["duckdb"]
    settled_rows(s["rows"])
    # t1's second firing failed twice, then succeeded; its third failed three times: blocked
    attempts = Counter(r[0] for r in s["rows"])
    assert attempts == {1: 1, 2: 1, 3: 3, 4: 1, 5: 3}, attempts
    assert s["status"] == "failed" and "blocked transitions: t1" in s["reason"]
    assert total(s, "a", "b") == 1


def test_an_action_timing_out_after_an_await_runs_alike_both_ways(tmp_path: Path) -> None:
    calls = [0]

    async def stuck(token: Any) -> Any:
        calls[0] += 1
        await asyncio.sleep(5 if calls[0] % 3 == 2 else 0)
        return token

    def scenario() -> tuple[Net, dict[str, Any]]:
        calls[0] = 0
        policy = RetryPolicy(max_attempts=2, backoff="none")
        net = cycle_net(1, "stuck", "hop", timeout=0.02, retry=policy, on_error=OnError("continue"))
        return net, {"stuck": stuck, "hop": hop}

    s = compare(scenario, tmp_path, ("none", "memory"), max_firings=10)[True]["memory"]
    assert s["ending"] == "max_firings" and "t1" not in s["errors"]
    timed_out = [r for r in s["rows"] if r[6] == "TimeoutError"]
    assert len(timed_out) == 2 and all(not r[4] for r in timed_out)  # retried, then passed
    assert total(s, "a", "b") == 1
    settled_rows(s["rows"])


def test_an_action_cancelling_its_own_task_fails_alike_both_ways(tmp_path: Path) -> None:
    calls = [0]

    async def cancels(token: Any) -> Any:
        calls[0] += 1
        await asyncio.sleep(0)
        if calls[0] == 2:
            task = asyncio.current_task()
            assert task is not None
            task.cancel()
        await asyncio.sleep(0)
        return token

    def scenario() -> tuple[Net, dict[str, Any]]:
        calls[0] = 0
        return cycle_net(1, "cancels", "hop", on_error=OnError("continue")), {
            "cancels": cancels,
            "hop": hop,
        }

    s = compare(scenario, tmp_path, max_firings=20)[True]["memory"]
    assert "cancelled from inside" in s["errors"]["t1"]
    assert s["marking"] == {"a": 1, "b": 0, "log": 1}
    settled_rows(s["rows"])


async def feeder(box: list[asyncio.Future[Any]], stop: asyncio.Event) -> None:
    """Another task: sets the futures actions wait on, oldest first, one a turn."""
    while not stop.is_set() or box:
        if box:
            fut = box.pop(0)
            if not fut.done():
                fut.set_result(None)
        await asyncio.sleep(0)


def fed(tokens: int, on: bool) -> dict[str, Any]:
    """A laps run whose t1 waits on a future another task sets."""
    box: list[asyncio.Future[Any]] = []

    async def waits(token: Any) -> Any:
        fut = asyncio.get_running_loop().create_future()
        box.append(fut)
        await fut
        return {**token, "hops": token["hops"] + 1}

    async def go() -> Any:
        stop = asyncio.Event()
        feeding = asyncio.create_task(feeder(box, stop))
        try:
            return await fluxnb.arun(
                laps_net(tokens, 4, "waits", "same"), {"waits": waits, "same": same}, store=None
            )
        finally:
            stop.set()
            await feeding

    with inline(on):
        result, left = on_loop(go)
    assert left == []
    return observe(result)


def test_actions_waiting_on_futures_set_by_another_task() -> None:
    one = {on: fed(1, on) for on in MODES}
    assert one[True] == one[False]
    many = {on: fed(4, on) for on in MODES}
    assert unordered(many[True]) == unordered(many[False])
    assert many[True]["ending"] == "final" and many[True]["marking"]["out"] == 4


def test_a_net_run_awaiting_a_net_and_a_dag_run_inside_its_action(tmp_path: Path) -> None:
    async def nested(token: Any) -> Any:
        inner = await fluxnb.arun(
            cycle_net(1, "hop", "twice"), {"hop": hop, "twice": twice}, store=None, max_firings=6
        )
        wf = fluxnb.Workflow()
        wf.add("x", hop_int)
        wf.add("y", hop_int, depends_on=["x"])
        dag = await wf.arun(store=None)
        await asyncio.sleep(0)
        return {**token, "inner": list(inner.sequence), "dag": dag.outputs["y"]}

    def scenario() -> tuple[Net, dict[str, Any]]:
        return cycle_net(1, "nested", "hop"), {"nested": nested, "hop": hop}

    s = compare(scenario, tmp_path, ("none", "memory"), max_firings=8)[True]["memory"]
    assert total(s, "a", "b") == 1 and len(s["sequence"]) == 8
    assert s["outputs"]["t1"]["dag"] == 2 and s["outputs"]["t1"]["inner"] == ["t1", "t2"] * 3


async def hop_int(**kw: Any) -> int:
    await asyncio.sleep(0)
    return 1 + sum(v for v in kw.values() if isinstance(v, int))


# ---------------------------------------------------------------------- overlapping ends
@pytest.mark.parametrize("tokens", [2, 5])
@pytest.mark.parametrize(
    "acts", [("hop", "same"), ("hop", "at_once"), ("at_once", "twice"), ("hop_b", "same_b")]
)
def test_overlapping_laps_end_alike_both_ways(
    tokens: int, acts: tuple[str, str], tmp_path: Path
) -> None:
    """docs/petri.md: the order may differ, the tokens' data and the final marking may not."""

    def scenario() -> tuple[Net, dict[str, Any]]:
        return laps_net(tokens, 3, *acts), dict(FNS)

    s = compare(scenario, tmp_path, view=unordered)[True]["duckdb"]
    assert (s["status"], s["ending"]) == ("succeeded", "final")
    assert Counter(s["sequence"]) == {"t1": 3 * tokens, "t2": 3 * tokens, "leave": tokens}
    unique_ids(s)
    settled_rows(s["rows"])


def fan_net() -> Net:
    """split -> three branches (each an action) -> join -> done; 3 cases."""
    places = ("in", "x", "y", "z", "x2", "y2", "z2", "done")
    ix = {p: i for i, p in enumerate(places)}

    def arcs(*ps: str) -> tuple[Arc, ...]:
        return tuple(Arc(ix[p]) for p in ps)

    return Net(
        "fan",
        places,
        (3, 0, 0, 0, 0, 0, 0, 0),
        (
            Transition("split", arcs("in"), arcs("x", "y", "z")),
            Transition("bx", arcs("x"), arcs("x2"), run="hop"),
            Transition("by", arcs("y"), arcs("y2"), run="twice"),
            Transition("bz", arcs("z"), arcs("z2"), run="at_once"),
            Transition("join", arcs("x2", "y2", "z2"), arcs("done"), run="join"),
        ),
        tokens={0: [{"case": i} for i in range(3)]},
        final={ix["done"]: 3},
    )


async def join(x2: Any, y2: Any, z2: Any) -> Any:
    await asyncio.sleep(0)
    return [x2, y2, z2]


def fan_scenario() -> tuple[Net, dict[str, Any]]:
    return fan_net(), {**FNS, "join": join}


def test_fan_out_fan_in_ends_alike_both_ways(tmp_path: Path) -> None:
    s = compare(fan_scenario, tmp_path, view=unordered)[True]["duckdb"]
    assert (s["status"], s["ending"]) == ("succeeded", "final")
    assert s["marking"]["done"] == 3 and sum(s["marking"].values()) == 3
    for _, data, _ in s["tokens"]["done"]:  # each join took the three branches of one case
        assert len({d["case"] for d in data}) == 1
    unique_ids(s)


def test_a_guard_that_cannot_be_evaluated_after_an_await_stops_the_run(tmp_path: Path) -> None:
    async def spoil(token: Any) -> Any:
        await asyncio.sleep(0)
        return {"n": "text"} if token["n"] == 1 else token

    def scenario() -> tuple[Net, dict[str, Any]]:
        net = Net(
            "spoiled",
            ("a", "b", "c"),
            (3, 0, 0),
            (
                Transition("spoil", (Arc(0),), (Arc(1),), run="spoil"),
                Transition("check", (Arc(1),), (Arc(2),), guard="token.n + 1 > 0", run="hop"),
            ),
            tokens={0: [{"n": i} for i in range(3)]},
        )
        return net, {"spoil": spoil, "hop": hop}

    seen = compare(scenario, tmp_path, ("none", "memory"), view=lambda s: s["reason"])
    for on in MODES:
        s = seen[on]["memory"]
        assert (s["status"], s["ending"]) == ("failed", "failed")
        assert "guard could not be evaluated" in s["reason"]
        assert sum(s["marking"].values()) == 3
        settled_rows(s["rows"])


def test_a_final_marking_waits_for_the_actions_in_flight(tmp_path: Path) -> None:
    async def slow(token: Any) -> Any:
        for _ in range(5):
            await asyncio.sleep(0)
        return token

    def scenario() -> tuple[Net, dict[str, Any]]:
        net = Net(
            "fin",
            ("a", "done"),
            (2, 0),
            (
                Transition("fast", (Arc(0),), (Arc(1),), run="hop", priority=1),
                Transition("slow", (Arc(0),), (Arc(1),), run="slow"),
            ),
            tokens={0: [{"n": 0}, {"n": 1}]},
            final={1: 2},
        )
        return net, {"hop": hop, "slow": slow}

    s = compare(scenario, tmp_path)[True]["duckdb"]
    assert (s["status"], s["ending"], s["marking"]) == ("succeeded", "final", {"a": 0, "done": 2})


def invariants(
    scenario: Scenario, tokens: int, *, stores: tuple[str, ...] = ("memory",), **kw: Any
) -> dict[bool, dict[str, Any]]:
    """Each way: reproducible (every store kind the same game), no task left, tokens of the
    cycle conserved, token ids unique, every firing with one final row."""
    seen = {}
    for on in MODES:
        runs = [one_run(scenario, on, k, Path("."), **kw) for k in stores]
        for s in runs:
            assert s["left"] == []
            assert total(s, "a", "b") == tokens, (on, s["marking"])
            unique_ids(s)
            if "rows" in s:
                settled_rows(s["rows"])
        games = [{k: v for k, v in s.items() if k not in ("rows", "runs")} for s in runs]
        assert all(g == games[0] for g in games), on
        seen[on] = runs[-1]
    return seen


@pytest.mark.parametrize("limit", [1, 2, 5, 7, 30])
def test_max_firings_reached_with_actions_in_flight(limit: int) -> None:
    def scenario() -> tuple[Net, dict[str, Any]]:
        return cycle_net(3, "hop", "twice"), dict(FNS)

    seen = invariants(scenario, 3, stores=("none", "memory"), max_firings=limit)
    for s in seen.values():
        assert s["ending"] == "max_firings" and len(s["sequence"]) == limit
        assert len(s["rows"]) == limit and s["marking"]["log"] == s["sequence"].count("t1")


@pytest.mark.parametrize("pool", [1, 2, 3])
def test_worker_pool_size_bounds_the_actions_running_at_once(pool: int) -> None:
    peaks: list[int] = []

    def scenario() -> tuple[Net, dict[str, Any]]:
        now = [0]
        peaks.append(0)
        me = len(peaks) - 1

        async def counted(token: Any) -> Any:
            now[0] += 1
            peaks[me] = max(peaks[me], now[0])
            try:
                await asyncio.sleep(0)
                await asyncio.sleep(0)
            finally:
                now[0] -= 1
            return token

        return with_router(cycle_net(5, "counted", "counted"), worker_pool_size=pool), {
            "counted": counted
        }

    seen = invariants(scenario, 5, max_firings=30)
    assert all(p == pool for p in peaks), peaks
    assert all(len(s["sequence"]) == 30 for s in seen.values())


@pytest.mark.parametrize("where", ["first line", "after an await"])
@pytest.mark.parametrize("strategy", ["stop", "skip", "continue"])
def test_a_failing_action_among_overlapping_ones(strategy: str, where: str) -> None:
    def scenario() -> tuple[Net, dict[str, Any]]:
        net = cycle_net(
            3, "bad", "hop", on_error=OnError(strategy), default={"n": -1, "default": True}
        )
        return net, {"bad": failing({3, 4}, where), "hop": hop}

    seen = invariants(scenario, 3, max_firings=20)
    for s in seen.values():
        if strategy == "stop":
            assert (s["status"], s["ending"]) == ("failed", "failed")
        elif strategy == "continue":
            assert s["status"] == "failed" and "blocked transitions: t1" in s["reason"]
        else:
            assert s["ending"] == "max_firings"
            assert len([r for r in s["rows"] if r[3] == "skipped"]) == 2


@pytest.mark.parametrize("tokens", [1, 3])
def test_retries_of_overlapping_actions_conserve_tokens(tokens: int) -> None:
    def scenario() -> tuple[Net, dict[str, Any]]:
        policy = RetryPolicy(max_attempts=4, backoff="linear", initial_delay=0.001)
        return cycle_net(tokens, "bad", "hop", retry=policy), {
            "bad": failing({1, 2, 4, 7, 8}),
            "hop": hop,
        }

    for s in invariants(scenario, tokens, max_firings=12).values():
        assert s["ending"] == "max_firings" and len(s["sequence"]) == 12


@pytest.mark.parametrize("delay", [0.001, 0.003])
def test_timer_actions_conserve_tokens_and_end(delay: float) -> None:
    """sleep(delay): which ends share a turn of the loop depends on the clock, so only what
    does not depend on it is checked (the store kinds are not compared)."""
    for on in MODES:

        async def sleeps(token: Any) -> Any:
            await asyncio.sleep(delay)
            return {**token, "hops": token["hops"] + 1}

        s = one_run(
            lambda sleeps=sleeps: (laps_net(4, 3, "sleeps", "same"), {"sleeps": sleeps, **FNS}),
            on,
            "memory",
            Path("."),
        )
        assert s["left"] == [] and (s["status"], s["ending"]) == ("succeeded", "final")
        assert sorted(d["hops"] for _, d, _ in s["tokens"]["out"]) == [3] * 4
        settled_rows(s["rows"])


def test_a_long_step_while_others_cycle() -> None:
    """One action awaits 200 ms while another token cycles 40 firings."""

    def scenario() -> tuple[Net, dict[str, Any]]:
        net = Net(
            "long",
            ("a", "b", "w", "wd"),
            (1, 0, 1, 0),
            (
                Transition("t1", (Arc(0),), (Arc(1),), run="hop"),
                Transition("t2", (Arc(1),), (Arc(0),), run="hop"),
                Transition("w", (Arc(2),), (Arc(3),), run="long"),
            ),
            tokens={0: [{"n": 0}], 2: [{"n": 9}]},
            max_firings=41,
        )
        return net, {"hop": hop, "long": long}

    seen = invariants(scenario, 1, stores=("none", "memory"))
    assert seen[True] == seen[False]  # the cycle ended long before the long step did
    assert seen[True]["sequence"] == ["t1", "t2"] * 20 + ["w"]


def test_a_sync_action_in_a_thread_beside_awaiting_ones() -> None:
    def in_a_thread(token: Any) -> Any:
        return {**token, "thread": True}

    for on in MODES:
        s = one_run(
            lambda: (cycle_net(3, "sync", "hop"), {"sync": in_a_thread, "hop": hop}),
            on,
            "memory",
            Path("."),
            max_firings=30,
        )
        assert s["left"] == [] and total(s, "a", "b") == 3 and len(s["sequence"]) == 30
        settled_rows(s["rows"])


def test_an_action_sees_no_context_variable_another_action_set() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    for on in MODES:
        got: list[str] = []

        async def sets(token: Any, got: list[str] = got) -> Any:
            got.append(var.get())
            var.set(f"set by {token['n']}")
            await asyncio.sleep(0)
            return token

        s = one_run(
            lambda sets=sets: (cycle_net(2, "sets", "sets"), {"sets": sets}),
            on,
            "none",
            Path("."),
            max_firings=20,
        )
        assert s["left"] == []
        assert got == ["unset"] * 20, on


@pytest.mark.parametrize("on", MODES, ids=["inline", "woken"])
def test_a_seeded_random_choice_with_overlapping_actions_is_reproducible(on: bool) -> None:
    seen = [one_run(random_net, on, "none", Path("."), max_firings=60, seed=7) for _ in range(3)]
    assert seen[0] == seen[1] == seen[2]
    assert total(seen[0], "a", "b") == 4 and seen[0]["left"] == []
    other = one_run(random_net, on, "none", Path("."), max_firings=60, seed=8)
    assert other["sequence"] != seen[0]["sequence"]


def random_net() -> tuple[Net, dict[str, Any]]:
    net = Net(
        "race",
        ("a", "b"),
        (4, 0),
        (
            Transition("left", (Arc(0),), (Arc(1),), run="hop"),
            Transition("right", (Arc(0),), (Arc(1),), run="twice"),
            Transition("back", (Arc(1),), (Arc(0),), run="hop"),
        ),
        tokens={0: [{"n": i} for i in range(4)]},
        choice="random",
    )
    return net, dict(FNS)


# ---------------------------------------------------------------------- runs together
def test_two_net_runs_at_once_on_one_loop() -> None:
    seen = {}
    for on in MODES:

        async def go() -> Any:
            return await asyncio.gather(
                fluxnb.arun(cycle_net(1, "hop", "twice"), dict(FNS), store=None, max_firings=40),
                fluxnb.arun(fan_net(), {**FNS, "join": join}, store=None),
                fluxnb.arun(laps_net(3, 2, "hop", "same"), dict(FNS), store=None),
            )

        with inline(on):
            runs, left = on_loop(go)
        assert left == []
        seen[on] = [observe(r) for r in runs]
        assert seen[on][0]["sequence"] == ["t1", "t2"] * 20
        assert seen[on][1]["ending"] == seen[on][2]["ending"] == "final"
    assert seen[True][0] == seen[False][0]  # one token: the same run
    assert unordered(seen[True][1]) == unordered(seen[False][1])
    assert unordered(seen[True][2]) == unordered(seen[False][2])


def test_two_net_runs_sharing_one_local_executor() -> None:
    from fluxnb.engine import LocalExecutor

    seen = {}
    for on in MODES:
        var: contextvars.ContextVar[str] = contextvars.ContextVar("run", default="?")

        async def tagged(token: Any, var: Any = var) -> Any:
            await asyncio.sleep(0)
            return {**token, "run": var.get()}

        async def go(var: Any = var, tagged: Any = tagged) -> Any:
            ex = LocalExecutor()

            async def one(label: str, var: Any = var) -> Any:
                var.set(label)
                return await fluxnb.arun(
                    cycle_net(1, "tagged", "tagged"),
                    {"tagged": tagged},
                    store=None,
                    max_firings=30,
                    executor=ex,
                )

            return await asyncio.gather(one("x"), one("y"))

        with inline(on):
            (x, y), left = on_loop(go)
        assert left == []
        for r, tag in ((x, "x"), (y, "y")):
            s = observe(r)
            assert total(s, "a", "b") == 1 and len(s["sequence"]) == 30
            runs = {d.get("run") for q in s["tokens"].values() for _, d, _ in q}
            assert runs == {tag}, (on, tag, runs)  # each run's actions see its own context
        seen[on] = (observe(x), observe(y))
    assert seen[True] == seen[False]


def test_a_net_run_and_a_dag_run_at_once() -> None:
    seen = {}
    for on in MODES:
        wf = fluxnb.Workflow()
        for i in range(20):
            wf.add(f"s{i}", hop_int, depends_on=[f"s{i - 1}"] if i else [])

        async def go(wf: fluxnb.Workflow = wf) -> Any:
            return await asyncio.gather(
                fluxnb.arun(cycle_net(1, "hop", "twice"), dict(FNS), store=None, max_firings=40),
                wf.arun(store=None),
            )

        with inline(on):
            (net_result, dag_result), left = on_loop(go)
        assert left == []
        assert dag_result.ok and dag_result.outputs["s19"] == 20
        seen[on] = observe(net_result)
    assert seen[True] == seen[False]


# ---------------------------------------------------------------------- cancelling a run
def cancel_scenario() -> Net:
    """Three tokens cycling, and one action that waits 200 ms (in flight at the cancel)."""
    return Net(
        "cancel",
        ("a", "b", "w", "wd"),
        (3, 0, 1, 0),
        (
            Transition("t1", (Arc(0),), (Arc(1),), run="twice"),
            Transition("t2", (Arc(1),), (Arc(0),), run="hop"),
            Transition("w", (Arc(2),), (Arc(3),), run="long"),
        ),
        tokens={0: [{"n": i} for i in range(3)], 2: [{"n": 9}]},
        max_firings=1000,
    )


@pytest.mark.parametrize("after", [0, 1, 3, 8])
@pytest.mark.parametrize("on", MODES, ids=["inline", "woken"])
def test_cancelling_a_run_cancels_every_action_and_gives_tokens_back(on: bool, after: int) -> None:
    """Driven on the engine itself (arun's caller gets no result when cancelled): every
    action running is cancelled, rows say so, every token is back in a place."""
    rec = MemoryRecorder()

    async def go() -> Any:
        engine = NetEngine(
            plan_net(cancel_scenario(), {**FNS, "long": long}), run_id="c", recorder=rec
        )
        task = asyncio.create_task(engine.advance())
        await asyncio.sleep(0)
        while len(engine.sequence) < after:
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await engine.aclose()
        return engine

    with inline(on):
        engine, left = on_loop(go)
    assert left == []
    assert not engine.attempts.running and not engine.attempts.busy
    places = {p: len(q) for p, q in zip(engine.net.places, engine.places, strict=True)}
    assert places == {"a": places["a"], "b": 3 - places["a"], "w": 1, "wd": 0}, places
    rows = mem_rows(rec)
    settled_rows(rows)
    assert ("w", "cancelled") in [(r[1], r[3]) for r in rows]
    assert engine.seq == len(rows)  # every firing started has its row
    ids = [t.id for q in engine.places for t in q]
    assert len(ids) == len(set(ids))
    assert (engine.ending, engine.reason) == ("cancelled", "the run was cancelled")


@pytest.mark.parametrize("on", MODES, ids=["inline", "woken"])
def test_cancelling_arun_records_the_run_cancelled(on: bool, tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"

    async def go() -> Any:
        task = asyncio.create_task(
            fluxnb.arun(cancel_scenario(), {**FNS, "long": long}, store=path)
        )
        for _ in range(20):
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with inline(on):
        _, left = on_loop(go)
    assert left == []
    rows, runs = db_rows(path)
    assert [r[0] for r in runs] == ["cancelled"]
    assert ("w", "cancelled") in [(r[1], r[3]) for r in rows]
    settled_rows([(r[0], r[1], r[2], r[3], r[4]) for r in rows])


@pytest.mark.parametrize("on", MODES, ids=["inline", "woken"])
def test_an_action_swallowing_the_stop_still_ends_the_run(on: bool) -> None:
    """An action catches the run's cancel and returns a value: the run ends (failed, the
    other action's error), its tokens are counted once."""

    async def stubborn(token: Any) -> Any:
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError:
            await asyncio.sleep(0)
            return {**token, "stubborn": True}
        return token

    async def breaks(token: Any) -> Any:
        await asyncio.sleep(0.01)
        raise RuntimeError("broken")

    net = Net(
        "stub",
        ("a", "b", "c", "d"),
        (1, 0, 1, 0),
        (
            Transition("s", (Arc(0),), (Arc(1),), run="stubborn"),
            Transition("x", (Arc(2),), (Arc(3),), run="breaks"),
        ),
        tokens={0: [{"n": 0}], 2: [{"n": 1}]},
    )
    rec = MemoryRecorder()
    with inline(on):
        result, left = on_loop(
            lambda: fluxnb.arun(net, {"stubborn": stubborn, "breaks": breaks}, store=rec)
        )
    assert left == []
    s = observe(result)
    assert s["status"] == "failed" and "broken" in s["reason"]
    assert s["marking"]["a"] + s["marking"]["b"] == 1 and s["marking"]["c"] == 1
    settled_rows(mem_rows(rec))


# ---------------------------------------------------------------------- interrupts
def interrupting(exc: type[BaseException], where: str, nth: int) -> Callable[..., Any]:
    calls = [0]

    async def act(token: Any) -> Any:
        calls[0] += 1
        me = calls[0]
        if me == nth and where == "first line":
            raise exc("stop")
        await asyncio.sleep(0)
        if me == nth:
            raise exc("stop")
        return token

    return act


def interrupt_net() -> Net:
    return Net(
        "ki",
        ("a", "b", "c", "w", "wd"),
        (2, 0, 0, 1, 0),
        (
            Transition("t1", (Arc(0),), (Arc(1),), run="act"),
            Transition("t2", (Arc(1),), (Arc(2),), run="act"),
            Transition("w", (Arc(3),), (Arc(4),), run="long"),
        ),
        tokens={0: [1, 2], 3: ["w"]},
    )


def interrupted(exc: type[BaseException], where: str, nth: int, on: bool) -> Any:
    """A blocking run (its own loop, in a bounded thread) whose ``nth`` action call raises
    ``exc``: the caller gets it, every firing has one final row, one of them failed with
    ``exc``. Returns the runs' recorded statuses."""
    rec = MemoryRecorder()
    act = interrupting(exc, where, nth)
    with inline(on), pytest.raises(exc):
        in_thread(
            lambda: fluxnb.run(interrupt_net(), {"act": act, "long": long}, store=rec), collect=True
        )
    rows = mem_rows(rec)
    settled_rows(rows)
    assert [(r[3], r[6]) for r in rows].count(("failed", exc.__name__)) == 1, rows
    return [x.status for x in rec.runs]


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize("where", ["first line", "after an await"])
@pytest.mark.parametrize("on", MODES, ids=["inline", "woken"])
def test_an_interrupt_from_a_later_action_cancels_the_run(
    exc: type[BaseException], where: str, on: bool
) -> None:
    """The third call (started by an end: a function seen to suspend, so in a task of its
    own or handed over) raises: the run is recorded cancelled, nothing hangs."""
    assert interrupted(exc, where, 3, on) == ["cancelled"]


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize("on", MODES, ids=["inline", "woken"])
def test_an_interrupt_after_an_await_in_the_first_action_cancels_the_run(
    exc: type[BaseException], on: bool
) -> None:
    assert interrupted(exc, "after an await", 1, on) == ["cancelled"]


# found here, fixed in session 10: an interrupt raised at the first line of a function's
# first call, which runs inline in the run's own task (advance()'s pump), escaped advance()
# and arun_net, which recorded the end only on CancelledError: the run stayed 'running'
@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize("on", MODES, ids=["inline", "woken"])
def test_an_interrupt_at_the_first_line_of_the_first_action_cancels_the_run(
    exc: type[BaseException], on: bool
) -> None:
    assert interrupted(exc, "first line", 1, on) == ["cancelled"]


# found here, fixed in session 10: an interrupt at the first line of a function's first
# call that an inline pump (``poke``, in an ended action's task) started: ``interrupted`` ->
# ``halt`` -> ``stop`` -> ``poke`` set advance()'s wake future, then poke's ``except
# BaseException`` set it again: InvalidStateError replaced the interrupt in that task, and
# fluxnb.run() returned a 'cancelled' result instead of raising it


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize("on", MODES, ids=["inline", "woken"])
def test_an_interrupt_at_the_first_line_of_an_action_started_by_an_end(
    exc: type[BaseException], on: bool
) -> None:
    """One token: t1 awaits; t2 (a function's first call) raises at its first line. The
    caller must get the interrupt and the run be recorded cancelled."""

    async def boom(token: Any) -> Any:
        raise exc("stop")

    rec = MemoryRecorder()
    net = cycle_net(1, "hop", "boom")
    with inline(on), pytest.raises(exc):
        in_thread(lambda: fluxnb.run(net, {"hop": hop, "boom": boom}, store=rec), collect=True)
    assert [x.status for x in rec.runs] == ["cancelled"]
    assert [(r[1], r[3], r[6]) for r in mem_rows(rec)] == [
        ("t1", "succeeded", None),
        ("t2", "failed", exc.__name__),
    ]


@pytest.mark.parametrize(
    "on",
    MODES,
    ids=["inline", "woken"],
)
def test_an_interrupt_at_the_first_line_of_an_action_after_a_handed_one(on: bool) -> None:
    """An end starts two actions: the first is handed to the ended action's task (on), the
    second (a function's first call, inline) raises KeyboardInterrupt at its first line;
    the handed one never runs and is recorded cancelled, the run cancelled."""
    rec = MemoryRecorder()

    async def first(token: Any) -> Any:
        await asyncio.sleep(0)
        return token

    async def boom(token: Any) -> Any:
        raise KeyboardInterrupt("stop")

    net = Net(
        "hand",
        ("a", "p", "q", "done"),
        (1, 0, 0, 0),
        (
            Transition("start", (Arc(0),), (Arc(1), Arc(2)), run="first"),
            Transition("handed", (Arc(1),), (Arc(3),), run="first", priority=2),
            Transition("boom", (Arc(2),), (Arc(3),), run="boom", priority=1),
        ),
        tokens={0: [1]},
    )
    with inline(on), pytest.raises(KeyboardInterrupt):
        in_thread(lambda: fluxnb.run(net, {"first": first, "boom": boom}, store=rec), collect=True)
    rows = mem_rows(rec)
    settled_rows(rows)
    assert ("boom", "failed", "KeyboardInterrupt") in [(r[1], r[3], r[6]) for r in rows]
    assert ("handed", "cancelled") in [(r[1], r[3]) for r in rows], rows
    assert [x.status for x in rec.runs] == ["cancelled"]


# ---------------------------------------------------------------------- recorders
def refusing(step: str, statuses: set[str], times: int = 1 << 30) -> MemoryRecorder:
    """A recorder that refuses ``step``'s rows of ``statuses`` (the first ``times``)."""

    class Refuses(MemoryRecorder):
        left = times

        def event(self, row: Any) -> None:
            if row[2] == step and row[4] in statuses and self.left:
                self.left -= 1
                raise UnicodeEncodeError("utf-8", "x", 0, 1, "refused")
            super().event(row)

    return Refuses()


def refused_run(net: Net, ns: dict[str, Any], rec: MemoryRecorder, on: bool, **kw: Any) -> Any:
    with inline(on):
        result, left = on_loop(lambda: fluxnb.arun(net, ns, store=rec, **kw), collect=True)
    assert left == []
    return observe(result)


@pytest.mark.parametrize("on", MODES, ids=["inline", "woken"])
@pytest.mark.parametrize("where", ["first line", "after an await"])
def test_a_refused_failed_row_ends_the_run_failed(where: str, on: bool) -> None:
    rec = refusing("t1", {"failed"})
    s = refused_run(
        cycle_net(3, "bad", "hop"),
        {"bad": failing({4}, where), "hop": hop},
        rec,
        on,
        max_firings=30,
    )
    assert s["status"] == "failed" and "could not record how transition 't1' ended" in s["reason"]
    assert total(s, "a", "b") == 3
    settled_rows(mem_rows(rec))


@pytest.mark.parametrize("step", ["t1", "t2"])
def test_a_refused_success_row_of_an_action_that_ended_inline(step: str) -> None:
    seen = {}
    for on in MODES:
        rec = refusing(step, {"succeeded"})
        net = cycle_net(1, "hop", "at_once") if step == "t2" else cycle_net(1, "at_once", "hop")
        seen[on] = refused_run(net, dict(FNS), rec, on, max_firings=30)
        assert seen[on]["status"] == "failed"
        assert f"could not record how transition '{step}' ended" in seen[on]["reason"]
        assert total(seen[on], "a", "b") == 1
        assert seen[on]["sequence"].count(step) == 0  # it produced nothing
    assert seen[True] == seen[False]


# found here, fixed in session 10: the success row of a firing whose action suspended is
# refused. Off, ``_complete`` produced the tokens, appended the sequence and set the output
# before ``_row`` raised, so a firing recorded 'failed' still moved its tokens; now the row
# comes first both ways (``_made``, ``_complete``) and ``lost`` gives its tokens back
@pytest.mark.parametrize("on", MODES, ids=["inline", "woken"])
def test_a_refused_success_row_of_an_action_that_suspended(on: bool) -> None:
    rec = refusing("t2", {"succeeded"})
    s = refused_run(cycle_net(1, "hop", "hop_b"), dict(FNS), rec, on, max_firings=30)
    assert "could not record how transition 't2' ended" in s["reason"]
    assert total(s, "a", "b") == 1
    assert s["sequence"] == ["t1"] and s["marking"] == {"a": 0, "b": 1, "log": 1}


def actionless_net() -> Net:
    return Net(
        "na",
        ("a", "b", "c", "d"),
        (2, 0, 0, 0),
        (
            Transition("t1", (Arc(0),), (Arc(1),), run="same"),
            Transition("plain", (Arc(1),), (Arc(2),)),
            Transition("t3", (Arc(2),), (Arc(3),), run="same"),
        ),
        tokens={0: [1, 2]},
    )


# found here, fixed in session 10: the row of a transition *without* an action is refused.
# It is written by ``fire`` -> ``_complete`` -> ``_row`` inside the pump, with no
# ``untaken`` around it: arun raised the recorder's error and the run's end was never
# recorded ('running'); before 4f53a94, on, the error was lost and the run 'succeeded')
@pytest.mark.parametrize("on", MODES, ids=["inline", "woken"])
def test_a_refused_row_of_a_transition_without_action_ends_the_run_failed(on: bool) -> None:
    rec = refusing("plain", {"succeeded"}, times=1)
    with inline(on):
        try:
            result, left = on_loop(
                lambda: fluxnb.arun(actionless_net(), dict(FNS), store=rec), collect=True
            )
        except UnicodeEncodeError:
            pytest.fail(f"arun raised the recorder's error; runs: {[r.status for r in rec.runs]}")
    assert result.status.value == "failed", (result.status, result.reason)
    assert "could not record" in (result.reason or "")
    assert sum(result.marking.values()) == 2
    assert left == []


class RefusesCircuit(MemoryRecorder):
    """Refuses circuit events that move a breaker to ``state``."""

    def __init__(self, state: str) -> None:
        super().__init__()
        self.state = state

    def circuit_event(self, row: Any) -> None:
        if row[3] == self.state:
            raise UnicodeEncodeError("utf-8", "x", 0, 1, "refused")
        super().circuit_event(row)


def breaker_run(state: str, on: bool) -> Any:
    """One token: t1 (a breaker opening at one failure, reset after 10 ms, on_error skip)
    fails once at its first line, t2 waits 30 ms; the next t1 is the breaker's probe,
    which ends inside its call. The recorder refuses the breaker's move to ``state``."""
    from fluxnb.spec import CircuitBreakerSettings

    calls = [0]

    async def flaky(token: Any) -> Any:
        calls[0] += 1
        if calls[0] == 1:
            raise ValueError("flaky")
        return token

    async def pause(token: Any) -> Any:
        await asyncio.sleep(0.03)
        return token

    BREAKERS.clear()
    net = cycle_net(
        1,
        "flaky",
        "pause",
        circuit_breaker=CircuitBreakerSettings(failure_threshold=1, reset_timeout=0.01),
        on_error=OnError("skip"),
        default={"n": -1},
    )
    rec = RefusesCircuit(state)
    with inline(on):
        try:
            result, left = on_loop(
                lambda: fluxnb.arun(
                    net, {"flaky": flaky, "pause": pause}, store=rec, max_firings=6
                ),
                collect=True,
            )
        except UnicodeEncodeError:
            pytest.fail(f"arun raised the recorder's error; runs: {[r.status for r in rec.runs]}")
    return observe(result), left


# found here, fixed in session 10: AttemptRunner.start wrote the breaker's circuit events
# (open -> half_open at acquire, half_open -> closed after a probe) outside the try that
# routes a recorder's error: arun raised it, the run stayed 'running' and the firing's
# token was gone. A circuit event is no firing's own end: a refused one is dropped and
# named in the run's reason (as a DAG's side rows are), and the run goes on
@pytest.mark.parametrize("state", ["half_open", "closed"])
@pytest.mark.parametrize("on", MODES, ids=["inline", "woken"])
def test_a_refused_circuit_event_is_named_and_keeps_every_token(on: bool, state: str) -> None:
    s, left = breaker_run(state, on)
    assert total(s, "a", "b") == 1, s["marking"]
    assert s["status"] != "running"
    assert "fluxnb could not record every row: UnicodeEncodeError" in (s["reason"] or "")
    assert left == []


# found here, fixed in session 10: a retry waiting for its backoff when the run stops is
# recorded 'cancelled' by _settle() in advance()'s finally; a recorder refusing that row
# made advance() (and arun) raise the recorder's error: the run's end was never recorded
@pytest.mark.parametrize("on", MODES, ids=["inline", "woken"])
def test_a_refused_row_of_a_retry_the_stop_overtook_ends_the_run(on: bool) -> None:
    async def bad(token: Any) -> Any:
        await asyncio.sleep(0)
        raise ValueError("bad")

    async def stopper(token: Any) -> Any:
        await asyncio.sleep(0.01)
        raise RuntimeError("stop now")

    net = Net(
        "settle",
        ("a", "b", "c", "d"),
        (1, 0, 1, 0),
        (
            Transition(
                "r",
                (Arc(0),),
                (Arc(1),),
                run="bad",
                retry=RetryPolicy(max_attempts=5, backoff="linear", initial_delay=0.5),
            ),
            Transition("s", (Arc(2),), (Arc(3),), run="stopper"),
        ),
        tokens={0: [1], 2: [2]},
    )
    rec = refusing("r", {"cancelled"})
    with inline(on):
        try:
            result, left = on_loop(
                lambda: fluxnb.arun(net, {"bad": bad, "stopper": stopper}, store=rec),
                collect=True,
            )
        except UnicodeEncodeError:
            pytest.fail(f"arun raised the recorder's error; runs: {[r.status for r in rec.runs]}")
    assert left == [] and result.status.value == "failed"
    assert sum(result.marking.values()) == 2


# ---------------------------------------------------------------------- order of ends
def priority_net() -> Net:
    """A and B end in one turn of the loop; ``hi`` (priority 10) needs both their tokens,
    ``lo`` only A's."""
    return Net(
        "prio",
        ("a", "b", "p", "q", "hi_out", "lo_out"),
        (1, 1, 0, 0, 0, 0),
        (
            Transition("A", (Arc(0),), (Arc(2),), run="same"),
            Transition("B", (Arc(1),), (Arc(3),), run="same_b"),
            Transition("hi", (Arc(2), Arc(3)), (Arc(4),), priority=10),
            Transition("lo", (Arc(2),), (Arc(5),)),
        ),
        tokens={0: ["x"], 1: ["y"]},
    )


def general_path(net: Net, ns: dict[str, Any], **kw: Any) -> list[str]:
    """The sequence of an automatic run on the general path (keep_firings=True: never
    inline, as interactive runs)."""

    async def go() -> Any:
        engine = NetEngine(plan_net(net, ns), run_id="k", keep_firings=True, **kw)
        await engine.advance()
        await engine.aclose()
        return [engine._ids[i] for i in engine.sequence]

    return on_loop(go)[0]


def test_the_general_path_decides_a_conflict_after_both_ends() -> None:
    for on in MODES:
        with inline(on):
            assert general_path(priority_net(), dict(FNS)) == ["A", "B", "hi"]


# DIFFERENCE (intended, docs/petri.md): on, the first of two actions ending in one turn of
# the loop starts the next firings at once, inside its task, before the second has
# reported: a transition of higher priority that needs both ends loses to one that needs
# only the first (A, lo, B); off and the general path decide after both ends (A, B, hi)
def test_a_conflict_between_ends_of_one_turn_is_decided_at_the_first_end() -> None:
    seen = {on: one_run(priority_net_scenario, on, "none", Path("."))["sequence"] for on in MODES}
    assert seen == {True: ["A", "lo", "B"], False: ["A", "B", "hi"]}


def priority_net_scenario() -> tuple[Net, dict[str, Any]]:
    return priority_net(), dict(FNS)


# DIFFERENCE (intended, the same cause): with overlapping awaiting actions a plain run
# (inline ends) and the general path (keep_firings, interactive) give other sequences; the
# general path is what a plain run gives with INLINE_ENDS off
def test_the_general_path_runs_overlapping_actions_as_a_plain_run_without_inline_ends() -> None:
    off = one_run(
        lambda: (cycle_net(5, "hop", "at_once"), dict(FNS)),
        False,
        "none",
        Path("."),
        max_firings=24,
    )
    for on in MODES:
        with inline(on):
            general = general_path(cycle_net(5, "hop", "at_once"), dict(FNS), max_firings=24)
        assert off["sequence"] == general
