"""Usage metering: the quantities a run consumed, as idempotent ``usage`` rows.

Automatic units, per step execution (all attempts of a step, or of one net firing, up to
its final one): ``invocations`` (attempts that called the step), ``compute_seconds`` (their
wall time) and ``retries`` (attempts numbered 2 and up). Custom units come from
``ctx.meter(unit, quantity)`` inside a step.

Every row has an ``event_id``, its idempotency key; the store keeps the first row of an
id and ignores later copies, so sending an event twice counts once. Automatic ids are made
of the run id, the step's logical sequence number and its first attempt number, which a
resume continues (a resumed step's new attempts are new usage; the attempts recorded before
are not sent again) and a replay never records (replays are not billed).
"""

from __future__ import annotations

import re
import threading
import time
from decimal import Decimal, InvalidOperation
from typing import Any

from .._exceptions import BillingError
from ._recorder import RunRecord

UNIT = re.compile(r"[a-z][a-z0-9_]{0,62}")
#: The units fluxnb meters by itself.
AUTO_UNITS = ("invocations", "compute_seconds", "retries")
_PLACES = Decimal(1).scaleb(-9)  # quantities keep 9 decimal places (DECIMAL(38, 9))
_LIMIT = Decimal(10) ** 29


def check_unit(unit: Any) -> str:
    if not isinstance(unit, str) or not UNIT.fullmatch(unit):
        raise BillingError(
            f"usage unit {unit!r} is not valid: use lowercase letters, digits and '_', "
            "starting with a letter (e.g. 'llm_tokens')"
        )
    return unit


def quantity(value: Any, what: str = "quantity") -> Decimal:
    """``value`` as a Decimal with at most 9 decimal places. Ints, Decimals and numeric
    strings are exact; a float is taken by its shortest repr (``0.1`` is ``0.1``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise BillingError(f"{what} must be a number, found {type(value).__name__} {value!r}")
    try:
        d = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise BillingError(f"{what} {value!r} is not a number") from None
    if not d.is_finite():
        raise BillingError(f"{what} {value!r} is not a finite number")
    if abs(d) >= _LIMIT:
        raise BillingError(f"{what} {value!r} is too large (at most 29 integer digits)")
    q = d.quantize(_PLACES)
    if q != d:
        raise BillingError(f"{what} {value!r} has more than 9 decimal places")
    return q


def micros(at: int | None = None) -> int:
    return time.time_ns() // 1000 if at is None else at


class UsageMeter:
    """Turns one run's event rows (and ``ctx.meter`` calls) into usage rows."""

    def __init__(self, run: RunRecord) -> None:
        self.run = run
        self.tenant = run.tenant or "default"
        self.namespace = run.namespace or "default"
        # seq -> [first attempt, attempts, seconds, retries]
        self._open: dict[int, list[Any]] = {}
        self._custom: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()  # ctx.meter is called from step threads
        self.rows: list[tuple] = []

    def on_event(self, row: tuple) -> None:
        """An event row (EVENT_COLUMNS order): count its attempt; emit at the final one."""
        seq, attempt, final = row[1], row[3], row[5]
        called = row[13] is not None and row[6] is not None and row[10] != "CircuitOpenError"
        if called:
            acc = self._open.get(seq)
            if acc is None:
                acc = self._open[seq] = [attempt, 0, 0.0, 0]
            acc[1] += 1
            acc[2] += row[8] or 0.0
            acc[3] += attempt > 1  # a resumed step's attempts continue the numbering
        if final:
            acc = self._open.pop(seq, None)
            if acc is not None:
                self._emit(seq, row[2], acc, row[7])

    def _emit(self, seq: int, step: str, acc: list[Any], ended: int | None) -> None:
        first, n, seconds, retries = acc
        at = micros(ended)
        now = time.time_ns() // 1000
        run = self.run.run_id
        head = (self.tenant, self.namespace)
        tail = ("auto", run, self.run.workflow, step, first, None, None, None, now)
        key = f"auto:{run}:{seq}:{first}:"
        rows = [(key + "invocations", *head, "invocations", str(n), at, *tail)]
        if seconds:
            q = f"{seconds:.6f}"
            rows.append((key + "compute_seconds", *head, "compute_seconds", q, at, *tail))
        if retries:
            rows.append((key + "retries", *head, "retries", str(retries), at, *tail))
        with self._lock:
            self.rows += rows

    def custom(
        self, unit: str, amount: Any, key: str | None, step: str, attempt: int, seq: int
    ) -> str:
        """A ``ctx.meter`` call; returns the event id it was stored under."""
        check_unit(unit)
        q = quantity(amount)
        with self._lock:
            if key is None:
                n = self._custom.get((unit, seq), 0) + 1
                self._custom[(unit, seq)] = n
                key = f"custom:{self.run.run_id}:{seq}:{attempt}:{unit}:{n}"
            elif not isinstance(key, str) or not key:
                raise BillingError(f"idempotency_key must be a non-empty string, found {key!r}")
            self.rows.append(self._row(key, unit, str(q), micros(), "custom", step, attempt))
        return key

    def _row(
        self, key: str, unit: str, q: str, at: int, source: str, step: str, attempt: int
    ) -> tuple:
        return (
            key,
            self.tenant,
            self.namespace,
            unit,
            q,
            at,
            source,
            self.run.run_id,
            self.run.workflow,
            step,
            attempt,
            None,
            None,
            None,
            micros(),
        )

    def take(self) -> list[tuple]:
        with self._lock:
            rows, self.rows = self.rows, []
        return rows
