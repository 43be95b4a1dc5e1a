"""Petri nets written in Python: ``Net.build`` and ``@net.transition`` make a real Net that
runs (no namespace), fires by hand, is analysed, and round-trips through YAML and PNML;
mistakes are reported at build time with the manifest's problem kinds and the Python line."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

import fluxnb
from fluxnb import ManifestError, Net, NetBuilder, RetryPolicy
from fluxnb.spec import CircuitBreakerSettings, OnError, net_manifest

# Module-level actions: importable, so a manifest names them ``module:function``.


def approve(order: dict) -> dict:
    return {**order, "approved": True}


def ship(approved: dict) -> dict:
    return {**approved, "shipped": True}


def order_net() -> NetBuilder:
    """An order flow: big orders are approved then shipped; small ones are rejected."""
    net = Net.build(
        "orders",
        places={"order": [{"id": 1, "amount": 250}, {"id": 2, "amount": 5}], "approved": 0},
        final={"done": 1, "rejected": 1},
    )
    net.place("done")
    net.place("rejected")
    net.transition(approve, inputs=["order"], outputs=["approved"], guard="token.amount >= 100")
    net.transition(ship, inputs=["approved"], outputs=["done"], retry=2, timeout="5s")
    net.transition("reject", inputs=["order"], outputs=["rejected"], priority=-1)
    return net


# ---------------------------------------------------------------- building
def test_the_decorator_adds_a_transition_named_after_its_function_and_returns_it() -> None:
    net = Net.build("n", places={"a": 1, "b": 0})

    @net.transition(inputs=["a"], outputs=["b"])
    def move(a: Any) -> Any:
        return a

    assert move(3) == 3  # unchanged, still callable by hand
    t = net.to_net().transitions[0]
    assert (t.id, t.run, t.fn) == ("move", "move", move)
    assert isinstance(net.to_net(), Net)


def test_weights_inhibitors_final_choice_and_options_become_net_fields() -> None:
    net = Net.build("w", places={"in": 4, "out": 0}, final=["out"], choice="random")
    lock = net.place("lock")
    net.transition(
        "pair",
        inputs={"in": 2},
        outputs=["out"],
        inhibitors=[lock],
        retry=RetryPolicy(max_attempts=3, backoff="none"),
        on_error="skip",
        default={"x": 0},
        circuit_breaker=CircuitBreakerSettings(failure_threshold=2, reset_timeout=1.0),
        executor="local",
        external=True,
        priority=4,
    )
    n = net.to_net()
    t = n.transitions[0]
    assert n.places == ("in", "out", "lock")
    assert n.initial == (4, 0, 0)
    assert [(a.place, a.weight) for a in t.inputs] == [(0, 2)]
    assert [a.place for a in t.inhibitors] == [2]
    assert n.final == {1: 1} and n.choice == "random"
    assert t.retry == RetryPolicy(max_attempts=3, backoff="none")
    assert t.on_error == OnError("skip") and t.default == {"x": 0}
    assert t.circuit_breaker == CircuitBreakerSettings(failure_threshold=2, reset_timeout=1.0)
    assert (t.executor, t.external, t.priority) == ("local", True, 4)


# ---------------------------------------------------------------- running
def test_a_built_net_runs_with_data_tokens_and_a_guard_without_a_namespace() -> None:
    r = fluxnb.run(order_net(), store=None)
    assert r.status == "succeeded" and r.ending == "final"
    assert r.marking == {"order": 0, "approved": 0, "done": 1, "rejected": 1}
    assert [tok.data for tok in r.tokens["done"]] == [
        {"id": 1, "amount": 250, "approved": True, "shipped": True}
    ]
    assert [tok.data for tok in r.tokens["rejected"]] == [{"id": 2, "amount": 5}]


def test_an_action_that_is_not_importable_still_runs_from_the_built_net() -> None:
    calls = []
    net = Net.build("closure", places={"a": [1, 2, 3], "b": 0})

    @net.transition(inputs=["a"], outputs=["b"], retry=RetryPolicy(2, backoff="none"))
    def double(a: int) -> int:
        calls.append(a)
        if len(calls) == 1:
            raise RuntimeError("flaky once")
        return 2 * a

    r = fluxnb.run(net, store=None)
    assert r.status == "succeeded"
    assert sorted(tok.data for tok in r.tokens["b"]) == [2, 4, 6]
    assert net.to_net().transitions[0].run == "double"  # a closure: named, not importable


def test_interactive_fires_an_external_transition_of_a_built_net() -> None:
    net = Net.build("review", places={"draft": [{"words": 300}], "review": 0, "published": 0})
    net.transition("submit", inputs="draft", outputs="review", external=True)

    @net.transition(inputs=["review"], outputs=["published"], guard="token.words > 100")
    def publish(review: dict) -> dict:
        return {**review, "live": True}

    run = fluxnb.interactive(net, store=None)
    assert run.enabled() == ["submit"]
    run.fire("submit")
    assert run.marking == {"draft": 0, "review": 0, "published": 1}
    assert [t.data for t in run.tokens("published")] == [{"words": 300, "live": True}]
    assert run.close().status == "succeeded"


def test_analyze_takes_a_built_net() -> None:
    net = Net.build("mutex", places={"idle_a": 1, "idle_b": 1, "free": 1, "cs_a": 0, "cs_b": 0})
    for who in ("a", "b"):
        net.transition(f"enter_{who}", inputs=[f"idle_{who}", "free"], outputs=[f"cs_{who}"])
        net.transition(f"leave_{who}", inputs=[f"cs_{who}"], outputs=[f"idle_{who}", "free"])
    a = fluxnb.analyze(net, progress=False)
    assert a.bounded and a.bound == 1
    assert a.deadlock is False and not a.dead_transitions
    assert a.reachable_markings == 3
    assert a == fluxnb.analyze(net.to_net(), progress=False)


# ---------------------------------------------------------------- round trips
def test_yaml_round_trip_gives_an_equal_net_with_module_references() -> None:
    net = order_net()
    built = net.to_net()
    text = net.to_yaml()
    assert "run: tests.test_net_builder:approve" in text
    loaded = fluxnb.load(text)
    assert loaded == built
    assert loaded.transitions[0].fn is None  # found again by importing the reference
    r = fluxnb.run(loaded, store=None)
    assert r.marking == fluxnb.run(built, store=None).marking
    assert net_manifest(net) == net_manifest(loaded)


def test_yaml_round_trip_names_a_notebook_function_and_runs_with_its_namespace() -> None:
    net = Net.build("local", places={"a": [2], "b": 0})

    def square(a: int) -> int:
        return a * a

    net.transition(square, inputs="a", outputs="b")
    loaded = fluxnb.load(net.to_yaml())
    assert loaded == net.to_net() and loaded.transitions[0].run == "square"
    with pytest.raises(fluxnb.ResolutionError) as err:
        fluxnb.run(loaded, store=None)
    assert err.value.kind == "unresolved_callable"
    r = fluxnb.run(loaded, {"square": square}, store=None)
    assert [t.data for t in r.tokens["b"]] == [4]


def test_options_survive_the_yaml_round_trip() -> None:
    net = Net.build("opts", places={"a": 1, "b": 0}, max_firings=9)
    net.transition(
        ship,
        inputs={"a": 1},
        outputs={"b": 2},
        retry=RetryPolicy(max_attempts=4, backoff="linear", retry_on=("OSError",)),
        timeout=1.5,
        on_error=OnError("retry", "skip"),
        circuit_breaker={"failure_threshold": 3, "reset_timeout": "2s", "probe_timeout": 1},
        executor="dask",
    )
    assert fluxnb.load(net.to_yaml()) == net.to_net()


def test_pnml_round_trip_keeps_the_structure() -> None:
    net = order_net()
    back = fluxnb.read_pnml(fluxnb.write_pnml(net))
    built = net.to_net()
    assert back.places == built.places and back.initial == built.initial
    assert [(t.id, t.inputs, t.outputs) for t in back.transitions] == [
        (t.id, t.inputs, t.outputs) for t in built.transitions
    ]


# ---------------------------------------------------------------- errors
def _line_of(marker: str) -> int:
    lines = inspect.getsource(inspect.getmodule(_line_of)).splitlines()  # type: ignore[arg-type]
    return next(i for i, text in enumerate(lines, 1) if marker in text)


def test_an_unknown_place_is_reported_at_the_decorator_line_with_a_suggestion() -> None:
    net = Net.build("n", places={"new": 1, "paid": 0})
    with pytest.raises(ManifestError) as err:

        @net.transition(inputs=["new"], outputs=["payd"])  # marker: unknown place
        def pay(new: Any) -> Any:
            return new

    e = err.value
    assert (e.kind, e.path) == ("unknown_place", "net.transitions[0].outputs")
    assert e.problems[0].found == "payd" and e.problems[0].suggestion == "paid"
    assert e.source == __file__ and e.line == _line_of("marker: unknown place")
    assert "transition 'pay'" in str(e)
    assert net.transitions == ()  # nothing half-added


def test_a_duplicate_transition_id_and_a_duplicate_place_are_refused() -> None:
    net = Net.build("n", places={"a": 1})
    net.transition("t", inputs="a", outputs="a")
    with pytest.raises(ManifestError) as err:
        net.transition("t", inputs="a", outputs="a")
    assert err.value.kind == "duplicate_id" and err.value.problems[0].found == "t"
    with pytest.raises(ManifestError) as err:
        net.place("a")
    assert err.value.kind == "duplicate_id"
    assert len(net.transitions) == 1 and net.places == ("a",)


def test_a_guard_that_does_not_parse_is_refused_at_build_time() -> None:
    net = Net.build("n", places={"a": 1})
    with pytest.raises(ManifestError) as err:
        net.transition("t", inputs="a", outputs="a", guard="token.x >")
    assert err.value.kind == "bad_guard" and err.value.problems[0].found == "token.x >"


@pytest.mark.parametrize(
    ("options", "kind", "path"),
    [
        ({"inputs": "a", "retyr": 3}, "unknown_key", "net.transitions[0].retyr"),
        ({"inputs": {"a": 0}}, "bad_value", "net.transitions[0].inputs.a"),
        ({"inputs": "a", "timeout": "soon"}, "bad_duration", "net.transitions[0].timeout"),
        ({"inputs": "a", "on_error": "ignore"}, "bad_value", "net.transitions[0].on_error"),
        ({"inputs": "a", "executor": "gpu"}, "bad_value", "net.transitions[0].executor"),
        ({"inputs": "a", "priority": "high"}, "wrong_type", "net.transitions[0].priority"),
    ],
)
def test_bad_options_get_the_manifest_validators_kinds(
    options: dict[str, Any], kind: str, path: str
) -> None:
    net = Net.build("n", places={"a": 1})
    with pytest.raises(ManifestError) as err:
        net.transition("t", outputs="a", **options)
    assert (err.value.kind, err.value.path) == (kind, path)


def test_bad_places_choice_and_final_are_reported() -> None:
    with pytest.raises(ManifestError) as err:
        Net.build("n", places={"a": -1})
    assert err.value.kind == "wrong_type"
    with pytest.raises(ManifestError) as err:
        Net.build("n", places={"a": 1}, choice="fifo")
    assert err.value.kind == "bad_value"
    net = Net.build("n", places={"a": 1}, final={"b": 1})  # marker: final
    net.transition("t", inputs="a", outputs="a")
    with pytest.raises(ManifestError) as err:
        fluxnb.run(net, store=None)
    assert err.value.kind == "unknown_place" and err.value.line == _line_of("marker: final")


def test_a_lambda_needs_an_id_and_an_empty_net_cannot_be_made() -> None:
    net = Net.build("n", places={"a": 1})
    with pytest.raises(TypeError, match="id="):
        net.transition(lambda a: a, inputs="a", outputs="a")
    with pytest.raises(ManifestError) as err:
        net.to_net()
    assert err.value.path == "net.transitions"
    net.transition(lambda a: a, id="same", inputs="a", outputs="a")
    assert net.to_net().transitions[0].run == "same"
    assert fluxnb.run(net, store=None, max_firings=3).firings == 3


def test_an_action_that_cannot_take_its_inputs_is_reported_before_anything_runs() -> None:
    net = Net.build("n", places={"a": 1, "b": 0})

    @net.transition(inputs="a", outputs="b")
    def needs_more(a: Any, amount: int) -> Any:
        return a

    with pytest.raises(fluxnb.ResolutionError) as err:
        fluxnb.run(net, store=None)
    assert err.value.kind == "bad_signature"


def test_a_refused_transition_leaves_its_id_free_and_made_nets_stay_frozen() -> None:
    net = Net.build("n", places={"a": 1, "b": 0})
    with pytest.raises(ManifestError):
        net.transition("t", inputs="nope", outputs="b")
    net.transition("t", inputs="a", outputs="b")  # the id was not taken by the failure
    first = net.to_net()
    assert net.to_net() is first  # made once per change
    net.transition("back", inputs="b", outputs="a")
    assert [t.id for t in first.transitions] == ["t"]
    assert [t.id for t in net.to_net().transitions] == ["t", "back"]
    net.final = {"b": 1}
    assert net.to_net().final == {1: 1} and first.final == {}


def test_problems_point_at_the_column_of_the_call() -> None:
    net = Net.build("n", places={"a": 1})
    with pytest.raises(ManifestError) as err:
        net.transition("t", inputs="a", outputs="z")  # marker: column
    line = inspect.getsource(test_problems_point_at_the_column_of_the_call).splitlines()
    text = next(x for x in line if "marker: column" in x)
    assert err.value.column == text.index("net.transition") + 1
    assert err.value.line == _line_of("marker: column")
