"""What an LLM call leaves behind: one ``llm_calls`` row per HTTP attempt, usage rows
through the run's metering (so rate cards and invoices price tokens), and the budget
check made before each attempt is sent.

The facts come from the step's ``ctx``: its metering sink knows the run's recorder, whose
``llm`` ledger keeps the rows until the recorder writes them with the run's others.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .._exceptions import BudgetExceeded, LLMError
from ..store._llm_ledger import LLMLedger
from ..store._recorder import RunRecord

#: Usage units an LLM call meters (a rate card prices them like any other unit).
UNITS = (
    ("llm_prompt_tokens", "prompt"),
    ("llm_cached_tokens", "cached"),
    ("llm_completion_tokens", "completion"),
    ("llm_reasoning_tokens", "reasoning"),
)
COST_UNIT = "llm_cost_usd"


@dataclass(frozen=True)
class Budget:
    """Spending limits checked before every LLM call (Decimal USD; None: no limit)."""

    #: What one run may spend on LLM calls.
    per_run: Decimal | None = None
    #: What the run's tenant may spend on LLM calls this calendar month (UTC), all runs.
    per_tenant: Decimal | None = None

    def __post_init__(self) -> None:
        for name in ("per_run", "per_tenant"):
            v = getattr(self, name)
            if v is not None:
                try:
                    d = Decimal(str(v))
                except ArithmeticError:  # decimal.InvalidOperation
                    d = Decimal("NaN")
                if isinstance(v, bool) or not d.is_finite() or d < 0:
                    raise LLMError(f"budget {name} must be a non-negative amount, got {v!r}")
                object.__setattr__(self, name, d)

    @classmethod
    def of(cls, value: Any) -> Budget | None:
        if value is None or isinstance(value, Budget):
            return value
        if isinstance(value, dict):
            unknown = set(value) - {"per_run", "per_tenant"}
            if unknown:
                raise LLMError(
                    f"budget: unknown key {sorted(unknown)[0]!r}; keys: per_run, per_tenant"
                )
            return cls(**value)
        raise LLMError(f"budget must be a Budget or a mapping, got {type(value).__name__}")


#: Ledgers of runs whose recorder keeps none (store=None): per-run budgets still hold.
_LOOSE: OrderedDict[str, LLMLedger] = OrderedDict()
_LOOSE_LOCK = threading.Lock()  # sync steps call from threads


class CallRecord:
    """The recording side of one LLM call made from a step (or from nowhere: ``ctx=None``)."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        sink = getattr(ctx, "_sink", None)
        self.recorder = getattr(sink, "recorder", None)
        ledger = getattr(self.recorder, "llm", None)
        if ledger is None and ctx is not None:
            with _LOOSE_LOCK:
                ledger = _LOOSE.get(ctx.run_id)
                if ledger is None:
                    ledger = _LOOSE[ctx.run_id] = LLMLedger(
                        RunRecord(ctx.run_id, ctx.workflow, "running", 0)
                    )
                    while len(_LOOSE) > 64:
                        _LOOSE.popitem(last=False)
        self.ledger: LLMLedger | None = ledger
        self.step = None if ctx is None else ctx.step
        self.step_attempt = None if ctx is None else ctx.attempt
        self.call = 1 if ledger is None or ctx is None else ledger.next_call(ctx.step, ctx.attempt)

    # ------------------------------------------------------------------ budgets
    def reserve(self, budget: Budget | None, worst: Decimal | None, candidate: str) -> Decimal:
        """Refuse the attempt when spent + worst case would pass a budget, else hold its
        worst case until :meth:`release` (so calls running at once cannot all pass a budget
        that fits only one of them); returns what was held."""
        if budget is None or worst is None or self.ledger is None:
            return Decimal(0)
        led = self.ledger
        with led.lock:
            self._check(budget, worst, candidate)
            led.reserved += worst
        return worst

    def release(self, held: Decimal) -> None:
        if held and self.ledger is not None:
            with self.ledger.lock:
                self.ledger.reserved -= held

    def _check(self, budget: Budget, worst: Decimal, candidate: str) -> None:
        led = self.ledger
        assert led is not None
        if budget.per_run is not None and led.spent + led.reserved + worst > budget.per_run:
            raise BudgetExceeded(
                "run",
                budget=budget.per_run,
                spent=led.spent + led.reserved,
                worst_case=worst,
                tenant=led.tenant,
                run_id=led.run_id,
                candidate=candidate,
            )
        if budget.per_tenant is not None:
            spent = led.tenant_spent(time.time_ns() // 1000) + led.reserved
            if spent + worst > budget.per_tenant:
                raise BudgetExceeded(
                    "tenant",
                    budget=budget.per_tenant,
                    spent=spent,
                    worst_case=worst,
                    tenant=led.tenant,
                    run_id=led.run_id,
                    candidate=candidate,
                )

    # ------------------------------------------------------------------ rows
    def row(self, **f: Any) -> tuple:
        led = self.ledger
        cost = f.get("cost")
        pcost = f.get("provider_cost")
        return (
            None if led is None else led.run_id,
            self.step,
            f["attempt"],
            "default" if led is None else led.tenant,
            f["provider"],
            f["model"],
            f.get("http_status"),
            f["outcome"],
            f.get("prompt_tokens"),
            f.get("cached_tokens"),
            f.get("completion_tokens"),
            f.get("reasoning_tokens"),
            None if cost is None else str(cost),
            None if pcost is None else str(pcost),
            f["cost_status"],
            f.get("ttft_ms"),
            f.get("latency_ms"),
            None if led is None else led.namespace,
            self.step_attempt,
            self.call,
            f["candidate"],
            f["candidates"],
            f.get("price_as"),
            f.get("error"),
            f["started_at"],
            f.get("output"),
        )

    def add(self, row: tuple) -> None:
        if self.ledger is not None:
            self.ledger.add(row)

    def meter(self, tokens: dict[str, int | None], cost: Decimal | None) -> None:
        """Usage rows for an attempt's tokens and cost (nothing outside a step)."""
        if self.ctx is None:
            return
        for unit, key in UNITS:
            n = tokens.get(key)
            if n:
                self.ctx.meter(unit, n)
        if cost:
            self.ctx.meter(COST_UNIT, cost)

    def circuit(self, changes: list[Any]) -> None:
        """Breaker state changes, as the engine records them (``circuit_events``)."""
        rec = self.recorder
        if rec is None or not changes:
            return
        run_id = None if self.ledger is None else self.ledger.run_id
        for c in changes:
            rec.circuit_event(
                (
                    c.at_us,
                    c.agent,
                    c.old.value,
                    c.new.value,
                    c.reason,
                    c.failures,
                    run_id,
                    self.step,
                )
            )

    # ------------------------------------------------------------------ replay
    def replayed(self) -> str | None:
        """In a replay: the output this call recorded (None: not a replay). A replay
        never calls a provider, so a call with no recorded output is an error."""
        rec = self.recorder
        source = getattr(rec, "replay_of", None)
        if rec is None or source is None:
            return None
        book = getattr(rec, "_llm_book", None)
        if book is None:
            book = rec._llm_book = _recorded_outputs(*source)
        key = (self.step, self.step_attempt, self.call)
        if key not in book:
            from .._exceptions import ReplayError

            raise ReplayError(
                f"step '{self.step}' (attempt {self.step_attempt}) makes LLM call {self.call}, "
                f"which run {source[0]} did not record; a replay never calls a provider"
            )
        return book[key]


def _recorded_outputs(run_id: str, store: Any) -> dict[tuple[Any, ...], str]:
    """The answers of a recorded run's LLM calls, by (step, step attempt, call)."""
    if store is None:
        return {}
    with store.connect() as con:
        rows = con.execute(
            "SELECT step, step_attempt, call, output FROM llm_calls "
            "WHERE run_id = $1 AND outcome = 'ok'",
            [run_id],
        ).fetchall()
    return {(s, a, c): o for s, a, c, o in rows}
