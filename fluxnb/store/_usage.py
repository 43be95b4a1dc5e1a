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
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from .._exceptions import BillingError

if TYPE_CHECKING:
    from ._recorder import RunRecord

UNIT = re.compile(r"[a-z][a-z0-9_]{0,62}")
#: The units fluxnb meters by itself.
AUTO_UNITS = ("invocations", "compute_seconds", "retries")
#: From this many finished executions on, a flush builds their usage with Arrow (each
#: Arrow call costs a fixed ~µs: slower than Python below ~300, 1.3x faster at 1,000).
ARROW_ROWS = 512
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

    def on_rows(self, rows: Sequence[tuple], cols: Sequence[Sequence[Any]] | None = None) -> None:
        """``on_event`` for each of ``rows`` in order (``cols``: the same rows column by
        column, if the caller has them). A batch of one-attempt executions (the usual
        case) is counted a column at a time, with no Python step per row."""
        if not rows:
            return
        if cols is None:
            cols = list(zip(*rows, strict=True))
        n = len(rows)
        attempts, finals, seconds = cols[3], cols[5], cols[8]
        if (
            not self._open
            and attempts.count(1) == n
            and finals.count(True) == n
            and cols[6].count(None) == 0  # every attempt started...
            and cols[13].count(None) == 0  # ...on an executor
            and "CircuitOpenError" not in cols[10]
        ):
            d = self._done
            d[0].extend(cols[1])
            d[1].extend(cols[2])
            d[2].extend(attempts)
            d[3].extend(attempts)  # one attempt each
            d[4].extend(seconds if None not in seconds else [x or 0.0 for x in seconds])
            d[5].extend([0] * n)
            d[6].extend(cols[7])
            return
        for row in rows:
            self.on_event(row)

    def _take_done(self) -> tuple[list[Any], ...]:
        """The finished executions not yet taken (see ``_done``)."""
        with self._lock:
            done, self._done = self._done, ([], [], [], [], [], [], [])
        return done

    def _auto_columns(self, done: tuple[list[Any], ...] | None = None) -> dict[str, list[Any]]:
        """The finished executions' usage, column by column (zero quantities left out):
        per execution ``invocations``, then ``compute_seconds`` and ``retries`` if not 0."""
        seqs, steps, firsts, ns, secs, retries, ends = self._take_done() if done is None else done
        now = time.time_ns() // 1000
        prefix = f"auto:{self.run.run_id}:"
        ats = ends if None not in ends else [now if e is None else e for e in ends]
        k = len(seqs)
        cols: dict[str, list[Any]]
        if firsts.count(1) == k and not any(retries) and all(secs):
            # the usual batch: executions that ran once, each one invocations and one
            # compute_seconds row, interleaved (execution i's rows are 2i and 2i + 1)
            cols = {c: [None] * (2 * k) for c in ("event_id", "quantity", "occurred_at", "step",
                                                  "attempt")}  # fmt: skip
            ids = cols["event_id"]
            ids[0::2] = [f"{prefix}{seq}:1:invocations" for seq in seqs]
            ids[1::2] = [f"{prefix}{seq}:1:compute_seconds" for seq in seqs]
            cols["unit"] = ["invocations", "compute_seconds"] * k
            qs = cols["quantity"]
            qs[0::2] = ["1"] * k if ns.count(1) == k else [str(x) for x in ns]
            qs[1::2] = [f"{x:.6f}" for x in secs]
            for name, values in (("occurred_at", ats), ("step", steps), ("attempt", firsts)):
                cols[name][0::2] = values
                cols[name][1::2] = values
        else:
            cols = {"event_id": [], "unit": [], "quantity": [], "occurred_at": [], "step": [],
                    "attempt": []}  # fmt: skip
            ids, units, qs = cols["event_id"], cols["unit"], cols["quantity"]
            for seq, step, first, n, seconds, retry, at in zip(
                seqs, steps, firsts, ns, secs, retries, ats, strict=True
            ):
                key = f"{prefix}{seq}:{first}:"
                for unit, q in (
                    ("invocations", str(n)),
                    ("compute_seconds", f"{seconds:.6f}" if seconds else ""),
                    ("retries", str(retry) if retry else ""),
                ):
                    if q:
                        ids.append(key + unit)
                        units.append(unit)
                        qs.append(q)
                        cols["occurred_at"].append(at)
                        cols["step"].append(step)
                        cols["attempt"].append(first)
        cols["recorded_at"] = [now] * len(cols["event_id"])
        return cols

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

        from ._segments import _array, _schemas, _utf8, arrow_table

        done = self._take_done()
        with self._lock:
            custom, self.rows = self.rows, []
        tables = []
        usual = self._usual_table(done) if len(done[0]) >= ARROW_ROWS else None
        if usual is not None:
            tables.append(usual)
        elif done[0]:
            cols = self._auto_columns(done)
            n = len(cols["event_id"])
            schema = _schemas()["usage"]
            arrays = []
            one = self._fixed
            for field in schema:
                values = cols.get(field.name)
                fixed = one.get(field.name)
                if values is not None:
                    arrays.append(_array(pa, values, field.type))
                elif fixed is None:
                    arrays.append(pa.nulls(n, field.type))
                else:  # the same value in every row: no conversion per row
                    arrays.append(pa.repeat(pa.scalar(_utf8(fixed), field.type), n))
            tables.append(pa.table(arrays, schema=schema))
        if custom:
            tables.append(arrow_table("usage", custom))
        if not tables:
            return None
        return tables[0] if len(tables) == 1 else pa.concat_tables(tables)

    @property
    def _fixed(self) -> dict[str, str]:
        """The usage columns that hold one value for every automatic row of the run."""
        r = self.run
        return {"tenant": self.tenant, "namespace": self.namespace, "source": "auto",
                "run_id": r.run_id, "workflow": r.workflow}  # fmt: skip

    def _usual_table(self, done: tuple[list[Any], ...]) -> Any:
        """The usual batch, executions that each ran once for a non-zero time (two rows
        each: ``invocations``, then ``compute_seconds``), as an Arrow table built by
        Arrow: ids joined from the sequence numbers, rows interleaved by one ``take``,
        and only the quantities formatted in Python. The same rows as ``_auto_columns``
        gives (tests/test_store_recording.py); None for any other batch."""
        seqs, steps, firsts, ns, secs, retries, ends = done
        k = len(seqs)
        if not (firsts.count(1) == k and ns.count(1) == k and not any(retries) and all(secs)):
            return None
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        from ._segments import _array, _schemas, _utf8

        schema = _schemas()["usage"]
        now = time.time_ns() // 1000
        ats = ends if None not in ends else [now if e is None else e for e in ends]
        try:
            seq = pc.cast(pa.array(seqs, pa.int64()), pa.string())
        except (TypeError, ValueError, OverflowError, pa.ArrowException):
            return None  # not plain ints: the Python columns say the same in Python
        prefix = _utf8(f"auto:{self.run.run_id}:")
        string = pa.string()
        ids = [
            pc.binary_join_element_wise(prefix, seq, f":1:{unit}", "") for unit in AUTO_UNITS[:2]
        ]
        # rows 2i and 2i + 1 are execution i's: [0, k, 1, k + 1, ...] of the two halves
        both = pa.array(np.arange(2 * k).reshape(2, k).T.ravel())
        twice = pa.array(np.arange(2 * k) // 2)
        columns = {
            "event_id": pa.concat_arrays(ids).take(both),
            "unit": pa.array(AUTO_UNITS[:2], string).take(pa.array(np.arange(2 * k) % 2)),
            "quantity": pa.concat_arrays(
                [pa.repeat(pa.scalar("1", string), k), pa.array([f"{x:.6f}" for x in secs], string)]
            ).take(both),
            "occurred_at": _array(pa, ats, schema.field("occurred_at").type).take(twice),
            "step": _array(pa, steps, string).take(twice),
        }
        fixed = self._fixed
        arrays = []
        for field in schema:
            name = field.name
            if name in columns:
                arrays.append(columns[name])
            elif name in fixed:
                arrays.append(pa.repeat(pa.scalar(_utf8(fixed[name]), field.type), 2 * k))
            elif name == "attempt":
                arrays.append(pa.repeat(pa.scalar(1, field.type), 2 * k))
            elif name == "recorded_at":
                arrays.append(pa.repeat(pa.scalar(now, field.type), 2 * k))
            else:
                arrays.append(pa.nulls(2 * k, field.type))
        return pa.table(arrays, schema=schema)

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
