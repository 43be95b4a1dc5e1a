"""LLM calls as first-class steps: OpenAI-compatible providers, failover, cost routing,
streaming, and metering to the cent (docs/llm.md).

Needs the ``llm`` extra (``pip install 'fluxnb[llm]'``) when a call is made; importing
this package does not import the SDK.
"""

from __future__ import annotations

from ._api import allm, llm
from ._fake import FakeLLMServer, reply
from ._prices import Price, PriceBook
from ._providers import Provider
from ._record import Budget
from ._request import Reply, Request
from ._retry import LLMRetry
from ._routing import Candidate

__all__ = [
    "Budget",
    "Candidate",
    "FakeLLMServer",
    "LLMRetry",
    "Price",
    "PriceBook",
    "Provider",
    "Reply",
    "Request",
    "allm",
    "llm",
    "reply",
]
