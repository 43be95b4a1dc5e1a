"""The generated expansion of a big safe net (past _COMPILE_AFTER markings) builds exactly the
graph the plain loop builds: same markings in the same order, same parents, same edges."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluxnb.spec import Arc, Net, StateBudgetExceeded, Transition, _analysis

from .conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from nets import dining_philosophers


def _graph(net: Net, compile_after: int, monkeypatch: Any, max_states: int = 10**6) -> Any:
    with monkeypatch.context() as m:
        m.setattr(_analysis, "_COMPILE_AFTER", compile_after)
        g = _analysis.explore(net, max_states=max_states)
    return (
        list(g.markings),
        list(g.parent),
        list(g.via),
        list(g.offsets),
        list(g.edge_t),
        list(g.edge_dst),
        g.unbounded,
    )


def test_generated_expansion_builds_the_plain_loops_graph(monkeypatch: Any) -> None:
    net = dining_philosophers(9)  # 2,000+ markings: the generated code takes over
    plain = _graph(net, 10**9, monkeypatch)
    assert len(plain[0]) > 2000
    assert _graph(net, _analysis._COMPILE_AFTER, monkeypatch) == plain
    assert _graph(net, 1, monkeypatch) == plain


def test_generated_expansion_keeps_the_state_budget(monkeypatch: Any) -> None:
    with monkeypatch.context() as m:
        m.setattr(_analysis, "_COMPILE_AFTER", 1)
        with pytest.raises(StateBudgetExceeded):
            _analysis.explore(dining_philosophers(6), max_states=50)


@st.composite
def small_nets(draw: st.DrawFn) -> Net:
    n = draw(st.integers(2, 6))
    ts = []
    for i in range(draw(st.integers(1, 6))):
        ins = draw(st.lists(st.integers(0, n - 1), max_size=2, unique=True))
        outs = draw(st.lists(st.integers(0, n - 1), max_size=2, unique=True))
        inh = draw(st.lists(st.integers(0, n - 1), max_size=1))
        ts.append(
            Transition(
                f"t{i}",
                tuple(Arc(p) for p in ins),
                tuple(Arc(p) for p in outs),
                inhibitors=tuple(Arc(p) for p in inh),
            )
        )
    initial = tuple(draw(st.integers(0, 1)) for _ in range(n))
    return Net("random", tuple(f"p{i}" for i in range(n)), initial, tuple(ts))


@settings(max_examples=150, deadline=None)
@given(small_nets())
def test_generated_and_plain_expansion_agree_on_random_nets(net: Net) -> None:
    # inhibitors, nets that turn out not safe (a second token: bytes from the start), and
    # unbounded ones (the budget runs out): the generated code from the first marking on
    # must end exactly as the plain loop does
    mp = pytest.MonkeyPatch()
    try:
        results = []
        for after in (10**9, 1):
            try:
                results.append(_graph(net, after, mp, max_states=300))
            except StateBudgetExceeded:
                results.append("budget")
            except ValueError as exc:
                results.append(str(exc))
        assert results[0] == results[1]
    finally:
        mp.undo()


def _search(
    net: Net, monkeypatch: Any, *, vector: bool, nodes: int = 16_384, max_states: int = 10**6
) -> Any:
    """The graph (or how the search ended) with the switch after the first marking: to the
    numpy search, ``nodes`` per chunk, or (``vector`` False) to the generated code only."""
    import numpy  # noqa: F401 - imported: the search switches to numpy at once

    with monkeypatch.context() as m:
        m.setattr(_analysis, "_VECTOR_NODES", nodes)
        if not vector:
            m.setattr(_analysis, "_VECTOR_PLACES", 0)
        try:
            return _graph(net, 1, monkeypatch, max_states)
        except StateBudgetExceeded:
            return "budget"
        except ValueError as exc:
            return str(exc)


def test_numpy_search_builds_the_plain_loops_graph(monkeypatch: Any) -> None:
    """Chunks of one node up to the whole graph at once: the same markings in the same
    order, the same parents and edges as the plain loop and the generated code."""
    net = dining_philosophers(9)
    plain = _graph(net, 10**9, monkeypatch)
    assert _search(net, monkeypatch, vector=False) == plain
    for nodes in (1, 7, 500, 10**6):
        assert _search(net, monkeypatch, vector=True, nodes=nodes) == plain


def test_a_fresh_process_searches_with_generated_code_until_numpy_pays(monkeypatch: Any) -> None:
    """Without numpy imported yet, generated code goes on to _VECTOR_AFTER markings, then
    numpy takes over from where it stopped: the graph is the plain loop's."""
    net = dining_philosophers(9)
    plain = _graph(net, 10**9, monkeypatch)
    with monkeypatch.context() as m:
        m.delitem(sys.modules, "numpy", raising=False)
        m.setattr(_analysis, "_VECTOR_AFTER", 900)
        m.setattr(_analysis, "_VECTOR_NODES", 333)
        assert _graph(net, 100, monkeypatch) == plain


def test_numpy_search_keeps_the_state_budget_and_tells_growth_from_size(monkeypatch) -> None:
    net = dining_philosophers(6)
    for nodes in (1, 5, 1000):
        assert _search(net, monkeypatch, vector=True, nodes=nodes, max_states=50) == "budget"
    grows = Net("grows", ("p", "q"), (1, 0), (Transition("t", (Arc(0),), (Arc(0), Arc(1))),))
    # q fills up: the second token ends the bit search, whichever search meets it
    assert _search(grows, monkeypatch, vector=True, nodes=1) == _graph(grows, 10**9, monkeypatch)


@settings(max_examples=150, deadline=None)
@given(small_nets(), st.integers(1, 70), st.integers(1, 5))
def test_numpy_generated_and_plain_searches_agree_on_random_nets(
    net: Net, max_states: int, nodes: int
) -> None:
    # as above, and with budgets that run out mid-chunk: where a chunk holds both the
    # budget's end and a firing that is not safe, the one the loop meets first decides
    mp = pytest.MonkeyPatch()
    try:
        try:
            plain: Any = _graph(net, 10**9, mp, max_states)
        except StateBudgetExceeded:
            plain = "budget"
        except ValueError as exc:
            plain = str(exc)
        assert _search(net, mp, vector=False, max_states=max_states) == plain
        assert _search(net, mp, vector=True, nodes=nodes, max_states=max_states) == plain
    finally:
        mp.undo()


def _rings(size: int) -> Net:
    """Two tokens, each going round a ring of ``size`` places: size² markings."""
    places = tuple(f"{ring}{i}" for ring in "ab" for i in range(size))
    ts = tuple(
        Transition(f"{ring}{i}", (Arc(k * size + i),), (Arc(k * size + (i + 1) % size),))
        for k, ring in enumerate("ab")
        for i in range(size)
    )
    return Net("rings", places, (1, *[0] * (size - 1), 1, *[0] * (size - 1)), ts)


def test_the_numpy_search_takes_nets_of_up_to_64_places(monkeypatch: Any) -> None:
    """With numpy loaded, a big safe net of 64 places or fewer goes to the numpy search; one
    of more places to the generated code: the same graph either way."""
    import numpy  # noqa: F401 - loaded, as in a kernel holding pandas

    from fluxnb.spec import _safe_vector

    calls: list[int] = []
    expand = _safe_vector.expand

    def spy(s: Any, *args: Any) -> bool:
        calls.append(len(s.markings))
        return expand(s, *args)

    monkeypatch.setattr(_safe_vector, "expand", spy)
    for net, searched in ((_rings(32), True), (_rings(33), False)):  # 64 and 66 places
        calls.clear()
        plain = _graph(net, 10**9, monkeypatch)
        assert _graph(net, 1, monkeypatch) == plain
        assert bool(calls) is searched, net.places


def test_without_numpy_the_generated_code_finishes_the_search(monkeypatch: Any) -> None:
    net = dining_philosophers(9)
    plain = _graph(net, 10**9, monkeypatch)
    import fluxnb.spec

    with monkeypatch.context() as m:
        m.setitem(sys.modules, "numpy", None)  # import numpy: ImportError
        m.setitem(sys.modules, "fluxnb.spec._safe_vector", None)
        m.delattr(fluxnb.spec, "_safe_vector", raising=False)
        assert _graph(net, 100, monkeypatch) == plain
