"""Every exception fluxnb raises, in one place.

The hierarchy::

    FluxError                      base of everything fluxnb raises on purpose
    ├── ManifestError              a workflow definition is invalid (source, line, column)
    │   ├── CycleError             the DAG has a cycle (``.cycle``)
    │   └── ResolutionError        a step's callable cannot be found or cannot take its inputs
    ├── RunError                   a run could not do what was asked
    │   ├── StepFailed             ``RunResult.raise_for_status()``: a step failed (``.step``)
    │   ├── CircuitOpenError       an agent's circuit is open: the step was not called
    │   └── LLMError               an LLM call failed on every candidate, or is misconfigured
    │       └── BudgetExceeded     a call would pass a tenant's or run's budget (the figures)
    ├── ReplayError                a recorded run cannot be replayed, resumed or compared
    │   └── UntrustedOutput        a recorded pickle this store did not sign (``.step``)
    ├── PermissionDenied           the session's role may not do this (also a PermissionError)
    ├── BillingError               a rate card, usage event or invoice request is invalid
    ├── TriggerError               a trigger cannot be registered, found or fired (``.trigger_id``)
    └── StoreError                 the trace store cannot be used
        ├── StoreLockedError       another program holds the store file (``.path``)
        ├── RecordingFailed        a run's rows could not be written (disk full: ``.errno``)
        └── QueryError             a SQL query failed (``.query``)

Messages are for people: they say what happened, where, and what to do. The facts are
kept as attributes so that programs (and tests) never parse the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._plural import plural

__all__ = [
    "BillingError",
    "BudgetExceeded",
    "CircuitOpenError",
    "CycleError",
    "FluxError",
    "LLMError",
    "ManifestError",
    "PermissionDenied",
    "Problem",
    "QueryError",
    "RecordingFailed",
    "ReplayError",
    "ResolutionError",
    "RunError",
    "StepFailed",
    "StoreError",
    "StoreLockedError",
    "TriggerError",
    "UntrustedOutput",
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
            lines.append(f"... and {plural(len(self.problems) - len(shown), 'more problem')}")
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


class LLMError(RunError):
    """An LLM call failed on every candidate (``attempts``: how each HTTP attempt ended,
    ``candidates``: the resolved order), or its providers or prices are misconfigured."""

    def __init__(
        self,
        message: str,
        *,
        candidates: tuple[str, ...] = (),
        attempts: tuple[dict[str, Any], ...] = (),
    ) -> None:
        super().__init__(message)
        self.candidates = candidates
        self.attempts = attempts


class BudgetExceeded(LLMError):
    """An LLM call was refused before it was sent: what was spent plus the call's worst
    case would pass the budget. ``scope`` is ``"run"`` or ``"tenant"`` (this calendar
    month, UTC); the figures are Decimals in the price table's currency (USD)."""

    def __init__(
        self,
        scope: str,
        *,
        budget: Any,
        spent: Any,
        worst_case: Any,
        tenant: str,
        run_id: str | None,
        candidate: str,
    ) -> None:
        self.scope = scope
        self.budget = budget
        self.spent = spent
        self.worst_case = worst_case
        self.tenant = tenant
        self.run_id = run_id
        self.candidate = candidate
        whose = f"tenant '{tenant}' this month" if scope == "tenant" else f"run {run_id}"
        super().__init__(
            f"LLM budget of {whose} would be exceeded: spent {spent} + worst case {worst_case} "
            f"for {candidate} > budget {budget}; the call was not sent. Raise the budget, "
            "lower max_tokens, or pick a cheaper model",
            candidates=(candidate,),
        )


class ReplayError(FluxError):
    """A recorded run cannot be replayed, resumed or compared (unknown run, missing data)."""


class UntrustedOutput(ReplayError):
    """A recorded output is a pickle that this store did not sign (it came in a trace file
    from elsewhere, was recorded before signing, or was changed): unpickling runs code, so
    fluxnb does not load it unless asked with ``trust=True`` (CLI ``--trust``).

    ``step`` is the step whose output it is.
    """

    def __init__(self, step: str) -> None:
        self.step = step
        super().__init__(
            f"the recorded output of step '{step}' is a pickle this store did not sign (it "
            "came from a trace file or another store, was recorded before fluxnb signed "
            "pickles, or was changed). Unpickling runs code: pass trust=True (CLI: --trust) "
            "only if you trust where the trace came from"
        )


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


class TriggerError(FluxError):
    """A trigger cannot be registered, found or fired (``trigger_id``; ``workflow`` when
    another workflow owns the id)."""

    def __init__(self, trigger_id: str | None, message: str, *, workflow: str | None = None):
        super().__init__(message)
        self.trigger_id = trigger_id
        self.workflow = workflow


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


class RecordingFailed(StoreError):
    """Rows could not be written to the trace store (a full disk, a read-only folder).

    Not raised by a run: ``RunResult.recording_error`` holds it (and a RuntimeWarning says
    it), as the run itself may have done its work. ``Store.flush()`` raises it when the
    DuckDB file cannot take the pending rows. ``path`` is the store, ``run_id`` the run
    (None for a flush), ``reason`` the system's words, ``errno`` its number when known
    (``errno.ENOSPC``: disk full), ``lost`` how many rows were written nowhere, and
    ``pending`` how many segment files wait beside the store: they load on the next access
    once there is space (``fluxnb store flush``).
    """

    def __init__(
        self,
        path: str,
        reason: str,
        *,
        run_id: str | None = None,
        errno: int | None = None,
        lost: int = 0,
        pending: int = 0,
    ) -> None:
        self.path = path
        self.reason = reason
        self.run_id = run_id
        self.errno = errno
        self.lost = lost
        self.pending = pending
        what = f"run {run_id} could not be recorded" if run_id else "rows could not be written"
        parts = [f"{what} in the trace store {path}: {reason}."]
        if lost:
            are = "is" if lost == 1 else "are"
            parts.append(f"{plural(lost, 'row')} could be written nowhere and {are} missing.")
        if pending:
            parts.append(
                f"{plural(pending, 'segment file')} {'waits' if pending == 1 else 'wait'} in "
                f"{path}.segments and load into the store "
                "on its next access once there is space: free some, then run "
                "`fluxnb store flush` (or fluxnb.store().flush())."
            )
        elif not lost:
            parts.append("Free some space, then run `fluxnb store flush`.")
        super().__init__(" ".join(parts))


class QueryError(StoreError):
    """A SQL query against the store failed; DuckDB's own message is kept."""

    def __init__(self, query: str, message: str, *, timeout: float | None = None) -> None:
        self.query = query
        self.error_message = message
        #: Set when the query was interrupted for running longer than this many seconds.
        self.timeout = timeout
        super().__init__(f"SQL error: {message}")
