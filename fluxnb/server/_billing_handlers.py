"""Routes for SQL and money: /sql, tenants, rate cards, usage, invoices, SLA, metrics."""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from .._session import current
from ._base import ApiError, FluxnbHandler
from ._jsonable import jsonable

#: Rows a /sql answer carries at most (``truncated`` says when there were more).
MAX_ROWS = 10_000


def frame_json(frame: Any, limit: int = MAX_ROWS) -> dict[str, Any]:
    """``{"columns", "rows": [{column: value}], "truncated"}`` of a DataFrame."""
    columns = [str(c) for c in frame.columns]
    rows = [
        {c: jsonable(v) for c, v in zip(columns, values, strict=True)}
        for values in frame.head(limit).itertuples(index=False, name=None)
    ]
    return {"columns": columns, "rows": rows, "truncated": len(frame) > limit}


class SQLHandler(FluxnbHandler):
    """POST /sql ``{"query", "params"}``: sealed, namespace-scoped, like ``fluxnb.sql``
    for a non-admin (an admin's query sees every namespace, still sealed)."""

    auth_resource = "fluxnb:sql"

    @web.authenticated
    @authorized(action="read")
    async def post(self) -> None:
        body = self.body()
        query, params = body.get("query"), body.get("params")
        if not isinstance(query, str) or not query.strip():
            raise ApiError(422, "BadRequest", "the body needs 'query': the SQL text")
        if params is not None and not isinstance(params, dict | list):
            raise ApiError(422, "BadRequest", "'params' is an object ($name) or a list (?)")
        plane = self.plane
        if not plane.sql_slots.acquire(blocking=False):
            raise ApiError(503, "Unavailable", "every SQL slot is busy; try again later")

        def run() -> Any:
            s = current()
            return plane.store.sealed_sql(
                query,
                params,
                None if s.is_admin else s.namespace,
                timeout=plane.sql_timeout or None,
                limit=MAX_ROWS,
            )

        try:  # on threads of its own: other routes never wait behind anyone's SQL
            frame = await self.call_on(plane.sql_threads, run)
        finally:
            plane.sql_slots.release()
        self.send(frame_json(frame))


class TenantsHandler(FluxnbHandler):
    auth_resource = "fluxnb:billing"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        from ..billing import tenants

        self.send({"tenants": frame_json(await self.call(tenants, store=self.plane.store))})

    @web.authenticated
    @authorized
    async def post(self) -> None:
        from ..billing import create_tenant

        body = self.body()
        name, display = body.get("tenant"), body.get("display_name")
        if not isinstance(name, str) or not (display is None or isinstance(display, str)):
            raise ApiError(422, "BadRequest", "the body is {'tenant': name, 'display_name': text}")
        await self.call(create_tenant, name, display_name=display, store=self.plane.store)
        self.send({"tenant": name, "display_name": display}, 201)


class RateCardsHandler(FluxnbHandler):
    auth_resource = "fluxnb:billing"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        from ..billing import rate_cards

        tenant = self.get_query_argument("tenant", None)
        frame = await self.call(rate_cards, tenant, store=self.plane.store)
        self.send({"rate_cards": frame_json(frame)})

    @web.authenticated
    @authorized
    async def put(self) -> None:
        from ..billing import set_rate_card

        body = self.body()
        card, tenant = body.get("card"), body.get("tenant")
        if isinstance(card, str):  # YAML text, never a path on the server
            card = card if card.endswith("\n") else card + "\n"
        elif not isinstance(card, dict):
            raise ApiError(422, "BadRequest", "'card' is the rate card: YAML text or an object")
        if tenant is not None and not isinstance(tenant, str):
            raise ApiError(422, "BadRequest", "'tenant' must be a tenant name")
        saved = await self.call(set_rate_card, card, tenant, store=self.plane.store)
        self.send(
            {
                "name": saved.name,
                "tenant": tenant,
                "version": saved.version,
                "currency": saved.currency,
            },
            201,
        )


class UsageHandler(FluxnbHandler):
    auth_resource = "fluxnb:billing"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        from ..billing import usage

        tenant = self.get_query_argument("tenant", None)
        period = self.get_query_argument("period", None)
        frame = await self.call(usage, tenant, period, store=self.plane.store)
        self.send({"usage": frame_json(frame)})


class InvoiceHandler(FluxnbHandler):
    """GET /invoices/{tenant}/{period}: JSON (default), CSV or HTML (``?format=`` or the
    Accept header)."""

    auth_resource = "fluxnb:billing"

    @web.authenticated
    @authorized
    async def get(self, tenant: str, period: str) -> None:
        from ..billing import invoice

        fmt = self.get_query_argument("format", None) or _format(self.request.headers)
        if fmt not in ("json", "csv", "html"):
            raise ApiError(422, "BadRequest", "format is json, csv or html")
        inv = await self.call(invoice, tenant, period, store=self.plane.store)
        if fmt == "csv":
            self.send_text(inv.to_csv(), "text/csv; charset=utf-8")
        elif fmt == "html":
            self.send_text(inv._repr_html_(), "text/html; charset=utf-8")
        else:
            self.send(jsonable(inv.to_dict()))


def _format(headers: Any) -> str:
    accept = headers.get("Accept", "")
    if "text/csv" in accept:
        return "csv"
    if "text/html" in accept:
        return "html"
    return "json"


class SLAHandler(FluxnbHandler):
    auth_resource = "fluxnb:runs"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        from ..metrics import sla

        kind = self.get_query_argument("kind", "steps")
        workflow = self.get_query_argument("workflow", None)
        frame = await self.call(sla, kind, workflow=workflow, store=self.plane.store)
        self.send({"kind": kind, **frame_json(frame)})


class MetricsHandler(FluxnbHandler):
    """GET /metrics: Prometheus text of what the caller may read."""

    auth_resource = "fluxnb:runs"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        from ..metrics import prometheus_text

        text = await self.call(prometheus_text, store=self.plane.store)
        plane = self.plane
        text += (
            "# HELP fluxnb_server_workers Worker processes alive.\n"
            "# TYPE fluxnb_server_workers gauge\n"
            f"fluxnb_server_workers {plane.pool.alive()}\n"
            "# HELP fluxnb_server_queued_runs Runs waiting for a worker.\n"
            "# TYPE fluxnb_server_queued_runs gauge\n"
            f"fluxnb_server_queued_runs {len(plane.pool.queue)}\n"
            "# HELP fluxnb_server_worker_restarts_total Workers replaced after they died.\n"
            "# TYPE fluxnb_server_worker_restarts_total counter\n"
            f"fluxnb_server_worker_restarts_total {plane.pool.restarts}\n"
        )
        self.send_text(text, "text/plain; version=0.0.4; charset=utf-8")
