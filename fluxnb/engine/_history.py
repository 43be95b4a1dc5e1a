"""Recorded runs as data: load, export and import traces; replay, diff and resume runs.

A *trace* is one run's ``runs`` row and its ``events`` rows (plus its circuit events).
It lives in a store, or in a file exported with :func:`export_trace`:

- **JSON** (``.json``): ``{"format": "fluxnb-trace", "version": 1, "run": {...},
  "events": [...], "circuit_events": [...]}``; timestamps are ISO 8601 UTC strings,
  ``output_pickle`` is base64.
- **Parquet** (``.parquet``): the events table; the run row is JSON in the file's
  schema metadata under ``fluxnb.run``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._exceptions import ReplayError
from .._plural import plural
from ..spec._net_manifest import load_any
from ..store import Store, open_store
from ..store._frames import nulls_as_none
from ..store._outputs import available, decode, encode, payload, sign
from ..store._recorder import EVENT_COLUMNS, OUTPUT_COLUMNS, MemoryRecorder

TRACE_FORMAT = "fluxnb-trace"
TRACE_VERSION = 1
#: What replay compares, per event, in logical order (timestamps and durations are not).
COMPARED = ("seq", "step", "attempt", "status", "error_type", "output_digest")


@dataclass
class Trace:
    """One recorded run: its ``runs`` row (a dict) and its events (a DataFrame)."""

    run: dict[str, Any]
    events: Any  # pandas.DataFrame, ordered by seq, attempt
    circuit_events: list[dict[str, Any]] = field(default_factory=list)
    #: The signing key of the store it was read from (None: read from a file). Recorded
    #: pickles are unpickled only when signed with it, or when the caller trusts them.
    key: bytes | None = field(default=None, repr=False)

    @property
    def run_id(self) -> str:
        return str(self.run["run_id"])


def _store(store: Any) -> Store:
    return store if isinstance(store, Store) else open_store(store)


def load_trace(ref: str | os.PathLike[str], store: Any = None) -> Trace:
    """A run from the store by id, or from an exported ``.json`` / ``.parquet`` file."""
    path = Path(ref)
    if path.suffix in (".json", ".parquet") and path.is_file():
        return _read_file(path)
    st = _store(store)
    runs = st.sql("SELECT * FROM runs WHERE run_id = $r", {"r": str(ref)})
    if runs.empty:
        hint = ""
        if path.suffix in (".json", ".parquet"):
            hint = f"; no such file either: {path}"
        raise ReplayError(f"no run '{ref}' in the store {st.path}{hint}")
    events = st.sql("SELECT * FROM events WHERE run_id = $r ORDER BY seq, attempt", {"r": str(ref)})
    circuit = st.sql(
        "SELECT * FROM circuit_events WHERE run_id = $r ORDER BY occurred_at", {"r": str(ref)}
    )
    return Trace(_records(runs)[0], events, _records(circuit), st.output_key())


def _records(frame: Any) -> list[dict[str, Any]]:
    """DataFrame rows as plain dicts (NaN and NaT become None)."""
    out = []
    for row in frame.astype(object).where(frame.notna(), None).to_dict("records"):
        out.append(
            {k: (v.to_pydatetime() if hasattr(v, "to_pydatetime") else v) for k, v in row.items()}
        )
    return out


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC).isoformat() if value.tzinfo is None else value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return value


def export_trace(
    ref: str, path: str | os.PathLike[str], fmt: str | None = None, store: Any = None
) -> Path:
    """Write run ``ref`` to ``path`` as ``json`` or ``parquet`` (default: by suffix)."""
    trace = load_trace(ref, store)
    out = Path(path)
    fmt = fmt or out.suffix.lstrip(".") or "json"
    if fmt not in ("json", "parquet"):
        raise ReplayError(f"unknown trace format '{fmt}': use json or parquet")
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "json":
        doc = {
            "format": TRACE_FORMAT,
            "version": TRACE_VERSION,
            "run": {k: _iso(v) for k, v in trace.run.items()},
            "events": [{k: _iso(v) for k, v in e.items()} for e in _records(trace.events)],
            "circuit_events": [{k: _iso(v) for k, v in e.items()} for e in trace.circuit_events],
        }
        out.write_text(json.dumps(doc, indent=1, default=str))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(trace.events, preserve_index=False)
        meta = {
            b"fluxnb.run": json.dumps(
                {k: _iso(v) for k, v in trace.run.items()}, default=str
            ).encode(),
            b"fluxnb.format": f"{TRACE_FORMAT}/{TRACE_VERSION}".encode(),
        }
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
        pq.write_table(table, out)
    return out


def _read_file(path: Path) -> Trace:
    """A trace file, checked as hostile input (``_trace_file``) before anything uses it."""
    import pandas as pd

    from . import _trace_file as tf

    try:
        if path.suffix == ".json":
            run, rows, circuit = tf.read_json(path, TRACE_FORMAT)
            events = pd.DataFrame(rows, columns=[*EVENT_COLUMNS, *OUTPUT_COLUMNS])
            for col in ("started_at", "ended_at"):
                events[col] = pd.to_datetime(events[col], utc=True).dt.tz_localize(None)
            return Trace(run, events, circuit)
        import pyarrow.parquet as pq

        tf.check_size(path)
        table = pq.read_table(path)
        meta = table.schema.metadata or {}
        if b"fluxnb.run" not in meta:
            raise ReplayError(f"{path} is not a fluxnb trace (no fluxnb.run metadata)")
        run = tf.check_run(json.loads(meta[b"fluxnb.run"]), path)
        events = tf.check_event_frame(table.to_pandas(), run["run_id"], path)
        return Trace(run, events)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReplayError(f"cannot read the trace {path}: {exc}") from None
    except Exception as exc:  # pyarrow's errors on a file that is not Parquet
        if type(exc).__module__.startswith("pyarrow"):
            raise ReplayError(f"cannot read the trace {path}: {exc}") from None
        raise


def import_trace(path: str | os.PathLike[str], store: Any = None, *, trust: bool = False) -> str:
    """Load an exported trace file into a store; returns its run id.

    Every row must belong to the file's run (events and circuit events naming another run
    are refused). Recorded pickles keep the signature they came with, so they stay
    untrusted here (``resume`` / ``debug`` refuse to unpickle them) unless ``trust=True``:
    then this store signs them as its own. Unpickling runs code: trust only a file whose
    origin you trust.
    """
    import duckdb
    import pandas as pd

    from .._session import Action
    from ..store._audit import authorize

    trace = _read_file(Path(path))
    st = _store(store)
    # importing writes a run into the store: who may run it, in its namespace, may import it
    authorize(
        Action.RUN,
        store=st,
        workflow=trace.run.get("workflow"),
        namespace=trace.run.get("namespace") or "default",
        target=trace.run_id,
        detail="import",
    )
    exists = ReplayError(f"run {trace.run_id} is already in the store {st.path}")
    if not st.sql("SELECT 1 FROM runs WHERE run_id = $r", {"r": trace.run_id}).empty:
        raise exists
    events = _signed_events(trace.events, st, trust)
    run = pd.DataFrame([trace.run])
    for col in ("started_at", "ended_at", "resumed_at"):
        if col in run:  # resumed_at: traces of runs resumed since schema version 7
            run[col] = pd.to_datetime(run[col], utc=True).dt.tz_localize(None)
    with st.connect() as con:
        con.execute("BEGIN")
        try:
            con.register("_fluxnb_run", run)
            con.execute("INSERT INTO runs BY NAME SELECT * FROM _fluxnb_run")
            con.register("_fluxnb_events", events)
            con.execute("INSERT INTO events BY NAME SELECT * FROM _fluxnb_events")
            if trace.circuit_events:
                circuit = pd.DataFrame(trace.circuit_events)
                if "occurred_at" in circuit:
                    circuit["occurred_at"] = pd.to_datetime(
                        circuit["occurred_at"], utc=True
                    ).dt.tz_localize(None)
                con.register("_fluxnb_circuit", circuit)
                con.execute("INSERT INTO circuit_events BY NAME SELECT * FROM _fluxnb_circuit")
            con.execute("COMMIT")
        except duckdb.ConstraintException:
            con.execute("ROLLBACK")
            raise exists from None  # it is there, in a namespace this session cannot see
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.unregister("_fluxnb_run")
            con.unregister("_fluxnb_events")
            with contextlib.suppress(Exception):
                con.unregister("_fluxnb_circuit")
    return trace.run_id


def _signed_events(events: Any, st: Store, trust: bool) -> Any:
    """The events to insert: with ``trust``, their pickles signed with this store's key;
    without, as they came (a signature from another store does not verify here)."""
    if not trust or "output_pickle" not in events or not len(events):
        return events
    key = st.output_key()
    out = events.copy()
    out["output_pickle"] = [
        sign(payload(bytes(b)), key) if isinstance(b, bytes | bytearray | memoryview) else b
        for b in out["output_pickle"]
    ]
    return out


# ---------------------------------------------------------------------- replay
@dataclass
class ReplayReport:
    """What replaying a recorded run found. ``identical`` is the verdict."""

    run_id: str
    identical: bool
    #: Every differing field: position, seq, step, attempt, field, recorded, replayed;
    #: for an output_digest, recorded_value / replayed_value: the outputs as JSON text
    #: when they were JSON and short (else None).
    mismatches: Any  # DataFrame
    #: The first of them (as a dict), or None.
    first_divergence: dict[str, Any] | None
    result: Any  # the replay's RunResult

    def __str__(self) -> str:
        if self.identical:
            r = self.result
            n = plural(len(r.steps), "step") if hasattr(r, "steps") else plural(r.firings, "firing")
            return f"replay of {self.run_id}: identical ({n}, same events and outputs)"
        d = self.first_divergence or {}
        values = _values_text(d.get("recorded_value"), d.get("replayed_value"))
        lines = [
            f"replay of {self.run_id}: DIVERGED — {plural(len(self.mismatches), 'mismatch')}",
            f"first divergence at event {d.get('position')} (seq {d.get('seq')}, step "
            f"'{d.get('step')}', attempt {d.get('attempt')}): {d.get('field')} was "
            f"{d.get('recorded')!r}, now {d.get('replayed')!r}{values}",
        ]
        return "\n".join(lines)

    def to_frame(self) -> Any:
        return self.mismatches

    def _repr_html_(self) -> str:
        import html

        table = "" if self.identical else self.mismatches.to_html(index=False)
        return f"<pre>{html.escape(str(self))}</pre>{table}"


def _comparable(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    out = []
    for r in sorted(rows, key=lambda r: (r["seq"], r["attempt"])):
        out.append(tuple(None if _missing(r.get(k)) else r.get(k) for k in COMPARED))
    return out


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def compare(recorded: list[tuple[Any, ...]], replayed: list[tuple[Any, ...]]) -> list[dict]:
    """Field-by-field differences of two logical event sequences."""
    diffs: list[dict[str, Any]] = []
    for i in range(max(len(recorded), len(replayed))):
        a = recorded[i] if i < len(recorded) else None
        b = replayed[i] if i < len(replayed) else None
        ref = a or b
        assert ref is not None
        base = {"position": i + 1, "seq": ref[0], "step": ref[1], "attempt": ref[2]}
        if a is None or b is None:
            diffs.append(
                {
                    **base,
                    "field": "event",
                    "recorded": None if a is None else "present",
                    "replayed": None if b is None else "present",
                }
            )
            continue
        for name, x, y in zip(COMPARED, a, b, strict=True):
            if x != y:
                diffs.append({**base, "field": name, "recorded": x, "replayed": y})
    return diffs


_MISMATCH_COLUMNS = (
    "position",
    "seq",
    "step",
    "attempt",
    "field",
    "recorded",
    "replayed",
    "recorded_value",
    "replayed_value",
)
#: An output shown next to its digest (replay, diff) is JSON text at most this long.
SHOWN_VALUE_CHARS = 120


def _small_value(row: dict[str, Any] | None) -> str | None:
    """An event's output as JSON text, when it was recorded as JSON and is short."""
    if not row or row.get("output_format") != "json":
        return None
    text = row.get("output_json")
    return text if isinstance(text, str) and len(text) <= SHOWN_VALUE_CHARS else None


def _add_values(
    diffs: list[dict[str, Any]], recorded: list[dict[str, Any]], replayed: list[dict[str, Any]]
) -> None:
    """Give each output_digest mismatch the two outputs it stands for (JSON, short)."""
    by_order = [
        sorted(rows, key=lambda r: (r["seq"], r["attempt"])) for rows in (recorded, replayed)
    ]
    for d in diffs:
        d["recorded_value"] = d["replayed_value"] = None
        if d["field"] == "output_digest":
            i = d["position"] - 1
            a, b = (rows[i] if i < len(rows) else None for rows in by_order)
            d["recorded_value"], d["replayed_value"] = _small_value(a), _small_value(b)


def _value_change(a: str | None, b: str | None) -> str:
    return f"{a if a is not None else '?'} → {b if b is not None else '?'}"


def _values_text(a: str | None, b: str | None) -> str:
    """`` (value 12 → 18)`` for a changed output whose values are known, else ``""``."""
    return "" if a is None and b is None else f" (value {_value_change(a, b)})"


def replay(
    ref: str, namespace: Mapping[str, Any] | None = None, *, store: Any = None, manifest: Any = None
) -> ReplayReport:
    """Re-execute a recorded run (same manifest, same seed) and check it against its trace.

    The replay itself is not recorded. Compared per event, in logical order: step,
    attempt, status, error type and output digest; timestamps and durations are not.
    """
    import pandas as pd

    from .._session import Action
    from ..store._audit import authorize
    from ._runner import run as run_workflow

    trace = load_trace(ref, store)
    source = manifest if manifest is not None else trace.run.get("manifest")
    if not source:
        raise ReplayError(f"run {trace.run_id} has no recorded manifest; pass manifest=")
    loaded = load_any(source)
    authorize(
        Action.REPLAY,
        store=_store(store) if not Path(str(ref)).is_file() else None,
        workflow=loaded.name,
        rbac=loaded.router.rbac,
        namespace=trace.run.get("namespace") or "default",
        target=trace.run_id,
    )
    rec = MemoryRecorder()
    rec.admitted = True  # type: ignore[attr-defined]  # authorized above, as a replay
    seed = int(trace.run.get("seed") or 0)
    result = run_workflow(loaded, namespace, store=rec, seed=seed)
    replayed = []
    for row in rec.rows():
        fmt, text, _, digest, _ = encode(row["output"]) if "output" in row else (None,) * 5
        replayed.append({**row, "output_digest": digest, "output_format": fmt, "output_json": text})
    recorded = _records(trace.events)
    diffs = compare(_comparable(recorded), _comparable(replayed))
    _add_values(diffs, recorded, replayed)
    frame = nulls_as_none(pd.DataFrame(diffs, columns=[*_MISMATCH_COLUMNS]))
    return ReplayReport(trace.run_id, not diffs, frame, diffs[0] if diffs else None, result)


# ---------------------------------------------------------------------- diff
@dataclass
class DiffReport:
    """Two traces compared step by step (steps matched by name).

    ``steps`` has one row per step: ``status_a/b``, ``attempts_a/b``, ``output_same``,
    ``digest_a/b`` (the outputs' digests), ``value_a/b`` (the outputs as JSON text when they
    were recorded as JSON and are short, else None), ``duration_a/b`` and ``delta_s``. A step
    that is in one run only has None for the other's status, digest, value and duration.
    """

    a: str
    b: str
    steps: Any  # DataFrame, one row per step
    changed: list[str]
    #: The workflow each run ran (None: not recorded).
    workflow_a: str | None = None
    workflow_b: str | None = None

    @property
    def same_workflow(self) -> bool:
        """Both runs ran the same workflow (by name); when not, the comparison is by step
        name only, and ``same`` is False."""
        return self.workflow_a == self.workflow_b

    @property
    def same(self) -> bool:
        return self.same_workflow and not self.changed

    def __str__(self) -> str:
        n = plural(len(self.steps), "step")
        lines = []
        if not self.same_workflow:
            lines.append(
                f"{self.a} is a run of '{self.workflow_a}', {self.b} of '{self.workflow_b}': "
                "different workflows (steps compared by name)"
            )
        if not self.changed:
            lines.append(f"{self.a} vs {self.b}: {n}, same status, attempts and outputs")
            return "\n".join(lines)
        rows = self.steps.set_index("step")
        lines.append(f"{self.a} vs {self.b}: {len(self.changed)} of {n} differ")
        for s in self.changed[:20]:
            lines.append(f"  {s}: " + _step_change(rows.loc[s]))
        if len(self.changed) > 20:
            lines.append(f"  ... {len(self.changed) - 20} more (report.steps has all)")
        return "\n".join(lines)

    def to_frame(self) -> Any:
        return self.steps

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(str(self))}</pre>{self.steps.to_html(index=False)}"


def _step_change(r: Any) -> str:
    """What changed about one step, for people: ``output 12 → 18, attempts 1 → 2``."""
    if r["status_a"] is None or r["status_b"] is None:
        side, status = ("B", r["status_b"]) if r["status_a"] is None else ("A", r["status_a"])
        return f"only in {side} ({status})"
    what = []
    if r["status_a"] != r["status_b"]:
        what.append(f"status {r['status_a']} → {r['status_b']}")
    if r["attempts_a"] != r["attempts_b"]:
        what.append(f"attempts {r['attempts_a']} → {r['attempts_b']}")
    if not r["output_same"]:
        if r["value_a"] is not None or r["value_b"] is not None:
            what.append(f"output {_value_change(r['value_a'], r['value_b'])}")
        else:
            digests = (str(d)[:12] + "…" if d else "none" for d in (r["digest_a"], r["digest_b"]))
            what.append("output differs (digest {} → {})".format(*digests))
    return ", ".join(what)


def _per_step(trace: Trace) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for r in _records(trace.events):
        s = out.setdefault(
            r["step"],
            {"seq": r["seq"], "attempts": 0, "status": None, "digest": None, "duration": 0.0},
        )
        if r["attempt"]:
            s["attempts"] = max(s["attempts"], r["attempt"])
        s["duration"] += r["duration_s"] or 0.0
        if r["final"]:
            s["status"] = r["status"]
            s["digest"] = r.get("output_digest")
            s["value"] = _small_value(r)
    return out


def diff(a: str, b: str, *, store: Any = None) -> DiffReport:
    """Compare two runs (ids or trace files) step by step.

    Runs of two different workflows are compared by step name, and the report says so
    (``same_workflow`` is False, and so is ``same``); ``fluxnb diff`` refuses them (exit 2).
    """
    import pandas as pd

    ta, tb = load_trace(a, store), load_trace(b, store)
    sa, sb = _per_step(ta), _per_step(tb)
    rows, changed = [], []
    for step in sorted(set(sa) | set(sb), key=lambda s: (sa.get(s) or sb[s])["seq"]):
        x, y = sa.get(step, {}), sb.get(step, {})
        row = {
            "step": step,
            "status_a": x.get("status"),
            "status_b": y.get("status"),
            "attempts_a": x.get("attempts", 0),
            "attempts_b": y.get("attempts", 0),
            "output_same": x.get("digest") == y.get("digest"),
            "digest_a": x.get("digest"),
            "digest_b": y.get("digest"),
            "value_a": x.get("value"),
            "value_b": y.get("value"),
            "duration_a": x.get("duration"),
            "duration_b": y.get("duration"),
        }
        both = x and y
        row["delta_s"] = row["duration_b"] - row["duration_a"] if both else None
        if (
            row["status_a"] != row["status_b"]
            or row["attempts_a"] != row["attempts_b"]
            or not row["output_same"]
        ):
            changed.append(step)
        rows.append(row)
    frame = nulls_as_none(pd.DataFrame(rows, columns=_DIFF_COLUMNS))
    wa, wb = ta.run.get("workflow"), tb.run.get("workflow")
    return DiffReport(ta.run_id, tb.run_id, frame, changed, wa, wb)


_DIFF_COLUMNS = [
    "step",
    "status_a",
    "status_b",
    "attempts_a",
    "attempts_b",
    "output_same",
    "digest_a",
    "digest_b",
    "value_a",
    "value_b",
    "duration_a",
    "duration_b",
    "delta_s",
]


# ---------------------------------------------------------------------- resume
def completed_outputs(trace: Trace, trust: bool = False) -> tuple[dict[str, Any], dict[str, int]]:
    """Outputs of the steps that succeeded (and can be reused), and attempts so far.

    Raises:
        UntrustedOutput: a recorded pickle is not signed by the trace's store (``trust``
            unpickles it anyway).
    """
    done: dict[str, Any] = {}
    attempts: dict[str, int] = {}
    for r in _records(trace.events):
        attempts[r["step"]] = max(attempts.get(r["step"], 0), r["attempt"] or 0)
        if r["final"] and r["status"] == "succeeded" and available(r.get("output_format")):
            done[r["step"]] = decode(
                r["output_format"],
                r.get("output_json"),
                r.get("output_pickle"),
                r["step"],
                key=trace.key,
                trust=trust,
            )
    return done, attempts


# ---------------------------------------------------------------------- debug
def step_inputs(trace: Trace, step: str, trust: bool = False) -> dict[str, Any]:
    """The keyword arguments ``step`` received in a recorded run (its dependencies'
    recorded outputs and its ``with`` values; ``ctx`` is left out)."""
    from ..spec import load_workflow

    source = trace.run.get("manifest")
    if not source:
        raise ReplayError(f"run {trace.run_id} has no recorded manifest")
    wf = load_workflow(source)
    if step not in wf:
        raise ReplayError(f"run {trace.run_id} (workflow '{wf.name}') has no step '{step}'")
    spec = wf.steps[step]
    done, _ = completed_outputs(trace, trust)
    inputs: dict[str, Any] = {}
    for dep in spec.depends_on:
        if dep not in done:
            raise ReplayError(
                f"the output of '{dep}', an input of '{step}', was not recorded in full "
                f"(it did not succeed, or it was too large to keep)"
            )
        inputs[dep] = done[dep]
    inputs.update(spec.with_)
    return inputs


def debug(
    run_id: str,
    step: str,
    namespace: dict[str, Any] | None = None,
    *,
    store: Any = None,
    fn: Any = None,
    trust: bool = False,
) -> Any:
    """Recreate what ``step`` received in run ``run_id`` and return its callable.

    Recorded pickles are unpickled only if the store they are read from signed them;
    ``trust=True`` unpickles any (a trace file, an imported run): unpickling runs code.

    Each input becomes a variable in ``namespace`` (named like the parameter, unless that
    name holds a function, class or module there already), and
    ``namespace[f"{step}_inputs"]`` holds them all, so ``fn(**score_inputs)`` calls the step
    again by hand; it prints which inputs became variables and which were left alone. The
    callable is ``fn``, else found in ``namespace`` like a run does.
    """
    from ..spec import load_workflow
    from ..spec._resolve import bind, find_callable
    from ._debug_inputs import bind_inputs

    if namespace is None:  # in a notebook: the notebook's own namespace (no IPython import)
        import builtins

        shell = getattr(builtins, "get_ipython", lambda: None)()
        namespace = getattr(shell, "user_ns", None)
    trace = load_trace(run_id, store)
    inputs = step_inputs(trace, step, trust)
    wf = load_workflow(trace.run["manifest"])
    spec = wf.steps[step]
    target = fn or find_callable(spec, namespace)
    binding = bind(spec, target)
    kwargs = {k: v for k, v in inputs.items() if k in binding.passed or k in spec.with_}
    if namespace is not None:
        # an input named like a function of the notebook (Hamilton style: dependency ids are
        # step ids) must not clobber that function: it stays reachable in STEP_inputs only
        print(bind_inputs(namespace, step, kwargs, target))
    return target
