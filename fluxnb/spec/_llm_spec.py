"""An LLM step in a manifest: ``llm:`` on a pipeline step, ``providers:`` and ``budget:``
at the top. Parsing and checking only (what runs it lives in ``fluxnb/llms``).

```yaml
providers:
  - {name: openai, base_url: https://api.openai.com/v1, api_key_env: OPENAI_API_KEY}
budget: {per_run: 0.50}
pipeline:
  - step: doc
  - step: summarise
    depends_on: [doc]
    llm:
      model: [openai/gpt-4o-mini, cost-optimal]
      system: You are terse.
      prompt: "Summarise in one line: {{doc}}"
      max_tokens: 100
```

A prompt (and the system message) is a template: ``{{name}}`` is replaced by the step's
input ``name`` (a dependency's output or a ``with:`` value), nothing else — no
expressions, no attribute access, no code. Run parameters fill a manifest before it is
parsed, but never inside an LLM prompt: pass one in through ``with:``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ._checker import MISSING, Checker, kind_of

if TYPE_CHECKING:
    from ._located import Located, Path
    from ._model import Workflow

#: ``{{name}}`` in a prompt template (spaces inside the braces allowed).
SLOT = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
LLM_KEYS = (
    "model",
    "prompt",
    "system",
    "max_tokens",
    "temperature",
    "response_format",
    "tools",
    "schema",
    "stream",
    "on_stream_error",
    "retry",
)
#: ``llm.retry:``: fluxnb's retry loop for the step's HTTP attempts (LLMRetry's fields).
LLM_RETRY_KEYS = ("max_attempts", "initial_delay", "max_delay", "retry_after_cap", "timeout")
PROVIDER_KEYS = ("name", "base_url", "api_key_env", "headers", "price_as")
BUDGET_KEYS = ("per_run", "per_tenant")


@dataclass(frozen=True)
class LLMSpec:
    """What an ``llm:`` step asks (the manifest's keys, checked)."""

    #: Candidates in order (``provider/model``, ``auto``, ``cost-optimal``).
    model: tuple[str, ...]
    #: The user message template.
    prompt: str
    system: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    #: ``text`` or ``json``.
    response_format: str = "text"
    tools: tuple[Any, ...] | None = None
    #: A JSON Schema the parsed answer must match (implies ``response_format: json``).
    schema: Mapping[str, Any] | None = None
    stream: bool = False
    #: ``fail`` or ``restart``.
    on_stream_error: str = "fail"
    #: The HTTP attempts' retry settings (``LLM_RETRY_KEYS``, seconds); None: the defaults.
    retry: Mapping[str, Any] | None = None
    #: The manifest's ``providers:`` (dicts as written, or a file's path).
    providers: Any = field(default=None, compare=False)
    #: The manifest's ``budget:`` mapping.
    budget: Mapping[str, Any] | None = field(default=None, compare=False)

    def slots(self) -> list[str]:
        """The input names the templates use, in order of first use."""
        names = [m.group(1) for t in (self.system or "", self.prompt) for m in SLOT.finditer(t)]
        return list(dict.fromkeys(names))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"model": self.model[0] if len(self.model) == 1 else list(self.model)}
        out["prompt"] = self.prompt
        for key in LLM_KEYS[2:]:
            v = getattr(self, key)
            if v is not None and v != getattr(LLMSpec, key, None):
                out[key] = list(v) if isinstance(v, tuple) else dict(v) if key == "retry" else v
        return out


def render(template: str, values: Mapping[str, Any]) -> str:
    """``template`` with each ``{{name}}`` replaced by ``values[name]`` (text as is, other
    values as JSON). Only names: the text of a value is never read as a template again."""

    def one(m: re.Match[str]) -> str:
        v = values[m.group(1)]
        if isinstance(v, str):
            return v
        try:
            return json.dumps(v, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            return str(v)

    return SLOT.sub(one, template)


def template_positions(doc: Located) -> set[tuple[int, int]]:
    """Where the prompt and system templates of ``llm:`` steps start (1-based line,
    column): run parameters leave them alone."""
    data = doc.data
    out: set[tuple[int, int]] = set()
    pipeline = data.get("pipeline") if isinstance(data, dict) else None
    for i, item in enumerate(pipeline if isinstance(pipeline, list) else []):
        llm = item.get("llm") if isinstance(item, dict) else None
        if isinstance(llm, dict):
            for key in ("prompt", "system"):
                pos = doc.positions.get(("pipeline", i, "llm", key))
                if pos is not None and pos[0] is not None:
                    out.add((pos[0], pos[1] or 0))
    return out


def attach_llm_steps(c: Checker, top: Mapping[str, Any], wf: Workflow) -> None:
    """Read ``providers:``, ``budget:`` and every step's ``llm:`` into the workflow's
    steps (problems go to ``c``)."""
    providers = _read_providers(c, top.get("providers"))
    budget = _read_budget(c, top.get("budget"))
    pipeline = top.get("pipeline")
    used = False
    for i, item in enumerate(pipeline if isinstance(pipeline, list) else []):
        if not isinstance(item, dict) or item.get("llm") is None:
            continue
        sid = item.get("step")
        step = wf._steps.get(sid) if isinstance(sid, str) else None
        path: Path = ("pipeline", i, "llm")
        spec = _read_llm(c, item["llm"], path, providers, budget)
        if spec is None or step is None:
            continue
        used = True
        inputs = set(step.depends_on) | set(step.with_)
        for name in spec.slots():
            if name not in inputs:
                c.add(
                    "bad_value",
                    (*path, "prompt"),
                    f"step '{sid}': the prompt uses {{{{{name}}}}}, which is not an input of "
                    f"the step; add '{name}' to depends_on or to with:"
                    + (f" (inputs: {', '.join(sorted(inputs))})" if inputs else ""),
                    found=name,
                )
        wf._steps[step.id] = replace(step, llm=spec)
    if not used and (top.get("providers") is not None or top.get("budget") is not None):
        c.add(
            "bad_value",
            ("providers",),
            "providers:/budget: are given but no step has llm:",
            key=True,
        )


def _read_llm(c: Checker, raw: Any, path: Path, providers: Any, budget: Any) -> LLMSpec | None:
    m = c.mapping(raw, path, LLM_KEYS, "llm")
    if not isinstance(raw, dict):
        return None
    model = m.get("model")
    if isinstance(model, str):
        model = [model]
    if not isinstance(model, list) or not model or not all(isinstance(x, str) and x for x in model):
        c.add(
            "wrong_type" if "model" in m else "missing_key",
            (*path, "model"),
            "llm.model is 'provider/model', a list of them, 'auto' or 'cost-optimal'",
            expected="provider/model",
            found=m.get("model"),
        )
        return None
    prompt = m.get("prompt")
    if not isinstance(prompt, str):
        c.add(
            "wrong_type" if "prompt" in m else "missing_key",
            (*path, "prompt"),
            "llm.prompt must be text (a template with {{input}} slots), "
            f"found {kind_of(prompt)}",
            expected="text",
            found=prompt,
        )
        return None
    system = c.get(m, "system", path, c.string)
    max_tokens = c.get(m, "max_tokens", path, c.integer(1))
    fmt = c.get(m, "response_format", path, c.choice(("text", "json")))
    ose = c.get(m, "on_stream_error", path, c.choice(("fail", "restart")))
    temp = m.get("temperature")
    if temp is not None and (isinstance(temp, bool) or not isinstance(temp, int | float)):
        c.add(
            "wrong_type",
            (*path, "temperature"),
            f"llm.temperature must be a number, found {kind_of(temp)}",
        )
        temp = None
    stream = m.get("stream", False)
    if not isinstance(stream, bool):
        c.add(
            "wrong_type",
            (*path, "stream"),
            f"llm.stream must be true or false, found {kind_of(stream)}",
        )
        stream = False
    tools = m.get("tools")
    if tools is not None and not (
        isinstance(tools, list) and all(isinstance(t, dict) for t in tools)
    ):
        c.add(
            "wrong_type",
            (*path, "tools"),
            "llm.tools must be a list of tool definitions (mappings)",
        )
        tools = None
    schema = m.get("schema")
    if schema is not None and not isinstance(schema, dict):
        c.add("wrong_type", (*path, "schema"), "llm.schema must be a JSON Schema (a mapping)")
        schema = None
    return LLMSpec(
        tuple(model),
        prompt,
        None if system is MISSING else system,
        None if max_tokens is MISSING else max_tokens,
        None if temp is None else float(temp),
        "json" if schema is not None else ("text" if fmt is MISSING else fmt),
        None if tools is None else tuple(tools),
        schema,
        stream,
        "fail" if ose is MISSING else ose,
        _read_retry(c, m.get("retry"), (*path, "retry")),
        providers,
        budget,
    )


def _read_retry(c: Checker, raw: Any, rp: Path) -> Mapping[str, Any] | None:
    if raw is None:
        return None
    r = c.mapping(raw, rp, LLM_RETRY_KEYS, "llm.retry")
    out = {}
    for key in LLM_RETRY_KEYS:
        v = c.get(r, key, rp, c.integer(1) if key == "max_attempts" else c.duration)
        if v is not MISSING:
            out[key] = v
    return out or None


def _read_providers(c: Checker, raw: Any) -> Any:
    if raw is None or isinstance(raw, str):
        return raw  # absent, or a providers file read when the step runs
    if not isinstance(raw, list):
        c.add(
            "wrong_type",
            ("providers",),
            f"providers must be a list (or a file's path), found {kind_of(raw)}",
        )
        return None
    out = []
    for i, p in enumerate(raw):
        m = c.mapping(p, ("providers", i), (*PROVIDER_KEYS, "api_key"), f"providers[{i}]")
        if not isinstance(p, dict):
            continue
        for key in ("name", "base_url"):
            if not isinstance(m.get(key), str):
                c.add(
                    "missing_key" if key not in m else "wrong_type",
                    ("providers", i, key),
                    f"providers[{i}] needs {key} (text)",
                    expected=key,
                )
        if "api_key" in p:  # never written down: say where it goes instead
            c.add(
                "bad_value",
                ("providers", i, "api_key"),
                "a manifest never holds an API key: name the environment variable that "
                "holds it with api_key_env",
                key=True,
            )
        out.append(dict(p))
    return tuple(out)


def _read_budget(c: Checker, raw: Any) -> Mapping[str, Any] | None:
    if raw is None:
        return None
    m = c.mapping(raw, ("budget",), BUDGET_KEYS, "budget")
    out = {}
    for key in BUDGET_KEYS:
        v = m.get(key)
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int | float | str) or not _amount(v):
            c.add(
                "wrong_type",
                ("budget", key),
                f"budget.{key} must be an amount in USD (like 0.50), found {v!r}",
            )
            continue
        out[key] = str(v)
    return out or None


def _amount(v: Any) -> bool:
    """Whether ``v`` reads as a non-negative finite amount (``0.50``, ``"20"``)."""
    from decimal import Decimal, InvalidOperation

    try:
        d = Decimal(str(v))
    except InvalidOperation:
        return False
    return d.is_finite() and d >= 0
