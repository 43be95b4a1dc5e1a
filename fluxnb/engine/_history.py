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
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._exceptions import ReplayError
from ..store import Store, open_store
from ..store._outputs import available, decode, payload, sign, where
from ..store._recorder import EVENT_COLUMNS, OUTPUT_COLUMNS

TRACE_FORMAT = "fluxnb-trace"
TRACE_VERSION = 1


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
        run = tf.check_run(tf.load_json(meta[b"fluxnb.run"], path, "fluxnb.run"), path)
        events = tf.check_event_table(table, run["run_id"], path)
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

    from .._session import Action
    from ..store._audit import authorize
    from . import _trace_file as tf

    trace = _read_file(Path(path))
    st = _store(store)
    # importing writes a run into the store: who may run it, in its namespace and for its
    # tenant (whom its usage bills), may import it
    authorize(
        Action.RUN,
        store=st,
        workflow=trace.run.get("workflow"),
        namespace=trace.run.get("namespace") or "default",
        tenant=trace.run.get("tenant") or "default",
        target=trace.run_id,
        detail="import",
    )
    exists = ReplayError(f"run {trace.run_id} is already in the store {st.path}")
    if st.has_run(trace.run_id):  # in any namespace (the same message whoever owns it)
        raise exists
    events = _signed_events(trace.events, st, trust)
    try:
        _insert_trace(st, trace, events)
    except (duckdb.Error, OSError) as exc:
        if isinstance(exc, duckdb.ConstraintException) and st.has_run(trace.run_id):
            raise exists from None  # another import of it won the race
        raise tf.not_imported(Path(path), st, trace.run_id, exc) from None
    return trace.run_id


def _insert_trace(st: Store, trace: Trace, events: Any) -> None:
    """The run, its events and circuit events into ``st`` in one transaction."""
    import duckdb
    import pandas as pd

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
        except BaseException:
            # a COMMIT the disk refused has ended the transaction already
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise
        finally:
            for name in ("_fluxnb_run", "_fluxnb_events", "_fluxnb_circuit"):
                with contextlib.suppress(Exception):
                    con.unregister(name)


def _signed_events(events: Any, st: Store, trust: bool) -> Any:
    """The events to insert: with ``trust``, their pickles signed with this store's key;
    without, as they came (a signature from another store does not verify here)."""
    if not trust or "output_pickle" not in events or not len(events):
        return events
    key = st.output_key()
    out = events.copy()
    out["output_pickle"] = [
        sign(payload(bytes(b)), key, where(r, s))
        if isinstance(b, bytes | bytearray | memoryview)
        else b
        for b, r, s in zip(out["output_pickle"], out["run_id"], out["step"], strict=True)
    ]
    return out


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
        if (
            r["final"]
            and r["status"] in ("succeeded", "cached")  # cached: a recorded output reused
            and available(r.get("output_format"))
        ):
            done[r["step"]] = decode(
                r["output_format"],
                r.get("output_json"),
                r.get("output_pickle"),
                r["step"],
                key=trace.key,
                place=where(str(r["run_id"]), str(r["step"])),
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
