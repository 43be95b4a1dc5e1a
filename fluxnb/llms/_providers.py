"""Providers: where OpenAI-compatible servers are, and the SDK client for each.

A provider names its API key by the environment variable that holds it (``api_key_env``),
never by value: the key is read from the environment when a client is made and lives only
inside that client, so it cannot reach the store, traces, reprs or logs.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._exceptions import LLMError

PROVIDER_KEYS = ("name", "base_url", "api_key_env", "headers", "price_as")


@dataclass(frozen=True)
class Provider:
    """One OpenAI-compatible server (OpenAI, OpenRouter, Ollama, vLLM, ...)."""

    #: The name used in candidates: ``name/model``.
    name: str
    #: The API's base URL, e.g. ``https://openrouter.ai/api/v1`` or ``http://localhost:11434/v1``.
    base_url: str
    #: The environment variable holding the API key (None: a server that needs none).
    api_key_env: str | None = None
    #: Extra HTTP headers sent with every request (not secrets: put those in the key).
    headers: Mapping[str, str] = field(default_factory=dict)
    #: Models priced as another provider's model: ``{"llama3": "openrouter/meta-llama/..."}``.
    price_as: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "/" in self.name:
            raise LLMError(
                f"a provider's name must be a non-empty string without '/', got {self.name!r}"
            )
        if not isinstance(self.base_url, str) or not self.base_url.startswith(
            ("http://", "https://")
        ):
            raise LLMError(
                f"provider '{self.name}': base_url must be an http(s) URL, got {self.base_url!r}"
            )
        if self.api_key_env is not None and not isinstance(self.api_key_env, str):
            raise LLMError(
                f"provider '{self.name}': api_key_env names an environment variable "
                f"(a string), got {type(self.api_key_env).__name__}"
            )
        for what, m in (("headers", self.headers), ("price_as", self.price_as)):
            if not isinstance(m, Mapping) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in m.items()
            ):
                raise LLMError(f"provider '{self.name}': {what} must map strings to strings")
        object.__setattr__(self, "headers", dict(self.headers))
        object.__setattr__(self, "price_as", dict(self.price_as))

    def __repr__(self) -> str:  # header values are left out: one may be a token after all
        return (
            f"Provider(name={self.name!r}, base_url={self.base_url!r}, "
            f"api_key_env={self.api_key_env!r}, headers={sorted(self.headers)!r})"
        )

    def __hash__(self) -> int:
        return hash((self.name, self.base_url, self.api_key_env))

    def api_key(self) -> str:
        """The key, read from the environment now (never stored on the provider)."""
        if self.api_key_env is None:
            return "unused"  # the SDK insists on a key; local servers ignore it
        key = os.environ.get(self.api_key_env)
        if not key:
            raise LLMError(
                f"provider '{self.name}': the environment variable {self.api_key_env} "
                "(its api_key_env) is not set; set it, or give the provider another api_key_env"
            )
        return key


#: What a provider's error text may carry of a key: "Incorrect API key provided: sk-ab***yz",
#: or a bearer token echoed back.
_KEYISH = re.compile(r"(?i)(api[ _-]?key[^:\n]{0,20}:\s*|bearer\s+)\S+|\bsk-[\w*\-]{6,}")


def scrub(text: str, provider: Provider) -> str:
    """``text`` (an error a provider sent) without its key, whole or masked."""
    key = os.environ.get(provider.api_key_env) if provider.api_key_env else None
    if key:
        text = text.replace(key, "[redacted]")
    return _KEYISH.sub(lambda m: (m.group(1) or "") + "[redacted]", text)


def read_providers(value: Any, source: str = "providers") -> tuple[Provider, ...]:
    """Providers from a list (of ``Provider`` or dicts with PROVIDER_KEYS), or a path to a
    YAML file holding such a list (or a mapping with a ``providers:`` list)."""
    if value is None:
        return ()
    if isinstance(value, str | os.PathLike) and not isinstance(value, Mapping):
        import yaml

        path = Path(value)
        try:
            data = yaml.safe_load(path.read_text())
        except OSError as exc:
            raise LLMError(
                f"cannot read the providers file {path}: {exc.strerror or exc}"
            ) from None
        if isinstance(data, Mapping):
            data = data.get("providers")
        return read_providers(data, str(path))
    if not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise LLMError(f"{source}: expected a list of providers, found {type(value).__name__}")
    out: list[Provider] = []
    for i, item in enumerate(value):
        if isinstance(item, Provider):
            out.append(item)
            continue
        if not isinstance(item, Mapping):
            raise LLMError(f"{source}[{i}]: a provider is a mapping, found {type(item).__name__}")
        unknown = [k for k in item if k not in PROVIDER_KEYS]
        if unknown:
            raise LLMError(
                f"{source}[{i}]: unknown key {unknown[0]!r}; a provider has "
                + ", ".join(PROVIDER_KEYS)
            )
        missing = [k for k in ("name", "base_url") if k not in item]
        if missing:
            raise LLMError(f"{source}[{i}]: a provider needs {missing[0]!r}")
        out.append(Provider(**{k: v for k, v in item.items() if v is not None}))
    names = [p.name for p in out]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise LLMError(f"{source}: provider '{dup}' is declared twice")
    return tuple(out)


#: One client per provider and event loop (an httpx pool belongs to the loop it ran on).
_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Provider, Any]] = (
    weakref.WeakKeyDictionary()
)
_LOCK = threading.Lock()


def client_for(provider: Provider) -> Any:
    """The ``AsyncOpenAI`` client of ``provider`` on the running loop (made once); the SDK's
    own retries are off: fluxnb's loop decides every retry."""
    loop = asyncio.get_running_loop()
    with _LOCK:
        per_loop = _CLIENTS.setdefault(loop, {})
        client = per_loop.get(provider)
    if client is None:
        try:
            from openai import AsyncOpenAI
        except ImportError:
            raise ImportError("LLM calls need the openai SDK: pip install 'fluxnb[llm]'") from None
        client = AsyncOpenAI(
            base_url=provider.base_url,
            api_key=provider.api_key(),
            max_retries=0,
            default_headers=provider.headers or None,
        )
        with _LOCK:
            client = per_loop.setdefault(provider, client)
    return client
