"""A step's manifest keys as an editor needs them: type, allowed values, default, help.

The keys are the validator's own (``AGENT_KEYS``, ``STEP_KEYS``, ``RETRY_KEYS`` and
``BREAKER_KEYS`` of ``_manifest``), so a key the validator learns appears here too; the
allowed values are its constants (``BACKOFFS``, ``STRATEGIES``), the defaults those of the
option records (``RetryPolicy``, ``CircuitBreakerSettings``), and the help text the ``#:``
comment above each field of ``Step``, ``RetryPolicy`` and ``CircuitBreakerSettings``.

>>> f = {f.key: f for f in step_fields()}
>>> f["retry.backoff"].choices
('none', 'linear', 'exponential', 'exponential_jitter')
>>> f["retry.max_attempts"].default, f["retry.max_attempts"].group
(1, 'resilience')
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import textwrap
from dataclasses import dataclass
from typing import Any

from ._durations import DURATION_HELP

#: The kinds of value an editor offers: a text box, a whole number, a duration, a choice
#: from ``choices``, a YAML value (a mapping for ``with``), a list of names, a callable's
#: name, or an activation policy (a choice with its own argument).
KINDS = ("text", "int", "duration", "choice", "yaml", "names", "callable", "activation")
GROUPS = ("basics", "resilience", "advanced")
#: Activation policies (``activation:`` of a pipeline entry; spec/_activation.py).
ACTIVATIONS = ("all", "any", "batch", "window", "custom")


@dataclass(frozen=True)
class StepField:
    """One manifest key of a step, as the designer's inspector shows it."""

    #: The key, dotted when nested (``retry.max_attempts``).
    key: str
    #: One of ``KINDS``.
    kind: str
    #: One of ``GROUPS``: where the inspector puts it.
    group: str
    #: What the key means (from the option record's doc comment where there is one).
    help: str
    #: The values a ``choice`` allows.
    choices: tuple[str, ...] = ()
    #: What applies when the key is not set (None: nothing, or "see help").
    default: Any = None
    #: The smallest value an ``int`` allows.
    minimum: int | None = None
    #: Where the key goes in a manifest: ``agent`` (``agents:``), ``step`` (the
    #: ``pipeline:`` entry) or ``transition`` (a net's transition).
    place: str = "agent"

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"choices": list(self.choices)}


# what the validator checks each key as (``_manifest``'s reader), where the key name alone
# does not say; everything else is text
_KINDS: dict[str, tuple[str, tuple[str, ...], int | None]] = {
    "run": ("callable", (), None),
    "with": ("yaml", (), None),
    "default": ("yaml", (), None),
    "llm": ("yaml", (), None),  # a mapping: model, prompt, ... (docs/llm.md)
    "timeout": ("duration", (), None),
    "on_error": ("choice", ("stop", "continue", "skip", "retry"), None),
    "executor": ("choice", ("local", "dask"), None),
    "cache": ("choice", ("use", "refresh", "off"), None),
    "cache_inputs": ("names", (), None),
    "activation": ("activation", ACTIVATIONS, None),
    "capacity": ("int", (), 1),
    "keep": ("choice", ("all", "last"), None),
    "retry.max_attempts": ("int", (), 1),
    "retry.initial_delay": ("duration", (), None),
    "retry.max_delay": ("duration", (), None),
    "retry.retry_on": ("names", (), None),
    "retry.no_retry_on": ("names", (), None),
    "circuit_breaker.failure_threshold": ("int", (), 1),
    "circuit_breaker.reset_timeout": ("duration", (), None),
    "circuit_breaker.probe_timeout": ("duration", (), None),
}
_BASICS = ("run", "with", "activation", "description")
_RESILIENCE = ("retry", "timeout", "on_error", "circuit_breaker", "default")
# help for keys no option record documents
_HELP = {
    "run": "The function this step calls: a name in the notebook, or module:function. "
    "Empty: a function named like the step.",
    "with": "Constant keyword arguments, e.g. {threshold: 100}; the other parameters come "
    "from the steps this one depends on.",
    "description": "Free text shown in tables and the designer.",
    "activation": "When a step fed by a stream runs: all (one item of each input), any (as "
    "soon as one input has an item), batch N, window (at most once per interval), custom "
    "(module:function).",
    "on_error": "What the run does when this step fails for good: stop, continue (skip what "
    "depends on it), skip (use its default), retry (by its policy, then stop).",
    "timeout": f"How long the step may take: {DURATION_HELP}.",
}


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """The ``#:`` comments above the fields of a dataclass, by field name (one line)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):  # no source (a frozen app): no help text, not an error
        return {}
    lines = source.splitlines()
    out = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            above: list[str] = []
            i = node.lineno - 2
            while i >= 0 and lines[i].strip().startswith("#:"):
                above.insert(0, lines[i].strip()[2:].strip())
                i -= 1
            if above:
                out[node.target.id] = " ".join(above).replace("``", "")
    return out


def _default(obj: Any, name: str) -> Any:
    value = getattr(obj, name, None)
    return None if value == () else value


@functools.cache
def step_fields() -> tuple[StepField, ...]:
    """Every key a DAG step can set, in the validator's order, grouped for an editor."""
    from ._manifest import AGENT_KEYS, BREAKER_KEYS, RETRY_KEYS, STEP_KEYS
    from ._model import Step
    from ._options import BACKOFFS, STRATEGIES, CircuitBreakerSettings, RetryPolicy

    kinds = dict(_KINDS)
    kinds["on_error"] = ("choice", STRATEGIES, None)
    kinds["retry.backoff"] = ("choice", BACKOFFS, None)
    docs = {f"{'with_' if k == 'with' else k}": v for k, v in field_docs(Step).items()}
    nested = {
        "retry": (RETRY_KEYS, field_docs(RetryPolicy), RetryPolicy()),
        "circuit_breaker": (
            BREAKER_KEYS,
            field_docs(CircuitBreakerSettings),
            CircuitBreakerSettings(),
        ),
    }
    keys: list[tuple[str, str, Any, str]] = []  # key, place, default, help
    pipeline = [k for k in STEP_KEYS if k not in ("step", "depends_on")]
    if "activation" not in pipeline:  # the editor offers it before the validator reads it
        pipeline.append("activation")
    for k in pipeline:
        keys.append((k, "step", None, docs.get("with_" if k == "with" else k, "")))
    for k in AGENT_KEYS:
        if k in ("id", "description") or k in pipeline:
            continue
        if k in nested:
            subkeys, subdocs, defaults = nested[k]
            for s in subkeys:
                keys.append((f"{k}.{s}", "agent", _default(defaults, s), subdocs.get(s, "")))
        else:
            keys.append((k, "agent", None, docs.get(k, "")))
    out = []
    for key, place, default, doc in keys:
        root = key.split(".", maxsplit=1)[0]
        kind, choices, minimum = kinds.get(key, ("text", (), None))
        group = "basics" if root in _BASICS else "resilience" if root in _RESILIENCE else "advanced"
        help_text = _HELP.get(key) or doc or f"The manifest key '{key}' (see docs/manifest.md)."
        out.append(StepField(key, kind, group, help_text, tuple(choices), default, minimum, place))
    order = {g: i for i, g in enumerate(GROUPS)}
    first = {k: i for i, k in enumerate(_BASICS)}
    return tuple(sorted(out, key=lambda f: (order[f.group], first.get(f.key, len(first)))))


@functools.cache
def transition_fields() -> tuple[StepField, ...]:
    """The keys only a net's transition has (``guard``, ``priority``, ``external``); the
    ones it shares with a step (``run``, ``timeout``, ``on_error``, ...) are the step's."""
    from ._net import Transition

    docs = field_docs(Transition)
    return (
        StepField("guard", "text", "basics", docs.get("guard", ""), place="transition"),
        StepField(
            "priority", "int", "basics", docs.get("priority", ""), default=0, place="transition"
        ),
        StepField(
            "external",
            "choice",
            "basics",
            docs.get("external", ""),
            choices=("true", "false"),
            default=False,
            place="transition",
        ),
    )
