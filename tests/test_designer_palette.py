"""The designer's gestures that save clicks, in Python (the browser tests drive the same
messages): the palette of the notebook's functions, steps made from them and connected by
their parameters, placement in free space, paste at the pointer, the typed inspector's
fields and values, and the run's feedback (running…, attempts, cleared on the next edit)."""

from __future__ import annotations

import time
import types
from itertools import combinations
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("anywidget", reason="install fluxnb[widgets] to test the designer widget")

from fluxnb.designer import Design, Designer, DesignError
from fluxnb.designer._palette import CELL_H, CELL_W, add_function, free_spot, step_functions
from fluxnb.spec._step_fields import step_fields

from .designer_steps import FIVE_STEP_ARCS, boom, clean, fetch, publish, report, stats

NS = {f.__name__: f for f in (fetch, clean, stats, report, publish, boom)}


def msg(d: Designer, **m: object) -> None:
    d._on_message(d, m, [])  # what the front end sends


def test_the_palette_offers_the_notebooks_own_functions_with_their_parameters() -> None:
    from os.path import join  # imported: not the notebook's own

    def _private():
        pass

    module = types.ModuleType("__main__")
    exec("def mine(a, b=2):\n    'Does it.'\n", module.__dict__)
    ns = {**module.__dict__, "join": join, "_private": _private, "n": 3, "lam": lambda: 1}
    found = step_functions(ns)
    assert [f["name"] for f in found] == ["mine"]
    assert found[0]["params"] == [
        {"name": "a", "required": True, "default": None},
        {"name": "b", "required": False, "default": "2"},
    ]
    assert found[0]["doc"] == "Does it." and found[0]["signature"] == "mine(a, b=2)"
    assert step_functions(module) == step_functions(module.__dict__) != []  # namespace=module
    assert step_functions(None) == []
    # a plain dict (namespace=) offers all its functions; ctx is never a parameter to fill
    params = {f["name"]: [p["name"] for p in f["params"]] for f in step_functions(NS)}
    assert params["publish"] == ["report"] and params["report"] == ["clean", "stats"]


def test_dropping_functions_builds_the_workflow_connected_by_parameter_names() -> None:
    d = Designer(namespace=NS, store=None)
    assert d.issues == {}  # an empty design: a hint in the view, not an error
    assert [f["name"] for f in d.functions] == sorted(NS)
    # dropped in an order where some consumers come before what they consume
    for name in ["report", "fetch", "publish", "clean", "stats"]:
        msg(d, type="add_function", name=name, x=100, y=100)
    assert d.message == ""
    edges = {e["id"] for e in d.graph["edges"]}
    assert edges == FIVE_STEP_ARCS
    assert all(n["props"]["run"] == n["id"] for n in d.graph["nodes"])
    assert d.issues == {}
    assert d.selected == "stats"  # the last one dropped, ready for the inspector
    d.undo()
    assert "stats" not in d.design.nodes and "fetch->stats" not in {e.id for e in d.design.edges}
    d.redo()
    result = d.workflow.run(NS, store=None)
    assert result.ok and result["publish"] == "3.0 VALUES, MAX 3"


def test_a_function_dropped_twice_gets_a_new_id_and_unknown_names_are_refused() -> None:
    d = Design()
    assert add_function(d, NS, "fetch", 0, 0) == "fetch"
    assert add_function(d, NS, "fetch", 0, 0) == "fetch_2"
    assert d.nodes["fetch_2"].props == {"run": "fetch"}
    with pytest.raises(DesignError) as err:
        add_function(d, NS, "nope", 0, 0)
    assert "def nope" in str(err.value)
    net = Design("net")
    with pytest.raises(DesignError):
        add_function(net, NS, "fetch", 0, 0)


def test_a_consumer_that_leads_back_is_not_connected_into_a_loop() -> None:
    def a(b):  # takes b's output...
        return b

    def b(a):  # ...and b takes a's: only one direction can be drawn
        return a

    d = Design()
    add_function(d, {"a": a, "b": b}, "a", 0, 0)
    add_function(d, {"a": a, "b": b}, "b", 0, 0)
    assert [e.id for e in d.edges] == ["a->b"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-300, 300), st.integers(-300, 300)), max_size=30))
def test_new_nodes_never_land_on_another(drops: list[tuple[int, int]]) -> None:
    d = Design()
    for x, y in drops:
        px, py = free_spot(d, x, y)
        assert all(abs(px - n.x) >= CELL_W or abs(py - n.y) >= CELL_H for n in d.nodes.values())
        d.add("step", None, px, py)
    if drops:  # the first lands where it was dropped
        assert (d.nodes["step1"].x, d.nodes["step1"].y) == drops[0]


def test_add_goes_near_the_pointer_or_right_of_the_selection() -> None:
    d = Designer(store=None)
    msg(d, type="add", kind="step", x=300, y=200)
    msg(d, type="add", kind="step", x=300, y=200)  # same spot: the next free one
    a, b = d.design.nodes["step1"], d.design.nodes["step2"]
    assert (a.x, a.y) == (300, 200) and (abs(b.x - a.x) >= CELL_W or abs(b.y - a.y) >= CELL_H)
    d.selected = "step1"
    msg(d, type="add", kind="step")  # no pointer (the + Step button): right of the selection
    c = d.design.nodes["step3"]
    assert c.x > a.x and abs(c.y - a.y) <= CELL_H


def test_paste_keeps_every_property_lands_at_the_pointer_and_selects_the_copies() -> None:
    d = Designer(namespace=NS, store=None)
    for name in ["fetch", "clean", "stats"]:
        d.add_function(name, 0, 0)
    d.set("clean", "retry.max_attempts", "3")
    d.set("clean", "description", "sorted")
    d.design.nodes["stats"].props.pop("run")  # runs the function named like its id
    sent: list[dict] = []
    d.send = sent.append  # type: ignore[method-assign]  # what the view is told
    msg(d, type="copy", ids=["clean", "stats"])
    d.delete("clean")  # copied before: the clipboard keeps what it took
    msg(d, type="paste", x=500, y=300)
    copies = {n.id: n for n in d.design.nodes.values() if "_copy" in n.id}
    assert set(copies) == {"clean_copy1", "stats_copy1"}
    assert copies["clean_copy1"].props == {
        "run": "clean",
        "retry": {"max_attempts": 3},
        "description": "sorted",
    }
    assert copies["stats_copy1"].props == {"run": "stats"}  # run: written out
    xs = [n.x for n in copies.values()]
    ys = [n.y for n in copies.values()]
    assert ((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2) == (500, 300)
    # their input from a step still in the design came along: the copies can run
    assert {"fetch->clean_copy1", "fetch->stats_copy1"} <= {e.id for e in d.design.edges}
    assert sent == [{"type": "select", "ids": ["clean_copy1", "stats_copy1"]}]
    assert d.issues.get("clean_copy1") is None
    # pasted again at the same spot: the group moves aside as a whole, covering no node
    msg(d, type="paste", x=500, y=300)
    again = {n.id: n for n in d.design.nodes.values() if n.id.endswith("_copy2")}
    assert len(again) == 2
    shift = {
        (
            again[f"{k}_copy2"].x - copies[f"{k}_copy1"].x,
            again[f"{k}_copy2"].y - copies[f"{k}_copy1"].y,
        )
        for k in ("clean", "stats")
    }
    assert len(shift) == 1  # the same shape
    assert all(
        abs(a.x - b.x) >= CELL_W or abs(a.y - b.y) >= CELL_H
        for a, b in combinations(d.design.nodes.values(), 2)
    )


def test_the_inspector_offers_every_key_the_validator_reads_for_a_step() -> None:
    from fluxnb.spec import _manifest as m

    keys = {f.key for f in step_fields()}
    for k in m.AGENT_KEYS:
        if k in ("retry", "circuit_breaker"):
            sub = m.RETRY_KEYS if k == "retry" else m.BREAKER_KEYS
            assert {f"{k}.{s}" for s in sub} <= keys
        elif k != "id":
            assert k in keys, k
    assert {k for k in m.STEP_KEYS if k not in ("step", "depends_on")} <= keys
    fields = {f.key: f for f in step_fields()}
    assert fields["on_error"].kind == "choice" and "skip" in fields["on_error"].choices
    assert fields["activation"].choices == ("all", "any", "batch", "window", "custom")
    assert fields["retry.initial_delay"].default == 0.1  # RetryPolicy's own default
    assert "Consecutive failures" in fields["circuit_breaker.failure_threshold"].help
    assert [f.group for f in step_fields()] == sorted(
        (f.group for f in step_fields()), key=("basics", "resilience", "advanced").index
    )
    assert Designer().bundle.fields["timeout"]["kind"] == "duration"  # shared, sent once
    net = Designer(mode="net", store=None)  # a transition's own keys, typed and explained
    assert "Higher fires first" in net.bundle.fields["priority"]["help"]
    net.add("transition", "t")
    net.set("t", "external", "true")
    net.set("t", "priority", "2")
    assert net.design.nodes["t"].props == {"external": True, "priority": 2}


@pytest.mark.parametrize(
    ("key", "typed", "stored"),
    [
        ("timeout", "2s", "2s"),
        ("timeout", "1.5", 1.5),
        ("retry.max_attempts", "3", 3),
        ("retry.retry_on", "TimeoutError, OSError", ["TimeoutError", "OSError"]),
        ("activation", "batch 4", {"batch": 4}),
        ("activation", "window 2s", {"window": "2s"}),
        ("activation", "any", "any"),
        ("on_error", "skip", "skip"),
        ("default", "[1, 2]", [1, 2]),
    ],
)
def test_typed_values_are_stored_as_the_manifest_wants_them(key, typed, stored) -> None:
    d = Designer(store=None)
    d.add("step", "s")
    d.set("s", key, typed)
    value = d.design.nodes["s"].props
    for part in key.split("."):
        value = value[part]
    assert value == stored
    assert not any("timeout" in p or "retry" in p for p in d.issues.get("s", []))


@pytest.mark.parametrize(
    ("key", "typed", "says"),
    [
        ("timeout", "soon", "duration"),
        ("retry.max_attempts", "0", "at least 1"),
        ("retry.max_attempts", "2.5", "whole number"),
        ("activation", "batch", "batch N"),
    ],
)
def test_values_of_the_wrong_type_are_refused_with_the_reason(key, typed, says) -> None:
    d = Designer(store=None)
    d.add("step", "s")
    msg(d, type="set", id="s", key=key, value=typed)
    assert says in d.message
    assert d.design.nodes["s"].props == {}


def hidden_arcs(d: Design) -> list[tuple[str, str]]:
    """(arc, node) pairs where a straight arc runs through a step box (110 x 38) it does not
    join: what the canvas would draw."""
    out = []
    for e in d.edges:
        a, b = d.nodes[e.source], d.nodes[e.target]
        for n in d.nodes.values():
            if n.id in (e.source, e.target):
                continue
            points = (
                (a.x + (b.x - a.x) * k / 100, a.y + (b.y - a.y) * k / 100) for k in range(101)
            )
            if any(abs(x - n.x) < 55 and abs(y - n.y) < 19 for x, y in points):
                out.append((e.id, n.id))
    return out


@pytest.mark.parametrize(
    "deps",
    [
        {"b": ["a"], "c": ["a", "b"]},  # the issue's a→b, b→c, a→c
        {"b": ["a"], "c": ["b"], "d": ["c", "a"], "x": ["a"], "y": ["x"]},
        {"b": ["a"], "c": ["a"], "d": ["b", "c"], "e": ["a", "d"]},
    ],
)
def test_layout_without_a_view_runs_no_arc_under_a_node(deps: dict[str, list[str]]) -> None:
    d = Design()
    for n in sorted({*deps, *(p for ps in deps.values() for p in ps)}):
        d.add("step", n)
    for n, ps in deps.items():
        for p in ps:
            d.connect(p, n)
    d.auto_layout()
    assert hidden_arcs(d) == []
    assert len({(n.x, n.y) for n in d.nodes.values()}) == len(d.nodes)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), min_size=1, max_size=24))
def test_no_layout_runs_an_arc_under_a_node_or_stacks_nodes(pairs: list[tuple[int, int]]) -> None:
    d = Design()
    for a, b in pairs:
        s, t = f"n{min(a, b)}", f"n{max(a, b)}"  # lower to higher: never a cycle
        for n in (s, t):
            if n not in d.nodes:
                d.add("step", n)
        if s != t and f"{s}->{t}" not in {e.id for e in d.edges}:
            d.connect(s, t)
    d.auto_layout()
    assert hidden_arcs(d) == []
    at = [(n.x, n.y) for n in d.nodes.values()]
    assert all(abs(p[0] - q[0]) >= 110 or abs(p[1] - q[1]) >= 38 for p, q in combinations(at, 2))
    # positions the view's layout sends are cleared the same way (one undoable edit)
    w = Designer(store=None)
    w.design = d
    msg(w, type="layout", moves=[{"id": n, "x": 0, "y": 0} for n in d.nodes][:1])
    assert hidden_arcs(w.design) == []


def _wait(cond, timeout: float = 15.0) -> None:
    deadline = time.time() + timeout
    while not cond() and time.time() < deadline:
        time.sleep(0.01)
    assert cond()


def test_run_feedback_running_attempts_of_a_step_and_cleared_by_the_next_edit() -> None:
    d = Designer(namespace=NS, store=None)
    for name in ["fetch", "clean", "boom"]:
        d.add_function(name, 0, 0)
    d.set("boom", "on_error", "continue")
    d.selected = "boom"
    d.message = "an old message"
    said: list[str] = []
    d.observe(lambda ch: said.append(ch["new"]), names="message")
    handle = d.run()
    handle.result(timeout=30)
    _wait(lambda: d.message.startswith("run "))
    assert said[0] == "running…"  # the last run's message went at once, before the outcome
    assert d.status["boom"]["state"] == "failed"
    [attempt] = d.details  # the selected step's attempts, for the inspector
    assert attempt["status"] == "failed" and attempt["error_type"] == "ValueError"
    assert attempt["error_message"] == "bad value 3"
    assert "raise ValueError" in attempt["traceback"] and attempt["duration_s"] >= 0
    d.selected = "clean"
    assert d.details[0]["status"] == "succeeded" and d.details[0]["output"] == "[1, 2, 3]"
    d.move({"clean": (10, 10)})  # the next edit: the run's colours and attempts go
    assert d.status == {} and d.details == [] and d.message == ""


def test_run_on_an_empty_design_says_what_to_do() -> None:
    d = Designer(store=None)
    with pytest.raises(DesignError):
        d.run()
    said: list[str] = []
    d.observe(lambda ch: said.append(ch["new"]), names="message")
    msg(d, type="run")
    msg(d, type="run")  # refused again, in the same words: the view still hears it
    assert said == ["running…", d.message, "running…", d.message]
    assert "add a step" in d.message


def test_hostile_or_huge_defaults_do_not_break_or_flood_the_palette() -> None:
    """A notebook function's default is the user's object: its ``__repr__`` may raise,
    or it may be huge. Before: the palette raised (str(signature) rendered it), or sent
    the whole default to the browser in the signature text."""

    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    big, hostile = list(range(200_000)), Hostile()

    def step(a: int, b: Any = hostile, c: list[int] = big, d: str = "x" * 100_000) -> int:
        return a

    (entry,) = step_functions({"step": step})
    assert len(entry["signature"]) < 250, entry["signature"]
    assert entry["signature"].startswith("step(a") and "b: " in entry["signature"]
    defaults = {p["name"]: p["default"] for p in entry["params"]}
    assert "Hostile" in defaults["b"]
    assert defaults["c"].startswith("[0, 1, 2") and len(defaults["c"]) <= 40
    assert len(defaults["d"]) <= 40
