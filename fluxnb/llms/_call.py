"""The LLM call loop: fluxnb's one retry and failover loop around the OpenAI SDK.

::

    for each candidate (resolved order):
        breaker open?                         -> next candidate (no request sent)
        budget: spent + worst case > budget?  -> BudgetExceeded (no request sent)
        send; on failure:
            408 409 429 5xx, connection, timeout -> same candidate after Retry-After
                                                    (up to a cap) or backoff with jitter
            401 403 404, context length, retries exhausted, Retry-After over the cap
                                                 -> next candidate
            other 4xx, or a stream that failed after its first token
                                                 -> fail now (``on_stream_error:
                                                    restart`` retries a stream instead)

Every HTTP attempt writes one ``llm_calls`` row; tokens and cost are metered as usage.
Time is injectable (``clock``, ``sleep``) so tests of backoff take milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any

from .._exceptions import CircuitOpenError, LLMError
from ..engine._breaker import BREAKERS
from ._prices import PriceBook, cost, warn_unpriced
from ._providers import Provider, client_for, scrub
from ._record import Budget, CallRecord
from ._request import Reply, Request, parse, replayed
from ._retry import LLMRetry, classify
from ._routing import Candidate, resolve, upper_bound_tokens
from ._stream import Answer, BadAnswer, StreamView, send


def _wall_us() -> int:
    return time.time_ns() // 1000


async def acall(
    request: Request,
    model: str | Sequence[str],
    providers: Sequence[Provider],
    *,
    ctx: Any = None,
    budget: Budget | None = None,
    retry: LLMRetry | None = None,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    show: bool | None = None,
) -> Reply:
    """Run one LLM call through fluxnb's loop (see the module's docstring)."""
    if budget is not None and ctx is None:
        raise LLMError(
            "a budget counts what a run and its tenant spent: pass the step's ctx "
            "(fluxnb.llm(..., ctx=ctx)) with budget="
        )
    rec = CallRecord(ctx)
    recorded = rec.replayed()
    if recorded is not None:
        return replayed(request, recorded)
    book = PriceBook(rec.ledger.prices() if rec.ledger is not None else None)
    cands = resolve(
        model,
        providers,
        book,
        prompt=request.text(),
        max_tokens=request.max_tokens,
        needs=request.needs(),
    )
    loop = _Loop(request, cands, rec, book, budget, retry or LLMRetry(), clock, sleep)
    if request.stream and (StreamView.wanted() if show is None else show):
        loop.view = StreamView(loop.order)
    for rank, cand in enumerate(cands, 1):
        reply = await loop.candidate(rank, cand)
        if reply is not None:
            return reply
    raise loop.error(
        f"LLM call failed on every candidate ({loop.order}): "
        + "; ".join(
            f"{t['candidate']}: {t['outcome']} {t.get('error') or ''}".strip() for t in loop.tried
        )
    )


class _Loop:
    """One call's walk over its candidates: attempts, retries, failover, records."""

    def __init__(
        self,
        request: Request,
        cands: tuple[Candidate, ...],
        rec: CallRecord,
        book: PriceBook,
        budget: Budget | None,
        retry: LLMRetry,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[Any]],
    ) -> None:
        self.request, self.cands, self.rec, self.book = request, cands, rec, book
        self.budget, self.retry, self.clock, self.sleep = budget, retry, clock, sleep
        self.order = ",".join(c.name for c in cands)
        self.body = request.body()
        self.view: StreamView | None = None
        self.n = 0  # HTTP attempts so far, over every candidate
        self.tried: list[dict[str, Any]] = []

    def error(self, message: str) -> LLMError:
        return LLMError(
            message, candidates=tuple(c.name for c in self.cands), attempts=tuple(self.tried)
        )

    async def candidate(self, rank: int, cand: Candidate) -> Reply | None:
        """Try ``cand`` until it answers (its Reply), or it is time for the next (None)."""
        prov = cand.provider
        price, alias = self.book.resolve(prov.name, cand.model, prov.price_as.get(cand.model))
        if price is None or not price.priced:
            warn_unpriced(prov.name, cand.model)
        breaker = BREAKERS.get(f"llm:{cand.name}", self.retry.breaker)
        client = client_for(prov)  # the first one imports the SDK: not an attempt's time
        tries = 0
        while True:
            try:
                probe, changes = breaker.acquire()
            except CircuitOpenError as exc:
                self.tried.append(
                    {"candidate": cand.name, "outcome": "circuit_open", "error": str(exc)}
                )
                return None
            self.rec.circuit(changes)
            try:
                worst = None if self.budget is None else _worst(price, self.request)
                held = self.rec.reserve(self.budget, worst, cand.name)
            except LLMError:
                breaker.release(probe)
                raise
            self.n += 1
            tries += 1
            answer = Answer()
            if self.view is not None:
                self.view.restart(f"{cand.name} (attempt {self.n})")
            t0 = self.clock()
            facts = {
                "attempt": self.n,
                "provider": prov.name,
                "model": cand.model,
                "candidate": rank,
                "candidates": self.order,
                "started_at": _wall_us(),
                "price_as": alias,
            }
            try:
                await send(
                    client,
                    cand.model,
                    self.body,
                    self.retry.timeout,
                    answer,
                    t0,
                    self.clock,
                    None if self.view is None else self.view.add,
                )
                output = parse(self.request, answer)
            except Exception as exc:  # every failure is classified: retry, next or fail
                self._shown()
                self.rec.release(held)
                delay = self.failed(
                    exc, rank, cand, tries, breaker, probe, price, answer, facts, t0
                )
                if delay is None:
                    return None
                await self.sleep(delay)
                continue
            except BaseException as exc:  # cancelled (a step timeout, the run stopping)
                self.rec.release(held)
                breaker.release(probe)
                error = f"{type(exc).__name__}: the attempt was cancelled"
                _charge(self.rec, price, answer, facts, "cancelled", None, error, self.clock() - t0)
                raise
            self._shown()
            self.rec.release(held)
            self.rec.circuit(breaker.success(probe))
            return self.answered(cand, price, answer, facts, output, t0)

    def answered(
        self,
        cand: Candidate,
        price: Any,
        answer: Answer,
        facts: dict[str, Any],
        output: Any,
        t0: float,
    ) -> Reply:
        """An attempt that answered: its row and usage, and the call's reply."""
        stored = answer.text
        if answer.tool_calls:
            stored = json.dumps({"tool_calls": answer.tool_calls})
        c = _charge(self.rec, price, answer, facts, "ok", 200, None, self.clock() - t0, stored)
        return Reply(
            output,
            answer.text,
            answer.tool_calls,
            cand.name,
            tuple(x.name for x in self.cands),
            self.n,
            c,
            "priced" if price is not None and price.priced else "unpriced",
            answer.tokens_used(),
        )

    def _shown(self) -> None:
        """The stream's whole text drawn once more at its end (redraws are throttled)."""
        if self.view is not None and self.view.text:
            self.view.draw(force=True)

    def failed(
        self,
        exc: Exception,
        rank: int,
        cand: Candidate,
        tries: int,
        breaker: Any,
        probe: bool,
        price: Any,
        answer: Answer,
        facts: dict[str, Any],
        t0: float,
    ) -> float | None:
        """An attempt failed: record it; the seconds to wait before trying ``cand`` again,
        or None to move to the next candidate. Raises LLMError to fail now."""
        what, status, after = classify(exc)
        if answer.tokens and not isinstance(exc, BadAnswer):  # no failover after a token
            what = "retry" if self.request.on_stream_error == "restart" else "fail"
        if what != "fail" or status in (401, 403, 404):
            reason = scrub(f"{type(exc).__name__}: {exc}", cand.provider)[:200]
            self.rec.circuit(breaker.failure(probe, reason))
        else:
            breaker.release(probe)  # the request's fault, not the provider's
        delay = None
        if what == "retry" and tries < self.retry.max_attempts:
            # drawn per (step, its attempt, call, try), never from a shared stream: the
            # same waits every run, and two calls that fail together do not retry together
            rec = self.rec
            jitter = random.Random(f"{rec.step}:{rec.step_attempt}:{rec.call}:{self.n}")
            delay = after if after is not None else self.retry.backoff(tries, jitter)
            if delay > self.retry.retry_after_cap:
                delay, what = None, "next"
        elif what == "retry":
            what = "next"
        last = rank == len(self.cands)
        outcome = (
            "retry"
            if delay is not None
            else "failover"
            if what == "next" and not last
            else "failed"
        )
        error = scrub(f"{type(exc).__name__}: {exc}", cand.provider)[:500]
        c = _charge(self.rec, price, answer, facts, outcome, status, error, self.clock() - t0)
        self.tried.append(
            {
                "candidate": cand.name,
                "outcome": outcome,
                "http_status": status,
                "error": error,
                "cost": c,
            }
        )
        if what == "fail":
            after_token = " (after the stream's first token there is no failover; "
            after_token += "on_stream_error: restart retries it)" if answer.tokens else ""
            raise self.error(
                f"LLM call to {cand.name} failed: {error}" + (after_token if answer.tokens else "")
            ) from None  # the provider's own error text may echo the key: it is scrubbed above
        return delay


def _worst(price: Any, request: Request) -> Decimal | None:
    """The most this request can cost on ``price`` (None: unpriced, or unbounded)."""
    if price is None or not price.priced:
        return None
    prompt = upper_bound_tokens(request.text())
    out = request.max_tokens
    if out is None:
        out = price.context_window  # no answer is longer than the whole window
    if out is None:
        raise LLMError(
            "a budget needs max_tokens (or a context_window in llm_prices) to bound the "
            "worst case of a call; set max_tokens"
        )
    return cost(price, prompt, 0, out)


def _charge(
    rec: CallRecord,
    price: Any,
    answer: Answer,
    facts: dict[str, Any],
    outcome: str,
    status: int | None,
    error: str | None,
    seconds: float,
    output: str | None = None,
) -> Decimal | None:
    """The attempt's row and usage; returns its cost."""
    tokens = answer.tokens_used()
    used = answer.prompt_tokens is not None or answer.completion_tokens is not None
    c = (
        cost(price, tokens["prompt"] or 0, tokens["cached"] or 0, tokens["completion"] or 0)
        if used
        else None
    )
    cost_status = "none" if not used else "unpriced" if c is None else "priced"
    pcost = answer.provider_cost
    rec.add(
        rec.row(
            **facts,
            outcome=outcome,
            http_status=status,
            error=error,
            output=output,
            prompt_tokens=tokens["prompt"],
            cached_tokens=tokens["cached"],
            completion_tokens=tokens["completion"],
            reasoning_tokens=tokens["reasoning"],
            cost=c,
            provider_cost=None if pcost is None else Decimal(str(pcost)),
            cost_status=cost_status,
            ttft_ms=answer.ttft_ms,
            latency_ms=seconds * 1000,
        )
    )
    if used:
        rec.meter(tokens, c)
    return c
