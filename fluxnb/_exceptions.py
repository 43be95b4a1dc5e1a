"""Every exception fluxnb raises, in one place.

The hierarchy::

    FluxError                      base of everything fluxnb raises on purpose
    ├── ManifestError              a workflow definition is invalid (source, line, column)
    │   ├── CycleError             the DAG has a cycle (``.cycle``)
    │   └── ResolutionError        a step's callable cannot be found or cannot take its inputs
    ├── RunError                   a run could not do what was asked
    │   ├── StepFailed             ``RunResult.raise_for_status()``: a step failed (``.step``)
    │   └── CircuitOpenError       an agent's circuit is open: the step was not called
    ├── ReplayError                a recorded run cannot be replayed, resumed or compared
    ├── PermissionDenied           the session's role may not do this (also a PermissionError)
    ├── BillingError               a rate card, usage event or invoice request is invalid
    └── StoreError                 the trace store cannot be used
        ├── StoreLockedError       another program holds the store file (``.path``)
        └── QueryError             a SQL query failed (``.query``)

Messages are for people: they say what happened, where, and what to do. The facts are
kept as attributes so that programs (and tests) never parse the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "BillingError",
    "CircuitOpenError",
    "CycleError",
    "FluxError",
    "ManifestError",
    "PermissionDenied",
    "Problem",
    "QueryError",
    "ReplayError",
    "ResolutionError",
    "RunError",
    "StepFailed",
    "StoreError",
    "StoreLockedError",
]


class FluxError(Exception):
    """Base class of every error fluxnb raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest, located in its source."""

    #: A short machine-readable kind: ``unknown_key``, ``wrong_type``, ``duplicate_id``,
    #: ``unknown_dependency``, ``self_dependency``, ``cycle``, ``bad_duration``,
    #: ``bad_value``, ``missing_key``, ``empty_pipeline``, ``yaml_syntax``,
    #: ``unresolved_callable``, ``bad_signature``, ``unused_agent``.
    kind: str
    #: Where in the document, as a dotted path: ``pipeline[1].depends_on``.
    path: str
    #: The human sentence (without location).
    message: str
    #: 1-based line and column in the source, when known.
    line: int | None = None
    column: int | None = None
    #: What was expected and what was found, when that is meaningful.
    expected: str | None = None
    found: Any = None
    #: A close match for a misspelt name ("did you mean").
    suggestion: str | None = None

    def where(self, source: str | None) -> str:
        """``source:line:column`` (as much of it as is known)."""
        parts = [source or "<manifest>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def format(self, source: str | None) -> str:
        at = f" ({self.path})" if self.path else ""
        return f"{self.where(source)}{at}: {self.message}"


class ManifestError(FluxError):
    """A workflow definition is invalid; ``problems`` lists everything found, in order."""

    def __init__(self, problems: list[Problem], source: str | None = None) -> None:
        if not problems:
            raise ValueError("ManifestError needs at least one problem")
        self.problems: list[Problem] = list(problems)
        self.source: str | None = source
        super().__init__(self._text())

    def _text(self) -> str:
        shown = self.problems[:20]
        lines = [p.format(self.source) for p in shown]
        if len(self.problems) > len(shown):
            lines.append(f"... and {len(self.problems) - len(shown)} more problems")
        if len(lines) == 1:
            return lines[0]
        return f"{len(self.problems)} problems in the manifest:\n  " + "\n  ".join(lines)

    # The first problem's facts, for the common single-problem case.
    @property
    def kind(self) -> str:
        return self.problems[0].kind

    @property
    def path(self) -> str:
        return self.problems[0].path

    @property
    def line(self) -> int | None:
        return self.problems[0].line

    @property
    def column(self) -> int | None:
        return self.problems[0].column


class CycleError(ManifestError):
    """The pipeline's dependencies loop; ``cycle`` is the loop, first id repeated at the end."""

    def __init__(self, problems: list[Problem], cycle: tuple[str, ...], source: str | None = None):
        self.cycle: tuple[str, ...] = cycle
        super().__init__(problems, source)


class ResolutionError(ManifestError):
    """A step's callable cannot be found, or its signature cannot take the step's inputs."""


class RunError(FluxError):
    """A run could not do what was asked."""


class StepFailed(RunError):
    """A step of a run failed; raised by ``RunResult.raise_for_status()``."""

    def __init__(self, run_id: str, step: str, error_type: str, message: str) -> None:
        self.run_id = run_id
        self.step = step
        self.error_type = error_type
        self.error_message = message
        super().__init__(
            f"Run {run_id}: step '{step}' failed with {error_type}: {message}. "
            f"Its traceback is in the trace: fluxnb.traces('{run_id}')."
        )


class CircuitOpenError(RunError):
    """An agent's circuit breaker is open, so the step was short-circuited (not called)."""

    def __init__(self, agent: str, retry_in: float, failures: int) -> None:
        self.agent = agent
        self.retry_in = retry_in
        self.failures = failures
        super().__init__(
            f"circuit of agent '{agent}' is open after {failures} consecutive failures; "
            f"the step was not called. A probe is let through in {retry_in:.1f}s; "
            "fluxnb.breakers().reset() closes it now"
        )


class ReplayError(FluxError):
    """A recorded run cannot be replayed, resumed or compared (unknown run, missing data)."""


class PermissionDenied(FluxError, PermissionError):
    """The session's role may not perform an action (an ``audit`` row records the denial).

    ``role``, ``action``, ``workflow`` (or None) and ``allowed`` (the roles that may) are kept
    as attributes; ``except PermissionError`` catches it too.
    """

    def __init__(
        self,
        role: str,
        action: str,
        allowed: tuple[str, ...],
        workflow: str | None = None,
        why: str | None = None,
    ) -> None:
        self.role = role
        self.action = action
        self.allowed = allowed
        self.workflow = workflow
        target = f" workflow '{workflow}'" if workflow else ""
        reason = why or f"only {' or '.join(allowed) or 'nobody'} may"
        super().__init__(
            f"role '{role}' may not {action}{target}: {reason}. Act with another role: "
            "fluxnb.session(role=...), FLUXNB_ROLE, or --role on the command line"
        )


class BillingError(FluxError):
    """A rate card, usage event, correction or invoice request is invalid."""


class StoreError(FluxError):
    """The trace store cannot be used."""


class StoreLockedError(StoreError):
    """Another program holds the store file's lock for longer than fluxnb waits."""

    def __init__(self, path: str, waited: float, detail: str) -> None:
        self.path = path
        self.waited = waited
        self.detail = detail
        super().__init__(
            f"The trace store {path} stayed locked by another program for {waited:.0f}s "
            f"({detail}). fluxnb itself holds the file only for milliseconds at a time, so "
            "another program keeps it open: close that connection (a DuckDB CLI, or a "
            "notebook that called duckdb.connect() on it), or use another store with "
            "--store PATH / FLUXNB_STORE. No trace rows were lost: they wait in the store's "
            "segments folder and are loaded on the next access."
        )


class QueryError(StoreError):
    """A SQL query against the store failed; DuckDB's own message is kept."""

    def __init__(self, query: str, message: str) -> None:
        self.query = query
        self.error_message = message
        super().__init__(f"SQL error: {message}")
