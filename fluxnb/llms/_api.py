"""``fluxnb.llm`` and ``fluxnb.allm``: an LLM call from any step (or from anywhere)."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from .._exceptions import LLMError
from ._call import acall
from ._providers import Provider, read_providers
from ._record import Budget
from ._request import Request
from ._retry import LLMRetry

#: The environment variable naming a providers file, used when no providers are given.
PROVIDERS_ENV = "FLUXNB_LLM_PROVIDERS"
FORMATS = ("text", "json")
STREAM_ERRORS = ("fail", "restart")


def build_request(
    prompt: str | None,
    *,
    system: str | None = None,
    messages: Sequence[Mapping[str, Any]] | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    response_format: str = "text",
    tools: Sequence[Mapping[str, Any]] | None = None,
    schema: Mapping[str, Any] | None = None,
    stream: bool = False,
    on_stream_error: str = "fail",
) -> Request:
    """A checked Request (LLMError naming the bad option otherwise)."""
    if response_format not in FORMATS:
        raise LLMError(f"response_format must be one of {FORMATS}, got {response_format!r}")
    if on_stream_error not in STREAM_ERRORS:
        raise LLMError(f"on_stream_error must be one of {STREAM_ERRORS}, got {on_stream_error!r}")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise LLMError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    msgs: list[dict[str, Any]] = []
    if system is not None:
        msgs.append({"role": "system", "content": str(system)})
    msgs += [dict(m) for m in messages or ()]
    if prompt is not None:
        msgs.append({"role": "user", "content": str(prompt)})
    if not msgs:
        raise LLMError("an LLM call needs a prompt (or messages)")
    if schema is not None and response_format != "json":
        response_format = "json"  # a schema describes a JSON answer
    return Request(
        tuple(msgs),
        max_tokens,
        temperature,
        response_format,
        None if not tools else tuple(dict(t) for t in tools),
        schema,
        bool(stream),
        on_stream_error,
    )


def providers_of(value: Any) -> tuple[Provider, ...]:
    """``providers=`` as given, else the file named by $FLUXNB_LLM_PROVIDERS."""
    if value is None:
        path = os.environ.get(PROVIDERS_ENV)
        if not path:
            raise LLMError(
                "no LLM providers: pass providers=[{name, base_url, api_key_env}], declare "
                f"providers: in the manifest, or set {PROVIDERS_ENV} to a providers YAML file"
            )
        value = path
    return read_providers(value)


async def allm(
    prompt: str | None = None,
    *,
    model: str | Sequence[str],
    providers: Any = None,
    ctx: Any = None,
    system: str | None = None,
    messages: Sequence[Mapping[str, Any]] | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    response_format: str = "text",
    tools: Sequence[Mapping[str, Any]] | None = None,
    schema: Mapping[str, Any] | None = None,
    stream: bool = False,
    on_stream_error: str = "fail",
    budget: Budget | Mapping[str, Any] | None = None,
    retry: LLMRetry | None = None,
    show: bool | None = None,
    reply: bool = False,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> Any:
    """Ask an LLM, through fluxnb's retry and failover loop; ``await`` it in async code.

    >>> async def summarise(doc, ctx):                         # doctest: +SKIP
    ...     return await fluxnb.allm(f"Summarise: {doc}", model="openai/gpt-4o-mini",
    ...                              providers=PROVIDERS, ctx=ctx, max_tokens=200)

    With ``ctx`` (the step's), every HTTP attempt is a row of ``llm_calls``, tokens and
    cost are metered as the run's usage, budgets count the run's and tenant's spending,
    and a replay returns the recorded answer without calling anyone.

    Args:
        prompt: the user message (``messages`` adds earlier turns, ``system`` a system one).
        model: ``provider/model``, a list of them (failover order), ``auto`` or
            ``cost-optimal``.
        providers: a list of providers (dicts or ``Provider``) or a YAML file's path.
        response_format: ``text`` or ``json`` (the answer is parsed; ``schema`` checks it).
        stream: stream the answer (shown live in a notebook); it can fail over only
            before its first token.
        on_stream_error: ``fail`` or ``restart`` (retry a broken stream from scratch).
        budget: ``{"per_run": "0.50", "per_tenant": "20"}`` (USD), checked before each try.
        reply: return the whole :class:`Reply` (candidate, attempts, cost, usage).
        clock, sleep: time, injectable (tests).

    Returns:
        The answer's text, its parsed JSON, or ``{"text", "tool_calls"}``.

    Raises:
        LLMError: every candidate failed (``.attempts``), or a bad option.
        BudgetExceeded: the call would pass a budget; nothing was sent.
    """
    req = build_request(
        prompt,
        system=system,
        messages=messages,
        max_tokens=max_tokens,
        temperature=temperature,
        response_format=response_format,
        tools=tools,
        schema=schema,
        stream=stream,
        on_stream_error=on_stream_error,
    )
    out = await acall(
        req,
        model,
        providers_of(providers),
        ctx=ctx,
        budget=Budget.of(budget),
        retry=retry,
        clock=clock,
        sleep=sleep,
        show=show,
    )
    return out if reply else out.output


def llm(prompt: str | None = None, **options: Any) -> Any:
    """:func:`allm` from synchronous code (a sync step, a notebook cell): the call runs on
    fluxnb's own event loop thread and this waits for it. In an ``async def`` step, use
    ``await fluxnb.allm(...)`` instead (same arguments)."""
    from ..engine._loop import _LoopThread

    lt = _LoopThread.get()
    if threading.current_thread() is lt.thread:
        raise LLMError(
            "fluxnb.llm() blocks, and this code runs on fluxnb's event loop (an async step): "
            "use 'await fluxnb.allm(...)' with the same arguments"
        )
    fut = asyncio.run_coroutine_threadsafe(allm(prompt, **options), lt.loop)
    try:
        return fut.result()
    except KeyboardInterrupt:
        fut.cancel()
        raise
