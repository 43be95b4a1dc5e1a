"""One run's LLM calls, as the recorder sees them: ``llm_calls`` rows waiting to be
written, the money they spent, and the store's prices and earlier spending (for budgets).

The LLM call loop (``fluxnb/llms``) reaches it through a step's ``ctx``; the recorder
writes its rows with the run's other rows. Costs are exact decimal text, like usage
quantities; nothing here ever holds an API key (rows carry provider and model names).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ._schema import LLM_CALL_COLUMNS

if TYPE_CHECKING:
    from ._recorder import RunRecord
    from ._store import Store

_COST = LLM_CALL_COLUMNS.index("cost")
_TENANT = LLM_CALL_COLUMNS.index("tenant")


def month_start_us(now_us: int) -> int:
    """The start of the calendar month (UTC) holding ``now_us``, in epoch microseconds."""
    d = datetime.fromtimestamp(now_us / 1e6, UTC)
    return int(datetime(d.year, d.month, 1, tzinfo=UTC).timestamp() * 1_000_000)


class LLMLedger:
    """The LLM side of one run's record (thread-safe: sync steps call from threads)."""

    def __init__(self, run: RunRecord, store: Store | None = None) -> None:
        self.run_id = run.run_id
        self.tenant = run.tenant or "default"
        self.namespace = run.namespace or "default"
        self.store = store
        #: Rows not yet written (LLM_CALL_COLUMNS order).
        self.rows: list[tuple] = []
        #: Every row of this run so far (a MemoryRecorder's view; tests read it).
        self.all_rows: list[tuple] = []
        #: Money this run's LLM calls cost so far (priced rows only).
        self.spent = Decimal(0)
        #: Worst cases of the attempts in flight, held against budgets (under ``lock``).
        self.reserved = Decimal(0)
        self.lock = threading.RLock()
        self._tenant_before: tuple[int, Decimal] | None = None
        self._prices: list[dict[str, Any]] | None = None
        self._calls: dict[tuple[str, int], int] = {}

    def next_call(self, step: str, attempt: int) -> int:
        """The number of a new LLM call in attempt ``attempt`` of ``step``: 1, 2, ..."""
        with self.lock:
            n = self._calls[(step, attempt)] = self._calls.get((step, attempt), 0) + 1
        return n

    def add(self, row: tuple) -> None:
        with self.lock:
            self.rows.append(row)
            self.all_rows.append(row)
            if row[_COST] is not None:
                self.spent += Decimal(row[_COST])

    def take(self) -> list[tuple]:
        with self.lock:
            rows, self.rows = self.rows, []
        return rows

    def tenant_spent(self, now_us: int) -> Decimal:
        """The tenant's LLM spending this calendar month (UTC): the store's rows from
        before this run (read once per run and month), plus this run's."""
        since = month_start_us(now_us)
        if self._tenant_before is None or self._tenant_before[0] != since:
            before = Decimal(0)
            if self.store is not None:
                with self.store.connect() as con:
                    got = con.execute(
                        "SELECT coalesce(sum(cost), 0) FROM llm_calls WHERE tenant = $1 "
                        "AND started_at >= make_timestamp($2) "
                        "AND run_id IS DISTINCT FROM $3",
                        [self.tenant, since, self.run_id],
                    ).fetchone()
                before = Decimal(got[0]) if got else Decimal(0)
            self._tenant_before = (since, before)
        return self._tenant_before[1] + self.spent

    def prices(self) -> list[dict[str, Any]]:
        """The store's ``llm_prices`` rows (read once per run); [] without a store."""
        if self._prices is None:
            self._prices = [] if self.store is None else read_prices(self.store)
        return self._prices


def read_prices(store: Store) -> list[dict[str, Any]]:
    """Every ``llm_prices`` row of ``store`` as dicts (Decimal prices, date effective_from)."""
    with store.connect() as con:
        cur = con.execute(
            "SELECT provider, model, input_per_m, output_per_m, cached_per_m, effective_from, "
            "context_window, features, price_as, source FROM llm_prices"
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
