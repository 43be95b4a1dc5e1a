"""Comparing runs: replay a recorded run against its trace, and diff two runs.

Both read traces through ``_history``; replay re-executes through ``_runner``. Kept apart
from ``_history`` so that loading traces (which ``resume`` and ``debug`` need) never imports
the runner: the engine has no import circles (``tests/test_api.py`` checks it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._exceptions import ReplayError
from .._plural import plural
from ..spec._net_manifest import load_any
from ..store._frames import nulls_as_none
from ..store._outputs import encode
from ..store._recorder import MemoryRecorder
from ._history import Trace, _records, _store, load_trace
from ._setup import ADMITTED

#: What replay compares, per event, in logical order (timestamps and durations are not).
COMPARED = ("seq", "step", "attempt", "status", "error_type", "output_digest")


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
    for row in sorted(rows, key=lambda r: (r["seq"], r["attempt"])):
        r = {**row, "status": outcome(row.get("status"))}
        out.append(tuple(None if _missing(r.get(k)) else r.get(k) for k in COMPARED))
    return out


def outcome(status: Any) -> Any:
    """A step's status as an outcome: ``cached`` (a recorded output reused, see
    docs/caching.md) is a success, so replaying or diffing it against a run that called
    the step compares the outputs, not how they were obtained."""
    return "succeeded" if status == "cached" else status


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
    ADMITTED.add(rec)  # authorized above, as a replay
    # LLM calls answer from the recorded run's llm_calls rows: a replay never spends
    rec.replay_of = (trace.run_id, None if Path(str(ref)).is_file() else _store(store))
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
    if outcome(r["status_a"]) != outcome(r["status_b"]):
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
            outcome(row["status_a"]) != outcome(row["status_b"])
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
