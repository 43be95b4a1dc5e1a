"""What a net run with actions must keep however its firings are run: the plain path
(firings not kept, an action that ends inside its call builds no firing object) and the
general one (``keep_firings``, interactive firing) give the same results, token ids and
histories, arguments and events rows."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import fluxnb
from fluxnb.engine._breaker import BREAKERS
from fluxnb.engine._net_run import NetEngine, plan_net
from fluxnb.spec import Arc, CircuitBreakerSettings, Net, OnError, RetryPolicy, Transition
from fluxnb.testing import MemoryRecorder

# rows: everything but the clock (start, end, duration differ between two runs)
TIMELESS = ("seq", "step", "attempt", "status", "final", "error_type", "error_message", "output")


def cycle(tokens: int = 2, **extra: Any) -> Net:
    """a -> t1 -> b -> t2 -> a, ``tokens`` tokens, both transitions run ``act``; ``t1``
    also feeds a sink place ``log`` (two outputs: token ids are handed out in output
    order)."""
    return Net(
        "cyc",
        ("a", "b", "log"),
        (tokens, 0, 0),
        (
            Transition("t1", (Arc(0),), (Arc(1), Arc(2)), run="act", **extra),
            Transition("t2", (Arc(1),), (Arc(0),), run="act"),
        ),
        tokens={0: [{"n": i + 1} for i in range(tokens)]},
    )


def play(
    n: Net, act: Any, *, keep: bool, max_firings: int = 24, seed: int = 0
) -> tuple[NetEngine, MemoryRecorder]:
    rec = MemoryRecorder()
    BREAKERS.clear()  # breakers outlive runs: each run starts with closed ones
    engine = NetEngine(
        plan_net(n, {"act": act}),
        run_id="r",
        recorder=rec,
        max_firings=max_firings,
        keep_firings=keep,
        seed=seed,
    )

    async def go() -> None:
        await engine.advance()
        await engine.aclose()

    asyncio.run(go())
    return engine, rec


def observed(engine: NetEngine, rec: MemoryRecorder) -> dict[str, Any]:
    """Everything a user can see of a run except the clock."""
    return {
        "sequence": list(engine.sequence),
        "outputs": dict(engine.outputs),
        "errors": dict(engine.errors),
        "marking": engine.marking,
        "ending": (engine.ending, engine.reason, engine.failures, sorted(engine._blocked)),
        "tokens": [
            [(t.id, t.data, [(m.transition, m.firing, m.place) for m in t.history]) for t in q]
            for q in engine.places
        ],
        "rows": [tuple(r.get(k) for k in TIMELESS) for r in rec.rows()],
        "circuit": [r[1:] for r in rec.circuit_events],  # all but the time
        "counts": (engine.seq, engine.started),
    }


async def inline_all(**kw: Any) -> Any:  # takes everything offered: place, token, tokens, data
    return {"n": kw["token"]["n"] + 1, "keys": sorted(kw)}


async def inline_by_name(a: Any = None, b: Any = None) -> Any:
    return (a or b)["n"] * 10 if (a or b)["n"] < 100 else None


async def returns_none(**_: Any) -> None:
    return None


async def suspends(**kw: Any) -> Any:
    await asyncio.sleep(0)
    return kw["token"]


def sync_action(token: Any) -> Any:
    return token


def flaky_factory() -> Any:
    calls: dict[int, int] = {}

    async def flaky(token: Any, tokens: Any, data: Any = None) -> Any:
        calls[token["n"]] = calls.get(token["n"], 0) + 1
        if calls[token["n"]] % 3 == 1:
            raise ConnectionError(f"flaky {token['n']}")
        return {**token, "seen": sorted(tokens), "data": data}

    return flaky


def failing_factory(at: int, until: int = 0, only: str = "") -> Any:
    """Fails from its ``at``-th call to its ``until``-th (calls with ``only`` among their
    arguments, when given)."""
    count = [0]

    async def failing(**kw: Any) -> Any:
        if only and only not in kw:
            return kw["token"]
        count[0] += 1
        if at <= count[0] <= max(at, until):
            raise ValueError("bad firing")
        return kw["token"]

    return failing


async def with_ctx(token: Any, ctx: Any) -> Any:
    return {"n": token["n"], "step": ctx.step}


CASES: dict[str, tuple[Any, dict[str, Any]]] = {
    "inline, all arguments": (lambda: inline_all, {}),
    "inline, by place name": (lambda: inline_by_name, {}),
    "inline, returns None (the token's data goes on)": (lambda: returns_none, {}),
    "suspends": (lambda: suspends, {}),
    # one token: two threads would end in either order
    "sync, in a thread": (lambda: sync_action, {"tokens": 1}),
    "fails inline, retried": (
        flaky_factory,
        {"retry": RetryPolicy(max_attempts=3, backoff="none")},
    ),
    "fails inline, on_error stop": (lambda: failing_factory(5), {}),
    "fails inline, on_error continue": (
        lambda: failing_factory(5),
        {"on_error": OnError("continue")},
    ),
    "fails inline, on_error skip": (
        lambda: failing_factory(5),
        {"on_error": OnError("skip"), "default": {"n": -1}},
    ),
    "takes ctx": (lambda: with_ctx, {}),
    "a breaker opens: the action is not called": (
        lambda: failing_factory(3, until=4, only="a"),
        {
            "retry": RetryPolicy(max_attempts=2, backoff="none"),
            "circuit_breaker": CircuitBreakerSettings(failure_threshold=2),
            "on_error": OnError("skip"),
            "default": {"n": -1},
        },
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_plain_and_kept_firings_runs_are_the_same(case: str) -> None:
    make, extra = CASES[case]
    plain = observed(*play(cycle(**extra), make(), keep=False))
    kept_engine, rec = play(cycle(**extra), make(), keep=True)
    assert plain == observed(kept_engine, rec)
    assert kept_engine.firings is not None
    assert [f.seq for f in kept_engine.firings] == sorted(r[0] for r in plain["rows"] if r[4])


def test_an_inline_action_gets_the_same_arguments_on_every_path() -> None:
    seen: list[list[tuple[str, Any]]] = []

    async def act(**kw: Any) -> int:
        seen.append(list(kw.items()))
        return 1

    play(cycle(), act, keep=False, max_firings=4)
    plain, seen[:] = list(seen), []
    play(cycle(), act, keep=True, max_firings=4)
    assert plain == seen and len(plain) == 4
    # the order of the arguments is part of what an action sees
    assert [k for k, _ in plain[0]] == ["a", "token", "tokens", "data"]
    assert plain[0][2][1] == {"a": {"n": 1}}


def test_a_plain_run_hands_out_token_ids_and_histories_in_order() -> None:
    engine, _ = play(cycle(), inline_all, keep=False, max_firings=3)
    # t1, t1 (two tokens in a), then t2: each firing's tokens are numbered in output order
    assert list(engine.sequence) == [0, 0, 1]
    log = [(t.id, [m.firing for m in t.history]) for t in engine.places[2]]
    assert log == [(4, [1]), (6, [2])]
    (back,) = engine.places[0]
    assert back.id == 7 and [(m.transition, m.place) for m in back.history] == [
        ("t1", "b"),
        ("t2", "a"),
    ]


def test_interactive_firing_of_an_action_returns_its_firing() -> None:
    async def go() -> Any:
        engine = NetEngine(plan_net(cycle(), {"act": inline_all}), run_id="i", keep_firings=True)
        firing = await engine.fire_one("t1")
        await engine.aclose()
        return engine, firing

    engine, firing = asyncio.run(go())
    assert (firing.seq, firing.transition, firing.status, firing.attempts) == (
        1,
        "t1",
        "succeeded",
        1,
    )
    assert [t.id for t in firing.produced] == [3, 4] and firing.output["n"] == 2
    assert firing.ended_us is not None and firing.ended_us >= firing.started_us
    assert engine.firings == [firing]


def test_a_plain_run_through_fluxnb_run_records_one_row_per_firing() -> None:
    rec = MemoryRecorder()
    r = fluxnb.run(cycle(), {"act": inline_all}, store=rec, max_firings=10)
    assert r.firings == 10 and r.ending == "max_firings"
    rows: list[dict[str, Any]] = rec.rows()
    assert [x["seq"] for x in rows] == list(range(1, 11))
    assert all(x["status"] == "succeeded" and x["final"] and x["attempt"] == 1 for x in rows)
    assert rows[0]["output"] == {"n": 2, "keys": ["a", "data", "token", "tokens"]}
    assert r.outputs["t1"]["n"] == max(x["output"]["n"] for x in rows if x["step"] == "t1")


@pytest.mark.parametrize("action", ["by name", "everything"])
def test_a_join_takes_one_token_from_each_place_on_both_paths(action: str) -> None:
    async def by_name(x: Any, y: Any) -> Any:
        return x + y

    async def everything(**kw: Any) -> Any:
        return [kw["x"], kw["y"], kw["token"], kw["tokens"], kw["data"]]

    join = Net(
        "join",
        ("x", "y", "z"),
        (3, 2, 0),
        (Transition("t", (Arc(0), Arc(1)), (Arc(2),), run="act"),),
        tokens={0: [1, 2, 3], 1: [10, 20]},
    )
    act = by_name if action == "by name" else everything
    plain, kept = play(join, act, keep=False), play(join, act, keep=True)
    assert observed(*plain) == observed(*kept)
    outputs = [t.data for t in plain[0].places[2]]
    if action == "by name":
        assert outputs == [11, 22]
    else:
        assert outputs[0] == [1, 10, 1, {"x": 1, "y": 10}, None]
    assert [t.data for t in plain[0].places[0]] == [3]


def test_a_seeded_random_choice_draws_the_same_firings_on_both_paths() -> None:
    async def act(**kw: Any) -> Any:
        return kw["token"] + 1

    racing = Net(
        "race",
        ("a", "b"),
        (3, 0),
        (
            Transition("left", (Arc(0),), (Arc(1),), run="act"),
            Transition("right", (Arc(0),), (Arc(1),), run="act"),
            Transition("back", (Arc(1),), (Arc(0),)),
        ),
        tokens={0: [0, 10, 20]},
        choice="random",
    )
    runs = {
        seed: [
            observed(*play(racing, act, keep=k, max_firings=60, seed=seed)) for k in (False, True)
        ]
        for seed in (1, 2)
    }
    for plain, kept in runs.values():
        assert plain == kept
    assert runs[1][0]["sequence"] != runs[2][0]["sequence"]  # the seed does decide
