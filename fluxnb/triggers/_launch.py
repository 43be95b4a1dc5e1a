"""Launchers: how the trigger service starts the run of a firing.

The service decides *whether* and *when* a firing runs and records it; a launcher runs it.
:class:`LocalLauncher` runs the workflow on the service's own event loop (standalone use,
tests); the control plane passes one that uses its worker processes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from .._exceptions import FluxError
from ._records import Registered


@dataclass(frozen=True)
class Firing:
    """One firing about to run: its key, trigger, run id and the facts it brings."""

    key: str
    trigger: Registered
    run_id: str
    scheduled_for: datetime | None = None
    #: What this firing knows: ``scheduled_for``, ``paths``, ``body`` and ``delivery``,
    #: ``upstream_run``/``upstream_status``/``outputs``, ``event``/``data``.
    facts: Mapping[str, Any] = field(default_factory=dict)

    @property
    def workflow(self) -> str:
        return str(self.trigger.trigger.workflow)

    def params(self, declared: Mapping[str, Any] | None) -> dict[str, Any]:
        """The run's params: the trigger's fixed ``params``, then the facts the workflow
        declares under ``params:`` (a fact it does not declare is not passed: it would be
        an unknown param)."""
        out = dict(self.trigger.trigger.params)
        if declared is not None:
            out.update({k: v for k, v in self.facts.items() if k in declared})
        return out


@dataclass(frozen=True)
class Outcome:
    """How a firing's run ended: ``succeeded``, ``failed`` or ``cancelled``."""

    status: str
    error: str | None = None


class Launcher(Protocol):
    """Runs firings. ``launch`` runs a new run with ``firing.run_id`` to its end;
    ``resume`` continues one its process left unfinished (killed mid-run)."""

    async def launch(self, firing: Firing) -> Outcome: ...

    async def resume(self, firing: Firing) -> Outcome: ...


class LocalLauncher:
    """Runs firings in this process with :func:`fluxnb.arun`.

    Args:
        store: where runs are recorded (the service's store).
        workflows: manifests (text, path, dict or Workflow) by workflow name; a trigger
            registered with its manifest (``fluxnb.trigger(wf, ...)``) needs none.
        namespace: where step callables are looked up (``module:function`` works anyway).
    """

    def __init__(
        self,
        store: Any,
        workflows: Mapping[str, Any] | None = None,
        namespace: Mapping[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.workflows = dict(workflows or {})
        self.namespace = namespace

    def manifest(self, firing: Firing) -> Any:
        """The manifest of the firing's workflow: given here, stored with the trigger, or
        registered with the control plane."""
        name = firing.workflow
        if name in self.workflows:
            return self.workflows[name]
        if firing.trigger.manifest:
            return firing.trigger.manifest
        try:
            from ..store import _registry
        except ImportError:  # pragma: no cover - a build without the control plane
            _registry = None  # type: ignore[assignment]
        if _registry is not None:
            found = _registry.get(self.store, firing.trigger.namespace or "default", name)
            if found is not None:
                return found.manifest
        raise FluxError(
            f"trigger '{firing.trigger.id}' starts workflow '{name}', which this service "
            "does not know: register the workflow (PUT /workflows/{name}), pass it to "
            "LocalLauncher(workflows=...), or register the trigger with its manifest"
        )

    async def launch(self, firing: Firing) -> Outcome:
        from ..engine import arun
        from ..spec._params import declared_params

        manifest = self.manifest(firing)
        params: dict[str, Any] = {}
        if isinstance(manifest, str):
            from ..spec._manifest import read_source

            text, source, _ = read_source(manifest, None)
            params = firing.params(declared_params(text, source))
            manifest = text
        with _as_registered(firing):
            result = await arun(
                manifest, self.namespace, store=self.store, run_id=firing.run_id, params=params
            )
        return _outcome(result)

    async def resume(self, firing: Firing) -> Outcome:
        from ..engine import aresume

        return _outcome(await aresume(firing.run_id, self.namespace, store=self.store))


def _as_registered(firing: Firing) -> Any:
    """Act as this process's session, billing the tenant that registered the trigger."""
    from dataclasses import replace

    from .._session import acting, current

    s = current()
    return acting(replace(s, tenant=firing.trigger.tenant or s.tenant))


def _outcome(result: Any) -> Outcome:
    errors = getattr(result, "errors", {}) or {}
    error = "; ".join(f"{step}: {err}" for step, err in errors.items()) or None
    return Outcome(str(result.status), error)
