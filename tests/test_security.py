"""Holes found by attacking fluxnb through its public API, each closed at its cause.

Run ids across namespaces, hostile trace files, recorded pickles (code!) from elsewhere,
usage that subtracts or bills another tenant, idempotency keys shared by tenants,
outputs that cannot be recorded or are huge, and two resumes of one run at once.
"""

from __future__ import annotations

import json
import pickle
import re
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

import fluxnb
from fluxnb import PermissionDenied, ReplayError, RunError, UntrustedOutput
from fluxnb.store._leases import RunBusy

PIPE = """
name: sec
pipeline:
  - step: load
  - step: score
    depends_on: load
"""


class Payload:
    """A value that only pickle can record (JSON cannot)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Payload) and other.n == self.n

    __hash__ = None  # type: ignore[assignment]


def _ns(fail: bool = False, seen: list[Any] | None = None) -> dict[str, Any]:
    def load() -> Payload:
        return Payload(41)

    def score(load: Payload) -> int:
        if seen is not None:
            seen.append(load)
        if fail:
            raise RuntimeError("boom")
        return load.n + 1

    return {"load": load, "score": score}


# ---------------------------------------------------------------------- 1. run ids
def test_a_run_id_of_another_namespace_is_refused_and_its_row_never_moves(
    store_path: str,
) -> None:
    with fluxnb.session(namespace="team-b"):
        theirs = fluxnb.run(PIPE, _ns(), store=store_path)
    before = fluxnb.sql("SELECT * FROM runs", store=store_path)
    with fluxnb.session(role="operator", namespace="team-a"):
        for attempt in (
            lambda: fluxnb.run(PIPE, _ns(), store=store_path, run_id=theirs.run_id),
            lambda: fluxnb.start(PIPE, _ns(), store=store_path, run_id=theirs.run_id),
        ):
            with pytest.raises(RunError, match="already taken") as err:
                attempt()
            assert "team-b" not in str(err.value)  # nothing about whose it is
    after = fluxnb.sql("SELECT * FROM runs", store=store_path)
    pd.testing.assert_frame_equal(after, before)  # NULL doubles are NaN: == would not do
    # the caller's own run id is refused the same way: ids are never reused
    mine = fluxnb.run(PIPE, _ns(), store=store_path)
    with pytest.raises(RunError, match="already taken"):
        fluxnb.run(PIPE, _ns(), store=store_path, run_id=mine.run_id)
    with pytest.raises(RunError, match="not valid"):
        fluxnb.run(PIPE, _ns(), store=store_path, run_id="../x'")
    assert fluxnb.run(PIPE, _ns(), store=store_path, run_id="my-run-1").run_id == "my-run-1"


# ---------------------------------------------------------------------- 2. imports
def test_an_imported_trace_cannot_carry_rows_of_another_run(
    store_path: str, tmp_path: Path
) -> None:
    victim = fluxnb.run(PIPE, _ns(), store=store_path)
    other = str(tmp_path / "other" / "fluxnb.duckdb")
    mine = fluxnb.run(PIPE, _ns(), store=other)
    path = fluxnb.export_trace(mine.run_id, tmp_path / "t.json", store=other)
    doc = json.loads(path.read_text())
    doc["events"][0]["run_id"] = victim.run_id  # smuggle an event into the victim's run
    path.write_text(json.dumps(doc))
    events_before = len(fluxnb.traces(victim.run_id, store=store_path))
    with pytest.raises(ReplayError, match=r"events\[0\] belongs to run"):
        fluxnb.import_trace(path, store=store_path)
    assert len(fluxnb.traces(victim.run_id, store=store_path)) == events_before
    assert fluxnb.sql("SELECT count(*) AS n FROM runs", store=store_path).n[0] == 1
    doc["events"][0]["run_id"] = mine.run_id
    doc["circuit_events"] = [
        {"occurred_at": "2026-11-30T00:00:00+00:00", "agent": "a", "from_state": "closed",
         "to_state": "open", "run_id": victim.run_id, "step": "load", "failures": 3}
    ]  # fmt: skip
    path.write_text(json.dumps(doc))
    with pytest.raises(ReplayError, match=r"circuit_events\[0\] belongs to run"):
        fluxnb.import_trace(path, store=store_path)


# ---------------------------------------------------------------------- 3. pickles
class _Boom:
    """Unpickling this runs code: it writes a marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (Path(self.marker).write_text, ("pwned",))


def _tamper(trace: Path, step: str, value: Any) -> None:
    import base64

    doc = json.loads(trace.read_text())
    for e in doc["events"]:
        if e["step"] == step and e["output_format"] == "pickle":
            e["output_pickle"] = base64.b64encode(pickle.dumps(value)).decode()
    trace.write_text(json.dumps(doc))


def test_resume_and_debug_of_this_stores_own_pickles_just_work(store_path: str) -> None:
    failed = fluxnb.run(PIPE, _ns(fail=True), store=store_path)
    assert not failed.ok
    fmt = fluxnb.sql("SELECT output_format FROM events WHERE step = 'load'", store=store_path)
    assert fmt.output_format[0] == "pickle"
    box: dict[str, Any] = {}
    fluxnb.debug(failed.run_id, "score", box, store=store_path, fn=lambda load: load)
    assert box["load"] == Payload(41)
    assert fluxnb.resume(failed.run_id, _ns(), store=store_path)["score"] == 42


def test_a_pickle_from_elsewhere_is_never_unpickled_without_trust(
    store_path: str, tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    other = str(tmp_path / "other" / "fluxnb.duckdb")
    failed = fluxnb.run(PIPE, _ns(fail=True), store=other)
    trace = fluxnb.export_trace(failed.run_id, tmp_path / "t.json", store=other)
    _tamper(trace, "load", _Boom(str(marker)))
    run_id = fluxnb.import_trace(trace, store=store_path)
    with pytest.raises(UntrustedOutput) as err:
        fluxnb.resume(run_id, _ns(), store=store_path)
    assert err.value.step == "load"
    with pytest.raises(UntrustedOutput):
        fluxnb.debug(run_id, "score", {}, store=store_path, fn=lambda load: load)
    assert not marker.exists()  # nothing was unpickled
    # a trace file read directly is not this store's either
    from fluxnb.engine._history import completed_outputs, load_trace

    with pytest.raises(UntrustedOutput):
        completed_outputs(load_trace(str(trace)))
    assert not marker.exists()
    # the explicit opt-in does unpickle (which is exactly why it is an opt-in)
    completed_outputs(load_trace(str(trace)), trust=True)
    assert marker.read_text() == "pwned"


def test_a_pickle_changed_inside_the_store_is_detected(store_path: str) -> None:
    failed = fluxnb.run(PIPE, _ns(fail=True), store=store_path)
    with fluxnb.store(store_path).connect() as con:  # someone edits the blob in place
        blob = con.execute("SELECT output_pickle FROM events WHERE step = 'load'").fetchone()[0]
        changed = blob[:-2] + bytes([blob[-2] ^ 1]) + blob[-1:]
        con.execute("UPDATE events SET output_pickle = $1 WHERE step = 'load'", [changed])
    with pytest.raises(UntrustedOutput):
        fluxnb.resume(failed.run_id, _ns(), store=store_path)


def test_import_with_trust_signs_the_pickles_as_this_stores_own(
    store_path: str, tmp_path: Path
) -> None:
    other = str(tmp_path / "other" / "fluxnb.duckdb")
    failed = fluxnb.run(PIPE, _ns(fail=True), store=other)
    trace = fluxnb.export_trace(failed.run_id, tmp_path / "t.parquet", store=other)
    run_id = fluxnb.import_trace(trace, store=store_path, trust=True)
    seen: list[Any] = []
    assert fluxnb.resume(run_id, _ns(seen=seen), store=store_path)["score"] == 42
    assert seen == [Payload(41)]


def test_the_signing_key_is_out_of_a_viewers_reach(store_path: str) -> None:
    fluxnb.run(PIPE, _ns(), store=store_path)
    key = fluxnb.store(store_path).output_key()
    assert len(key) == 32
    with fluxnb.session(role="viewer"), pytest.raises(fluxnb.QueryError):
        fluxnb.sql("SELECT * FROM fluxnb_secrets", store=store_path)


# ---------------------------------------------------------------------- 4. usage
def test_ctx_meter_refuses_a_negative_quantity(store_path: str) -> None:
    def refund(ctx: Any) -> None:
        ctx.meter("llm_tokens", -500)

    result = fluxnb.run("pipeline: [{step: refund}]", {"refund": refund}, store=store_path)
    assert not result.ok
    error = result.steps["refund"].error
    assert error is not None and error.type == "BillingError"
    assert "negative" in error.message
    used = fluxnb.sql("SELECT * FROM usage WHERE unit = 'llm_tokens'", store=store_path)
    assert used.empty


def test_a_non_admin_bills_only_its_own_tenant_on_every_face(
    store_path: str, tmp_path: Path
) -> None:
    from fluxnb.cli import main

    with fluxnb.session(role="operator", tenant="acme"):
        assert fluxnb.run(PIPE, _ns(), store=store_path).ok  # its own tenant: fine
        assert fluxnb.run(PIPE, _ns(), store=store_path, tenant="acme").ok
        with pytest.raises(PermissionDenied, match="bill tenant 'globex'") as err:
            fluxnb.run(PIPE, _ns(), store=store_path, tenant="globex")
        assert err.value.role == "operator"
        pinned = PIPE.replace("name: sec", "name: sec\nrouter: {tenant: globex}")
        with pytest.raises(PermissionDenied):
            fluxnb.run(pinned, _ns(), store=store_path)
        with pytest.raises(PermissionDenied):
            fluxnb.start(pinned, _ns(), store=store_path)
        with pytest.raises(PermissionDenied, match="tenant"):
            fluxnb.session(tenant="globex")
    audit = fluxnb.sql("SELECT * FROM audit WHERE outcome = 'denied'", store=store_path)
    assert audit["detail"].str.contains("globex").sum() >= 3
    billed = fluxnb.sql("SELECT DISTINCT tenant FROM usage", store=store_path)
    assert billed.tenant.tolist() == ["acme"]
    # the CLI: --tenant of another tenant is exit 4 for an operator
    manifest = tmp_path / "job.yaml"
    manifest.write_text(PIPE)
    steps = tmp_path / "sec_steps.py"
    steps.write_text("def load():\n    return 1\n\ndef score(load):\n    return load\n")
    args = ["run", str(manifest), "--store", store_path, "--role", "operator"]
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        assert main([*args, "--import", "sec_steps", "--tenant", "globex"]) == 4
        assert main([*args, "--import", "sec_steps"]) == 0  # the session's tenant
    finally:
        sys.path.remove(str(tmp_path))
    # an admin may bill anyone
    assert fluxnb.run(PIPE, _ns(), store=store_path, tenant="globex").ok


# ---------------------------------------------------------------------- 5. idempotency
def test_two_tenants_using_one_idempotency_key_are_both_billed(store_path: str) -> None:
    def call(ctx: Any) -> None:
        ctx.meter("llm_tokens", 100, idempotency_key="resp-1")

    ns = {"call": call}
    for tenant in ("acme", "globex", "acme"):  # acme sends the same key twice
        fluxnb.run("pipeline: [{step: call}]", ns, store=store_path, tenant=tenant)
    with fluxnb.session(namespace="team-b", tenant="acme"):  # another team billing acme
        fluxnb.run("pipeline: [{step: call}]", ns, store=store_path)
    fluxnb.record_usage("acme", "api_calls", 1, idempotency_key="resp-1", store=store_path)
    used = fluxnb.sql(
        "SELECT tenant, unit, sum(quantity) AS q, count(*) AS n FROM usage "
        "WHERE unit IN ('llm_tokens', 'api_calls') GROUP BY ALL ORDER BY ALL",
        store=store_path,
    )
    assert [(r.tenant, r.unit, int(r.q), r.n) for r in used.itertuples()] == [
        ("acme", "api_calls", 1, 1),
        ("acme", "llm_tokens", 200, 2),  # default's once, team-b's once
        ("globex", "llm_tokens", 100, 1),
    ]


def test_old_stores_idempotency_keys_are_scoped_by_the_migration(tmp_path: Path) -> None:
    from fluxnb.store._schema import MIGRATIONS

    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE fluxnb_schema "
        "(version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL, description VARCHAR)"
    )
    for m in MIGRATIONS[:5]:
        for statement in m.statements:
            con.execute(statement)
        con.execute("INSERT INTO fluxnb_schema VALUES ($1, now(), $2)", [m.version, "old"])
    row = "($1, 'acme', 'default', 'llm_tokens', 5, now(), $2, NULL, NULL, NULL, NULL, " \
          "NULL, NULL, NULL, now())"  # fmt: skip
    for key, source in (("resp-1", "custom"), ("custom:r1:1:1:llm_tokens:1", "custom"),
                        ("auto:r1:1:1:invocations", "auto"), ("day-1", "external")):  # fmt: skip
        con.execute(f"INSERT INTO usage VALUES {row}", [key, source])
    con.close()
    ids = fluxnb.sql("SELECT event_id FROM usage ORDER BY 1", store=str(path)).event_id
    assert ids.tolist() == [
        "auto:r1:1:1:invocations",
        "custom:r1:1:1:llm_tokens:1",
        "key:acme:default:llm_tokens:day-1",
        "key:acme:default:llm_tokens:resp-1",
    ]


# ---------------------------------------------------------------------- 9, 10. outputs
class _Hostile:
    """Neither picklable nor printable."""

    def __reduce__(self) -> Any:
        raise TypeError("no pickling")

    def __repr__(self) -> str:
        raise ValueError("no repr either")


def test_an_output_that_cannot_be_pickled_or_printed_does_not_stop_the_run(
    store_path: str,
) -> None:
    def make() -> _Hostile:
        return _Hostile()

    def after(make: Any) -> str:
        return "went on"

    wf = "pipeline: [{step: make}, {step: after, depends_on: make}]"
    done = threading.Event()
    box: dict[str, Any] = {}

    def go() -> None:
        box["r"] = fluxnb.run(wf, {"make": make, "after": after}, store=store_path)
        done.set()

    threading.Thread(target=go, daemon=True).start()
    assert done.wait(30), "the run hung on an unrecordable output"
    assert box["r"].ok and box["r"]["after"] == "went on"
    row = fluxnb.sql(
        "SELECT output_format, output_json FROM events WHERE step = 'make'", store=store_path
    ).iloc[0]
    assert row.output_format == "unpicklable"
    assert "no pickling" in json.loads(row.output_json)["reason"]


@pytest.mark.parametrize("kind", ["list", "str", "bytes", "object"])
def test_a_huge_output_is_measured_without_copying_it_whole(kind: str) -> None:
    from fluxnb.store._outputs import CAP, encode

    n = 40 * CAP  # 40 MB with the default cap
    if kind == "list":
        value: Any = list(range(n // 8))
    elif kind == "str":
        value = "x" * n
    elif kind == "bytes":
        value = b"x" * n
    else:
        value = {"blob": b"x" * n, "t": (1, 2)}  # not JSON: pickled
    tracemalloc.start()
    try:
        fmt, text, blob, digest, size = encode(value)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fmt == "too_large" and text is None and blob is None
    assert size is not None and size > CAP
    assert peak < n / 4, f"encoding a {n:,}-byte output peaked at {peak:,} bytes"
    assert encode(value)[3] == digest  # still a stable digest for replay and diff


def test_outputs_under_the_cap_are_unchanged_by_the_bounded_path() -> None:
    from fluxnb.store._outputs import encode

    small = {"a": [1, 2, {"b": "c"}]}
    assert encode(small)[0] == "json" and json.loads(encode(small)[1] or "") == small
    assert encode((1, 2))[0] == "pickle"


# ---------------------------------------------------------------------- 13. resumes
def test_two_resumes_of_one_run_one_proceeds_the_other_is_refused(
    store_path: str, tmp_path: Path
) -> None:
    failed = fluxnb.run(PIPE, _ns(fail=True), store=store_path)
    gate = threading.Event()
    started = threading.Event()
    calls: list[int] = []

    def slow_score(load: Payload) -> int:
        calls.append(1)
        started.set()
        gate.wait(20)
        return load.n + 1

    box: dict[str, Any] = {}

    def first() -> None:
        box["r"] = fluxnb.resume(failed.run_id, {**_ns(), "score": slow_score}, store=store_path)

    t = threading.Thread(target=first, daemon=True)
    t.start()
    assert started.wait(20)
    with pytest.raises(RunBusy, match="being resumed by process") as err:
        fluxnb.resume(failed.run_id, {**_ns(), "score": slow_score}, store=store_path)
    assert isinstance(err.value, ReplayError)
    # another process is refused too (the lease is a lock the OS holds for us)
    import subprocess
    import sys

    from .conftest import cli_env

    code = (
        "import sys, fluxnb\n"
        "from fluxnb.store._leases import RunBusy\n"
        f"try:\n    fluxnb.resume({failed.run_id!r}, {{}}, store={store_path!r})\n"
        "except RunBusy:\n    sys.exit(7)\n"
    )
    other = subprocess.run([sys.executable, "-c", code], env=cli_env(), timeout=60)
    assert other.returncode == 7
    gate.set()
    t.join(30)
    assert box["r"].ok and calls == [1]
    with pytest.raises(ReplayError, match="nothing to resume"):  # the lease was given back
        fluxnb.resume(failed.run_id, _ns(), store=store_path)


def test_the_cli_refuses_a_foreign_pickle_unless_told_to_trust_it(
    store_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    from fluxnb.cli import main

    other = str(tmp_path / "other" / "fluxnb.duckdb")
    (tmp_path / "sec_steps2.py").write_text(
        "class P:\n    n = 41\n\ndef load():\n    return P()\n\n"
        "def score(load):\n    return load.n + 1\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        import sec_steps2  # type: ignore[import-not-found]

        broken = {"load": sec_steps2.load, "score": _ns(fail=True)["score"]}
        failed = fluxnb.run(PIPE, broken, store=other)
        trace = fluxnb.export_trace(failed.run_id, tmp_path / "t.json", store=other)
        assert main(["import", str(trace), "--store", store_path]) == 0
        resume = ["resume", failed.run_id, "--store", store_path, "--import", "sec_steps2"]
        capsys.readouterr()
        assert main(resume) == 2
        assert "did not sign" in capsys.readouterr().err
        assert main([*resume, "--trust"]) == 0
    finally:
        sys.path.remove(str(tmp_path))


_RUN = {"run_id": "r1", "workflow": "w", "status": "failed", "started_at": "2026-11-01T00:00:00"}
_EVENT = {"run_id": "r1", "seq": 1, "step": "a", "attempt": 1, "status": "failed", "final": True}


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        ([], "not a fluxnb trace"),
        ({"format": "fluxnb-trace", "run": [], "events": []}, "'run' must be an object"),
        ({"format": "fluxnb-trace", "run": {**_RUN, "evil": 1}}, "unknown run field"),
        ({"format": "fluxnb-trace", "run": {**_RUN, "started_at": "soon"}}, "ISO 8601"),
        ({"format": "fluxnb-trace", "run": {**_RUN, "namespace": "../x"}}, "not valid"),
        ({"format": "fluxnb-trace", "run": {**_RUN, "run_id": "a'b"}}, "not a valid run id"),
        ({"format": "fluxnb-trace", "run": {**_RUN, "status": "won"}}, "not a run status"),
        ({"format": "fluxnb-trace", "run": {**_RUN, "pid": "1"}}, "run.pid must be int"),
        ({"format": "fluxnb-trace", "run": _RUN, "events": 5}, "'events' must be a list"),
        ({"format": "fluxnb-trace", "run": _RUN, "events": [{"run_id": "r1"}]}, "has no 'seq'"),
        ({"format": "fluxnb-trace", "run": _RUN, "events": [{**_EVENT, "x": 1}]}, "unknown"),
        (
            {"format": "fluxnb-trace", "run": _RUN, "events": [{**_EVENT, "output_pickle": "!"}]},
            "not base64",
        ),
    ],
)
def test_a_hostile_trace_file_is_one_clear_error_and_imports_nothing(
    doc: Any, says: str, store_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fluxnb.cli import main

    path = tmp_path / "t.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(ReplayError, match=says):
        fluxnb.import_trace(path, store=store_path)
    assert main(["import", str(path), "--store", store_path]) == 2
    assert says.split("'", maxsplit=1)[0] in capsys.readouterr().err
    assert fluxnb.sql("SELECT count(*) AS n FROM runs", store=store_path).n[0] == 0


def test_an_imported_running_run_is_interrupted_not_alive(store_path: str, tmp_path: Path) -> None:
    import os
    import socket

    run = {**_RUN, "status": "running", "host": socket.gethostname(), "pid": os.getpid()}
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"format": "fluxnb-trace", "run": run, "events": []}))
    fluxnb.import_trace(path, store=store_path)
    status = fluxnb.sql("SELECT status FROM runs", store=store_path).status[0]
    assert status == "interrupted"  # a forged live pid cannot pin it as running


def test_a_resume_lease_dies_with_its_process(store_path: str) -> None:
    import signal
    import subprocess
    import sys

    from .conftest import cli_env

    failed = fluxnb.run(PIPE, _ns(fail=True), store=store_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, fluxnb\n"
            "from fluxnb.store._leases import RunLease\n"
            f"lease = RunLease(fluxnb.store({store_path!r}), {failed.run_id!r})\n"
            "print('held', flush=True)\ntime.sleep(60)\n",
        ],
        env=cli_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(RunBusy, match=f"process {holder.pid}"):
            fluxnb.resume(failed.run_id, _ns(), store=store_path)
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        assert fluxnb.resume(failed.run_id, _ns(), store=store_path).ok  # no stale lease
    finally:
        holder.kill()


def test_a_trace_file_past_the_size_limit_is_refused_before_it_is_read(
    store_path: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fluxnb.engine import _trace_file

    monkeypatch.setattr(_trace_file, "MAX_TRACE_BYTES", 1000)
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"format": "fluxnb-trace", "run": _RUN, "pad": "x" * 2000}))
    with pytest.raises(ReplayError, match="over the 1,000"):
        fluxnb.import_trace(path, store=store_path)


def test_a_released_lease_leaves_no_file_and_can_be_taken_again(store_path: str) -> None:
    from fluxnb.store._leases import RunLease

    st = fluxnb.store(store_path)
    with RunLease(st, "r-1"):
        with pytest.raises(RunBusy):
            RunLease(st, "r-1")
        assert len(list(Path(store_path + ".locks").iterdir())) == 1
    assert list(Path(store_path + ".locks").iterdir()) == []
    with RunLease(st, "r-1"):
        pass


def test_a_re_imported_export_under_a_new_run_id_is_not_trusted(
    store_path: str, tmp_path: Path
) -> None:
    """The signature binds a pickle to its run and step: the store's own export, given a new
    run id and imported back, does not carry a valid signature for the new run."""
    failed = fluxnb.run(PIPE, _ns(fail=True), store=store_path)
    trace = fluxnb.export_trace(failed.run_id, tmp_path / "t.json", store=store_path)
    doc = json.loads(trace.read_text())
    doc["run"]["run_id"] = "copied"
    for e in doc["events"]:
        e["run_id"] = "copied"
    trace.write_text(json.dumps(doc))
    fluxnb.import_trace(trace, store=store_path)
    with pytest.raises(UntrustedOutput):
        fluxnb.resume("copied", _ns(), store=store_path)
    assert fluxnb.resume(failed.run_id, _ns(), store=store_path).ok  # the original still is


def test_a_pickle_of_a_class_this_process_cannot_import_is_a_message(
    store_path: str, tmp_path: Path
) -> None:
    import subprocess
    import sys

    from .conftest import cli_env

    script = tmp_path / "made_in_main.py"
    script.write_text(
        "import fluxnb\n"
        "class Thing:\n    n = 1\n"
        "def load():\n    return Thing()\n"
        "def score(load):\n    raise RuntimeError('boom')\n"
        f"r = fluxnb.run({PIPE!r}, globals(), store={store_path!r})\n"
        "print(r.run_id)\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)], env=cli_env(), capture_output=True, text=True, timeout=60
    )
    run_id = out.stdout.strip().splitlines()[-1]
    with pytest.raises(ReplayError, match="cannot be rebuilt in this process") as err:
        fluxnb.resume(run_id, _ns(), store=store_path)
    assert "Thing" in str(err.value) and "__main__" in str(err.value)


# ------------------------------------------------- values past what the store holds


def _json_trace(tmp_path: Path, run: dict[str, Any], events: Any, **more: Any) -> Path:
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"format": "fluxnb-trace", "run": run, "events": events, **more}))
    return path


@pytest.mark.parametrize(
    ("run", "event", "more", "says"),
    [
        ({}, {"attempt": 10**30}, {}, "events[0].attempt"),
        ({}, {"seq": 2**40}, {}, "events[0].seq"),
        ({}, {"output_size": 2**64}, {}, "events[0].output_size"),
        ({}, {"duration_s": "fast"}, {}, "events[0].duration_s"),
        ({}, {"executor": {"x": 1}}, {}, "events[0].executor"),
        ({}, {"started_at": "notadate"}, {}, "events[0].started_at"),
        ({"steps": 2**31}, {}, {}, "run.steps"),
        ({"seed": 2**70}, {}, {}, "run.seed"),
        ({"duration_s": 10**400}, {}, {}, "run.duration_s"),
        (
            {},
            {},
            {
                "circuit_events": [
                    {
                        "run_id": "r1",
                        "failures": "x",
                        "occurred_at": "2026-11-01",
                        "agent": "a",
                        "from_state": "closed",
                        "to_state": "open",
                    }
                ]
            },
            "circuit_events[0].failures",
        ),
        ({}, {}, {"circuit_events": [{"run_id": "r1", "agent": "a"}]}, "occurred_at"),
    ],
)
def test_a_json_trace_value_the_store_cannot_hold_is_one_clear_error(
    run: dict[str, Any],
    event: dict[str, Any],
    more: dict[str, Any],
    says: str,
    store_path: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fluxnb.cli import main

    path = _json_trace(tmp_path, {**_RUN, **run}, [{**_EVENT, **event}], **more)
    with pytest.raises(ReplayError, match=re.escape(says)):
        fluxnb.import_trace(path, store=store_path)
    assert main(["import", str(path), "--store", store_path]) == 2
    err = capsys.readouterr().err
    assert says in err and str(path) in err and "Traceback" not in err
    assert fluxnb.sql("SELECT count(*) AS n FROM runs", store=store_path).n[0] == 0


def test_a_json_trace_nested_past_the_parser_is_one_clear_error(
    store_path: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fluxnb.cli import main

    path = tmp_path / "deep.json"
    path.write_text('{"format": "fluxnb-trace", "run": {}, "events": ' + "[" * 100_000)
    with pytest.raises(ReplayError, match="too deeply"):
        fluxnb.import_trace(path, store=store_path)
    assert main(["import", str(path), "--store", store_path]) == 2
    assert "too deeply" in capsys.readouterr().err


def _parquet_trace(tmp_path: Path, meta: bytes | None = None, **columns: Any) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols: dict[str, Any] = {
        "run_id": ["r1"],
        "seq": pa.array([1], pa.int32()),
        "step": ["a"],
        "attempt": pa.array([1], pa.int32()),
        "status": ["failed"],
        "final": [True],
        "started_at": pa.array([0], pa.timestamp("us")),
    }
    cols.update(columns)
    table = pa.table(cols).replace_schema_metadata(
        {b"fluxnb.run": meta if meta is not None else json.dumps(_RUN).encode()}
    )
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize(
    ("columns", "meta", "says"),
    [
        ({"seq": ["x"]}, None, "'seq'"),
        ({"attempt": [2**40]}, None, "'attempt'"),
        ({"started_at": ["notadate"]}, None, "'started_at'"),
        ({"step": [None]}, None, "'step'"),
        ({"status": ["won"]}, None, "'status'"),
        ({}, b"[" * 100_000, "too deeply"),
        ({}, b"{not json", "not JSON"),
    ],
)
def test_a_parquet_trace_value_the_store_cannot_hold_is_one_clear_error(
    columns: dict[str, Any],
    meta: bytes | None,
    says: str,
    store_path: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from fluxnb.cli import main

    path = _parquet_trace(tmp_path, meta, **columns)
    with pytest.raises(ReplayError, match=re.escape(says)):
        fluxnb.import_trace(path, store=store_path)
    assert main(["import", str(path), "--store", store_path]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert fluxnb.sql("SELECT count(*) AS n FROM runs", store=store_path).n[0] == 0


def test_a_well_formed_parquet_trace_still_imports(store_path: str, tmp_path: Path) -> None:
    path = _parquet_trace(tmp_path)
    assert fluxnb.import_trace(path, store=store_path) == "r1"
    events = fluxnb.sql("SELECT seq, attempt, step FROM events", store=store_path)
    assert events.to_dict("records") == [{"seq": 1, "attempt": 1, "step": "a"}]


def test_an_operator_cannot_import_a_run_billed_to_another_tenant(
    store_path: str, tmp_path: Path
) -> None:
    path = _json_trace(tmp_path, {**_RUN, "namespace": "a", "tenant": "tb"}, [])
    with fluxnb.session("operator", namespace="a", tenant="ta"):
        with pytest.raises(PermissionDenied, match="tenant 'tb'"):
            fluxnb.import_trace(path, store=store_path)
        assert not fluxnb.store(store_path).has_run("r1")
        mine = _json_trace(tmp_path, {**_RUN, "namespace": "a", "tenant": "ta"}, [])
        assert fluxnb.import_trace(mine, store=store_path) == "r1"
    with fluxnb.session("admin"):  # admin may import for any tenant
        other = _json_trace(tmp_path, {**_RUN, "run_id": "r2", "tenant": "tb"}, [])
        assert fluxnb.import_trace(other, store=store_path) == "r2"


def test_a_taken_run_id_is_refused_through_a_stores_recorder_too(store_path: str) -> None:
    first = fluxnb.run(PIPE, _ns(), store=store_path)
    recorder = fluxnb.store(store_path).recorder()
    with pytest.raises(RunError, match="already taken"):
        fluxnb.run(PIPE, _ns(), store=recorder, run_id=first.run_id)


def test_no_attribute_a_caller_sets_skips_the_permission_check(store_path: str) -> None:
    from fluxnb.testing import MemoryRecorder

    pinned = "name: sec\nrouter: {namespace: team-b}\npipeline:\n  - step: load\n"
    with fluxnb.session(role="viewer", namespace="team-a"):
        rec = MemoryRecorder()
        rec.admitted = True  # type: ignore[attr-defined]  # what a replay used to be marked by
        with pytest.raises(PermissionDenied):
            fluxnb.run(pinned, _ns(), store=rec)
