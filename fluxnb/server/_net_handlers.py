"""Routes for long-lived net instances (Circuit Breaker's model): create one from a
registered net, put tokens, fire transitions, read its marking and history.

An instance lives in the worker process that created it (``_net_state``): a net action
that blocks or crashes costs that worker, never the server. Each put and firing is recorded
in the store like any net run's, under the instance's id (its run id). An instance whose
worker ended is gone (404 saying so); its recorded firings stay.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from .._session import Action, current
from ..store._audit import authorize
from ._base import ApiError, FluxnbHandler, not_found
from ._handlers import find
from ._run_handlers import session_fields, worker_error


class _InstanceHandler(FluxnbHandler):
    auth_resource = "fluxnb:nets"

    def instance(self, instance_id: str) -> tuple[Any, str, str]:
        """(its worker, namespace, net) if the caller may read it; else 404."""
        found = self.plane.instances.get(instance_id)
        if found is None:
            raise not_found("net instance", instance_id)
        self.check_readable(found[1], "net instance", instance_id)
        if not found[0].process.is_alive():
            del self.plane.instances[instance_id]
            raise ApiError(
                404, "NotFound", f"net instance '{instance_id}' ended with its worker process "
                "(its recorded firings stay in the store; start a new instance)",
            )  # fmt: skip
        return found

    async def ask(self, kind: str, job: dict[str, Any], worker: Any = None) -> Any:
        """``(state, event, worker)`` of a net job done by ``worker``."""
        self.plane.start()
        job = {**job, "session": session_fields(self.session())}
        ok, payload, worker = await self.plane.pool.call(kind, job, worker)
        if not ok:
            raise worker_error(*payload)
        return payload["state"], payload["event"], worker

    async def act(self, instance_id: str, kind: str, job: dict[str, Any]) -> None:
        """A put or a firing, as an operator of the instance's namespace; its new state."""
        worker, namespace, name = self.instance(instance_id)
        await self.call(
            authorize,
            Action.RUN,
            store=self.plane.store,
            workflow=name,
            namespace=namespace,
            target=f"{kind} {instance_id}",
        )
        state, event, _ = await self.ask(kind, {**job, "instance_id": instance_id}, worker)
        self.plane.bus.publish(
            namespace, {"type": "net.firing", "instance_id": instance_id, "net": name, **event}
        )
        self.send(state)


class InstancesHandler(_InstanceHandler):
    """POST /nets/{name}/instances: a new instance of the registered net (201)."""

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        body = self.body()
        tenant = body.get("tenant")
        if tenant is not None and not isinstance(tenant, str):
            raise ApiError(422, "BadRequest", "'tenant' must be a tenant name")
        plane, readable = self.plane, self.readable()

        def check() -> Any:
            wf = find(plane.store, readable, name)
            if wf.kind != "net":
                raise ApiError(
                    422, "BadRequest", f"'{name}' is a DAG workflow; start it with POST "
                    f"/workflows/{name}/runs (instances are for nets)",
                )  # fmt: skip
            if current().namespace != wf.namespace:
                raise not_found("workflow", name)
            authorize(Action.RUN, store=plane.store, workflow=name, namespace=wf.namespace)
            return wf

        wf = await self.call(check)
        job = {"manifest": wf.manifest, "tenant": tenant, "namespace": wf.namespace, "net": name}
        state, _, worker = await self.ask("net.create", job)
        instance_id = state["instance_id"]
        self.plane.instances[instance_id] = (worker, wf.namespace, name)
        self.plane.bus.publish(
            wf.namespace, {"type": "net.created", "instance_id": instance_id, "net": name}
        )
        self.send(state, 201)


class InstanceHandler(_InstanceHandler):
    @web.authenticated
    @authorized
    async def get(self, instance_id: str) -> None:
        worker, _, _ = self.instance(instance_id)
        state, _, _ = await self.ask("net.get", {"instance_id": instance_id}, worker)
        self.send(state)


class TokensHandler(_InstanceHandler):
    """POST /instances/{id}/tokens ``{"place", "data"}``: put a token (an external event)."""

    @web.authenticated
    @authorized
    async def post(self, instance_id: str) -> None:
        body = self.body()
        place = body.get("place")
        if not isinstance(place, str):
            raise ApiError(422, "BadRequest", "the body needs 'place': where the token goes")
        await self.act(instance_id, "net.put", {"place": place, "data": body.get("data")})


class FireHandler(_InstanceHandler):
    """POST /instances/{id}/fire ``{"transition", "data"}``: fire it now (409 if it is not
    enabled, saying why)."""

    @web.authenticated
    @authorized
    async def post(self, instance_id: str) -> None:
        body = self.body()
        transition = body.get("transition")
        if not isinstance(transition, str):
            raise ApiError(422, "BadRequest", "the body needs 'transition': what to fire")
        job = {"transition": transition, "data": body.get("data")}
        await self.act(instance_id, "net.fire", job)
