"""Running Petri nets: the token game (compiled and general), conflicts, endings, tokens
with data and history, actions with retry/timeout/on_error, interactive runs, the trace."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fluxnb
from fluxnb import NotEnabled, ResolutionError, RunStatus
from fluxnb.engine._net_run import NetEngine, plan_net
from fluxnb.spec import Arc, Net, Transition
from fluxnb.spec._analysis import explore
from fluxnb.testing import MemoryRecorder

from .conftest import FLUXNB, cli_env, pnml_files, shared_shell
from .test_petri_analysis import MUTEX, net

CYCLE = net({"a": 1, "b": 0}, [("t1", {"a": 1}, {"b": 1}), ("t2", {"b": 1}, {"a": 1})], name="cyc")


def general(n: Net, max_firings: int = 1000, seed: int = 0, namespace: Any = None) -> Any:
    """Run ``n`` on the general (coloured) engine, never the compiled game."""
    engine = NetEngine(plan_net(n, namespace), run_id="t", seed=seed, max_firings=max_firings)

    async def go() -> None:
        await engine.advance()
        await engine.aclose()

    asyncio.run(go())
    return engine


def replay_markings(n: Net, sequence: list[str]) -> list[tuple[int, ...]]:
    """The markings a firing sequence passes through (an independent dict-free replay)."""
    by_id = {t.id: t for t in n.transitions}
    m = list(n.initial)
    out = [tuple(m)]
    for tid in sequence:
        t = by_id[tid]
        assert all(m[a.place] >= a.weight for a in t.inputs), f"{tid} fired while disabled"
        assert all(m[a.place] < a.weight for a in t.inhibitors), f"{tid} fired while inhibited"
        for a in t.inputs:
            m[a.place] -= a.weight
        for a in t.outputs:
            m[a.place] += a.weight
        out.append(tuple(m))
    return out


# ---------------------------------------------------------------- the pure token game
def test_two_place_cycle_runs_to_max_firings_with_a_clear_status() -> None:
    r = fluxnb.run(CYCLE, store=None, max_firings=100_001)
    assert r.status is RunStatus.FAILED and r.ending == "max_firings"
    assert r.firings == 100_001 and r.counts == {"t1": 50_001, "t2": 50_000}
    assert r.marking == {"a": 0, "b": 1}
    assert r.sequence[:4] == ["t1", "t2", "t1", "t2"]
    assert "max_firings=100,001" in (r.reason or "")


def test_final_marking_dead_marking_and_deadlock_endings() -> None:
    seq = net({"i": 1, "m": 0, "o": 0}, [("a", {"i": 1}, {"m": 1}), ("b", {"m": 1}, {"o": 1})])
    r = fluxnb.run(seq, store=None)
    assert (r.status, r.ending, r.marking["o"]) == (RunStatus.SUCCEEDED, "dead", 1)
    final = net(
        {"i": 1, "m": 0, "o": 0},
        [("a", {"i": 1}, {"m": 1}), ("b", {"m": 1}, {"o": 1}), ("c", {"o": 1}, {"i": 1})],
        final={"o": 1},
    )
    r = fluxnb.run(final, store=None)  # stops at the final marking though c is enabled
    assert (r.status, r.ending, r.sequence) == (RunStatus.SUCCEEDED, "final", ["a", "b"])
    stuck = net({"i": 1, "m": 0, "o": 0}, [("a", {"i": 1}, {"m": 1})], final={"o": 1})
    r = fluxnb.run(stuck, store=None)
    assert (r.status, r.ending) == (RunStatus.FAILED, "dead")
    assert "deadlock" in r.reason and "m=1" in r.reason


def test_conflicts_go_by_priority_then_declared_order() -> None:
    race = net(
        {"p": 1, "x": 0, "y": 0},
        [("first", {"p": 1}, {"x": 1}), ("second", {"p": 1}, {"y": 1})],
    )
    assert fluxnb.run(race, store=None).sequence == ["first"]
    prio = Net(
        "prio",
        race.places,
        race.initial,
        (race.transitions[0], Transition("second", (Arc(0),), (Arc(2),), priority=5)),
    )
    assert fluxnb.run(prio, store=None).sequence == ["second"]
    assert general(prio).sequence.tolist() == [1]


def test_seeded_random_choice_is_reproducible_and_varies_with_the_seed() -> None:
    manifest = {
        "name": "coin",
        "net": {
            "places": {"p": 1, "heads": 0, "tails": 0},
            "choice": "random",
            "max_firings": 200,
            "transitions": [
                {"id": "h", "inputs": ["p"], "outputs": ["heads", "p"]},
                {"id": "t", "inputs": ["p"], "outputs": ["tails", "p"]},
            ],
        },
    }
    runs = {s: fluxnb.run(manifest, store=None, seed=s).sequence for s in range(4)}
    assert runs[1] == fluxnb.run(manifest, store=None, seed=1).sequence
    assert len({tuple(v) for v in runs.values()}) > 1
    counts = fluxnb.run(manifest, store=None, seed=3).counts
    assert 60 < counts["h"] < 140  # both sides win often: a real choice, not a fixed order


def test_mutex_never_has_both_in_the_critical_section() -> None:
    for seed in range(5):
        m = Net(**{**MUTEX.__dict__, "choice": "random"})
        e = general(m, max_firings=300, seed=seed)
        seq = [m.transitions[i].id for i in e.sequence]
        for marking in replay_markings(m, seq):
            assert not (marking[1] and marking[3])
        assert len(seq) == 300


@st.composite
def small_nets(draw: st.DrawFn) -> Net:
    n_p = draw(st.integers(2, 5))
    places = {f"p{i}": draw(st.integers(0, 2)) for i in range(n_p)}
    trans = []
    for j in range(draw(st.integers(1, 6))):
        pick = st.sets(st.integers(0, n_p - 1), min_size=1, max_size=2)
        ins = {f"p{i}": draw(st.integers(1, 2)) for i in draw(pick)}
        outs = {f"p{i}": draw(st.integers(1, 2)) for i in draw(st.sets(st.integers(0, n_p - 1)))}
        inh = {f"p{i}": 1 for i in draw(st.sets(st.integers(0, n_p - 1), max_size=1))}
        trans.append((f"t{j}", ins, outs, inh))
    n = net(places, trans)
    prios = [draw(st.integers(0, 2)) for _ in n.transitions]
    ts = tuple(
        Transition(t.id, t.inputs, t.outputs, priority=p, inhibitors=t.inhibitors)
        for t, p in zip(n.transitions, prios, strict=True)
    )
    return Net(n.name, n.places, n.initial, ts)


@settings(max_examples=60, deadline=None)
@given(small_nets())
def test_compiled_and_general_engines_agree_and_stay_in_the_analysed_space(n: Net) -> None:
    compiled = fluxnb.run(n, store=None, max_firings=40)
    engine = general(n, max_firings=40)
    assert compiled.sequence == [n.transitions[i].id for i in engine.sequence]
    assert compiled.marking == engine.marking
    markings = replay_markings(n, compiled.sequence)
    assert dict(zip(n.places, markings[-1], strict=True)) == compiled.marking
    a = fluxnb.analyze(n, max_states=5_000)
    if a.bounded:  # every marking the game produced is one the analysis found reachable
        g = explore(n)
        reachable = {g.marking(v) for v in range(len(g.markings))}
        assert set(markings) <= reachable
    rnd = Net(**{**n.__dict__, "choice": "random"})
    for seed in range(3):
        e = general(rnd, max_firings=40, seed=seed)
        seq = [n.transitions[i].id for i in e.sequence]
        walked = replay_markings(n, seq)
        if a.bounded:
            assert set(walked) <= reachable


def test_every_pnml_test_net_runs() -> None:
    files = pnml_files()  # tests/data/pnml, plus ../shared/data/pnml when it is there
    assert len(files) >= 7
    for f in files:
        n = fluxnb.load(f)
        r = fluxnb.run(n, store=None, max_firings=500)
        assert r.ending in ("final", "dead", "max_firings")
        assert replay_markings(n, r.sequence)[-1] == tuple(r.marking.values())


# ---------------------------------------------------------------- coloured tokens
REVIEW = """
name: review
net:
  places:
    draft: [{words: 50, title: short}, {words: 150, title: long}]
    review: 0
    done: 0
  transitions:
    - id: submit
      inputs: [draft]
      outputs: [review]
      run: submit_doc
      guard: "token.words > 100"
    - id: pad
      inputs: [draft]
      outputs: [draft]
      run: pad
      priority: -1
    - id: approve
      inputs: [review]
      outputs: [done]
      external: true
  final: {done: 2}
"""


def submit_doc(token: dict) -> dict:
    return {**token, "submitted": True}


async def pad(draft: dict) -> dict:
    await asyncio.sleep(0)
    return {**draft, "words": draft["words"] + 60}


NS = {"submit_doc": submit_doc, "pad": pad}


def test_guards_pick_the_token_that_passes_and_data_flows_with_history() -> None:
    rec = MemoryRecorder()
    r = fluxnb.run(REVIEW, NS, store=rec)
    # only 'approve' (external) could go on: a deadlock against the final marking
    assert (r.status, r.ending) == (RunStatus.FAILED, "dead")
    assert "external transitions are enabled (approve)" in r.reason
    long_doc, short_doc = r.tokens["review"]
    assert long_doc.data == {"words": 150, "title": "long", "submitted": True}
    assert short_doc.data == {"words": 110, "title": "short", "submitted": True}
    assert [m.transition for m in short_doc.history] == ["pad", "submit"]
    # completion order of concurrent actions (one in a thread, one async) is timing: the
    # logical order is the firing number
    assert sorted(r.sequence) == ["pad", "submit", "submit"]
    rows = sorted(rec.rows(), key=lambda x: x["seq"])
    assert [(x["seq"], x["step"], x["status"]) for x in rows] == [
        (1, "submit", "succeeded"),
        (2, "pad", "succeeded"),
        (3, "submit", "succeeded"),
    ]


def test_interactive_run_fires_puts_explains_and_records(store_path: str) -> None:
    run = fluxnb.interactive(REVIEW, NS, store=store_path)
    assert run.status == "waiting" and run.enabled() == ["approve"]
    assert run.marking == {"draft": 0, "review": 2, "done": 0}
    f = run.fire("approve", data={"approved_by": "ana"})
    assert f.status == "succeeded" and f.produced[0].data == {"approved_by": "ana"}
    with pytest.raises(NotEnabled, match="no transition 'aprove'"):
        run.fire("aprove")
    with pytest.raises(NotEnabled, match="place 'draft' holds 0 token"):
        run.fire("submit")
    tok = run.put("draft", {"words": 500, "title": "late"})
    # the put token was submitted automatically at once
    assert tok.data["title"] == "late" and run.marking["review"] == 2
    late = next(t for t in run.tokens("review") if t.data["title"] == "late")
    assert [m.transition for m in late.history] == [None, "submit"]
    run.fire("approve")
    run.fire("approve")
    assert run.marking["done"] == 3 and run.status == "waiting"
    res = run.close()
    assert (res.status, res.ending) == (RunStatus.CANCELLED, "closed")  # 3 done, final says 2
    hist = run.history()
    assert list(hist["transition"]) == [
        "submit", "pad", "submit", "approve", "put:draft", "submit", "approve", "approve",
    ]  # fmt: skip
    with pytest.raises(fluxnb.RunError, match="closed"):
        run.fire("approve")
    ev = fluxnb.sql(
        f"SELECT seq, step, status FROM events WHERE run_id = '{res.run_id}' ORDER BY seq",
        store=store_path,
    )
    assert list(ev["step"]) == list(hist["transition"])
    runs = fluxnb.sql(f"SELECT * FROM runs WHERE run_id = '{res.run_id}'", store=store_path)
    assert runs["status"][0] == "cancelled" and runs["workflow"][0] == "review"


def test_state_machine_form_runs_interactively_with_conditions() -> None:
    machine = """
name: ticket
states: [open, working, closed]
initial_state: open
transitions:
  - id: start
    from_states: [open]
    to_state: working
  - id: close
    from_states: [open, working]
    to_state: closed
    conditions: ["token.resolved == True"]
    external: true
"""
    run = fluxnb.interactive(machine, store=None, auto=True)  # a machine waits unless asked
    assert run.marking == {"open": 0, "working": 1, "closed": 0}  # start fired by itself
    with pytest.raises(NotEnabled):
        run.fire("close@working")  # token data None: the guard fails
    run.close()
    run = fluxnb.interactive(machine, store=None, auto=False)
    assert run.enabled() == ["start"]
    run.put("working", {"resolved": True})
    assert "close@working" in run.enabled()
    run.fire("close@working")
    assert run.tokens("closed")[0].data == {"resolved": True}


# ---------------------------------------------------------------- actions: resilience
def action_net(**extra: Any) -> dict:
    t = {"id": "work", "inputs": ["todo"], "outputs": ["done"], "run": "work", **extra}
    return {"name": "act", "net": {"places": {"todo": [1, 2], "done": 0}, "transitions": [t]}}


def test_retries_record_every_attempt_under_one_firing_number() -> None:
    calls: list[int] = []

    def work(token: int) -> int:
        calls.append(token)
        if token == 1 and calls.count(1) < 3:
            raise ConnectionError("flaky")
        return token * 10

    rec = MemoryRecorder()
    r = fluxnb.run(
        action_net(retry={"max_attempts": 3, "backoff": "none"}), {"work": work}, store=rec
    )
    assert r.ok and sorted(t.data for t in r.tokens["done"]) == [10, 20]
    rows = sorted((x["seq"], x["attempt"], x["status"], x["final"]) for x in rec.rows())
    assert rows == [
        (1, 1, "failed", False),
        (1, 2, "failed", False),
        (1, 3, "succeeded", True),
        (2, 1, "succeeded", True),
    ]


def test_on_error_stop_gives_tokens_back_continue_blocks_skip_uses_default() -> None:
    def work(token: int) -> int:
        if token == 1:
            raise ValueError("bad token")
        return token

    one_at_a_time = {**action_net(), "router": {"worker_pool_size": 1}}
    r = fluxnb.run(one_at_a_time, {"work": work}, store=None)
    assert (r.status, r.ending) == (RunStatus.FAILED, "failed")
    assert r.marking == {"todo": 2, "done": 0}  # nothing lost
    assert [t.data for t in r.tokens["todo"]] == [1, 2]  # and in their order
    assert "ValueError: bad token" in r.reason
    r = fluxnb.run(action_net(on_error="continue"), {"work": work}, store=None)
    # token 2 went through; token 1 went back and 'work' fired no more
    assert r.status is RunStatus.FAILED and r.marking == {"todo": 1, "done": 1}
    assert r.tokens["todo"][0].data == 1 and r.counts == {"work": 1}
    assert "blocked transitions: work" in r.reason
    rec = MemoryRecorder()
    r = fluxnb.run(action_net(on_error="skip", default=-1), {"work": work}, store=rec)
    assert r.ok and sorted(t.data for t in r.tokens["done"]) == [-1, 2]
    skipped = next(x for x in rec.rows() if x["status"] == "skipped")
    assert skipped["error_type"] == "ValueError"  # the tolerated failure stays on record


def test_a_timeout_fails_the_firing_and_returns_its_token() -> None:
    async def work(token: int) -> int:
        await asyncio.sleep(5)
        return token

    rec = MemoryRecorder()
    r = fluxnb.run(action_net(timeout="50ms"), {"work": work}, store=rec)
    assert r.status is RunStatus.FAILED and r.marking["todo"] == 2
    assert rec.rows()[0]["error_type"] == "TimeoutError"


def test_independent_actions_run_concurrently() -> None:
    async def slow(token: Any) -> str:
        await asyncio.sleep(0.2)
        return "ok"

    manifest = {
        "name": "fork",
        "net": {
            "places": {"a": 1, "b": 1, "x": 0, "y": 0},
            "transitions": [
                {"id": "left", "inputs": ["a"], "outputs": ["x"], "run": "slow"},
                {"id": "right", "inputs": ["b"], "outputs": ["y"], "run": "slow"},
            ],
        },
    }
    rec = MemoryRecorder()
    r = fluxnb.run(manifest, {"slow": slow}, store=rec)
    assert r.ok and r.marking == {"a": 0, "b": 0, "x": 1, "y": 1}
    left, right = rec.rows()
    # each started before the other ended: they overlapped
    assert left["started_at"] < right["ended_at"] and right["started_at"] < left["ended_at"]


def test_cancelling_a_net_run_returns_tokens_and_records_it() -> None:
    async def work(token: int) -> int:
        await asyncio.sleep(10)
        return token

    rec = MemoryRecorder()

    async def main() -> None:
        task = asyncio.ensure_future(fluxnb.arun(action_net(), {"work": work}, store=rec))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert rec.runs[-1].status == "cancelled"
    assert [r["status"] for r in rec.rows()] == ["cancelled", "cancelled"]


def test_missing_or_misfit_actions_fail_before_anything_runs() -> None:
    rec = MemoryRecorder()
    with pytest.raises(ResolutionError, match="no callable named 'work'"):
        fluxnb.run(action_net(), {}, store=rec)

    def needs_other(token: int, other: int) -> int:
        return token

    with pytest.raises(ResolutionError, match="'other'"):
        fluxnb.run(action_net(), {"work": needs_other}, store=rec)
    assert not rec.runs


def test_a_guard_that_cannot_be_evaluated_fails_the_run_clearly() -> None:
    m = {
        "name": "g",
        "net": {
            "places": {"p": [{"n": "text"}], "q": 0},
            "transitions": [{"id": "t", "inputs": ["p"], "outputs": ["q"], "guard": "token.n > 3"}],
        },
    }
    r = fluxnb.run(m, store=None)
    assert r.status is RunStatus.FAILED and "guard" in r.reason and r.marking["p"] == 1


# ---------------------------------------------------------------- trace, replay, CLI, magic
def test_net_runs_are_traced_and_replay_the_same(store_path: str) -> None:
    counter = {"n": 0}

    def work(token: int) -> int:
        counter["n"] += 1
        return token + 100

    r = fluxnb.run(action_net(), {"work": work}, store=store_path)
    ev = fluxnb.sql(
        f"SELECT seq, step, status, output_json FROM events WHERE run_id = '{r.run_id}' "
        "ORDER BY seq",
        store=store_path,
    )
    assert list(ev["step"]) == ["work", "work"] and list(ev["output_json"]) == ["101", "102"]
    report = fluxnb.replay(r.run_id, {"work": work}, store=store_path)
    assert report.identical, str(report)
    assert "identical (2 firings" in str(report)
    report = fluxnb.replay(r.run_id, {"work": lambda token: token}, store=store_path)
    assert not report.identical
    assert report.first_divergence["field"] == "output_digest"
    compiled = fluxnb.run(CYCLE, store=store_path, max_firings=1000)
    n = fluxnb.sql(
        f"SELECT count(*) AS n FROM events WHERE run_id = '{compiled.run_id}'", store=store_path
    )
    assert int(n["n"][0]) == 1000


def test_cli_runs_a_net_with_exit_codes(tmp_path: Path) -> None:
    ok = tmp_path / "ok.yaml"
    ok.write_text(
        "name: ok\nnet:\n  places: {i: 1, o: 0}\n  transitions:\n"
        "    - {id: go, inputs: [i], outputs: [o]}\n  final: {o: 1}\n"
    )
    stuck = tmp_path / "stuck.yaml"
    stuck.write_text(
        "name: stuck\nnet:\n  places: {i: 1, o: 0}\n  transitions:\n"
        "    - {id: go, inputs: [o], outputs: [i]}\n  final: {o: 1}\n"
    )
    missing = tmp_path / "missing.yaml"
    missing.write_text(
        "name: m\nnet:\n  places: {i: 1}\n  transitions:\n"
        "    - {id: go, inputs: [i], outputs: [], run: nowhere}\n"
    )
    store = str(tmp_path / "s.duckdb")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*FLUXNB, *args, "--store", store], capture_output=True, text=True, env=cli_env()
        )

    p = cli("run", str(ok), "--json")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert (data["status"], data["ending"], data["marking"]) == (
        "succeeded",
        "final",
        {"i": 0, "o": 1},
    )
    p = cli("run", str(stuck))
    assert p.returncode == 1 and "deadlock" in p.stdout
    p = cli("run", str(missing))
    assert p.returncode == 2 and "no callable named 'nowhere'" in p.stderr
    p = subprocess.run(
        [*FLUXNB, "validate", str(ok)], capture_output=True, text=True, env=cli_env()
    )
    assert p.returncode == 0 and "net 'ok', 2 places, 1 transition" in p.stdout


def test_fluxroute_magic_runs_and_opens_nets(tmp_path: Path) -> None:
    ip = shared_shell()
    ip.run_line_magic("load_ext", "fluxnb")
    ip.user_ns.update(NS)
    store = str(tmp_path / "m.duckdb")
    r = ip.run_cell_magic("fluxroute", f"--store {store} -o res", REVIEW)
    assert r.ending == "dead" and ip.user_ns["res"] is r
    run = ip.run_cell_magic("fluxroute", f"--store {store} --interactive -o live", REVIEW)
    assert run.enabled() == ["approve"] and ip.user_ns["live"] is run
    run.fire("approve")
    run.fire("approve")
    assert run.close().ending == "final"


def test_the_replay_helper_refuses_a_disabled_firing() -> None:
    # so the checks above that use it can fail
    with pytest.raises(AssertionError, match="fired while disabled"):
        replay_markings(CYCLE, ["t2"])
