"""SLA views, Prometheus text (parsed by prometheus_client) and OpenTelemetry spans
(the SDK's in-memory exporter), from real runs on a real store."""

from __future__ import annotations

import time

import pytest

import fluxnb

FLAKY = """
name: sla
agents:
  - id: flaky
    retry: {max_attempts: 3, backoff: none}
pipeline:
  - step: fast
  - step: flaky
    depends_on: fast
  - step: slow
    depends_on: flaky
"""


def steps(fail_first: int) -> dict:
    state = {"n": 0}

    def flaky(fast: int) -> int:
        state["n"] += 1
        if state["n"] <= fail_first:
            raise RuntimeError("transient")
        return fast

    def slow(flaky: int) -> int:
        time.sleep(0.02)
        return flaky

    return {"fast": lambda: 1, "flaky": flaky, "slow": slow}


def test_sla_tables_per_step_agent_and_run(store_path: str) -> None:
    a = fluxnb.run(FLAKY, steps(2), store=store_path)  # flaky: fails twice, then succeeds
    b = fluxnb.run(FLAKY, steps(3), store=store_path)  # flaky: fails for good
    assert a.ok and not b.ok
    s = fluxnb.metrics.sla("steps", store=store_path).set_index("step")
    assert s.loc["flaky", "attempts"] == 6 and s.loc["flaky", "executions"] == 2
    assert s.loc["flaky", "error_rate"] == 0.5 and s.loc["flaky", "retry_rate"] == 2.0
    assert s.loc["fast", "error_rate"] == 0 and s.loc["fast", "retry_rate"] == 0
    assert s.loc["slow", "p50_s"] >= 0.02 and s.loc["slow", "p99_s"] >= s.loc["slow", "p50_s"]
    assert s.loc["slow", "executions"] == 2 and s.loc["slow", "attempts"] == 1  # b cancelled it
    runs = fluxnb.metrics.sla("runs", store=store_path).set_index("run_id")
    assert runs.loc[a.run_id, "retries"] == 2 and runs.loc[a.run_id, "failed_steps"] == 0
    assert runs.loc[b.run_id, "failed_steps"] == 1 and runs.loc[b.run_id, "status"] == "failed"
    agents = fluxnb.metrics.sla("agents", store=store_path).set_index("agent")
    assert agents.loc["flaky", "attempts"] == 6 and agents.loc["flaky", "breaker_open_s"] == 0
    with pytest.raises(fluxnb.FluxError, match="not one of"):
        fluxnb.metrics.sla("tenants", store=store_path)


def test_breaker_open_time_per_agent(store_path: str) -> None:
    text = """
name: brk
agents:
  - id: down
    circuit_breaker: {failure_threshold: 1, reset_timeout: 50ms}
pipeline:
  - step: down
"""

    def down() -> None:
        raise RuntimeError("no")

    fluxnb.breakers().reset()
    fluxnb.run(text, {"down": down}, store=store_path)  # opens the circuit
    time.sleep(0.08)
    fluxnb.run(text, {"down": down}, store=store_path)  # half-open probe fails: open again
    fluxnb.breakers().reset()
    agents = fluxnb.metrics.sla("agents", store=store_path).set_index("agent")
    assert agents.loc["down", "breaker_opened"] >= 1
    assert agents.loc["down", "breaker_open_s"] >= 0.05


def test_prometheus_text_parses_and_counts(store_path: str) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    fluxnb.run(FLAKY, steps(1), store=store_path, tenant="acme")
    text = fluxnb.metrics.prometheus_text(store=store_path)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    runs = families["fluxnb_runs"]
    assert runs.type == "counter"
    (sample,) = runs.samples
    assert sample.labels == {
        "workflow": "sla",
        "status": "succeeded",
        "tenant": "acme",
        "namespace": "default",
    }
    assert sample.value == 1
    attempts = {
        (s.labels["step"], s.labels["status"]): s.value
        for s in families["fluxnb_step_attempts"].samples
    }
    assert attempts[("flaky", "failed")] == 1 and attempts[("flaky", "succeeded")] == 1
    retries = {s.labels["step"]: s.value for s in families["fluxnb_step_retries"].samples}
    assert retries == {"fast": 0, "flaky": 1, "slow": 0}
    hist = families["fluxnb_step_duration_seconds"]
    assert hist.type == "histogram"
    slow = [s for s in hist.samples if s.labels.get("step") == "slow"]
    buckets = {s.labels["le"]: s.value for s in slow if s.name.endswith("_bucket")}
    assert buckets["0.01"] == 0 and buckets["+Inf"] == 1 and buckets["0.05"] == 1
    count = next(s.value for s in slow if s.name.endswith("_count"))
    assert count == 1
    usage = {s.labels["unit"]: s.value for s in families["fluxnb_usage"].samples}
    assert usage["invocations"] == 4  # fast, flaky twice, slow


def test_otel_spans_per_run_and_attempt() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    fluxnb.metrics.enable_otel(provider)
    try:
        with fluxnb.session(tenant="acme", namespace="team-a"):
            r = fluxnb.run(FLAKY, steps(1), store=None)
    finally:
        fluxnb.metrics.disable_otel()
    assert not fluxnb.metrics.otel_enabled()
    spans = exporter.get_finished_spans()
    run_span = next(s for s in spans if s.name == "fluxnb run sla")
    attempts = [s for s in spans if s is not run_span]
    assert [(s.attributes["fluxnb.step"], s.attributes["fluxnb.attempt"]) for s in attempts] == [
        ("fast", 1),
        ("flaky", 1),
        ("flaky", 2),
        ("slow", 1),
    ]
    for s in attempts:
        assert s.parent is not None and s.parent.span_id == run_span.context.span_id
        assert s.attributes["fluxnb.run_id"] == r.run_id
        assert (
            s.attributes["fluxnb.tenant"] == "acme" and s.attributes["fluxnb.namespace"] == "team-a"
        )
        assert run_span.start_time <= s.start_time <= s.end_time <= run_span.end_time
    failed = attempts[1]
    assert (
        failed.attributes["fluxnb.status"] == "failed"
        and failed.attributes["fluxnb.error_type"] == "RuntimeError"
    )
    assert failed.status.status_code.name == "ERROR"
    slow = attempts[3]
    assert (slow.end_time - slow.start_time) / 1e9 >= 0.02  # real start and end times
    assert run_span.attributes["fluxnb.status"] == "succeeded"
    # off again: no spans
    exporter.clear()
    fluxnb.run(FLAKY, steps(0), store=None)
    assert exporter.get_finished_spans() == ()
