"""The compiled coloured token game (token data and guards, no actions) plays the general
engine's game exactly, and compiled guards answer exactly like the guard interpreter."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fluxnb
from fluxnb.engine._net_game import coloured_compilable, compilable
from fluxnb.engine._net_run import NetEngine, plan_net
from fluxnb.spec import Arc, Guard, GuardError, Net, Transition

GUARDS = (
    None,
    None,
    "token.n > 2",
    "token['n'] % 2 == 0",
    "token.n + 1 >= 3 or token.n < 0",
    "not token.n",
    "token.n * 2 - 1 in [1, 3, 5] and token.n < 9",
    "abs(token.n - 3) <= max(1, min(2, 3))",
    "token.n // 2 != round(token.n / 3)",
    "TOKENS",  # replaced by a guard over the tokens of the transition's input places
)


@st.composite
def guarded_nets(draw: st.DrawFn) -> Net:
    n = draw(st.integers(2, 5))
    places = tuple(f"p{i}" for i in range(n))
    initial = tuple(draw(st.integers(0, 3)) for _ in places)
    # mostly dicts with a number; now and then a token a guard cannot read
    datum = st.builds(lambda v: {"n": v} if v < 19 else "text", st.integers(-2, 20))
    tokens = {p: [draw(datum) for _ in range(k)] for p, k in enumerate(initial) if k}
    ts = []
    for i in range(draw(st.integers(1, 6))):
        ins = draw(st.lists(st.integers(0, n - 1), max_size=2, unique=True))
        outs = draw(st.lists(st.integers(0, n - 1), max_size=2))
        inhibit = draw(st.lists(st.integers(0, n - 1), max_size=1))
        guard = draw(st.sampled_from(GUARDS))
        if guard == "TOKENS":
            guard = " and ".join(f"tokens.{places[p]}['n'] >= 0" for p in ins) or None
        ts.append(
            Transition(
                f"t{i}",
                tuple(Arc(p, draw(st.integers(1, 2))) for p in ins),
                tuple(Arc(p, draw(st.integers(1, 2))) for p in outs),
                priority=draw(st.integers(0, 1)),
                inhibitors=tuple(Arc(p, draw(st.integers(1, 2))) for p in inhibit),
                guard=guard,
            )
        )
    final: dict[int, int] = {}
    if draw(st.booleans()):
        final = {draw(st.integers(0, n - 1)): draw(st.integers(1, 2))}
    return Net("random", places, initial, tuple(ts), final=final, tokens=tokens)


def _general(net: Net, limit: int) -> NetEngine:
    engine = NetEngine(plan_net(net, None), run_id="general", max_firings=limit)

    async def go() -> None:
        await engine.advance()
        await engine.aclose()

    asyncio.run(go())
    return engine


def _tokens(tokens: dict[str, list[Any]]) -> dict[str, list[Any]]:
    return {
        p: [(t.data, t.id, [(m.transition, m.firing, m.place) for m in t.history]) for t in q]
        for p, q in tokens.items()
    }


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(guarded_nets(), st.integers(1, 40))
def test_compiled_coloured_game_plays_the_general_engine_firing_for_firing(
    net: Net, limit: int
) -> None:
    assert coloured_compilable(net)
    compiled = fluxnb.run(net, store=None, max_firings=limit)
    general = _general(net, limit)
    status, ending, reason = general.conclude()
    assert (compiled.status, compiled.ending, compiled.reason) == (status, ending, reason)
    assert compiled.sequence == [general._ids[i] for i in general.sequence]
    assert compiled.marking == general.marking
    if not compilable(net):  # a black-token net's result has no per-token history
        tokens = {p: list(q) for p, q in zip(net.places, general.places, strict=True)}
        assert _tokens(compiled.tokens) == _tokens(tokens)


def test_a_guarded_data_net_keeps_token_history_and_stops_on_a_bad_guard() -> None:
    net = Net(
        "review",
        ("draft", "review", "done"),
        (2, 0, 0),
        (
            Transition("long", (Arc(0),), (Arc(1),), guard="token.words > 100"),
            Transition("pass", (Arc(1),), (Arc(2),), guard="tokens.review.words < 1000"),
        ),
        tokens={0: [{"words": 10}, {"words": 500}]},
    )
    r = fluxnb.run(net, store=None)
    (doc,) = r.tokens["done"]
    assert doc.data == {"words": 500}
    assert [(m.transition, m.firing, m.place) for m in doc.history] == [
        ("long", 1, "review"),
        ("pass", 2, "done"),
    ]
    assert doc.history[-1].at_us >= doc.history[0].at_us > 0
    assert [t.data for t in r.tokens["draft"]] == [{"words": 10}]
    assert gc.isenabled()  # the game pauses the GC only while it plays

    bad = Net(net.name, net.places, net.initial, net.transitions, tokens={0: ["x", "y"]})
    r = fluxnb.run(bad, store=None)
    assert (r.status.value, r.ending) == ("failed", "failed")
    assert r.reason is not None and "a guard could not be evaluated" in r.reason
    assert r.marking == {"draft": 2, "review": 0, "done": 0}  # nothing was taken


EXPRESSIONS = (
    "token.n > 2",
    "token['n'] % 3 == 1 and token.n != 4",
    "token.n + token.n * 2 >= 7 or not token.n",
    "1 < token.n <= 4",
    "token.n in [1, 2, 3] and token.s not in ('a', 'b')",
    "token.s + 'x' == 'ax'",
    "token.s * token.n == 'aa'",
    "'%d' % token.n == '3'",
    "len(token.s) > abs(-1) and max(token.n, 2) == round(token.n / 1)",
    "round(token.n, 500) == 1",
    "token[token.s] == 1",
    "token.n / 0 > 1",
    "-token.n < +1",
    "(token.n, 1)[1] == 1 and [token.n][0] == token.n",
    "tokens.a.n == token.n",
    "tokens['a'] == token",
)
VALUES = (
    {"n": 1, "s": "a"},
    {"n": 3, "s": "n"},
    {"n": 2**70, "s": "a"},
    {"n": 2.5, "s": ""},
    {"n": True, "s": "ab"},
    {"s": "a"},
    {"n": "1", "s": 1},
    "text",
    None,
)


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_a_compiled_guard_answers_and_fails_like_the_interpreter(text: str) -> None:
    guard = Guard(text)
    assert guard.function is not guard._interpret, "this guard should compile"
    for value in VALUES:
        tokens = {"a": value}
        try:
            expected: Any = guard._interpret(value, tokens)
        except GuardError as exc:
            expected = ("GuardError", str(exc))
        try:
            got: Any = guard(value, tokens)
        except GuardError as exc:
            got = ("GuardError", str(exc))
        assert got == expected, (text, value)
        assert type(got) is type(expected)
