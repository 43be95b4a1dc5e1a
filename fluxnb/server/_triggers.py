"""Triggers in the control plane: the server runs the trigger service (so triggers fire
with no notebook open), its firings' runs go to the worker processes, and three routes:

- ``PUT/GET/DELETE /fluxnb/api/v1/workflows/{name}/triggers/{id}``: register, read, remove;
- ``POST /fluxnb/hooks/{id}``: a webhook delivery. It takes **no Jupyter token**: the
  ``X-Fluxnb-Signature`` HMAC is the authentication, so outside services can call it. The
  handler is marked ``@allow_unauthenticated`` (Jupyter Server refuses unmarked handlers
  when ``allow_unauthenticated_access`` is off), acts as no Jupyter user, reads nothing
  but the trigger, and skips the XSRF check, which protects cookie-authenticated browser
  requests (no cookie grants anything here: without the HMAC nothing runs);
- ``POST /fluxnb/api/v1/events/{name}``: post a named event on the bus.

Firings reach ``GET /stream`` as ``firing`` events (and ``trigger_error``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated, authorized
from tornado import web

from .._exceptions import FluxError, TriggerError
from .._session import Action, current
from ..store import _registry as registry
from ..store._audit import authorize
from ..triggers import _records as rec
from ..triggers._launch import Firing, Outcome
from ..triggers._service import TriggerService
from ..triggers._watch import watch_folder
from ._base import ApiError, FluxnbHandler, not_found
from ._handlers import find
from ._workers import QueueFull

#: The stream's namespace for events of no namespace (a failed trigger pass): not a valid
#: namespace name, so no grant reads it and only admins (who read every one) see them.
ADMINS_ONLY = "*admins*"


class WorkerLauncher:
    """Runs firings in the plane's worker processes, as the trigger's namespace and tenant
    with the operator role (``user`` ``trigger:<id>`` in the audit)."""

    def __init__(self, plane: Any) -> None:
        self.plane = plane
        self._waiting: dict[str, asyncio.Future[str]] = {}

    def done(self, run_id: str, status: str) -> None:
        """A worker finished ``run_id`` (the plane tells every launcher)."""
        future = self._waiting.pop(run_id, None)
        if future is not None and not future.done():
            future.set_result(status)

    def _admit(self, firing: Firing) -> dict[str, Any]:
        from ..spec._params import declared_params

        reg = firing.trigger
        ns = reg.namespace or "default"
        wf = registry.get(self.plane.store, ns, firing.workflow)
        manifest = wf.manifest if wf is not None else reg.manifest
        if manifest is None:
            raise FluxError(
                f"trigger '{reg.id}' starts workflow '{firing.workflow}', which is not "
                f"registered in namespace '{ns}' (PUT /workflows/{firing.workflow})"
            )
        params = firing.params(declared_params(manifest, f"<workflow {firing.workflow}>"))
        if wf is not None:
            registry.record_run(self.plane.store, firing.run_id, wf, f"trigger:{reg.id}")
        return {"manifest": manifest, "params": params, "namespace": ns}

    async def launch(self, firing: Firing) -> Outcome:
        # known to GET /runs/{id} from the moment the firing is answered (a webhook's 202)
        ns = firing.trigger.namespace or "default"
        info: dict[str, Any] = {
            "workflow": firing.workflow,
            "namespace": ns,
            "kind": "run",
            "state": "queued",
        }
        self.plane.remember(firing.run_id, info)
        try:
            admitted = await asyncio.to_thread(self._admit, firing)
        except Exception as exc:
            info.update(state="rejected", error={"kind": type(exc).__name__, "message": str(exc)})
            raise
        job = {
            "run_id": firing.run_id,
            "manifest": admitted["manifest"],
            "params": admitted["params"],
            "session": _session(firing, admitted["namespace"]),
        }
        return await self._submit("run", job, firing, admitted["namespace"])

    async def resume(self, firing: Firing) -> Outcome:
        ns = firing.trigger.namespace or "default"
        job = {"run_id": firing.run_id, "force": True, "session": _session(firing, ns)}
        return await self._submit("resume", job, firing, ns)

    async def _submit(self, kind: str, job: dict[str, Any], firing: Firing, ns: str) -> Outcome:
        plane, run_id = self.plane, firing.run_id
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting[run_id] = future
        plane.start()
        plane.remember(
            run_id,
            {"job": job, "kind": kind, "workflow": firing.workflow, "namespace": ns,
             "state": "queued"},
        )  # fmt: skip
        try:
            plane.pool.submit(kind, job)
        except QueueFull:
            self._waiting.pop(run_id, None)
            return Outcome("failed", "every worker is busy and the queue is full")
        try:
            status = await future
        except asyncio.CancelledError:
            plane.pool.cancel(run_id)
            raise
        error = plane.runs.get(run_id, {}).get("error")
        message = f"{error['kind']}: {error['message']}" if isinstance(error, dict) else None
        return Outcome("failed" if status == "rejected" else status, message)


def _session(firing: Firing, namespace: str) -> tuple[str, str, str, str]:
    """Who a firing's run acts as: it bills the tenant of whoever registered the trigger
    (unless its manifest's ``router.tenant`` names one)."""
    tenant = firing.trigger.tenant or "default"
    return ("operator", tenant, namespace, f"trigger:{firing.trigger.id}")


def start_service(plane: Any) -> TriggerService:
    """The plane's trigger service, started on the running loop; firings go to the
    stream."""
    launcher = WorkerLauncher(plane)
    plane.run_listeners.append(launcher.done)
    service = TriggerService(plane.store, launcher, root=watch_root(plane))
    service.subscribe(lambda event: plane.bus.publish(event.get("namespace") or ADMINS_ONLY, event))
    asyncio.get_running_loop().create_task(service.start())
    return service


def watch_root(plane: Any) -> str:
    """The folder ``watch:`` triggers must stay under: the server's root (``plane.root``),
    else its working directory, against which relative paths resolve."""
    import os

    return str(getattr(plane, "root", None) or os.getcwd())


def _trigger_json(reg: rec.Registered) -> dict[str, Any]:
    return {
        **reg.trigger.to_dict(),
        "workflow": reg.trigger.workflow,
        "namespace": reg.namespace,
        "kind": reg.trigger.kind,
        "paused": reg.paused,
        "failures": reg.failures,
        "backoff_until": reg.backoff_until.isoformat() if reg.backoff_until else None,
        "last_error": reg.last_error,
    }


class TriggerHandler(FluxnbHandler):
    """``/workflows/{name}/triggers/{id}``: PUT a trigger (the manifest entry's keys but
    ``id``), GET it, DELETE it."""

    auth_resource = "fluxnb:workflows"

    def _visible(self, name: str, trigger_id: str) -> rec.Registered:
        reg = rec.get(self.plane.store, trigger_id)
        spaces = self.readable()
        if (
            reg is None
            or reg.trigger.workflow != name
            or (spaces is not None and (reg.namespace or "default") not in spaces)
        ):
            raise not_found("trigger", trigger_id)
        return reg

    @web.authenticated
    @authorized
    async def put(self, name: str, trigger_id: str) -> None:
        from dataclasses import replace
        from datetime import UTC, datetime

        from ..spec._triggers import read_trigger

        body = self.body()
        store, readable, root = self.plane.store, self.readable(), watch_root(self.plane)

        def save() -> tuple[rec.Registered, bool]:
            wf = find(store, readable, name)
            authorize(
                Action.RUN, store=store, workflow=name, namespace=wf.namespace,
                target=f"trigger {trigger_id}",
            )  # fmt: skip
            t = read_trigger({**body, "id": trigger_id}, source=f"<trigger {trigger_id}>")
            if t.kind == "watch":  # refused here too, not only when the server watches
                watch_folder(t, root)
            existing = rec.get(store, trigger_id)
            if existing is not None and (existing.namespace or "default") != wf.namespace:
                raise ApiError(409, "Conflict", f"trigger id '{trigger_id}' is taken")
            now = datetime.now(UTC)
            try:
                reg = rec.register(
                    store, replace(t, workflow=name), now=now, namespace=wf.namespace
                )
            except TriggerError as exc:  # the id starts another workflow
                raise ApiError(409, "Conflict", str(exc)) from None
            return reg, existing is None

        reg, new = await self.call(save)
        self.plane.wake_triggers()
        self.send({**_trigger_json(reg), "created": new}, 201 if new else 200)

    @web.authenticated
    @authorized
    async def get(self, name: str, trigger_id: str) -> None:
        reg = await self.call(self._visible, name, trigger_id)
        self.send(_trigger_json(reg))

    @web.authenticated
    @authorized
    async def delete(self, name: str, trigger_id: str) -> None:
        store = self.plane.store

        def remove() -> None:
            reg = self._visible(name, trigger_id)
            authorize(
                Action.RUN, store=store, workflow=name, namespace=reg.namespace,
                target=f"delete trigger {trigger_id}",
            )  # fmt: skip
            rec.delete(store, trigger_id)

        await self.call(remove)
        self.set_status(204)
        self.finish()


class HookHandler(FluxnbHandler):
    """``POST /fluxnb/hooks/{trigger id}``: a webhook delivery, authenticated by its
    signature alone (see the module's docstring)."""

    needs_role = False

    def check_xsrf_cookie(self) -> None:
        """No cookie authenticates this route (the HMAC does), so there is nothing for a
        cross-site request to borrow."""
        return None

    @allow_unauthenticated
    async def post(self, trigger_id: str) -> None:
        raw = self.request.body or b""
        if len(raw) > self.plane.max_body_bytes:
            raise ApiError(413, "TooLarge", f"the delivery has {len(raw)} bytes; too large")
        service = self.plane.trigger_service()
        answer = await service.webhook(trigger_id, raw, dict(self.request.headers))
        for name, value in answer.headers.items():  # Retry-After (an ApiError would drop it)
            self.set_header(name, value)
        self.send(answer.body, answer.status)


class EventHandler(FluxnbHandler):
    """``POST /events/{name}``: the body (any JSON; ``{}`` for none) is the event's data;
    every ``event: name`` trigger fires once for it."""

    auth_resource = "fluxnb:runs"

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        import json

        from ..store._event_bus import emit

        raw = self.request.body or b""
        if len(raw) > self.plane.max_body_bytes:
            raise ApiError(413, "TooLarge", f"the event has {len(raw)} bytes; too large")
        try:
            data = json.loads(raw) if raw.strip() else None
        except ValueError as exc:
            raise ApiError(400, "BadRequest", f"the body is not JSON: {exc}") from None
        store = self.plane.store

        def post() -> str:
            s = current()
            authorize(Action.RUN, store=store, namespace=s.namespace, target=f"event {name}")
            return emit(store, name, data, source="api", namespace=s.namespace)

        event_id = await self.call(post)
        self.plane.wake_triggers()
        self.send({"event_id": event_id, "name": name}, 202)
