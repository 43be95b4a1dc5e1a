"""A fake OpenAI-compatible server on 127.0.0.1, for tests, tutorials and benchmarks.

It speaks enough of the Chat Completions protocol for the official SDK: JSON answers,
Server-Sent Events (with the usage chunk last, its ``choices`` ``[]`` or ``null``), error
statuses with ``Retry-After``, stalls and streams cut short. Standard library only.

>>> with FakeLLMServer() as srv:                         # doctest: +SKIP
...     srv.script("gpt-x", reply(status=429, retry_after=0), reply(text="hi"))
...     srv.url                                          # 'http://127.0.0.1:PORT/v1'

Each model has a queue of scripted replies; when it is empty the server answers with
``default`` (by default: "echo: " and the prompt's first words).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def reply(
    text: str = "ok",
    *,
    status: int = 200,
    retry_after: float | None = None,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    cached_tokens: int = 0,
    reasoning_tokens: int = 0,
    cost: float | None = None,
    stall: float = 0.0,
    cut_after: int | None = None,
    usage_choices: str = "[]",
    error: str | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    raw: bytes | None = None,
) -> dict[str, Any]:
    """One scripted reply.

    Args:
        text: the answer (streamed word by word when the request streams).
        status: the HTTP status; not 200 sends an OpenAI-style error body (``error``).
        retry_after: a ``Retry-After`` header, in seconds.
        prompt_tokens, completion_tokens: usage to report (default: word counts).
        cached_tokens, reasoning_tokens: reported in the usage details.
        cost: a provider-reported cost (``usage.cost``, as OpenRouter reports it).
        stall: seconds to wait before answering at all (past a read timeout).
        cut_after: a stream ends abruptly after this many tokens (no usage, no [DONE]).
        usage_choices: ``"[]"`` or ``"null"``: the usage chunk's ``choices``.
        tool_calls: ``[{"name": ..., "arguments": "{...}"}]``: the model calls tools
            (streamed as one delta per call, its arguments in two pieces).
        raw: send these bytes as a 200 JSON body instead (a broken proxy's answer).
    """
    return {k: v for k, v in locals().items()}


class FakeLLMServer:
    """The server; ``url`` is its base URL (``.../v1``). Use as a context manager."""

    def __init__(self, default: dict[str, Any] | None = None) -> None:
        self.default = default
        self._queues: dict[str, deque[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        #: Every request received: ``{"model", "stream", "body", "auth"}``, in order.
        self.requests: list[dict[str, Any]] = []
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fluxnb-fake-llm", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}/v1"

    def script(self, model: str, *replies: dict[str, Any]) -> None:
        """Queue ``replies`` for requests naming ``model``, first to last."""
        with self._lock:
            self._queues.setdefault(model, deque()).extend(replies)

    def next_reply(self, model: str, prompt: str) -> dict[str, Any]:
        with self._lock:
            q = self._queues.get(model)
            if q:
                return q.popleft()
        if self.default is not None:
            return self.default
        return reply("echo: " + " ".join(prompt.split()[:8]))

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeLLMServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _usage(r: dict[str, Any], prompt: str, text: str) -> dict[str, Any]:
    usage: dict[str, Any] = {
        "prompt_tokens": r["prompt_tokens"]
        if r["prompt_tokens"] is not None
        else len(prompt.split()),
        "completion_tokens": (
            r["completion_tokens"] if r["completion_tokens"] is not None else len(text.split())
        ),
        "prompt_tokens_details": {"cached_tokens": r["cached_tokens"]},
        "completion_tokens_details": {"reasoning_tokens": r["reasoning_tokens"]},
    }
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    if r["cost"] is not None:
        usage["cost"] = r["cost"]
    return usage


def _calls(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """Scripted tool calls in the wire's shape."""
    if not tools:
        return None
    return [
        {
            "id": f"call_{i}",
            "type": "function",
            "function": {"name": t["name"], "arguments": t.get("arguments", "{}")},
        }
        for i, t in enumerate(tools)
    ]


def _handler(server: FakeLLMServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # SSE chunks go out at once, not 40 ms later

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: tests and notebooks read their own output

        def do_POST(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(n) or b"{}")
            model = str(body.get("model", ""))
            messages = body.get("messages") or []
            prompt = " ".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
            stream = bool(body.get("stream"))
            server.requests.append(
                {
                    "model": model,
                    "stream": stream,
                    "body": body,
                    "auth": self.headers.get("Authorization"),
                }
            )
            r = server.next_reply(model, prompt)
            if r["stall"] and server._closing.wait(r["stall"]):
                return
            if r["status"] != 200:
                return self._error(r)
            if r["raw"] is not None:
                return self._send(200, r["raw"], "application/json")
            if stream:
                return self._stream(r, model, prompt)
            text = r["text"]
            payload = {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {
                            "role": "assistant",
                            "content": None if r["tool_calls"] else text,
                            "tool_calls": _calls(r["tool_calls"]),
                        },
                    }
                ],
                "usage": _usage(r, prompt, text),
            }
            self._send(200, json.dumps(payload).encode(), "application/json")

        def _send(self, status: int, data: bytes, ctype: str, extra: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, r: dict[str, Any]) -> None:
            msg = r["error"] or f"fake error {r['status']}"
            data = json.dumps({"error": {"message": msg, "type": "fake", "code": None}})
            extra = {} if r["retry_after"] is None else {"Retry-After": str(r["retry_after"])}
            self._send(r["status"], data.encode(), "application/json", extra)

        def _chunk(self, obj: Any) -> None:
            data = b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode())
            data += b"\n\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        def _stream(self, r: dict[str, Any], model: str, prompt: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            words = [] if r["tool_calls"] else r["text"].split(" ")
            base = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
            }
            for i, w in enumerate(words):
                if r["cut_after"] is not None and i >= r["cut_after"]:
                    self.close_connection = True
                    self.wfile.flush()
                    self.connection.shutdown(2)  # the cut: no usage, no [DONE], no last chunk
                    return
                piece = w if i == 0 else " " + w
                delta = {"content": piece, **({"role": "assistant"} if i == 0 else {})}
                self._chunk(
                    {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                )
            for i, call in enumerate(_calls(r["tool_calls"]) or ()):
                args = call["function"]["arguments"]
                half = len(args) // 2
                for j, piece in enumerate((args[:half], args[half:])):
                    tc: dict[str, Any] = {"index": i, "function": {"arguments": piece}}
                    if j == 0:
                        tc.update(id=call["id"], type="function")
                        tc["function"]["name"] = call["function"]["name"]
                    self._chunk({**base, "choices": [{"index": 0, "delta": {"tool_calls": [tc]}}]})
            self._chunk({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            usage = _usage(r, prompt, r["text"])
            choices: list[Any] | None = None if r["usage_choices"] == "null" else []
            self._chunk({**base, "choices": choices, "usage": usage})
            self._chunk(b"[DONE]")
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

    return Handler
