"""Replay, diff, export/import and resume of recorded runs; the Run handle."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

import fluxnb
from fluxnb import ReplayError, RunStatus

PIPE = """
name: pipe
pipeline:
  - step: load
  - step: clean
    depends_on: load
  - step: score
    depends_on: clean
    with: {factor: 2}
  - step: report
    depends_on: score
"""


def ns(factor_bug: bool = False, fail_score: bool = False) -> dict[str, Any]:
    def load() -> list[int]:
        return [3, 1, 2]

    def clean(load: list[int]) -> list[int]:
        return sorted(load)

    def score(clean: list[int], factor: int) -> int:
        if fail_score:
            raise RuntimeError("model not found")
        return sum(clean) * (factor + (1 if factor_bug else 0))

    def report(score: int) -> dict[str, int]:
        return {"score": score}

    return {"load": load, "clean": clean, "score": score, "report": report}


def test_replay_of_a_deterministic_run_is_identical(store_path: str) -> None:
    r = fluxnb.run(PIPE, ns(), store=store_path, seed=7)
    report = fluxnb.replay(r.run_id, ns(), store=store_path)
    assert report.identical, str(report)
    assert report.mismatches.empty and report.first_divergence is None
    assert "identical" in str(report)


def test_replay_names_the_first_divergence(store_path: str) -> None:
    r = fluxnb.run(PIPE, ns(), store=store_path)
    report = fluxnb.replay(r.run_id, ns(factor_bug=True), store=store_path)
    assert not report.identical
    first = report.first_divergence
    assert first is not None
    assert (first["step"], first["field"], first["seq"]) == ("score", "output_digest", 3)
    assert set(report.mismatches["step"]) == {"score", "report"}
    assert "DIVERGED" in str(report) and "'score'" in str(report)


def test_replay_sees_a_changed_error(store_path: str) -> None:
    r = fluxnb.run(PIPE, ns(fail_score=True), store=store_path)
    report = fluxnb.replay(r.run_id, ns(), store=store_path)
    fields = set(report.mismatches["field"])
    assert {"status", "error_type"} <= fields


def test_diff_compares_step_by_step(store_path: str) -> None:
    a = fluxnb.run(PIPE, ns(), store=store_path)
    b = fluxnb.run(PIPE, ns(factor_bug=True), store=store_path)
    d = fluxnb.diff(a.run_id, b.run_id, store=store_path)
    assert d.changed == ["score", "report"]
    frame = d.to_frame()
    assert list(frame["step"]) == ["load", "clean", "score", "report"]
    assert list(frame["output_same"]) == [True, True, False, False]
    assert "delta_s" in frame.columns
    assert "2 of 4 steps differ" in str(d)
    same = fluxnb.diff(a.run_id, a.run_id, store=store_path)
    assert same.same and "same status" in str(same)


def test_diff_and_replay_show_the_values_next_to_the_digests(store_path: str) -> None:
    a = fluxnb.run(PIPE, ns(), store=store_path)
    b = fluxnb.run(PIPE, ns(factor_bug=True), store=store_path)
    d = fluxnb.diff(a.run_id, b.run_id, store=store_path)
    score = d.steps.set_index("step").loc["score"]
    assert (score["value_a"], score["value_b"]) == (str(a["score"]), str(b["score"]))
    assert len(score["digest_a"]) == 32 and score["digest_a"] != score["digest_b"]
    assert f"score: output {a['score']} → {b['score']}" in str(d)
    report = fluxnb.replay(a.run_id, ns(factor_bug=True), store=store_path)
    first = report.first_divergence
    assert first is not None and first["field"] == "output_digest"
    assert (first["recorded_value"], first["replayed_value"]) == (str(a["score"]), str(b["score"]))
    assert f"(value {a['score']} → {b['score']})" in str(report)
    assert "2 mismatches" in str(report)
    others = report.mismatches[report.mismatches["field"] != "output_digest"]
    assert all(v is None for v in others["recorded_value"])  # None, not NaN


def test_diff_of_two_workflows_says_so(store_path: str, capsys: Any) -> None:
    from fluxnb.cli import main

    a = fluxnb.run(PIPE, ns(), store=store_path)
    other = "name: other\npipeline:\n  - step: load\n  - step: x\n    depends_on: load\n"
    b = fluxnb.run(other, {"load": lambda: [3, 1, 2], "x": lambda load: 5}, store=store_path)
    d = fluxnb.diff(a.run_id, b.run_id, store=store_path)
    assert not d.same_workflow and not d.same
    assert (d.workflow_a, d.workflow_b) == ("pipe", "other")
    text = str(d)
    assert "different workflows" in text and "nan" not in text.lower()
    assert "clean: only in A (succeeded)" in text and "x: only in B (succeeded)" in text
    x = d.steps.set_index("step").loc["x"]
    assert x["status_a"] is None and x["digest_a"] is None and x["value_b"] == "5"
    assert fluxnb.diff(a.run_id, a.run_id, store=store_path).same_workflow
    assert main(["diff", a.run_id, b.run_id, "--store", store_path]) == 2
    err = capsys.readouterr().err
    assert "'pipe'" in err and "'other'" in err and "different workflows" in err


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_export_import_round_trip(tmp_path: Path, store_path: str, fmt: str) -> None:
    r = fluxnb.run(PIPE, ns(), store=store_path)
    out = fluxnb.export_trace(r.run_id, tmp_path / f"trace.{fmt}", store=store_path)
    if fmt == "json":
        doc = json.loads(out.read_text())
        assert doc["format"] == "fluxnb-trace" and doc["version"] == 1
        assert doc["run"]["run_id"] == r.run_id and len(doc["events"]) == 4
    # replay and diff read the file directly...
    assert fluxnb.replay(str(out), ns()).identical
    assert fluxnb.diff(str(out), r.run_id, store=store_path).same
    # ...and it loads into another store
    other = str(tmp_path / "other.duckdb")
    assert fluxnb.import_trace(out, store=other) == r.run_id
    events = fluxnb.traces(r.run_id, store=other)
    assert list(events["step"]) == ["load", "clean", "score", "report"]
    assert list(events["output_format"]) == ["json"] * 4
    with pytest.raises(ReplayError, match="already in the store"):
        fluxnb.import_trace(out, store=other)


def test_unknown_runs_and_files_are_clear_errors(tmp_path: Path, store_path: str) -> None:
    with pytest.raises(ReplayError, match="no run 'nope'"):
        fluxnb.replay("nope", store=store_path)
    bad = tmp_path / "x.json"
    bad.write_text('{"hello": 1}')
    with pytest.raises(ReplayError, match="not a fluxnb trace"):
        fluxnb.diff(str(bad), str(bad))


def test_result_debug_says_which_inputs_became_variables(store_path: str, capsys: Any) -> None:
    funcs = ns(fail_score=True)
    r = fluxnb.run(PIPE, funcs, store=store_path)
    namespace: dict[str, Any] = {**funcs, "factor": "old"}
    fn = r.debug("score", namespace)
    text = capsys.readouterr().out
    # 'clean' names the step function clean too: it stays a function, the input is in score_inputs
    assert "now variables: factor\n" in text
    assert (
        "left alone: clean (the name holds the function 'clean'); it is score_inputs['clean']"
        in text
    )
    assert namespace["clean"] is funcs["clean"] and namespace["factor"] == 2
    assert namespace["score_inputs"] == {"clean": [1, 2, 3], "factor": 2}
    assert "call it again with: score(**score_inputs)" in text
    with pytest.raises(RuntimeError, match="model not found"):
        fn(**namespace["score_inputs"])


def test_resume_runs_only_what_did_not_finish(store_path: str) -> None:
    calls: list[str] = []

    def counted(name: str, fn: Any) -> Any:
        def step(**kw: Any) -> Any:
            calls.append(name)
            return fn(**kw)

        return step

    broken = {k: counted(k, v) for k, v in ns(fail_score=True).items()}
    first = fluxnb.run(PIPE, broken, store=store_path)
    assert first.status is RunStatus.FAILED and calls == ["load", "clean", "score"]
    calls.clear()
    fixed = {k: counted(k, v) for k, v in ns().items()}
    result = fluxnb.resume(first.run_id, fixed, store=store_path)
    assert result.ok and result.run_id == first.run_id
    assert calls == ["score", "report"]  # load and clean came from the store
    assert result["report"] == {"score": 12}
    events = fluxnb.traces(first.run_id, store=store_path)
    score = events[events.step == "score"]
    assert list(score["attempt"]) == [1, 2] and list(score["status"]) == ["failed", "succeeded"]
    run = fluxnb.sql("SELECT status, resumed FROM runs", store=store_path).iloc[0]
    assert run["status"] == "succeeded" and run["resumed"] == 1
    with pytest.raises(ReplayError, match="nothing to resume"):
        fluxnb.resume(first.run_id, fixed, store=store_path)


def test_a_resumed_runs_duration_counts_only_the_time_it_ran(store_path: str) -> None:
    def slow() -> int:
        time.sleep(0.2)
        return 1

    manifest = "pipeline:\n  - step: a\n  - step: b\n    depends_on: a\n"
    first = fluxnb.run(manifest, {"a": slow, "b": lambda a: 1 / 0}, store=store_path)
    before = fluxnb.sql("SELECT duration_s FROM runs", store=store_path)["duration_s"][0]
    time.sleep(1.0)  # the run waits, failed, before it is resumed
    fluxnb.resume(first.run_id, {"a": slow, "b": slow}, store=store_path)
    row = fluxnb.sql(
        "SELECT duration_s, ran_before_s, resumed_at, started_at, ended_at, resumed FROM runs",
        store=store_path,
    ).iloc[0]
    span = (row["ended_at"] - row["started_at"]).total_seconds()
    this = (row["ended_at"] - row["resumed_at"]).total_seconds()
    assert row["resumed"] == 1 and row["ran_before_s"] == pytest.approx(before)
    assert row["duration_s"] == pytest.approx(before + this, abs=1e-6)
    assert 0.35 < row["duration_s"] < span - 0.9  # b's 0.2 s ran again; the 1 s wait did not


@pytest.mark.parametrize("fmt", ["json", "parquet"])
def test_a_resumed_run_exports_and_imports_with_its_run_time(
    tmp_path: Path, store_path: str, fmt: str
) -> None:
    manifest = "pipeline:\n  - step: a\n  - step: b\n    depends_on: a\n"
    first = fluxnb.run(manifest, {"a": lambda: 1, "b": lambda a: 1 / 0}, store=store_path)
    fluxnb.resume(first.run_id, {"a": lambda: 1, "b": lambda a: a}, store=store_path)
    out = fluxnb.export_trace(first.run_id, tmp_path / f"t.{fmt}", store=store_path)
    other = str(tmp_path / "other.duckdb")
    assert fluxnb.import_trace(out, store=other) == first.run_id
    columns = "duration_s, ran_before_s, resumed_at, resumed"
    a = fluxnb.sql(f"SELECT {columns} FROM runs", store=store_path).iloc[0]
    b = fluxnb.sql(f"SELECT {columns} FROM runs", store=other).iloc[0]
    assert b["resumed"] == 1 and b["resumed_at"] == a["resumed_at"]
    assert b["ran_before_s"] == pytest.approx(a["ran_before_s"])
    assert b["duration_s"] == pytest.approx(a["duration_s"])


def test_run_handle_cancel(store_path: str) -> None:
    async def slow(load: Any) -> None:
        await asyncio.sleep(30)

    handle = fluxnb.start(
        "pipeline:\n  - step: load\n  - step: slow\n    depends_on: load\n",
        {"load": lambda: 1, "slow": slow},
        store=store_path,
    )
    time.sleep(0.2)
    assert handle.status is RunStatus.RUNNING and not handle.done()
    handle.cancel()
    result = handle.result(timeout=10)
    assert result.status is RunStatus.CANCELLED
    assert fluxnb.store(store_path).runs().iloc[0]["status"] == "cancelled"
    # the cancelled run can be resumed
    resumed = fluxnb.resume(
        handle.run_id, {"load": lambda: 1, "slow": lambda load: "done"}, store=store_path
    )
    assert resumed.ok and resumed["slow"] == "done"


def test_run_handle_is_awaitable() -> None:
    async def main() -> Any:
        return await fluxnb.start("pipeline:\n  - step: a\n", {"a": lambda: 4}, store=None)

    assert asyncio.run(main())["a"] == 4
