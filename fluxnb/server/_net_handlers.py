"""Routes for long-lived net instances (Circuit Breaker's model): create one from a
registered net, put tokens, fire transitions, read its marking and history.

An instance is a ``fluxnb.interactive`` net run held by the server; each put and firing is
recorded in the store like any net run's, under the instance's id (its run id).
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from .._session import Action, current
from ..engine import Token
from ..store._audit import authorize
from ._base import ApiError, FluxnbHandler, not_found
from ._handlers import find
from ._run_handlers import plain


def _json(value: Any) -> Any:
    """Token data as JSON takes it (anything else as its repr)."""
    if value is None or isinstance(value, str | int | float | bool):
        return plain(value)
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, Token):
        return {"id": value.id, "data": _json(value.data)}
    return repr(value)


def describe(instance_id: str, run: Any, namespace: str, name: str) -> dict[str, Any]:
    history = [
        {
            "seq": f.seq,
            "transition": f.transition,
            "status": str(f.status),
            "consumed": _json(getattr(f, "consumed", None)),
            "produced": _json(getattr(f, "produced", None)),
        }
        for f in run.firings
    ]
    return {
        "instance_id": instance_id,
        "net": name,
        "namespace": namespace,
        "status": str(run.status),
        "marking": dict(run.marking),
        "tokens": _json(run.tokens()),
        "enabled": list(run.enabled()),
        "history": history,
    }


class _InstanceHandler(FluxnbHandler):
    auth_resource = "fluxnb:nets"

    def instance(self, instance_id: str) -> tuple[Any, str, str]:
        found = self.plane.instances.get(instance_id)
        if found is None:
            raise not_found("net instance", instance_id)
        self.check_readable(found[1], "net instance", instance_id)
        return found

    async def act(self, instance_id: str, what: str, change: Any) -> None:
        """Do ``change(run)`` as an operator of the instance's namespace; its new state."""
        run, namespace, name = self.instance(instance_id)
        store = self.plane.store

        def work() -> dict[str, Any]:
            from ..engine import NotEnabled

            authorize(
                Action.RUN,
                store=store,
                workflow=name,
                namespace=namespace,
                target=f"{what} {instance_id}",
            )
            try:
                event = change(run)
            except NotEnabled as exc:
                raise ApiError(409, "NotEnabled", str(exc)) from None
            except (KeyError, ValueError) as exc:
                raise ApiError(422, "BadRequest", str(exc)) from None
            return {"event": event, "state": describe(instance_id, run, namespace, name)}

        out = await self.call(work)
        self.plane.bus.publish(
            namespace,
            {"type": "net.firing", "instance_id": instance_id, "net": name, **out["event"]},
        )
        self.send(out["state"])


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

        def create() -> tuple[str, Any, str]:
            import fluxnb

            wf = find(plane.store, readable, name)
            if wf.kind != "net":
                raise ApiError(
                    422,
                    "BadRequest",
                    f"'{name}' is a DAG workflow; start it with POST "
                    f"/workflows/{name}/runs (instances are for nets)",
                )
            if current().namespace != wf.namespace:
                raise not_found("workflow", name)
            run = fluxnb.interactive(wf.manifest, {}, store=plane.store, tenant=tenant)
            return run.run_id, run, wf.namespace

        instance_id, run, namespace = await self.call(create)
        self.plane.instances[instance_id] = (run, namespace, name)
        self.plane.bus.publish(
            namespace, {"type": "net.created", "instance_id": instance_id, "net": name}
        )
        state = await self.call(describe, instance_id, run, namespace, name)
        self.send(state, 201)


class InstanceHandler(_InstanceHandler):
    @web.authenticated
    @authorized
    async def get(self, instance_id: str) -> None:
        run, namespace, name = self.instance(instance_id)
        self.send(await self.call(describe, instance_id, run, namespace, name))


class TokensHandler(_InstanceHandler):
    """POST /instances/{id}/tokens ``{"place", "data"}``: put a token (an external event)."""

    @web.authenticated
    @authorized
    async def post(self, instance_id: str) -> None:
        body = self.body()
        place = body.get("place")
        if not isinstance(place, str):
            raise ApiError(422, "BadRequest", "the body needs 'place': where the token goes")

        def put(run: Any) -> dict[str, Any]:
            if place not in run.marking:
                raise ApiError(404, "NotFound", f"the net has no place '{place}'")
            run.put(place, body.get("data"))
            return {"place": place}

        await self.act(instance_id, "put", put)


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

        def fire(run: Any) -> dict[str, Any]:
            firing = run.fire(transition, data=body.get("data"))
            return {"transition": transition, "seq": firing.seq, "status": str(firing.status)}

        await self.act(instance_id, "fire", fire)
