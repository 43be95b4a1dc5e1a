"""The callable of an ``llm:`` step: its inputs fill the prompt template, then one call
through fluxnb's loop (``_call.py``) with the step's ``ctx``."""

from __future__ import annotations

from typing import Any

from ..spec._llm_spec import LLMSpec, render
from ._api import build_request, providers_of
from ._call import acall
from ._record import Budget
from ._retry import LLMRetry


class LLMStep:
    """An async step that asks an LLM (see :class:`~fluxnb.spec._llm_spec.LLMSpec`)."""

    def __init__(self, step_id: str, spec: LLMSpec) -> None:
        self.step_id = step_id
        self.spec = spec
        self.__name__ = self.__qualname__ = f"llm:{step_id}"

    def __repr__(self) -> str:  # what a trace or error names: never a key, never a prompt
        return f"<llm step {self.step_id!r}: {', '.join(self.spec.model)}>"

    async def __call__(self, ctx: Any = None, **inputs: Any) -> Any:
        s = self.spec
        request = build_request(
            render(s.prompt, inputs),
            system=None if s.system is None else render(s.system, inputs),
            max_tokens=s.max_tokens,
            temperature=s.temperature,
            response_format=s.response_format,
            tools=s.tools,
            schema=s.schema,
            stream=s.stream,
            on_stream_error=s.on_stream_error,
        )
        retry = LLMRetry(**s.retry) if s.retry else None
        reply = await acall(
            request,
            s.model,
            providers_of(s.providers),
            ctx=ctx,
            budget=Budget.of(s.budget),
            retry=retry,
        )
        return reply.output


def llm_step(step: Any) -> LLMStep:
    """The callable of a step whose body is ``llm:``."""
    return LLMStep(step.id, step.llm)
