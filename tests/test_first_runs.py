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
