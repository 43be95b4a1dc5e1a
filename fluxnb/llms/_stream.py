"""One HTTP attempt: a plain JSON answer, or a stream of Server-Sent Events read to its
end, and what the notebook shows of a stream meanwhile.

A stream always asks for usage (``stream_options.include_usage``); the usage chunk comes
last with ``choices`` ``[]`` (or ``null`` from some servers), and both are read.
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class BadAnswer(Exception):
    """The answer arrived but is not what was asked (not JSON, not the schema)."""


@dataclass
class Answer:
    """What one successful attempt returned."""

    text: str = ""
    tool_calls: list[dict[str, Any]] | None = None
    prompt_tokens: int | None = None
    cached_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    provider_cost: Any = None
    ttft_ms: float | None = None
    #: Tokens received so far (a stream that fails after one cannot fail over).
    tokens: int = 0
    parts: list[str] = field(default_factory=list)

    def take_usage(self, usage: Any) -> None:
        if usage is None:
            return
        self.prompt_tokens = getattr(usage, "prompt_tokens", None)
        self.completion_tokens = getattr(usage, "completion_tokens", None)
        pd = getattr(usage, "prompt_tokens_details", None)
        cd = getattr(usage, "completion_tokens_details", None)
        self.cached_tokens = getattr(pd, "cached_tokens", None) or 0
        self.reasoning_tokens = getattr(cd, "reasoning_tokens", None) or 0
        extra = getattr(usage, "model_extra", None) or {}
        self.provider_cost = extra.get("cost")  # OpenRouter reports it

    def tokens_used(self) -> dict[str, int | None]:
        return {
            "prompt": self.prompt_tokens,
            "cached": self.cached_tokens,
            "completion": self.completion_tokens,
            "reasoning": self.reasoning_tokens,
        }


async def send(
    client: Any,
    model: str,
    body: dict[str, Any],
    timeout: float,
    answer: Answer,
    t0: float,
    clock: Callable[[], float],
    on_text: Callable[[str], None] | None,
) -> Answer:
    """Send one request and read its answer into ``answer`` (filled as it streams, so a
    failure midway still says how many tokens came)."""
    stream = bool(body.get("stream"))
    resp = await client.chat.completions.create(model=model, timeout=timeout, **body)
    if not stream:
        if not resp.choices:
            raise BadAnswer("the answer has no choices")
        choice = resp.choices[0]
        msg = getattr(choice, "message", None)
        answer.text = getattr(msg, "content", None) or ""
        answer.tool_calls = _tool_calls(getattr(msg, "tool_calls", None))
        answer.take_usage(resp.usage)
        return answer
    try:
        await _read_stream(resp, answer, t0, clock, on_text)
    finally:
        await resp.close()  # a stream left half-read (a cut, a cancel) holds its connection
    return answer


async def _read_stream(
    resp: Any,
    answer: Answer,
    t0: float,
    clock: Callable[[], float],
    on_text: Callable[[str], None] | None,
) -> None:
    """Read SSE chunks into ``answer``: text pieces, tool-call deltas, the usage chunk."""
    calls: dict[int, dict[str, Any]] = {}
    async for chunk in resp:
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            answer.take_usage(usage)
        for choice in chunk.choices or ():  # the usage chunk's choices: [] or None
            delta = choice.delta
            piece = getattr(delta, "content", None)
            if piece:
                if answer.ttft_ms is None:
                    answer.ttft_ms = (clock() - t0) * 1000
                answer.tokens += 1
                answer.parts.append(piece)
                if on_text is not None:
                    on_text(piece)
            for tc in getattr(delta, "tool_calls", None) or ():
                if answer.ttft_ms is None:
                    answer.ttft_ms = (clock() - t0) * 1000
                answer.tokens += 1
                acc = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
                acc["id"] = tc.id or acc["id"]
                fn = tc.function
                if fn is not None:
                    acc["name"] += fn.name or ""
                    acc["arguments"] += fn.arguments or ""
    answer.text = "".join(answer.parts)
    if calls:
        answer.tool_calls = [
            {
                "id": c["id"],
                "type": "function",
                "function": {"name": c["name"], "arguments": c["arguments"]},
            }
            for _, c in sorted(calls.items())
        ]


def _tool_calls(raw: Any) -> list[dict[str, Any]] | None:
    if not raw:
        return None
    return [
        {
            "id": tc.id,
            "type": "function",
            "function": {"name": tc.function.name, "arguments": tc.function.arguments},
        }
        for tc in raw
    ]


class StreamView:
    """A stream's text in one notebook output, updated in place at most every ``every``
    seconds (and once at the end). Outside a kernel it shows nothing."""

    def __init__(self, title: str, every: float = 0.1) -> None:
        self.title = title
        self.every = every
        self.text: list[str] = []
        self.updates = 0
        self._handle: Any = None
        self._drawn = 0.0

    @staticmethod
    def wanted() -> bool:
        """Whether a notebook kernel is there to show a stream."""
        import sys

        ipy = sys.modules.get("IPython")
        shell = ipy.get_ipython() if ipy is not None else None  # type: ignore[attr-defined]
        return shell is not None and hasattr(shell, "kernel")

    def restart(self, title: str) -> None:
        """A new attempt (after a failover or a restart): start the text again."""
        self.title = title
        self.text = []
        self.draw(force=True)

    def add(self, piece: str) -> None:
        self.text.append(piece)
        self.draw()

    def draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._drawn < self.every:
            return
        self._drawn = now
        from IPython.display import HTML, display

        text = html.escape("".join(self.text))
        body = (
            f"<div><b>{html.escape(self.title)}</b>"
            f"<pre style='white-space:pre-wrap;margin:2px 0'>{text}</pre></div>"
        )
        self.updates += 1
        if self._handle is None:
            self._handle = display(HTML(body), display_id=True)
        else:
            self._handle.update(HTML(body))
