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
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._exceptions import ReplayError
from ..spec._net_manifest import load_any
from ..store import Store, open_store
from ..store._outputs import available, decode, encode
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
    return Trace(_records(runs)[0], events, _records(circuit))


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
    import pandas as pd

    try:
        if path.suffix == ".json":
            doc = json.loads(path.read_text())
            if doc.get("format") != TRACE_FORMAT:
                raise ReplayError(f"{path} is not a fluxnb trace (no format '{TRACE_FORMAT}')")
            events = pd.DataFrame(doc["events"], columns=[*EVENT_COLUMNS, *OUTPUT_COLUMNS])
            if "output_pickle" in events:
                events["output_pickle"] = [
                    base64.b64decode(v) if isinstance(v, str) else None
                    for v in events["output_pickle"]
                ]
            for col in ("started_at", "ended_at"):
                events[col] = pd.to_datetime(events[col], utc=True).dt.tz_localize(None)
            run = dict(doc["run"])
            return Trace(run, events, list(doc.get("circuit_events", [])))
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        meta = table.schema.metadata or {}
        if b"fluxnb.run" not in meta:
            raise ReplayError(f"{path} is not a fluxnb trace (no fluxnb.run metadata)")
        return Trace(json.loads(meta[b"fluxnb.run"]), table.to_pandas())
    except (OSError, ValueError, KeyError) as exc:
        raise ReplayError(f"cannot read the trace {path}: {exc}") from None


def import_trace(path: str | os.PathLike[str], store: Any = None) -> str:
    """Load an exported trace file into a store; returns its run id."""
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
    run = pd.DataFrame([trace.run])
    for col in ("started_at", "ended_at"):
        run[col] = pd.to_datetime(run[col], utc=True).dt.tz_localize(None)
    with st.connect() as con:
        con.execute("BEGIN")
        try:
            con.register("_fluxnb_run", run)
            con.execute("INSERT INTO runs BY NAME SELECT * FROM _fluxnb_run")
            con.register("_fluxnb_events", trace.events)
            con.execute("INSERT INTO events BY NAME SELECT * FROM _fluxnb_events")
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
    return trace.run_id


# ---------------------------------------------------------------------- replay
@dataclass
class ReplayReport:
    """What replaying a recorded run found. ``identical`` is the verdict."""

    run_id: str
    identical: bool
    #: Every differing field: position, seq, step, attempt, field, recorded, replayed.
    mismatches: Any  # DataFrame
    #: The first of them (as a dict), or None.
    first_divergence: dict[str, Any] | None
    result: Any  # the replay's RunResult

    def __str__(self) -> str:
        if self.identical:
            r = self.result
            n = f"{len(r.steps)} steps" if hasattr(r, "steps") else f"{r.firings} firings"
            return f"replay of {self.run_id}: identical ({n}, same events and outputs)"
        d = self.first_divergence or {}
        lines = [
            f"replay of {self.run_id}: DIVERGED — {len(self.mismatches)} mismatch(es)",
            f"first divergence at event {d.get('position')} (seq {d.get('seq')}, step "
            f"'{d.get('step')}', attempt {d.get('attempt')}): {d.get('field')} was "
            f"{d.get('recorded')!r}, now {d.get('replayed')!r}",
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
        digest = encode(row["output"])[3] if "output" in row else None
        replayed.append({**row, "output_digest": digest})
    diffs = compare(_comparable(_records(trace.events)), _comparable(replayed))
    frame = pd.DataFrame(
        diffs, columns=["position", "seq", "step", "attempt", "field", "recorded", "replayed"]
    )
    return ReplayReport(trace.run_id, not diffs, frame, diffs[0] if diffs else None, result)


# ---------------------------------------------------------------------- diff
@dataclass
class DiffReport:
    """Two traces compared step by step."""

    a: str
    b: str
    steps: Any  # DataFrame, one row per step
    changed: list[str]

    @property
    def same(self) -> bool:
        return not self.changed

    def __str__(self) -> str:
        n = len(self.steps)
        if not self.changed:
            return f"{self.a} vs {self.b}: {n} steps, same status, attempts and outputs"
        rows = self.steps.set_index("step")
        lines = [f"{self.a} vs {self.b}: {len(self.changed)} of {n} steps differ"]
        for s in self.changed[:20]:
            r = rows.loc[s]
            what = []
            if r["status_a"] != r["status_b"]:
                what.append(f"status {r['status_a']} → {r['status_b']}")
            if r["attempts_a"] != r["attempts_b"]:
                what.append(f"attempts {r['attempts_a']} → {r['attempts_b']}")
            if not r["output_same"]:
                what.append("output differs")
            lines.append(f"  {s}: " + ", ".join(what))
        return "\n".join(lines)

    def to_frame(self) -> Any:
        return self.steps

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(str(self))}</pre>{self.steps.to_html(index=False)}"


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
    return out


def diff(a: str, b: str, *, store: Any = None) -> DiffReport:
    """Compare two runs (ids or trace files) step by step."""
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
            "duration_a": x.get("duration"),
            "duration_b": y.get("duration"),
        }
        row["delta_s"] = (row["duration_b"] or 0.0) - (row["duration_a"] or 0.0)
        if (
            row["status_a"] != row["status_b"]
            or row["attempts_a"] != row["attempts_b"]
            or not row["output_same"]
        ):
            changed.append(step)
        rows.append(row)
    return DiffReport(ta.run_id, tb.run_id, pd.DataFrame(rows), changed)


# ---------------------------------------------------------------------- resume
def completed_outputs(trace: Trace) -> tuple[dict[str, Any], dict[str, int]]:
    """Outputs of the steps that succeeded (and can be reused), and attempts so far."""
    done: dict[str, Any] = {}
    attempts: dict[str, int] = {}
    for r in _records(trace.events):
        attempts[r["step"]] = max(attempts.get(r["step"], 0), r["attempt"] or 0)
        if r["final"] and r["status"] == "succeeded" and available(r.get("output_format")):
            done[r["step"]] = decode(
                r["output_format"], r.get("output_json"), r.get("output_pickle"), r["step"]
            )
    return done, attempts


# ---------------------------------------------------------------------- debug
def step_inputs(trace: Trace, step: str) -> dict[str, Any]:
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
    done, _ = completed_outputs(trace)
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
) -> Any:
    """Recreate what ``step`` received in run ``run_id`` and return its callable.

    Each input becomes a variable in ``namespace`` (named like the parameter, unless that
    name holds a function there already), and ``namespace[f"{step}_inputs"]`` holds them
    all, so ``fn(**score_inputs)`` calls the step again by hand. The callable is ``fn``,
    else found in ``namespace`` like a run does.
    """
    from ..spec import load_workflow
    from ..spec._resolve import bind, find_callable

    if namespace is None:  # in a notebook: the notebook's own namespace (no IPython import)
        import builtins

        shell = getattr(builtins, "get_ipython", lambda: None)()
        namespace = getattr(shell, "user_ns", None)
    trace = load_trace(run_id, store)
    inputs = step_inputs(trace, step)
    wf = load_workflow(trace.run["manifest"])
    spec = wf.steps[step]
    target = fn or find_callable(spec, namespace)
    binding = bind(spec, target)
    kwargs = {k: v for k, v in inputs.items() if k in binding.passed or k in spec.with_}
    if namespace is not None:
        # an input named like a function of the notebook (Hamilton style: dependency ids are
        # step ids) must not clobber that function: it stays reachable in STEP_inputs only
        namespace.update({k: v for k, v in kwargs.items() if not callable(namespace.get(k))})
        namespace[f"{step}_inputs"] = kwargs
    return target
