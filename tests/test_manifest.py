"""The manifest: every FluxRoute sample loads; every kind of mistake is reported well."""

from __future__ import annotations

from pathlib import Path

import pytest

import fluxnb
from fluxnb import CycleError, ManifestError
from fluxnb.spec import format_duration, parse_duration

from .conftest import SAMPLES


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_fluxroute_samples_load_unchanged(path: Path) -> None:
    wf = fluxnb.load(path)
    assert wf.name == path.stem
    assert len(wf) >= 1
    assert wf.router.worker_pool_size is not None
    assert wf.router.default_timeout in {10.0, 15.0}
    again = fluxnb.load(wf.to_yaml())
    assert again.to_dict() == wf.to_dict()


def test_sample_settings_are_parsed() -> None:
    wf = fluxnb.load(next(p for p in SAMPLES if p.name == "enterprise-workflow.yaml"))
    ingest = wf.steps["flaky_ingest"]
    assert ingest.retry is not None and ingest.retry.max_attempts == 2
    assert ingest.retry.backoff == "exponential_jitter"
    assert ingest.circuit_breaker is not None and ingest.circuit_breaker.reset_timeout == 45.0
    assert wf.steps["validate_agent"].depends_on == ("flaky_ingest",)
    assert wf.router.rbac.admin_roles == ("admin",)
    assert wf.router.channel_buffer == 64
    assert wf.order() == ["flaky_ingest", "validate_agent", "classify_agent", "audit_agent"]


def load_err(text: str) -> ManifestError:
    with pytest.raises(ManifestError) as info:
        fluxnb.load(text)
    return info.value


def test_unknown_key_says_did_you_mean_with_position() -> None:
    err = load_err("pipeline:\n  - step: a\n    depend_on: b\n")
    assert err.kind == "unknown_key"
    assert err.problems[0].suggestion == "depends_on"
    assert (err.line, err.column) == (3, 5)
    assert "did you mean 'depends_on'" in str(err)


def test_unknown_top_level_key() -> None:
    err = load_err("pipelines:\n  - step: a\n")
    kinds = {p.kind for p in err.problems}
    assert "unknown_key" in kinds and "missing_key" in kinds
    assert any(p.suggestion == "pipeline" for p in err.problems)


def test_duplicate_step_ids() -> None:
    err = load_err("pipeline:\n  - step: a\n  - step: a\n")
    assert err.kind == "duplicate_id"
    assert err.line == 3


def test_duplicate_agent_ids() -> None:
    err = load_err("agents:\n  - id: a\n  - id: a\npipeline:\n  - step: a\n")
    assert err.kind == "duplicate_id"
    assert err.path == "agents[1].id"


def test_unknown_dependency_suggests_close_step() -> None:
    err = load_err("pipeline:\n  - step: fetch\n  - step: score\n    depends_on: fech\n")
    assert err.kind == "unknown_dependency"
    assert err.problems[0].found == "fech"
    assert err.problems[0].suggestion == "fetch"
    assert err.line == 4


def test_self_dependency() -> None:
    err = load_err("pipeline:\n  - step: a\n    depends_on: [a]\n")
    assert err.kind == "self_dependency"


def test_cycle_is_named() -> None:
    text = (
        "name: etl\npipeline:\n  - step: a\n    depends_on: c\n"
        "  - step: b\n    depends_on: a\n  - step: c\n    depends_on: b\n"
    )
    with pytest.raises(CycleError) as info:
        fluxnb.load(text)
    cycle = info.value.cycle
    assert cycle[0] == cycle[-1]
    assert set(cycle) == {"a", "b", "c"} and len(cycle) == 4
    assert "etl" in str(info.value) and "cycle" in str(info.value)


@pytest.mark.parametrize(
    ("snippet", "kind"),
    [
        ("router:\n  worker_pool_size: eight\n", "wrong_type"),
        ("router:\n  worker_pool_size: true\n", "wrong_type"),
        ("router:\n  worker_pool_size: 0\n", "bad_value"),
        ("router:\n  default_timeout: ten seconds\n", "bad_duration"),
        ("router:\n  default_timeout: -5\n", "bad_duration"),
        ("agents:\n  - id: a\n    retry: {backoff: exponental}\n", "bad_value"),
        ("agents:\n  - id: a\n    retry: {max_attempts: 0}\n", "bad_value"),
        ("agents:\n  - id: a\n    circuit_breaker: {reset_timeout: soon}\n", "bad_duration"),
        ("agents:\n  - id: a\n    timeout: [1]\n", "bad_duration"),
        ("agents: {a: 1}\n", "wrong_type"),
    ],
)
def test_wrong_values_are_reported(snippet: str, kind: str) -> None:
    err = load_err(snippet + "pipeline:\n  - step: a\n")
    assert err.kind == kind, str(err)
    assert err.line is not None


def test_bad_backoff_suggests() -> None:
    err = load_err("agents:\n  - id: a\n    retry: {backoff: exponental}\npipeline:\n  - step: a\n")
    assert err.problems[0].suggestion == "exponential"


def test_empty_and_missing_pipeline() -> None:
    assert load_err("pipeline: []\n").kind == "empty_pipeline"
    assert load_err("").kind == "empty_pipeline"
    assert load_err("router: {}\n").kind == "missing_key"
    assert load_err("pipeline: fetch\n").kind == "wrong_type"


def test_yaml_syntax_error_has_line_and_column() -> None:
    err = load_err("pipeline:\n  - step: a\n   - step: b\n")
    assert err.kind == "yaml_syntax"
    assert err.line == 3


def test_duplicate_yaml_keys_are_not_silently_merged() -> None:
    err = load_err("pipeline:\n  - step: a\n    step: b\n")
    assert err.kind == "duplicate_key"


def test_unused_agent_is_a_typo() -> None:
    err = load_err("agents:\n  - id: fetch_dat\npipeline:\n  - step: fetch_data\n")
    assert err.kind == "unused_agent"
    assert err.problems[0].suggestion == "fetch_data"


def test_all_problems_are_collected() -> None:
    err = load_err(
        "router:\n  worker_pool_sise: 3\n  default_timeout: x\npipeline:\n  - stepp: a\n"
    )
    assert len(err.problems) >= 3
    assert str(err).startswith(f"{len(err.problems)} problems")


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("pipeline:\n  - step: a\n    depends_on: zz\n")
    with pytest.raises(ManifestError) as info:
        fluxnb.load(bad)
    assert str(info.value).startswith(f"{bad}:3:")
    with pytest.raises(ManifestError) as missing:
        fluxnb.load(tmp_path / "nope.yaml")
    assert missing.value.kind == "missing_file"


def test_a_net_and_a_pipeline_in_one_manifest_is_refused_clearly() -> None:
    err = load_err("net:\n  places: {a: 1}\npipeline:\n  - step: a\n")
    assert err.kind == "unknown_key" and err.path == "pipeline"
    with pytest.raises(ManifestError) as info:
        fluxnb.spec.load_workflow("net:\n  places: {a: 1}\n")
    assert info.value.problems[0].kind == "unsupported"
    assert "fluxnb.run" in str(info.value)


def test_depends_on_accepts_one_id_or_a_list() -> None:
    wf = fluxnb.load("pipeline:\n  - step: a\n  - step: b\n  - step: c\n    depends_on: [a, b]\n")
    assert wf.steps["c"].depends_on == ("a", "b")


def test_dict_manifest_and_with_values() -> None:
    wf = fluxnb.load({"pipeline": [{"step": "a", "with": {"x": 1}}]})
    assert wf.steps["a"].with_ == {"x": 1}


def test_wrong_manifest_type() -> None:
    with pytest.raises(TypeError):
        fluxnb.load(42)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("10s", 10), ("5m", 300), ("1h", 3600), ("1m30s", 90), (2, 2), ("1.5", 1.5)],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
    assert parse_duration(format_duration(parse_duration(text))) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["", "ten", "5 parsecs", "-1s", True, None, [1]])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_python_workflow_round_trips_through_yaml() -> None:
    wf = fluxnb.Workflow("py", router=fluxnb.RouterSettings(worker_pool_size=3, namespace="ns"))

    @wf.step
    def fetch() -> int:
        return 1

    @wf.step(retry=3, timeout="2s")
    def score(fetch: int, threshold: float = 0.5) -> float:
        return fetch * threshold

    wf.add("report", lambda score: score, depends_on=["score"], with_={})
    assert wf.steps["score"].depends_on == ("fetch",)
    text = wf.to_yaml()
    back = fluxnb.load(text)
    assert back.to_dict() == wf.to_dict()
    assert back.steps["score"].retry is not None and back.steps["score"].retry.max_attempts == 3
    assert back.steps["score"].timeout == 2.0
    assert back.router.worker_pool_size == 3


def test_adding_a_step_twice_is_refused() -> None:
    wf = fluxnb.Workflow()
    wf.add("a", lambda: 1)
    with pytest.raises(ValueError, match="already has a step 'a'"):
        wf.add("a", lambda: 2)


def test_to_networkx_and_net() -> None:
    wf = fluxnb.load("pipeline:\n  - step: a\n  - step: b\n    depends_on: a\n")
    g = wf.to_networkx()
    assert list(g.edges) == [("a", "b")]
    net = wf.to_net()
    assert len(net.transitions) == 2
    assert net.initial.count(1) == 1  # one start place for the one source
    assert sum(net.final.values()) == 1


@pytest.mark.parametrize("bad", ["a b", "1st", "x.y", "a:b", "ünïcode?"])
def test_bad_step_ids_are_refused(bad: str) -> None:
    err = load_err(f"pipeline:\n  - step: '{bad}'\n")
    assert err.kind == "bad_value" and err.problems[0].found == bad
    with pytest.raises(ValueError, match="not a valid step id"):
        fluxnb.Workflow().add(bad, lambda: 1)


def test_huge_and_deep_inputs() -> None:
    n = 5000
    text = "pipeline:\n" + "".join(
        f"  - step: s{i}\n" + (f"    depends_on: s{i - 1}\n" if i else "") for i in range(n)
    )
    wf = fluxnb.load(text)
    assert len(wf.order()) == n
    assert load_err("pipeline: " + "[" * 5000 + "]" * 5000).kind == "yaml_syntax"
