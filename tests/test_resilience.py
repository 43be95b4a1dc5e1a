"""Error strategies, circuit breakers and recorded outputs, with real fault injection."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest

import fluxnb
from fluxnb import CircuitOpenError, CircuitState, RunStatus, StepStatus
from fluxnb.engine import CircuitBreaker
from fluxnb.spec import CircuitBreakerSettings
from fluxnb.store._outputs import decode, encode, sign
from fluxnb.testing import ManualClock, MemoryRecorder, failing, flaky

DIAMOND = """
router:
  on_error: {strategy}
agents:
  - id: b
    default: -1
pipeline:
  - step: a
  - step: b
    depends_on: a
  - step: c
    depends_on: a
  - step: d
    depends_on: [b, c]
  - step: e
    depends_on: c
"""


def diamond_ns(calls: list[str]) -> dict[str, Any]:
    def make(name: str, fn: Any) -> Any:
        def step(**kw: Any) -> Any:
            calls.append(name)
            return fn(**kw)

        return step

    async def slow_c(a: int) -> int:
        await asyncio.sleep(0.05)
        calls.append("c")
        return a + 2

    return {
        "a": make("a", lambda: 1),
        "b": make("b", failing(ValueError("b broke"))),
        "c": slow_c,
        "d": make("d", lambda b, c: (b, c)),
        "e": make("e", lambda c: c * 10),
    }


def statuses(result: fluxnb.RunResult) -> dict[str, str]:
    return {s: r.status.value for s, r in result.steps.items()}


def test_stop_cancels_everything_else() -> None:
    calls: list[str] = []
    r = fluxnb.run(DIAMOND.format(strategy="stop"), diamond_ns(calls), store=None)
    assert r.status is RunStatus.FAILED
    assert statuses(r) == {
        "a": "succeeded",
        "b": "failed",
        "c": "cancelled",
        "d": "cancelled",
        "e": "cancelled",
    }
    assert "d" not in calls and "e" not in calls


def test_continue_skips_dependents_and_finishes_independent_branches() -> None:
    calls: list[str] = []
    rec = MemoryRecorder()
    r = fluxnb.run(DIAMOND.format(strategy="continue"), diamond_ns(calls), store=rec)
    assert r.status is RunStatus.FAILED
    assert statuses(r) == {
        "a": "succeeded",
        "b": "failed",
        "c": "succeeded",
        "d": "skipped",
        "e": "succeeded",
    }
    assert r["e"] == 30 and "d" not in calls
    skipped = [row for row in rec.rows() if row["step"] == "d"]
    assert skipped[0]["status"] == "skipped" and skipped[0]["attempt"] == 0
    assert "upstream step 'b' failed" in str(skipped[0]["error_message"])
    assert "on_error: continue" in (r.reason or "")


def test_skip_uses_the_default_and_downstream_runs() -> None:
    calls: list[str] = []
    r = fluxnb.run(DIAMOND.format(strategy="skip"), diamond_ns(calls), store=None)
    assert r.status is RunStatus.SUCCEEDED
    assert r.steps["b"].status is StepStatus.SKIPPED
    assert r.errors["b"].type == "ValueError"  # the failure is kept
    assert r["b"] == -1 and r["d"] == (-1, 3)
    assert "tolerated" in (r.reason or "")
    r.raise_for_status()  # a tolerated failure does not fail the run


def test_retry_strategy_retries_then_falls_back() -> None:
    text = """
agents:
  - id: b
    on_error: {strategy: retry, fallback: skip}
    retry: {max_attempts: 3, backoff: none}
pipeline:
  - step: b
  - step: after
    depends_on: b
"""
    rec = MemoryRecorder()
    r = fluxnb.run(text, {"b": failing(OSError("down")), "after": lambda b: b}, store=rec)
    assert r.status is RunStatus.SUCCEEDED
    assert r.steps["b"].attempts == 3 and r.steps["b"].status is StepStatus.SKIPPED
    assert [row["status"] for row in rec.rows() if row["step"] == "b"] == [
        "failed",
        "failed",
        "skipped",
    ]
    assert r["after"] is None
    # retry with no policy of its own gets three attempts
    text2 = "router:\n  on_error: retry\npipeline:\n  - step: b\n"
    r2 = fluxnb.run(
        text2.replace("retry\n", "{strategy: retry, fallback: stop}\n"),
        {"b": flaky(fails=2, then="ok")},
        store=None,
    )
    assert r2.ok and r2.steps["b"].attempts == 3


def test_run_default_retry_applies_to_agents_without_one() -> None:
    text = "router:\n  retry: {max_attempts: 2, backoff: none}\npipeline:\n  - step: s\n"
    r = fluxnb.run(text, {"s": flaky(fails=1, then=5)}, store=None)
    assert r.ok and r.steps["s"].attempts == 2


# ---------------------------------------------------------------- circuit breakers
def test_breaker_state_machine_with_a_manual_clock() -> None:
    clock = ManualClock()
    b = CircuitBreaker("pay", CircuitBreakerSettings(failure_threshold=2, reset_timeout=30), clock)
    assert b.acquire() == (False, [])
    assert b.failure(False, "x") == []
    [change] = b.failure(False, "y")
    assert (change.old, change.new) == (CircuitState.CLOSED, CircuitState.OPEN)
    with pytest.raises(CircuitOpenError) as info:
        b.acquire()
    assert info.value.agent == "pay" and info.value.retry_in == pytest.approx(30)
    clock.advance(29.9)
    with pytest.raises(CircuitOpenError):
        b.acquire()
    clock.advance(0.2)
    probe, changes = b.acquire()
    assert probe and changes[0].new is CircuitState.HALF_OPEN
    with pytest.raises(CircuitOpenError):  # only one probe at a time
        b.acquire()
    [reopen] = b.failure(True, "still down")
    assert reopen.new is CircuitState.OPEN and "probe failed" in reopen.reason
    clock.advance(31)
    probe, _ = b.acquire()
    [close] = b.success(probe)
    assert close.new is CircuitState.CLOSED and b.failures == 0
    assert b.acquire() == (False, [])


@pytest.fixture
def fresh_breakers() -> Any:
    reg = fluxnb.breakers()
    reg.clear()
    old = reg.clock
    reg.clock = clock = ManualClock()
    yield clock
    reg.clear()
    reg.clock = old


def test_always_failing_agent_opens_its_breaker_across_runs(fresh_breakers: ManualClock) -> None:
    calls = {"n": 0}

    def pay() -> None:
        calls["n"] += 1
        raise ConnectionError("gateway down")

    text = """
agents:
  - id: pay
    circuit_breaker: {failure_threshold: 2, reset_timeout: 30s}
pipeline:
  - step: pay
"""
    rec = MemoryRecorder()
    for _ in range(2):
        assert fluxnb.run(text, {"pay": pay}, store=rec).errors["pay"].type == "ConnectionError"
    assert calls["n"] == 2
    assert fluxnb.breakers()["pay"].state is CircuitState.OPEN
    third = fluxnb.run(text, {"pay": pay}, store=rec)
    assert third.errors["pay"].type == "CircuitOpenError"
    assert calls["n"] == 2  # short-circuited: not called
    changes = rec.circuit_rows()
    assert [(c["from_state"], c["to_state"]) for c in changes] == [("closed", "open")]
    assert changes[0]["agent"] == "pay" and changes[0]["failures"] == 2
    # after the reset timeout one probe goes through; it fails, the circuit reopens
    fresh_breakers.advance(31)
    fourth = fluxnb.run(text, {"pay": pay}, store=rec)
    assert calls["n"] == 3 and fourth.errors["pay"].type == "ConnectionError"
    assert [c["to_state"] for c in rec.circuit_rows()] == ["open", "half_open", "open"]
    # a healthy probe closes it
    fresh_breakers.advance(31)
    ok = fluxnb.run(text, {"pay": lambda: "paid"}, store=rec)
    assert ok.ok and fluxnb.breakers()["pay"].state is CircuitState.CLOSED
    assert [s["state"] for s in fluxnb.breakers().states()] == ["closed"]


def test_a_slow_probe_reopens_the_circuit(fresh_breakers: ManualClock) -> None:
    async def slow() -> str:
        await asyncio.sleep(5)
        return "late"

    text = """
agents:
  - id: svc
    circuit_breaker: {failure_threshold: 1, reset_timeout: 1s, probe_timeout: 100ms}
pipeline:
  - step: svc
"""
    fluxnb.run(text, {"svc": failing(TimeoutError("t"))}, store=None)
    assert fluxnb.breakers()["svc"].state is CircuitState.OPEN
    fresh_breakers.advance(2)
    rec = MemoryRecorder()
    r = fluxnb.run(text, {"svc": slow}, store=rec)
    assert r.errors["svc"].type == "TimeoutError" and "100ms" in r.errors["svc"].message
    assert fluxnb.breakers()["svc"].state is CircuitState.OPEN
    assert [c["to_state"] for c in rec.circuit_rows()] == ["half_open", "open"]


def test_breakers_can_be_reset(fresh_breakers: ManualClock) -> None:
    text = (
        "agents:\n  - id: s\n    circuit_breaker: {failure_threshold: 1}\npipeline:\n  - step: s\n"
    )
    fluxnb.run(text, {"s": failing()}, store=None)
    assert fluxnb.breakers()["s"].state is CircuitState.OPEN
    [change] = fluxnb.breakers().reset("s")
    assert change.new is CircuitState.CLOSED and change.reason == "reset by hand"
    assert fluxnb.run(text, {"s": lambda: 1}, store=None).ok


def test_circuit_events_reach_the_store(fresh_breakers: ManualClock, store_path: str) -> None:
    text = (
        "agents:\n  - id: s\n    circuit_breaker: {failure_threshold: 1}\npipeline:\n  - step: s\n"
    )
    r = fluxnb.run(text, {"s": failing()}, store=store_path)
    ev = fluxnb.sql(
        "SELECT agent, from_state, to_state, run_id FROM circuit_events", store=store_path
    )
    assert ev.to_dict("records") == [
        {"agent": "s", "from_state": "closed", "to_state": "open", "run_id": r.run_id}
    ]


# ---------------------------------------------------------------- recorded outputs
@pytest.mark.parametrize(
    ("value", "fmt"),
    [
        (1, "json"),
        ("x", "json"),
        (None, "json"),
        ([1, {"a": 2}], "json"),
        (1.5, "json"),
        ((1, 2), "pickle"),
        ({1: "a"}, "pickle"),
        ({"s"}, "pickle"),
        (math.nan, "pickle"),
        (b"bytes", "pickle"),
    ],
)
def test_outputs_round_trip_in_the_right_format(value: Any, fmt: str) -> None:
    encoded = encode(value)
    assert encoded[0] == fmt
    key = b"k" * 32
    blob = sign(encoded[2], key, "r\0s") if fmt == "pickle" else encoded[2]
    back = decode(encoded[0], encoded[1], blob, key=key, place="r\0s")
    assert back == value or (isinstance(value, float) and math.isnan(back))
    assert type(back) is type(value)
    assert encode(value)[3] == encoded[3]  # the digest is stable


def test_large_and_unpicklable_outputs_keep_a_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    from fluxnb.store import _outputs as outputs

    monkeypatch.setattr(outputs, "CAP", 100)
    big = encode("x" * 1000)
    assert big[0] == "too_large" and big[1] is None and big[3] and big[4] == 1002
    weird = encode(lambda: 1)
    assert weird[0] == "unpicklable" and weird[3]
    with pytest.raises(fluxnb.ReplayError, match="run again"):
        decode(*big[:3], step="s")


def test_outputs_are_recorded_in_the_store(store_path: str) -> None:
    ns = {"a": lambda: {"rows": [1, 2]}, "b": lambda a: tuple(a["rows"])}
    r = fluxnb.run("pipeline:\n  - step: a\n  - step: b\n    depends_on: a\n", ns, store=store_path)
    ev = fluxnb.traces(r.run_id, store=store_path)
    assert list(ev["output_format"]) == ["json", "pickle"]
    assert ev["output_json"][0] == '{"rows":[1,2]}'
    assert all(len(d) == 32 for d in ev["output_digest"])


@pytest.mark.parametrize(
    ("fields", "error", "says"),
    [
        ({"backoff": 0.002}, ValueError, "seconds go in initial_delay"),
        ({"max_attempts": 0}, ValueError, "1 or more"),
        ({"max_attempts": True}, TypeError, "must be an int"),
        ({"max_attempts": 2.5}, TypeError, "must be an int"),
        ({"initial_delay": "1s"}, TypeError, "must be seconds"),
        ({"initial_delay": float("nan")}, ValueError, "0 or more seconds"),
        ({"max_delay": -1}, ValueError, "0 or more seconds"),
        ({"retry_on": "TimeoutError"}, TypeError, "tuple of exception class names"),
        ({"no_retry_on": [ValueError]}, TypeError, "tuple of exception class names"),
    ],
)
def test_a_retry_policy_built_in_python_is_checked_as_a_manifests(
    fields: dict[str, Any], error: type[Exception], says: str
) -> None:
    """A wrong field used to pass and misbehave only once a step failed (backoff=0.002 made
    every retry's delay() take the exponential branch with its default delay)."""
    with pytest.raises(error, match=says):
        fluxnb.RetryPolicy(**fields)


def test_a_retry_policy_given_a_list_keeps_a_tuple() -> None:
    policy = fluxnb.RetryPolicy(max_attempts=2, retry_on=["TimeoutError"])  # type: ignore[arg-type]
    assert policy.retry_on == ("TimeoutError",)
    assert hash(policy)  # still hashable, as a frozen policy is
