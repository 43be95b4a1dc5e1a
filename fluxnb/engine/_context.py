"""The ``ctx`` argument a step receives when it declares one."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._exceptions import BillingError

#: ``meter(unit, amount, idempotency_key) -> event id``, bound to one attempt.
MeterSink = Callable[[str, Any, "str | None"], str]


@dataclass(frozen=True)
class StepContext:
    """Facts about the attempt in progress, a logger that tags its records with them, and
    :meth:`meter` for usage the step knows about (tokens, rows, API calls)."""

    #: The run's id (as stored in the ``runs`` table).
    run_id: str
    #: The workflow's name.
    workflow: str
    #: The step's id.
    step: str
    #: 1 for the first try, 2 for the first retry, ...
    attempt: int
    #: A logger named ``fluxnb.steps.<step>`` whose records carry run_id, step and attempt.
    logger: logging.LoggerAdapter = field(repr=False, compare=False)  # type: ignore[type-arg]
    _sink: MeterSink | None = field(default=None, repr=False, compare=False)

    @classmethod
    def make(
        cls, run_id: str, workflow: str, step: str, attempt: int, sink: MeterSink | None = None
    ) -> StepContext:
        extra = {"run_id": run_id, "step": step, "attempt": attempt}
        logger = logging.LoggerAdapter(logging.getLogger(f"fluxnb.steps.{step}"), extra)
        return cls(run_id, workflow, step, attempt, logger, sink)

    def meter(self, unit: str, quantity: Any, *, idempotency_key: str | None = None) -> str:
        """Record ``quantity`` of a custom usage ``unit`` (e.g. ``"llm_tokens"``) for this
        run's tenant; returns the usage event's id.

        ``idempotency_key``: sending the same key twice counts once (use the id your
        provider gave the call). Without one, each call of each attempt counts.
        ``quantity``: an int, a Decimal or a numeric string (a float is taken by its
        shortest repr), at most 9 decimal places.

        Raises:
            BillingError: a bad unit name or quantity, or a step running on Dask (its
                ``ctx`` is a copy on the worker: return the amount and meter it in a
                local step).
        """
        if self._sink is None:
            raise BillingError(
                f"ctx.meter is not available in step '{self.step}': it runs on another "
                "process (Dask); return the quantity and meter it in a local step"
            )
        return self._sink(unit, quantity, idempotency_key)

    def emit(self, name: str, data: Any = None) -> str:
        """Post event ``name`` with JSON-able ``data`` on the run's store's event bus (every
        ``event: name`` trigger fires once for it); returns the event's id.

        Raises:
            TriggerError: a bad name, data that is not JSON, or no store to post to (a run
                with ``store=None``, a step running on Dask).
        """
        from .._exceptions import TriggerError
        from ..store._audit import audit_store
        from ..store._event_bus import emit

        recorder = getattr(self._sink, "recorder", None)
        store = audit_store(recorder) if recorder is not None else None
        if store is None:
            raise TriggerError(
                None,
                f"ctx.emit('{name}') in step '{self.step}' has no store to post to: run the "
                "workflow with a store (not store=None), in this process (not on Dask)",
            )
        from .._session import current

        ns = current().namespace  # the run's session: its triggers only
        return emit(
            store, name, data, source="step", namespace=ns, run_id=self.run_id, step=self.step
        )

    def __getstate__(self) -> dict[str, Any]:
        """A copy sent to another process (Dask) has no way back to the recorder."""
        state = dict(self.__dict__)
        state["_sink"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class _Sink:
    """``ctx.meter`` for one attempt, writing through ``recorder`` (see Recorder.meter).
    It also says which run record the attempt writes to (``recorder``, ``seq``): the LLM
    call loop finds the run's ``llm`` ledger there."""

    __slots__ = ("_meter", "attempt", "recorder", "seq", "step")

    def __init__(self, recorder: Any, step: str, attempt: int, seq: int) -> None:
        self.recorder = recorder
        self.step, self.attempt, self.seq = step, attempt, seq
        self._meter = getattr(recorder, "meter", None)

    def __call__(self, unit: str, quantity: Any, key: str | None) -> str:
        if self._meter is None:  # a user's own recorder without metering: check, keep nothing
            from ..store._usage import check_unit
            from ..store._usage import quantity as as_quantity

            check_unit(unit)
            as_quantity(quantity)
            return key or ""
        return str(self._meter(unit, quantity, key, self.step, self.attempt, self.seq))


def meter_sink(recorder: Any, step: str, attempt: int, seq: int) -> MeterSink:
    """``ctx.meter`` for one attempt, writing through ``recorder`` (see Recorder.meter)."""
    return _Sink(recorder, step, attempt, seq)
