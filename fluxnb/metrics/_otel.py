"""OpenTelemetry export: one span per run, and one child span per step attempt.

``enable_otel()`` wraps the recorder of every run started afterwards; spans carry the
attempt's real start and end times (from the trace row) and these attributes:
``fluxnb.run_id``, ``fluxnb.workflow``, ``fluxnb.step``, ``fluxnb.attempt``,
``fluxnb.status``, ``fluxnb.tenant``, ``fluxnb.namespace`` (and ``fluxnb.error_type``).
Needs ``pip install 'fluxnb[otel]'`` (the SDK) and an exporter configured by you.
"""

from __future__ import annotations

from typing import Any

from .._exceptions import FluxError


class _Switch:
    tracer: Any = None


_switch = _Switch()


def enable_otel(tracer_provider: Any = None) -> None:
    """Export spans of every run from now on, through ``tracer_provider`` (default: the
    global one, ``opentelemetry.trace.get_tracer_provider()``)."""
    try:
        from opentelemetry import trace
    except ImportError:
        raise FluxError("OpenTelemetry is not installed: pip install 'fluxnb[otel]'") from None
    provider = tracer_provider or trace.get_tracer_provider()
    _switch.tracer = provider.get_tracer("fluxnb")


def disable_otel() -> None:
    """Stop exporting spans (runs in flight keep theirs)."""
    _switch.tracer = None


def otel_enabled() -> bool:
    return _switch.tracer is not None


def traced(recorder: Any) -> Any:
    """``recorder`` wrapped to emit spans, if export is enabled; else ``recorder``."""
    tracer = _switch.tracer
    return recorder if tracer is None else TracingRecorder(recorder, tracer)


class TracingRecorder:
    """A recorder that forwards everything to ``inner`` and turns rows into spans."""

    def __init__(self, inner: Any, tracer: Any) -> None:
        self._inner = inner
        self._tracer = tracer
        self._run: Any = None
        self._span: Any = None
        self._context: Any = None

    def __getattr__(self, name: str) -> Any:  # flush_interval, store, attempt_started, ...
        return getattr(self._inner, name)

    @property
    def location(self) -> Any:
        return self._inner.location

    def _attrs(self) -> dict[str, Any]:
        r = self._run
        return {
            "fluxnb.run_id": r.run_id,
            "fluxnb.workflow": r.workflow,
            "fluxnb.tenant": r.tenant or "default",
            "fluxnb.namespace": r.namespace or "default",
        }

    def run_started(self, run: Any) -> None:
        from opentelemetry import trace

        self._inner.run_started(run)
        self._run = run
        self._span = self._tracer.start_span(
            f"fluxnb run {run.workflow}", start_time=run.started_at * 1000, attributes=self._attrs()
        )
        self._context = trace.set_span_in_context(self._span)

    def event(self, row: tuple) -> None:
        self._inner.event(row)
        if self._span is None or row[6] is None:  # never started: not an attempt
            return
        from opentelemetry.trace import Status, StatusCode

        attrs = {
            **self._attrs(),
            "fluxnb.step": row[2],
            "fluxnb.seq": row[1],
            "fluxnb.attempt": row[3],
            "fluxnb.status": row[4],
        }
        if row[10]:
            attrs["fluxnb.error_type"] = row[10]
        span = self._tracer.start_span(
            f"{row[2]} #{row[3]}", context=self._context, start_time=row[6] * 1000, attributes=attrs
        )
        if row[4] == "failed":
            span.set_status(Status(StatusCode.ERROR, row[11] or row[10] or "failed"))
        span.end(end_time=(row[7] or row[6]) * 1000)

    def circuit_event(self, row: tuple) -> None:
        self._inner.circuit_event(row)

    def run_finished(self, run: Any) -> None:
        self._inner.run_finished(run)
        if self._span is None:
            return
        from opentelemetry.trace import Status, StatusCode

        self._span.set_attribute("fluxnb.status", run.status)
        if run.status == "failed":
            self._span.set_status(Status(StatusCode.ERROR, run.error or "failed"))
        end = run.ended_at * 1000 if run.ended_at else None
        self._span.end(end_time=end)
        self._span = None

    def flush(self) -> None:
        self._inner.flush()
