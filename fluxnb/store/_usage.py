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
from typing import TYPE_CHECKING, Any

from .._exceptions import BillingError

if TYPE_CHECKING:
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


#: A numeric string: ASCII digits, an optional sign, point and exponent (no '_', no spaces,
#: no other scripts' digits, which Decimal() would all take).
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def quantity(value: Any, what: str = "quantity") -> Decimal:
    """``value`` as a Decimal with at most 9 decimal places. Ints, Decimals and numeric
    strings are exact; a float is taken by its shortest repr (``0.1`` is ``0.1``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise BillingError(f"{what} must be a number, found {type(value).__name__} {value!r}")
    if isinstance(value, str) and not _DECIMAL.fullmatch(value):  # Decimal('5_000'), '١٢٣'
        raise BillingError(
            f"{what} {value[:40]!r} is not a number written with ASCII digits "
            "(like '250' or '-1.5')"
        )
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


def scoped_key(tenant: str, namespace: str, unit: str, key: str) -> str:
    """The event id of a caller's idempotency key: counted once per tenant, namespace and
    unit, so two tenants (or two teams billing one tenant, or two units) that happen to use
    the same key are all counted, and no namespace can learn that another used a key.
    Tenant, namespace and unit names cannot hold ':', so the id is unambiguous."""
    return f"key:{tenant}:{namespace}:{unit}:{key}"


def micros(at: int | None = None) -> int:
    return time.time_ns() // 1000 if at is None else at


def usage_row(
    key: str,
    tenant: str,
    namespace: str,
    unit: str,
    amount: Decimal,
    at: int,
    source: str,
    *,
    run_id: str | None = None,
    workflow: str | None = None,
    step: str | None = None,
    attempt: int | None = None,
    reason: str | None = None,
    corrects: str | None = None,
    actor: str | None = None,
) -> tuple:
    """One ``usage`` row in USAGE_COLUMNS order (the quantity as exact decimal text)."""
    return (key, tenant, namespace, unit, str(amount), at, source, run_id, workflow, step,
            attempt, reason, corrects, actor, micros())  # fmt: skip


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
        self.rows: list[tuple] = []  # custom rows (ctx.meter), in USAGE_COLUMNS order
        # finished step executions, one flat list per fact (seq, step, first attempt,
        # attempts, seconds, retries, ended): no object per step stays alive until the
        # flush, so a long run gives the garbage collector nothing to walk (measured: a
        # tuple per step made a 10,000-step run ~6 µs/step slower through GC alone)
        self._done: tuple[list[Any], ...] = ([], [], [], [], [], [], [])

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
                d = self._done
                d[0].append(seq)
                d[1].append(row[2])
                d[2].append(acc[0])
                d[3].append(acc[1])
                d[4].append(acc[2])
                d[5].append(acc[3])
                d[6].append(row[7])

    def _auto_columns(self) -> dict[str, list[Any]]:
        """The finished executions' usage, column by column (zero quantities left out)."""
        with self._lock:
            done, self._done = self._done, ([], [], [], [], [], [], [])
        run = self.run.run_id
        ids: list[str] = []
        units: list[str] = []
        qs: list[str] = []
        ats: list[int] = []
        steps: list[str] = []
        firsts: list[int] = []
        now = time.time_ns() // 1000
        for seq, step, first, n, seconds, retries, ended in zip(*done, strict=True):
            key = f"auto:{run}:{seq}:{first}:"
            at = now if ended is None else ended
            for unit, q in (
                ("invocations", str(n)),
                ("compute_seconds", f"{seconds:.6f}" if seconds else ""),
                ("retries", str(retries) if retries else ""),
            ):
                if q:
                    ids.append(key + unit)
                    units.append(unit)
                    qs.append(q)
                    ats.append(at)
                    steps.append(step)
                    firsts.append(first)
        return {"event_id": ids, "unit": units, "quantity": qs, "occurred_at": ats,
                "step": steps, "attempt": firsts, "recorded_at": [now] * len(ids)}  # fmt: skip

    def _auto_rows(self) -> list[tuple]:
        c = self._auto_columns()
        r = self.run
        return [
            (
                i,
                self.tenant,
                self.namespace,
                u,
                q,
                at,
                "auto",
                r.run_id,
                r.workflow,
                st,
                a,
                None,
                None,
                None,
                rec,
            )
            for i, u, q, at, st, a, rec in zip(
                c["event_id"],
                c["unit"],
                c["quantity"],
                c["occurred_at"],
                c["step"],
                c["attempt"],
                c["recorded_at"],
                strict=True,
            )
        ]

    def take_table(self) -> Any:
        """Everything not yet taken, as one Arrow table of the ``usage`` segment schema
        (None when there is nothing): built column by column, the fast path of a store."""
        import pyarrow as pa

        from ._segments import arrow_table

        cols = self._auto_columns()
        with self._lock:
            custom, self.rows = self.rows, []
        n = len(cols["event_id"])
        tables = []
        if n:
            schema = arrow_table("usage", []).schema
            r = self.run
            fixed = {"tenant": self.tenant, "namespace": self.namespace, "source": "auto",
                     "run_id": r.run_id, "workflow": r.workflow}  # fmt: skip
            arrays = []
            for field in schema:
                values = cols.get(field.name)
                if values is None:
                    values = [fixed.get(field.name)] * n
                arrays.append(pa.array(values, type=field.type))
            tables.append(pa.table(arrays, schema=schema))
        if custom:
            tables.append(arrow_table("usage", custom))
        if not tables:
            return None
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables)

    def custom(
        self, unit: str, amount: Any, key: str | None, step: str, attempt: int, seq: int
    ) -> str:
        """A ``ctx.meter`` call; returns the event id it was stored under."""
        check_unit(unit)
        q = quantity(amount)
        if q < 0:
            raise BillingError(
                f"ctx.meter({unit!r}, {amount!r}): a step meters what it used, never a "
                "negative quantity; an admin corrects usage with fluxnb.correct_usage "
                "(audited)"
            )
        with self._lock:
            if key is None:
                n = self._custom.get((unit, seq), 0) + 1
                self._custom[(unit, seq)] = n
                key = f"custom:{self.run.run_id}:{seq}:{attempt}:{unit}:{n}"
            elif not isinstance(key, str) or not key:
                raise BillingError(f"idempotency_key must be a non-empty string, found {key!r}")
            else:
                key = scoped_key(self.tenant, self.namespace, unit, key)
            self.rows.append(
                usage_row(
                    key,
                    self.tenant,
                    self.namespace,
                    unit,
                    q,
                    micros(),
                    "custom",
                    run_id=self.run.run_id,
                    workflow=self.run.workflow,
                    step=step,
                    attempt=attempt,
                )
            )
        return key

    def take(self) -> list[tuple]:
        """Everything not yet taken, as rows in USAGE_COLUMNS order."""
        auto = self._auto_rows()
        with self._lock:
            rows, self.rows = self.rows, []
        return auto + rows
