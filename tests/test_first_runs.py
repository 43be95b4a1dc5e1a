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
    consumers = {id(plan.consumers[p]) for p, _, _ in plan.inputs[-1]}
    assert len(consumers) == 1  # the 200 places into the sink share its consumer entry
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
