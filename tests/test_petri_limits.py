"""How long an analysis may take: the Karp-Miller check stays linear on deep nets, and an
analysis gives up cleanly past ``timeout=`` / ``--timeout`` or ``max_states``."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fluxnb
from fluxnb.spec import Arc, Net, StateBudgetExceeded, Transition, _analysis, write_pnml
from fluxnb.spec._analysis import OMEGA, explore

from .conftest import FLUXNB, ROOT, cli_env

sys.path.insert(0, str(ROOT / "benchmarks"))
from nets import dining_philosophers


def growing_chain(n: int) -> Net:
    """One transition moving a token from p to q and r: n + 1 markings on one path, the
    token count growing at every step (so Karp-Miller must look at the ancestors)."""
    t = Transition("t", (Arc(0),), (Arc(1), Arc(2)))
    return Net("chain", ("p", "q", "r"), (n, 0, 0), (t,))


def _ancestor_steps(n: int, monkeypatch: pytest.MonkeyPatch) -> int:
    """Ancestors the Karp-Miller check visits while analysing ``growing_chain(n)``: a count,
    not a time, so the test means the same on a loaded machine."""
    seen = 0
    accelerate = _analysis._accelerate

    def counting(new, node, markings, parent, sums, lows, work):  # type: ignore[no-untyped-def]
        nonlocal seen
        before = work.done
        out = accelerate(new, node, markings, parent, sums, lows, work)
        seen += work.done - before
        return out

    monkeypatch.setattr(_analysis, "_accelerate", counting)
    a = fluxnb.analyze(growing_chain(n), progress=False)
    assert a.reachable_markings == n + 1 and a.deadlock is True
    monkeypatch.setattr(_analysis, "_accelerate", accelerate)
    return seen


def test_coverability_check_is_linear_in_the_depth_of_the_net(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each new marking used to be compared with every ancestor: quadratic in the depth
    (N = 4,000 took 2.5 s, 16x N = 1,000). Now the walk stops where the path's per-place
    minimum rules out every ancestor above. Counted in ancestors visited (a timed ratio
    failed on a loaded CI machine)."""
    small, big = _ancestor_steps(1000, monkeypatch), _ancestor_steps(4000, monkeypatch)
    assert big / small < 8, (small, big)  # linear: ~4x; quadratic: ~16x


def _accelerate_every_ancestor(new, node, markings, parent, sums, lows, work=None):  # type: ignore[no-untyped-def]
    """The Karp-Miller step as it was: every ancestor checked (a reference)."""
    total = sum(new)
    a = node
    while a != -1:
        anc = markings[a]
        if sums[a] < total and all(x <= y for x, y in zip(anc, new, strict=True)):
            new = tuple(OMEGA if y > x else y for x, y in zip(anc, new, strict=True))
            total = sum(new)
        a = parent[a]
    return new


@st.composite
def weighted_nets(draw: st.DrawFn) -> Net:
    n_p = draw(st.integers(2, 4))
    ts = []
    for j in range(draw(st.integers(1, 4))):
        ins = draw(st.dictionaries(st.integers(0, n_p - 1), st.integers(1, 2), min_size=1))
        outs = draw(st.dictionaries(st.integers(0, n_p - 1), st.integers(1, 3), max_size=3))
        ts.append(
            Transition(
                f"t{j}",
                tuple(Arc(p, w) for p, w in ins.items()),
                tuple(Arc(p, w) for p, w in outs.items()),
            )
        )
    initial = tuple(draw(st.integers(0, 3)) for _ in range(n_p))
    return Net("w", tuple(f"p{i}" for i in range(n_p)), initial, tuple(ts))


@settings(max_examples=120, deadline=None)
@given(weighted_nets())
def test_the_pruned_walk_builds_the_same_coverability_graph(n: Net) -> None:
    def graph() -> tuple[list[tuple[int, ...]], bool]:
        try:
            g = explore(n, max_states=3000)
        except StateBudgetExceeded:
            return [], False
        return [tuple(g.marking(v)) for v in range(len(g.markings))], g.unbounded

    fast = graph()
    original = _analysis._accelerate
    _analysis._accelerate = _accelerate_every_ancestor  # type: ignore[assignment]
    try:
        reference = graph()
    finally:
        _analysis._accelerate = original
    assert fast == reference


def test_timeout_stops_a_long_analysis_with_a_clear_error() -> None:
    for big in (dining_philosophers(16), growing_chain(5_000_000)):  # bit and tuple searches
        t = time.perf_counter()
        with pytest.raises(fluxnb.AnalysisTimeout) as info:
            fluxnb.analyze(big, timeout=0.3, max_states=10_000_000, progress=False)
        spent = time.perf_counter() - t
        assert spent < 2.0, spent
        assert info.value.timeout == 0.3 and info.value.markings > 0
        assert isinstance(info.value, fluxnb.FluxError)
    assert fluxnb.analyze(growing_chain(10), timeout=5).reachable_markings == 11
    for bad in (0, -1, "5", True):
        with pytest.raises(ValueError, match="timeout= takes"):
            fluxnb.analyze(growing_chain(10), timeout=bad)


def test_cli_analyze_timeout_and_state_budget_exit_5(tmp_path: Path) -> None:
    path = tmp_path / "phil.pnml"
    path.write_text(write_pnml(dining_philosophers(16)))

    def analyze(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*FLUXNB, "analyze", str(path), *args],
            capture_output=True,
            text=True,
            env=cli_env(),
            timeout=60,
        )

    out = analyze("--timeout", "0.3", "--max-states", "5000000")
    assert out.returncode == 5, out.stderr
    assert "timeout of 0.3 s" in out.stderr and "Traceback" not in out.stderr
    out = analyze("--max-states", "1000")
    assert out.returncode == 5 and "more than 1,000 reachable markings" in out.stderr
    out = analyze("--timeout", "0")
    assert out.returncode == 2 and "--timeout takes" in out.stderr


def _growing(n: int) -> str:
    """Counts grow along paths of depth ~n: Karp-Miller checks O(n) ancestors per marking."""
    return (
        "name: growing\nnet:\n"
        f"  places: {{p: {n}, q: 0, s: 0}}\n"
        "  transitions:\n"
        "    - {id: t, inputs: [p], outputs: [q]}\n"
        "    - {id: u, inputs: [q], outputs: [s]}\n"
        "    - {id: v, inputs: [s], outputs: [q, s]}\n"
    )


def test_max_states_bounds_the_coverability_checks_too() -> None:
    import fluxnb
    from fluxnb.spec._analysis import WORK_PER_STATE

    with pytest.raises(fluxnb.StateBudgetExceeded) as err:
        fluxnb.analyze(_growing(320), max_states=60_000, progress=False)
    assert err.value.checks is not None and err.value.checks > 60_000 * WORK_PER_STATE
    assert "ancestor checks" in str(err.value)
    assert fluxnb.analyze(_growing(40), progress=False).bounded is False  # small: answered


def test_a_timeout_stops_a_search_that_spends_its_time_checking_ancestors() -> None:
    import time

    import fluxnb

    t = time.monotonic()
    with pytest.raises(fluxnb.AnalysisTimeout):
        fluxnb.analyze(_growing(640), timeout=0.5, progress=False)
    assert time.monotonic() - t < 5
