"""Routes for the server itself and the workflow registry."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from jupyter_server.auth.decorator import allow_unauthenticated, authorized
from tornado import web

from .._exceptions import ManifestError
from .._session import Action, current
from ..store import _registry as registry
from ..store._audit import authorize
from ..triggers._records import register_all
from ._base import ApiError, FluxnbHandler, not_found, problem_json


def manifest_text(body: dict[str, Any]) -> str:
    """The ``manifest`` of a request body, always read as YAML text (never a file path on
    the server: a one-line string is text too)."""
    text = body.get("manifest")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(422, "BadRequest", "the body needs 'manifest': the workflow's YAML text")
    return text if text.endswith("\n") else text + "\n"


def load_checked(text: str, name: str) -> Any:
    """The Workflow or Net of ``text``, loaded, named ``name`` and with every callable
    resolved by import in the server's environment (ManifestError otherwise)."""
    import fluxnb

    from ..spec import Workflow

    obj = fluxnb.load(text, source=f"<workflow {name}>")
    if obj.name != name:
        raise ApiError(
            422,
            "BadRequest",
            f"the manifest is named '{obj.name}' but was sent to /workflows/{name}; "
            f"use the same name in both (or add 'name: {name}')",
        )
    if isinstance(obj, Workflow):
        obj.validate(resolve=True, namespace={})
    else:
        from ..engine._net_run import plan_net

        plan_net(obj, {})
    return obj


def kind_of(obj: Any) -> str:
    from ..spec import Workflow

    return "workflow" if isinstance(obj, Workflow) else "net"


def namespace_of(obj: Any) -> str:
    return obj.router.namespace or current().namespace


def find(store: Any, readable: tuple[str, ...] | None, name: str) -> registry.RegisteredWorkflow:
    """The registered workflow ``name`` in the caller's namespace (404 if none)."""
    wf = registry.get(store, current().namespace, name)
    if wf is None or (readable is not None and wf.namespace not in readable):
        raise not_found("workflow", name)
    return wf


class HealthHandler(FluxnbHandler):
    """Liveness: the server answers. No authentication (a probe has no token)."""

    needs_role = False

    @allow_unauthenticated
    def get(self) -> None:
        self.send({"ok": True})


class ReadyHandler(FluxnbHandler):
    """Readiness: the store opens and the workers are up (503 otherwise)."""

    needs_role = False

    @allow_unauthenticated
    async def get(self) -> None:
        self.plane.start()
        checks: dict[str, Any] = {"workers": self.plane.pool.alive()}
        try:
            await self.call_unauthenticated(self.plane.store.has_run, "readyz")
            checks["store"] = True
        except Exception as exc:
            checks["store"] = False
            checks["store_error"] = str(exc)
        ready = checks["store"] is True and checks["workers"] > 0
        self.send({"ready": ready, **checks}, 200 if ready else 503)

    async def call_unauthenticated(self, fn: Any, *args: Any) -> Any:
        import asyncio

        return await asyncio.get_running_loop().run_in_executor(self.plane.threads, fn, *args)


class OpenAPIHandler(FluxnbHandler):
    """The OpenAPI 3.1 document of this API."""

    needs_role = False

    @allow_unauthenticated
    def get(self) -> None:
        text = resources.files("fluxnb.server").joinpath("openapi.json").read_text("utf-8")
        self.send(json.loads(text))


class NoRouteHandler(FluxnbHandler):
    """Any other path under the API: 404 as JSON (before authentication: a route that
    does not exist tells nothing)."""

    needs_role = False

    @allow_unauthenticated
    def get(self) -> None:
        raise ApiError(404, "NotFound", f"no route {self.request.path}; see openapi.json")

    post = put = delete = patch = get


class WhoAmIHandler(FluxnbHandler):
    """Who the caller is in fluxnb: user, role, namespace, tenant."""

    @web.authenticated
    @authorized(resource="fluxnb:workflows")
    def get(self) -> None:
        s = self.session()
        self.send(
            {
                "user": s.user,
                "role": str(s.role),
                "namespace": s.namespace,
                "tenant": s.tenant,
                "namespaces": self.readable(),
            }
        )


class WorkflowsHandler(FluxnbHandler):
    auth_resource = "fluxnb:workflows"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        s = self.session()
        spaces = [s.namespace] if self.get_query_argument("namespace", None) else self.readable()
        found = await self.call(registry.list_workflows, self.plane.store, spaces)
        self.send({"workflows": [w.to_json() for w in found]})


class WorkflowHandler(FluxnbHandler):
    auth_resource = "fluxnb:workflows"

    @web.authenticated
    @authorized
    async def get(self, name: str) -> None:
        version = self.get_query_argument("version", None)
        store, readable = self.plane.store, self.readable()

        def read() -> registry.RegisteredWorkflow:
            if version is None:
                return find(store, readable, name)
            if not version.isdigit():
                raise ApiError(422, "BadRequest", f"version must be a number, not {version!r}")
            wf = registry.get(store, current().namespace, name, int(version))
            if wf is None:
                raise not_found("workflow", f"{name}@{version}")
            return wf

        wf = await self.call(read)
        self.send({**wf.to_json(), "manifest": wf.manifest})

    @web.authenticated
    @authorized
    async def put(self, name: str) -> None:
        text = manifest_text(self.body())
        store = self.plane.store

        def register() -> tuple[registry.RegisteredWorkflow, bool]:
            obj = load_checked(text, name)
            ns = namespace_of(obj)
            authorize(
                Action.RUN,
                store=store,
                workflow=name,
                rbac=obj.router.rbac,
                namespace=ns,
                target=f"register {name}",
            )
            saved = registry.put(store, ns, name, kind_of(obj), text, current().user)
            register_all(store, getattr(obj, "triggers", ()), namespace=ns)  # its triggers:
            return saved

        wf, new = await self.call(register)
        self.plane.forget(wf.namespace, name)
        self.send({**wf.to_json(), "created": new}, 201 if new else 200)

    @web.authenticated
    @authorized
    async def delete(self, name: str) -> None:
        store, readable = self.plane.store, self.readable()

        def remove() -> None:
            wf = find(store, readable, name)
            authorize(
                Action.MANAGE_WORKFLOWS,
                store=store,
                workflow=name,
                namespace=wf.namespace,
                target=f"delete workflow {name}",
            )
            registry.delete(store, wf.namespace, name)
            self.plane.forget(wf.namespace, name)

        await self.call(remove)
        self.set_status(204)
        self.finish()


class ValidateHandler(FluxnbHandler):
    """Validate a manifest in the body, or the registered one: 200 when valid, 422 with
    the located problems when not."""

    auth_resource = "fluxnb:workflows"

    @web.authenticated
    @authorized(action="read")
    async def post(self, name: str) -> None:
        body = self.body()
        store, readable = self.plane.store, self.readable()

        def validate() -> dict[str, Any]:
            text = (
                manifest_text(body) if "manifest" in body else find(store, readable, name).manifest
            )
            try:
                obj = load_checked(text, name)
            except ManifestError as exc:  # an answer here, not a bad request: 422
                raise ApiError(
                    422, type(exc).__name__, str(exc), [problem_json(p) for p in exc.problems]
                ) from None
            return {"valid": True, "name": obj.name, "kind": kind_of(obj)}

        self.send(await self.call(validate))
