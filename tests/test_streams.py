"""Streaming steps and activation policies, on the real engine (the net engine)."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import pytest

import fluxnb
from fluxnb import ManifestError, RunStatus


def stream_wf(n: int = 5, **consumer: object) -> fluxnb.Workflow:
    wf = fluxnb.Workflow("streams")

    @wf.step
    async def numbers():
        for i in range(n):
            yield i

    def double(numbers):
        return numbers * 2

    wf.add("double", double, **consumer)  # type: ignore[arg-type]
    return wf


# ---------------------------------------------------------------- streaming steps
def test_async_generator_items_feed_a_consumer_once_each() -> None:
    r = fluxnb.run(stream_wf(5), store=None)
    assert r.status is RunStatus.SUCCEEDED
    assert r["numbers"] == [0, 1, 2, 3, 4]
    assert r["double"] == [0, 2, 4, 6, 8]
    assert r.counts["double"] == 5


def test_sync_generator_runs_in_a_thread_and_streams() -> None:
    wf = fluxnb.Workflow("sync")
    threads = set()

    @wf.step
    def rows():
        for i in range(4):
            threads.add(threading.get_ident())
            yield {"i": i}

    @wf.step
    def pick(rows):
        return rows["i"]

    r = fluxnb.run(wf, store=None)
    assert r["pick"] == [0, 1, 2, 3]
    assert threading.get_ident() not in threads


def test_a_one_shot_output_is_read_by_every_item() -> None:
    wf = stream_wf(3)

    @wf.step
    def offset():
        return 100

    @wf.step
    def shifted(double, offset):
        return double + offset

    r = fluxnb.run(wf, store=None)
    assert r["offset"] == 100  # a one-shot step's result is its output, not a list
    assert r["shifted"] == [100, 102, 104]


def test_keep_last_keeps_only_the_last_item() -> None:
    r = fluxnb.run(stream_wf(4, keep="last"), store=None)
    assert r["double"] == 6
    assert r["numbers"] == [0, 1, 2, 3]


def test_backpressure_pauses_the_producer_instead_of_buffering() -> None:
    wf = fluxnb.Workflow("bp")
    made: list[int] = []
    waiting: list[int] = []

    @wf.step
    async def fast():
        for i in range(50):
            made.append(i)
            yield i

    async def slow(fast):
        await asyncio.sleep(0.001)
        waiting.append(len(made) - fast - 1)  # produced but not yet consumed, at this item
        return fast

    wf.add("slow", slow, capacity=3, executor=None)
    r = fluxnb.run(wf, store=None)
    assert r.ok and r["slow"] == list(range(50))
    # never more than capacity (3) items made ahead of the consumer, plus the one it holds
    assert max(waiting) <= 3 + 1
    assert min(waiting) >= 0


def test_backpressure_is_seen_as_a_paused_producer() -> None:
    """The engine counts the producer's pauses; the place never holds more than capacity."""
    from fluxnb.engine._net_run import NetEngine, plan_net
    from fluxnb.spec._stream_net import compile_streams

    wf = fluxnb.Workflow("bp2")

    @wf.step
    async def src():
        for i in range(100):
            yield i

    async def sink(src):
        await asyncio.sleep(0)
        return src

    wf.add("sink", sink, capacity=4)
    net = compile_streams(wf, {"src": src, "sink": sink})
    engine = NetEngine(plan_net(net, None), run_id="bp2")
    asyncio.run(engine.advance())
    st = engine.streams
    assert st is not None
    assert st.pauses[0] > 0  # the producer waited for room
    assert max(st.peak.values()) <= 4
    assert st.result("sink") == list(range(100))


def test_memory_is_bounded_by_capacity_not_item_count() -> None:
    """With keep: last, 20,000 items leave nothing growing behind (tokens, items)."""
    from fluxnb.engine._net_run import NetEngine, plan_net
    from fluxnb.spec._stream_net import compile_streams

    wf = fluxnb.Workflow("flat")

    @wf.step
    async def src():
        for i in range(20_000):
            yield i

    def inc(src):
        return src + 1

    wf.add("inc", inc, capacity=16, keep="last")
    wf.replace_step("src", keep="last")
    net = compile_streams(wf, {"src": src, "inc": inc})
    engine = NetEngine(plan_net(net, None), run_id="flat")
    asyncio.run(engine.advance())
    assert engine.outputs["inc"] == 20_000
    assert engine.streams is not None and engine.streams.items == {}  # nothing kept
    assert sum(len(q) for q in engine.places) <= 1  # the start token is gone, nothing waits
    assert max(engine.streams.peak.values()) <= 16


def test_per_item_skip_drops_that_item_and_goes_on() -> None:
    def double(numbers):
        if numbers == 2:
            raise ValueError("bad item")
        return numbers * 2

    wf = stream_wf(5)
    wf.replace_step("double", fn=double, on_error=fluxnb.OnError("skip"))
    r = fluxnb.run(wf, store=None)
    assert r.status is RunStatus.SUCCEEDED
    assert r["double"] == [0, 2, 6, 8]


def test_per_item_continue_goes_on_and_the_run_fails() -> None:
    def double(numbers):
        if numbers % 2:
            raise ValueError("odd")
        return numbers

    wf = stream_wf(5)
    wf.replace_step("double", fn=double, on_error=fluxnb.OnError("continue"))
    r = fluxnb.run(wf, store=None)
    assert r.status is RunStatus.FAILED
    assert r["double"] == [0, 2, 4]
    assert "2 firings failed" in (r.reason or "")


def test_retries_are_per_item() -> None:
    calls: dict[int, int] = {}

    def flaky(numbers):
        calls[numbers] = calls.get(numbers, 0) + 1
        if numbers == 1 and calls[numbers] < 3:
            raise ConnectionError("again")
        return numbers

    wf = stream_wf(3)
    wf.replace_step(
        "double", fn=flaky, retry=fluxnb.RetryPolicy(max_attempts=3, initial_delay=0.001)
    )
    store = fluxnb.Store(":memory:")
    r = fluxnb.run(wf, store=store)
    assert r.ok and r["double"] == [0, 1, 2]
    assert calls == {0: 1, 1: 3, 2: 1}
    rows = store.sql(
        "SELECT attempt, status FROM events WHERE step = 'double' ORDER BY seq, attempt"
    )
    assert list(rows["status"]).count("failed") == 2
    assert len(rows) == 5  # one row per attempt: 1 + 3 + 1


def test_a_producer_that_fails_after_emitting_is_not_retried() -> None:
    starts = []
    wf = fluxnb.Workflow("broken")

    async def src():
        starts.append(1)
        yield 1
        raise OSError("connection lost mid-stream")

    wf.add("src", src, retry=fluxnb.RetryPolicy(max_attempts=3, initial_delay=0.001))

    @wf.step
    def use(src):
        return src

    r = fluxnb.run(wf, store=None)
    assert len(starts) == 1  # a retry would have emitted item 1 again
    assert r.status is RunStatus.FAILED
    assert "connection lost" in (r.reason or "")


def test_each_consumer_firing_is_one_event_row() -> None:
    store = fluxnb.Store(":memory:")
    r = fluxnb.run(stream_wf(4), store=store)
    rows = store.sql(f"SELECT step, status FROM events WHERE run_id = '{r.run_id}' ORDER BY seq")
    assert list(rows["step"]).count("double") == 4
    assert list(rows["step"]).count("numbers") == 1
    assert set(rows["status"]) == {"succeeded"}
    runs = store.sql(f"SELECT status, workflow FROM runs WHERE run_id = '{r.run_id}'")
    assert list(runs["status"]) == ["succeeded"] and list(runs["workflow"]) == ["streams"]


@pytest.mark.parametrize("consumer", ["sync", "async"])  # async: the per-item lane
def test_cancelling_a_stream_run_stops_the_producer(consumer: str) -> None:
    wf = fluxnb.Workflow("endless")
    made = []
    seen_items: list[int] = []

    @wf.step
    async def ticks():
        i = 0
        while True:
            await asyncio.sleep(0.001)
            made.append(i)
            yield i
            i += 1

    def seen(ticks):
        seen_items.append(ticks)
        return ticks

    async def seen_async(ticks):
        return seen(ticks)

    wf.add("seen", seen_async if consumer == "async" else seen)

    async def main() -> None:
        task = asyncio.ensure_future(fluxnb.arun(wf, store=None))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    n = len(made)
    time.sleep(0.02)
    assert len(made) == n > 0  # nothing runs after the cancel
    assert seen_items == made[: len(seen_items)]


def test_a_stream_that_can_never_drain_ends_instead_of_hanging() -> None:
    wf = fluxnb.Workflow("stuck")
    made = []

    @wf.step
    async def src():
        for i in range(10):
            made.append(i)
            yield i

    @wf.step
    def never():
        raise RuntimeError("no config")

    def use(src, never):
        return src

    wf.add("use", use, capacity=2)
    wf.replace_step("never", on_error=fluxnb.OnError("continue"))
    r = fluxnb.run(wf, store=None)
    assert r.status is RunStatus.FAILED and "never" in (r.reason or "")
    assert len(made) < 10  # the producer was ended where it paused, not run to the end


def test_items_never_taken_are_reported_not_dropped_silently() -> None:
    wf = two_streams(5, 3)
    wf.add("pair", lambda left, right: left + right, depends_on=["left", "right"])
    with pytest.warns(RuntimeWarning, match="2 items were never taken"):
        r = fluxnb.run(wf, store=None)
    assert r.ok and r["pair"] == ["L0R0", "L1R1", "L2R2"]
    assert "2 items were never taken (2 in 'left->pair')" in (r.reason or "")


# ---------------------------------------------------------------- activation policies
def two_streams(a: int, b: int) -> fluxnb.Workflow:
    wf = fluxnb.Workflow("two")

    async def left():
        for i in range(a):
            await asyncio.sleep(0)
            yield f"L{i}"

    async def right():
        for i in range(b):
            await asyncio.sleep(0)
            yield f"R{i}"

    wf.add("left", left)
    wf.add("right", right)
    return wf


def test_all_matches_one_item_of_each_input_in_order() -> None:
    wf = two_streams(3, 3)
    wf.add("pair", lambda left, right: left + right, depends_on=["left", "right"])
    r = fluxnb.run(wf, store=None)
    assert r["pair"] == ["L0R0", "L1R1", "L2R2"]


def test_any_fires_on_each_item_with_the_inputs_that_have_one() -> None:
    wf = two_streams(3, 2)

    def merge(left=None, right=None):
        return (left, right)

    wf.add("merge", merge, depends_on=["left", "right"], activation="any")
    r = fluxnb.run(wf, store=None)
    got = r["merge"]
    items = [x for pair in got for x in pair if x is not None]
    assert sorted(items) == ["L0", "L1", "L2", "R0", "R1"]  # every item exactly once
    assert all(any(x is not None for x in pair) for pair in got)


def test_any_needs_defaults_for_the_inputs_it_may_not_get() -> None:
    wf = two_streams(1, 1)
    wf.add("merge", lambda left, right: 1, depends_on=["left", "right"], activation="any")
    with pytest.raises(ManifestError, match="give 'left', 'right' a default"):
        fluxnb.run(wf, store=None)


@pytest.mark.filterwarnings("ignore:.*never taken:RuntimeWarning")  # items left, on purpose
def test_batch_passes_lists_of_n_and_partial_runs_the_rest() -> None:
    r = fluxnb.run(stream_wf(7, activation={"batch": 3}), store=None)
    assert r["double"] == [[0, 1, 2] * 2, [3, 4, 5] * 2]  # lists: double doubles the list
    r = fluxnb.run(stream_wf(7, activation={"batch": 3, "partial": True}), store=None)
    assert r["double"] == [[0, 1, 2] * 2, [3, 4, 5] * 2, [6] * 2]


def test_window_fires_at_most_once_per_interval_with_what_arrived() -> None:
    wf = fluxnb.Workflow("win")

    @wf.step
    async def ticks():
        for i in range(20):
            await asyncio.sleep(0.005)
            yield i

    at: list[float] = []

    async def collect(ticks):  # async: runs as the firing starts (no thread hop to time)
        at.append(time.monotonic())
        return ticks

    wf.add("collect", collect, activation={"window": "40ms"})
    r = fluxnb.run(wf, store=None)
    batches = r["collect"]
    assert [x for b in batches for x in b] == list(range(20))  # nothing lost, order kept
    assert 2 <= len(batches) < 20
    gaps = [b - a for a, b in itertools.pairwise(at)]
    assert all(g >= 0.039 for g in gaps), gaps


@pytest.mark.filterwarnings("ignore:.*never taken:RuntimeWarning")  # items left, on purpose
def test_custom_predicate_chooses_the_items() -> None:
    wf = fluxnb.Workflow("custom")

    @wf.step
    async def numbers():
        for i in range(6):
            yield i

    def pairs_of_evens(waiting):
        evens = [i for i, x in enumerate(waiting["numbers"]) if x % 2 == 0]
        return {"numbers": evens[:2]} if len(evens) >= 2 else None

    def total(numbers):
        return sum(numbers)

    wf.add("total", total, activation={"custom": pairs_of_evens})
    r = fluxnb.run(wf, store=None)
    assert r["total"] == [0 + 2]  # 4 waits for a partner; odd items are never taken
    assert r.ok


@pytest.mark.filterwarnings("ignore:.*never taken:RuntimeWarning")  # items left, on purpose
def test_custom_predicate_is_looked_up_like_a_step_function() -> None:
    text = """
pipeline:
  - step: numbers
  - step: total
    depends_on: [numbers]
    activation: {custom: take_three}
"""

    async def numbers():
        for i in range(7):
            yield i

    def take_three(waiting):
        return {"numbers": 3} if len(waiting["numbers"]) >= 3 else None

    def total(numbers):
        return sum(numbers)

    ns = {"numbers": numbers, "total": total, "take_three": take_three}
    r = fluxnb.run(text, ns, store=None)
    assert r["total"] == [3, 12]
    with pytest.raises(fluxnb.ResolutionError, match="take_three"):
        fluxnb.run(text, {"numbers": numbers, "total": total}, store=None)


def test_activation_round_trips_through_the_manifest() -> None:
    text = """
name: m
pipeline:
  - step: src
  - step: sink
    depends_on: [src]
    activation: {window: 2s}
    capacity: 8
    keep: last
"""
    wf = fluxnb.load(text)
    again = fluxnb.load(wf.to_yaml())
    s = again.steps["sink"]
    assert s.activation == fluxnb.Activation("window", every=2.0)
    assert (s.capacity, s.keep) == (8, "last")


@pytest.mark.parametrize(
    "value, message",
    [
        ("sometimes", "not a policy"),
        ({"batch": 0}, "whole number"),
        ({"window": "-1s"}, "expected a duration"),
        ({"window": 0}, "longer than 0s"),
        ({"custom": ""}, "module:function"),
        ({"batch": 2, "size": 3}, "partial"),
    ],
)
def test_bad_activation_is_a_located_manifest_error(value: object, message: str) -> None:
    import yaml

    doc = {"pipeline": [{"step": "a"}, {"step": "b", "depends_on": ["a"], "activation": value}]}
    with pytest.raises(ManifestError, match=message) as info:
        fluxnb.load(yaml.safe_dump(doc))
    problem = info.value.problems[0]
    assert problem.path == "pipeline[1].activation" and problem.line in (3, 4)


def test_capacity_below_a_batch_is_refused() -> None:
    with pytest.raises(ManifestError, match="raise capacity to at least 5"):
        fluxnb.run(stream_wf(3, activation={"batch": 5}, capacity=2), store=None)


def test_plain_workflows_still_run_on_the_dag_scheduler() -> None:
    wf = fluxnb.Workflow("plain")
    wf.add("a", lambda: 1)
    wf.add("b", lambda a: a + 1, depends_on="a")
    r = fluxnb.run(wf, store=None)
    assert isinstance(r, fluxnb.RunResult) and r.outputs["b"] == 2


def test_a_stream_starts_in_the_background_and_can_be_cancelled() -> None:
    wf = fluxnb.Workflow("bg")

    @wf.step
    async def ticks():
        while True:
            await asyncio.sleep(0.001)
            yield 1

    @wf.step
    def seen(ticks):
        return ticks

    handle = fluxnb.start(wf, store=None)
    time.sleep(0.05)
    assert handle.status is RunStatus.RUNNING
    handle.cancel()
    result = handle.result(timeout=5)
    assert result.status is RunStatus.CANCELLED
    assert len(result["seen"]) > 0


def test_a_stream_run_is_not_resumed_half_consumed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    db = str(tmp_path / "s.duckdb")

    def double(numbers):
        if numbers == 3:
            raise ValueError("stop here")
        return numbers * 2

    wf = stream_wf(5)
    wf.replace_step("double", fn=double)
    r = fluxnb.run(wf, store=db)
    assert r.status is RunStatus.FAILED
    with pytest.raises(fluxnb.ReplayError, match="not resumed half-consumed"):
        ns = {sid: step.fn for sid, step in wf.steps.items()}
        fluxnb.resume(r.run_id, store=db, namespace=ns)


def test_stream_items_numbers_each_firing_as_an_item() -> None:
    calls: dict[int, int] = {}

    def flaky(numbers):
        calls[numbers] = calls.get(numbers, 0) + 1
        if numbers == 2 and calls[numbers] == 1:
            raise ConnectionError("once")
        return numbers * 10

    wf = stream_wf(4)
    wf.replace_step("double", fn=flaky, retry=fluxnb.RetryPolicy(2, initial_delay=0.001))
    store = fluxnb.Store(":memory:")
    r = fluxnb.run(wf, store=store)
    rows = store.sql(
        "SELECT item, attempts, status FROM stream_items "
        f"WHERE run_id = '{r.run_id}' AND step = 'double' ORDER BY item"
    )
    assert list(rows["item"]) == [0, 1, 2, 3]
    assert list(rows["attempts"]) == [1, 1, 2, 1]  # item 2 took a retry
    assert set(rows["status"]) == {"succeeded"}


def test_item_keys_of_a_join_are_forgotten_once_consumed() -> None:
    """The key table of a diamond holds only tokens still waiting or in work."""
    from fluxnb.engine._net_run import NetEngine, plan_net
    from fluxnb.spec._stream_net import compile_streams

    wf = fluxnb.Workflow("keys")

    @wf.step
    async def src():
        for i in range(500):
            yield i

    def a(src):
        return src

    def b(src):
        return -src

    def c(a, b):
        return a + b

    wf.add("a", a, keep="last")
    wf.add("b", b, keep="last")
    wf.add("c", c, keep="last")
    wf.replace_step("src", keep="last")
    net = compile_streams(wf, {"src": src, "a": a, "b": b, "c": c})
    engine = NetEngine(plan_net(net, None), run_id="keys")
    asyncio.run(engine.advance())
    assert engine.outputs["c"] == 0
    st = engine.streams
    assert st is not None and st.keyed
    assert st.key == {} and all(not index for index in st.by_key.values())


def test_a_skipped_one_shot_step_in_a_stream_has_its_default_as_result() -> None:
    wf = stream_wf(3)

    def config():
        raise OSError("no config file")

    wf.add("config", config, on_error="skip", default={"scale": 1})

    def scaled(double, config):
        return double * config["scale"]

    wf.add("scaled", scaled)
    r = fluxnb.run(wf, store=None)
    assert r.ok and r["config"] == {"scale": 1}  # as in a DAG run
    assert r["scaled"] == [0, 2, 4]
