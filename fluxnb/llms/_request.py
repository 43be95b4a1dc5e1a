"""What an LLM call asks (``Request``), what it returns (``Reply``), and how an answer
becomes the call's output (text, parsed JSON checked against a schema, or tool calls)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ._stream import Answer, BadAnswer


@dataclass(frozen=True)
class Request:
    """What to ask: the messages and the options sent with them."""

    messages: tuple[dict[str, Any], ...]
    max_tokens: int | None = None
    temperature: float | None = None
    #: ``"text"`` or ``"json"`` (the answer is parsed; checked against ``schema`` if given).
    response_format: str = "text"
    tools: tuple[dict[str, Any], ...] | None = None
    schema: Mapping[str, Any] | None = None
    stream: bool = False
    #: ``"fail"``: a stream that breaks after its first token fails the call;
    #: ``"restart"``: it is retried from scratch (same candidate, counts as an attempt).
    on_stream_error: str = "fail"

    def body(self) -> dict[str, Any]:
        b: dict[str, Any] = {"messages": list(self.messages)}
        if self.max_tokens is not None:
            b["max_tokens"] = self.max_tokens
        if self.temperature is not None:
            b["temperature"] = self.temperature
        if self.response_format == "json":
            b["response_format"] = {"type": "json_object"}
        if self.tools:
            b["tools"] = list(self.tools)
        if self.stream:
            b["stream"] = True
            b["stream_options"] = {"include_usage": True}
        return b

    def needs(self) -> frozenset[str]:
        return frozenset(
            n
            for n, on in (
                ("json", self.response_format == "json"),
                ("tools", bool(self.tools)),
                ("stream", self.stream),
            )
            if on
        )

    def text(self) -> str:
        return "\n".join(str(m.get("content") or "") for m in self.messages)


@dataclass(frozen=True)
class Reply:
    """What a call returned, and how it got it."""

    #: The answer: its text, the parsed JSON (``response_format: json``), or
    #: ``{"text", "tool_calls"}`` when the model called tools.
    output: Any
    text: str
    tool_calls: list[dict[str, Any]] | None
    #: The candidate that answered (``provider/model``) and the resolved order.
    candidate: str
    candidates: tuple[str, ...]
    #: HTTP attempts made, over every candidate (0: a replay).
    attempts: int
    cost: Decimal | None
    cost_status: str
    usage: dict[str, int | None]


def parse(request: Request, answer: Answer) -> Any:
    """The call's output from an answer; BadAnswer when it is not what was asked."""
    if answer.tool_calls:
        return {"text": answer.text or None, "tool_calls": answer.tool_calls}
    if request.response_format != "json":
        return answer.text
    try:
        value = json.loads(answer.text)
    except ValueError as exc:
        raise BadAnswer(f"the answer is not JSON: {exc}") from None
    if request.schema is not None:
        import jsonschema

        try:
            jsonschema.validate(value, dict(request.schema))
        except jsonschema.ValidationError as exc:
            raise BadAnswer(f"the answer does not match the schema: {exc.message}") from None
    return value


def replayed(request: Request, stored: str) -> Reply:
    """A replayed call's reply, from its recorded answer (no request is sent)."""
    answer = Answer(text=stored)
    if stored.startswith('{"tool_calls"'):
        answer.tool_calls = json.loads(stored)["tool_calls"]
        answer.text = ""
    return Reply(
        parse(request, answer), answer.text, answer.tool_calls, "replay", (), 0, None, "none", {}
    )
