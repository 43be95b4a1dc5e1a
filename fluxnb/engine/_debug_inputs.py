"""Putting a recorded step's inputs into a namespace, and saying exactly what happened.

Used by :func:`fluxnb.debug`, ``RunResult.debug`` and ``%fluxdebug``. Each input becomes a
variable named like the parameter (a variable holding data is overwritten), unless that
name holds a function, a class or a module (what a notebook defines, not data: with
Hamilton-style names a dependency ``load`` is also the step function ``load``); such inputs
are left alone and reachable as ``STEP_inputs["load"]``, which always holds every input.
"""

from __future__ import annotations

import types
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BoundInputs:
    """What :func:`bind_inputs` did: facts for programs, ``str()`` for people."""

    step: str
    #: The namespace variable holding every input (``f"{step}_inputs"``).
    inputs_var: str
    #: Inputs that are now variables of their own, in parameter order.
    variables: tuple[str, ...]
    #: Inputs left alone because the name is taken: name -> what holds it ("function 'load'").
    kept: dict[str, str] = field(default_factory=dict)
    #: The step's callable's name, for the hint on how to call it again.
    fn_name: str = "fn"

    def __str__(self) -> str:
        step, var = self.step, self.inputs_var
        if not self.variables and not self.kept:
            return f"'{step}' takes no recorded inputs; call it again with: {self.fn_name}()"
        lines = [f"{step}'s recorded inputs are in {var}"]
        if self.variables:
            lines.append(f"  now variables: {', '.join(self.variables)}")
        for name, holder in self.kept.items():
            lines.append(
                f"  left alone: {name} (the name holds the {holder}); it is {var}[{name!r}]"
            )
        lines.append(f"  call it again with: {self.fn_name}(**{var})")
        return "\n".join(lines)


def _holder(value: Any) -> str | None:
    """What a name holds when debug must not overwrite it, or None when it may."""
    if isinstance(value, types.ModuleType):
        return f"module '{value.__name__}'"
    if isinstance(value, type):
        return f"class '{value.__name__}'"
    if callable(value):
        return f"function '{getattr(value, '__name__', type(value).__name__)}'"
    return None


def bind_inputs(
    namespace: dict[str, Any], step: str, inputs: dict[str, Any], fn: Any = None
) -> BoundInputs:
    """Put ``inputs`` into ``namespace`` (see the module docstring); what was done."""
    variables: list[str] = []
    kept: dict[str, str] = {}
    for name, value in inputs.items():
        old = namespace.get(name, _ABSENT)
        holder = None if old is _ABSENT else _holder(old)
        if holder is not None:
            kept[name] = holder
            continue
        namespace[name] = value
        variables.append(name)
    inputs_var = f"{step}_inputs"
    namespace[inputs_var] = inputs
    return BoundInputs(
        step,
        inputs_var,
        tuple(variables),
        kept,
        getattr(fn, "__name__", "fn"),
    )


_ABSENT = object()
