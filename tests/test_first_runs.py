"""A big workflow's first run: the recorded manifest is written fast and reads back the same;
the plan is built straight from the steps and gives the same run as the marked graph."""

from __future__ import annotations

from typing import Any

import fluxnb
from fluxnb.spec._manifest_write import flow_yaml
from fluxnb.spec._model import FAST_YAML_STEPS


def _wide(n: int, **with_: Any) -> fluxnb.Workflow:
    wf = fluxnb.Workflow("wide")
    wf.add("src", lambda: 1)
    for i in range(n):
        wf.add(f"w{i}", lambda src, **kw: src + 1, depends_on=["src"], with_=dict(with_))
    wf.add("sink", lambda **kw: sum(kw.values()), depends_on=[f"w{i}" for i in range(n)])
    return wf


def test_a_big_workflows_recorded_manifest_reads_back_the_same() -> None:
    wf = _wide(FAST_YAML_STEPS + 5, note='é "quoted" : {x}', limit=3, ratio=0.5, on=True)
    text = wf.manifest_text()
    assert '- {"id": "src"' in text  # the fast form: each item a JSON flow node
    again = fluxnb.load(text)
    assert again.to_dict() == wf.to_dict()


def test_the_fast_form_steps_aside_for_values_yaml_would_read_differently() -> None:
    assert flow_yaml({"name": "x", "pipeline": [{"step": "a", "with": {"t": 1e-05}}]}) is None
    assert (
        flow_yaml({"name": "x", "pipeline": [{"step": "a", "with": {"t": float("nan")}}]}) is None
    )
    wf = _wide(FAST_YAML_STEPS + 1, tiny=1e-05)
    assert fluxnb.load(wf.manifest_text()).to_dict() == wf.to_dict()  # ordinary YAML then


def test_the_plan_runs_a_big_workflow_as_before(store_path: str) -> None:
    wf = _wide(300)
    result = fluxnb.run(wf, store=store_path)
    assert result.ok and result["sink"] == 600
    seqs = fluxnb.sql("SELECT step, seq FROM events ORDER BY seq", store=store_path)
    assert seqs.step.tolist() == wf.order()  # the logical order is the canonical order


def test_validation_finds_the_canonical_order_in_the_same_pass() -> None:
    import random

    from fluxnb.spec._graph import topological_order

    rng = random.Random(22)
    for _ in range(40):  # random DAGs, declared in a topological or in a shuffled order
        n = rng.randint(1, 30)
        parents = {i: rng.sample(range(i), rng.randint(0, min(i, 3))) for i in range(n)}
        declared = list(range(n))
        if rng.random() < 0.5:
            rng.shuffle(declared)
        wf = fluxnb.Workflow("r")
        for i in declared:
            wf.add(f"s{i}", lambda **kw: 1, depends_on=[f"s{p}" for p in parents[i]])
        wf.validate()
        assert wf.order() == topological_order(wf)  # what Kahn's algorithm alone gives


def test_the_one_pass_check_still_names_every_problem() -> None:
    import pytest

    from fluxnb import CycleError, ManifestError

    wf = fluxnb.Workflow("c")
    wf.add("a", lambda **kw: 1, depends_on=["b"])
    wf.add("b", lambda **kw: 1, depends_on=["a"])
    with pytest.raises(CycleError) as cycle:
        wf.validate()
    assert cycle.value.cycle == ("a", "b", "a")
    twice = fluxnb.Workflow("d")
    twice.add("a", lambda: 1)
    twice.add("b", lambda **kw: 1, depends_on=["a", "a", "nope"])
    with pytest.raises(ManifestError) as bad:
        twice.validate()
    assert {p.kind for p in bad.value.problems} == {"duplicate_dependency", "unknown_dependency"}


def test_a_fan_out_keeps_what_repeats_once() -> None:
    from fluxnb.engine._plan import plan_for

    def one(src: int) -> int:
        return src + 1

    wf = fluxnb.Workflow("wide")
    wf.add("src", lambda: 1)
    for i in range(200):
        wf.add(f"w{i}", one, depends_on="src")
    wf.add("sink", lambda **kw: sum(kw.values()), depends_on=[f"w{i}" for i in range(200)])
    plan = plan_for(wf, None)
    middle = plan.bindings[1:-1]
    assert all(b is middle[0] for b in middle)  # one Binding for 200 alike steps
    steps = wf.steps
    assert all(steps[f"w{i}"].depends_on is steps["w0"].depends_on for i in range(200))
    # the sink names its inputs with the very id strings of those steps
    assert all(d is steps[d].id for d in steps["sink"].depends_on)
    sink = len(plan.ids) - 1
    assert {plan.consumers[p] for p, _ in plan.inputs[sink]} == {sink}  # 200 places into it
    deps = steps["sink"].depends_on
    assert all(label is d for (_, label), d in zip(plan.inputs[sink], deps, strict=True))
    assert fluxnb.run(wf, store=None)["sink"] == 400


def test_a_result_outlives_its_scheduler_plan_and_workflow() -> None:
    import gc
    import weakref

    from fluxnb.engine import _plan

    wf = _wide(50)
    result = fluxnb.run(wf, store=None)
    plan = weakref.ref(_plan._cache[wf][2])
    del wf
    gc.collect()
    assert plan() is None  # nothing of the run kept the plan: only the workflow's cache
    assert result["sink"] == 100 and result.steps["w3"].status is fluxnb.StepStatus.SUCCEEDED


def test_a_first_run_leaves_the_collector_as_it_found_it() -> None:
    import gc

    import pytest

    from fluxnb import ManifestError

    assert gc.isenabled()
    assert fluxnb.run(_wide(5), store=None).ok
    assert gc.isenabled()
    bad = fluxnb.Workflow("bad")
    bad.add("a", lambda **kw: 1, depends_on=["nope"])
    with pytest.raises(ManifestError):
        fluxnb.run(bad, store=None)
    assert gc.isenabled()  # on again after a failed preparation too
    gc.disable()
    try:
        assert fluxnb.run(_wide(5), store=None).ok
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()


def test_the_first_runs_recorded_manifest_reads_back_identically(store_path: str) -> None:
    def grow(src: int, factor: int = 2) -> int:
        return src * factor

    wf = fluxnb.Workflow("recorded")
    wf.add("src", lambda: 1)
    for i in range(FAST_YAML_STEPS + 10):
        wf.add(f"w{i}", grow, depends_on="src", with_={"factor": i} if i % 3 else None)
    wf.add("sink", lambda **kw: sum(kw.values()), depends_on=[f"w{i}" for i in range(210)])
    result = fluxnb.run(wf, store=store_path)
    assert result.ok
    row = fluxnb.sql(
        f"SELECT manifest FROM runs WHERE run_id = '{result.run_id}' LIMIT 1", store=store_path
    )
    again = fluxnb.load(row.manifest[0])
    assert isinstance(again, fluxnb.Workflow)
    assert again.to_dict() == wf.to_dict()
    assert again.order() == wf.order()


def test_a_warm_run_calls_the_namespaces_callables_of_now() -> None:
    wf = fluxnb.load("pipeline:\n  - step: a\n  - step: b\n    depends_on: a\n")
    assert fluxnb.run(wf, {"a": lambda: 1, "b": lambda a: a + 1}, store=None)["b"] == 2
    # the cached plan stands only while every callable is the very same object
    assert fluxnb.run(wf, {"a": lambda: 10, "b": lambda a: a + 1}, store=None)["b"] == 11


def test_a_big_results_debug_still_finds_each_steps_callable(store_path: str) -> None:
    def grow(src: int) -> int:
        return src + 1

    def other(src: int) -> int:
        return src + 2

    wf = fluxnb.Workflow("big")
    wf.add("src", lambda: 1)
    for i in range(1100):  # big enough that the result keeps its callables compactly
        wf.add(f"w{i}", other if i == 7 else grow, depends_on="src")
    result = fluxnb.run(wf, store=store_path)
    ns: dict[str, Any] = {}
    assert result.debug("w3", ns) is grow and ns["w3_inputs"] == {"src": 1}
    assert result.debug("w7", ns) is other


# ---------------------------------------------------------------- the recorded manifest

#: Text that YAML reads differently unless quoted just so: its 1.1 booleans and nulls,
#: numbers, indicators, quotes, breaks, and characters JSON leaves raw but YAML does not
#: read back (DEL, C1 controls, NEL, line/paragraph separators, BOM, U+FFFE).
_ODD = [
    "on", "no", "Yes", "off", "y", "~", "null", "NULL", "true", "1", "0x1f", "1e5", ".5",
    "1_000", "-", "- a", ": x", "a: b", "#c", "a #c", "'", '"', "\\", "{", "[x]", "*a",
    "&a", "!t", "%", "@", "`", "|", ">", "", " ", "a\nb", "\t", "\r\n", "é", "😀",
    "\x7f", "\x80", "\x85", "\x9f", "\u2028", "\u2029", "\ufeff", "\ufffe", "\uffff",
    "\x00", "\x1b",
]  # fmt: skip


def _texts() -> Any:
    from hypothesis import strategies as st

    return st.one_of(st.sampled_from(_ODD), st.text(max_size=8))


def _values() -> Any:
    from hypothesis import strategies as st

    scalars = st.one_of(
        _texts(),
        st.integers(),
        st.booleans(),
        st.none(),
        st.floats(allow_nan=False, allow_infinity=False),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3), st.dictionaries(_texts(), inner, max_size=3)
        ),
        max_leaves=6,
    )


def _take(**kw: Any) -> int:
    return len(kw)


def _odd_workflow(data: Any) -> fluxnb.Workflow:
    """A workflow whose every free-text field may hold odd text; step ids that YAML 1.1
    would read as booleans or null (``on``, ``No``, ``NULL``)."""
    from hypothesis import strategies as st

    ids = data.draw(
        st.lists(
            st.sampled_from(["on", "No", "NULL", "y", "true", "e1", "_", "a-b", "s"])
            | st.from_regex(r"[A-Za-z_][A-Za-z0-9_\-]{0,6}", fullmatch=True),
            min_size=1,
            max_size=6,
            unique=True,
        )
    )
    wf = fluxnb.Workflow(data.draw(_texts()), description=data.draw(st.none() | _texts()))
    for i, sid in enumerate(ids):
        options: dict[str, Any] = {}
        if data.draw(st.booleans()):
            options["with_"] = data.draw(
                st.dictionaries(st.from_regex(r"[a-z]{1,4}", fullmatch=True), _values(), max_size=3)
            )
        if data.draw(st.booleans()):
            options["run"] = data.draw(_texts().filter(bool))
        if data.draw(st.booleans()):
            options["description"] = data.draw(_texts())
        if data.draw(st.booleans()):
            options["timeout"] = data.draw(st.sampled_from([0.5, 2, 90]))
        deps = data.draw(st.lists(st.sampled_from(ids[:i]), unique=True)) if i else []
        wf.add(sid, _take, depends_on=deps, **options)
    return wf


def test_the_fast_manifest_reads_back_as_pyyamls_for_odd_text() -> None:
    """Property: the purpose-built writer's text, read by yaml.safe_load, is what PyYAML's
    own text of the same workflow reads back as (the old path), for odd strings in every
    field; and where the JSON-lines writer gave text (all but unprintable characters), the
    very same characters, so the recorded manifest and its hash do not change."""
    import yaml
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from fluxnb.spec._manifest_write import fast_manifest, workflow_to_dict

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.data())
    def check(data: Any) -> None:
        wf = _odd_workflow(data)
        text = fast_manifest(wf)
        if text is None:  # a value JSON and YAML read differently: ordinary YAML then
            assert flow_yaml(wf.to_dict()) is None
            return
        assert yaml.safe_load(text) == yaml.safe_load(wf.to_yaml())
        assert text == flow_yaml(workflow_to_dict(wf))
        text.encode()  # UTF-8 holds it (no lone surrogate left raw)

    check()


def test_a_big_workflows_manifest_with_unprintable_text_reads_back() -> None:
    # JSON writes DEL, C1 controls and U+FFFE raw; YAML refuses them (ReaderError) or reads
    # NEL as a space: the fast form wrote such text and the run's manifest did not load
    odd = "del \x7f c1 \x80 nel \x85 ls \u2028 bom \ufeff nc \ufffe"
    wf = _wide(FAST_YAML_STEPS + 1, note=odd)
    again = fluxnb.load(wf.manifest_text())
    assert again.to_dict() == wf.to_dict()
    assert again.steps["w0"].with_["note"] == odd


def test_a_loaded_workflow_edited_in_python_records_its_steps_of_now() -> None:
    wf = fluxnb.load("name: t\npipeline:\n  - step: a\n")
    assert wf.manifest_text() == wf.text  # as loaded: its own text
    wf.add("b", lambda a: a + 1, depends_on="a")
    recorded = fluxnb.load(wf.manifest_text())
    assert list(recorded.steps) == ["a", "b"]  # the step added since is recorded too
    assert wf.text == "name: t\npipeline:\n  - step: a\n"  # what it was loaded from


def test_a_chain_keeps_no_set_of_inputs_per_step() -> None:
    import gc
    import pickle

    from fluxnb.engine._plan import plan_for
    from fluxnb.spec import Binding

    wf = fluxnb.Workflow("chain")
    wf.add("c0", _take)
    for i in range(1, 50):
        wf.add(f"c{i}", _take, depends_on=f"c{i - 1}")
    plan = plan_for(wf, None)
    steps = wf.steps
    for sid, b in zip(plan.ids[1:], plan.bindings[1:], strict=True):
        assert b is not None and b.passed == frozenset(steps[sid].depends_on)
        # it refers to the step's own dependency tuple, and to no set of its own
        refs = gc.get_referents(b)
        assert any(r is steps[sid].depends_on for r in refs)
        assert not any(isinstance(r, frozenset) for r in refs)
        again = pickle.loads(pickle.dumps(b))
        assert again == b and hash(again) == hash(b)
        assert again == Binding(_take, frozenset(steps[sid].depends_on), False, False)
    assert fluxnb.run(wf, store=None)["c49"] == 1


def test_alike_steps_share_a_binding_and_each_misfit_is_named() -> None:
    import pytest

    from fluxnb import ResolutionError
    from fluxnb.engine._plan import plan_for

    def one(src: int) -> int:
        return src

    def alike(bad: int) -> fluxnb.Workflow:
        wf = fluxnb.Workflow("w")
        wf.add("src", lambda: 1)
        for i in range(bad):  # alike: the same callable, dependencies and with: keys
            wf.add(f"bad{i}", one, depends_on="src", with_={"nope": 1})
        for i in range(3):
            wf.add(f"ok{i}", one, depends_on="src")
        return wf

    with pytest.raises(ResolutionError) as caught:
        plan_for(alike(3), None)
    assert [p.path for p in caught.value.problems] == [f"pipeline[{i}].step" for i in (1, 2, 3)]
    plan = plan_for(alike(0), None)
    assert plan.bindings[1] is plan.bindings[2] is plan.bindings[3]


def test_a_long_fan_in_is_checked_as_a_short_one() -> None:
    import pytest

    from fluxnb import ManifestError
    from fluxnb.spec._graph import topological_order

    names = [f"w{i}" for i in range(40)]

    def fan_in(deps: list[str], after: bool = False) -> fluxnb.Workflow:
        wf = fluxnb.Workflow("f")
        if after:  # the sink declared before its inputs: valid, not in declared order
            wf.add("sink", lambda **kw: 1, depends_on=deps)
        for n in names:
            wf.add(n, lambda: 1)
        if not after:
            wf.add("sink", lambda **kw: 1, depends_on=deps)
        return wf

    assert fan_in(names).validate().order() == [*names, "sink"]
    late = fan_in(names, after=True).validate()
    assert late.order() == topological_order(late) == [*names, "sink"]
    for bad, kind in (
        (["w3", *names], "duplicate_dependency"),
        ([*names, "nope"], "unknown_dependency"),
    ):
        with pytest.raises(ManifestError) as caught:
            fan_in(bad).validate()
        assert [p.kind for p in caught.value.problems] == [kind]
