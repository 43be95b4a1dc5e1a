"""Routes for runs: start, list, read, events, cancel, replay, resume, timeline, stream."""

from __future__ import annotations

import json
import math
import secrets
import time
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web
from tornado.iostream import StreamClosedError

from .._session import Action, current
from ..engine._setup import _RUN_ID, new_run_id
from ..store import _registry as registry
from ..store._audit import authorize
from ._base import ApiError, FluxnbHandler, not_found
from ._jsonable import jsonable
from ._workers import QueueFull

#: Columns of a run in the API (the ``runs`` table's, and the registry's version).
RUN_FIELDS = (
    "run_id",
    "workflow",
    "namespace",
    "tenant",
    "status",
    "started_at",
    "ended_at",
    "duration_s",
    "step_count",
    "error",
    "seed",
    "resumed",
)
_RUN_SELECT = (
    ", ".join(f"r.{c}" for c in RUN_FIELDS).replace("r.step_count", "r.steps AS step_count")
    + ", w.version"
)
#: A step's output is in GET /runs/{id} when it was recorded as JSON of at most this size.
MAX_OUTPUT = 65_536
_EVENT_FIELDS = (
    "seq",
    "step",
    "attempt",
    "status",
    "final",
    "started_at",
    "ended_at",
    "duration_s",
    "delay_s",
    "error_type",
    "error_message",
    "executor",
    "worker",
)


def _row(names: tuple[str, ...], row: tuple) -> dict[str, Any]:
    return {k: jsonable(v) for k, v in zip(names, row, strict=True)}


def read_run(store: Any, run_id: str) -> dict[str, Any] | None:
    """The run's row with its version and per-step status, or None (any namespace: the
    caller checks that it may read it)."""
    with store.connect() as con:
        row = con.execute(
            f"SELECT {_RUN_SELECT} FROM runs r LEFT JOIN workflow_runs w USING (run_id) "
            "WHERE r.run_id = $1",
            [run_id],
        ).fetchone()
        if row is None:
            return None
        steps = con.execute(
            "SELECT step, arg_max(status, attempt), max(attempt), bool_or(final), "
            "sum(duration_s), arg_max(error_type, attempt), arg_max(error_message, attempt), "
            "arg_max(output_json, attempt) FILTER (WHERE output_format = 'json' AND "
            f"output_size <= {MAX_OUTPUT}) "
            "FROM events WHERE run_id = $1 GROUP BY step ORDER BY min(seq), step",
            [run_id],
        ).fetchall()
    run = _row((*RUN_FIELDS, "version"), row)
    names = ("step", "status", "attempts", "final", "duration_s", "error_type", "error_message")
    run["steps"] = [
        {**_row(names, s[:-1]), "output": None if s[-1] is None else json.loads(s[-1])}
        for s in steps
    ]
    return run


def run_namespace(store: Any, run_id: str) -> str | None:
    with store.connect() as con:
        row = con.execute(
            "SELECT coalesce(namespace, 'default') FROM runs WHERE run_id = $1 UNION ALL "
            "SELECT namespace FROM workflow_runs WHERE run_id = $1 LIMIT 1",
            [run_id],
        ).fetchone()
    return None if row is None else row[0]


class _RunHandler(FluxnbHandler):
    auth_resource = "fluxnb:runs"

    async def visible_run(self, run_id: str) -> dict[str, Any]:
        """The run as the API shows it, if the caller may read it (else 404)."""
        run = await self.call(read_run, self.plane.store, run_id)
        info = self.plane.runs.get(run_id)
        if run is None and info is not None and "state" in info:
            run = {
                "run_id": run_id,
                "workflow": info["workflow"],
                "namespace": info["namespace"],
                "tenant": info.get("tenant"),
                "status": info["state"],
                "version": info.get("version"),
                "steps": [],
            }
            if info.get("error"):
                run["error"] = info["error"]["message"]
        if run is None:
            raise not_found("run", run_id)
        if run.get("version") is None and info is not None:  # not yet written (batched)
            run["version"] = info.get("version")
        self.check_readable(run.get("namespace"), "run", run_id)
        return run

    async def may(self, action: Action, run: dict[str, Any]) -> tuple[str, str, str, str | None]:
        """PermissionDenied (audited) unless the caller may ``action`` the run; the
        caller's session as a worker takes it."""
        await self.call(
            authorize,
            action,
            store=self.plane.store,
            workflow=run["workflow"],
            namespace=run["namespace"],
            target=run["run_id"],
        )
        return session_fields(self.session())


class StartRunHandler(_RunHandler):
    """POST /workflows/{name}/runs: 202 and the new run's id; it runs in a worker."""

    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        body = self.body()
        params, tenant, executor, seed, wanted = _run_options(body)
        plane, readable = self.plane, self.readable()

        def admit() -> dict[str, Any]:
            import fluxnb

            wf = plane.workflow(current().namespace, name)
            if wf is None or (readable is not None and wf.namespace not in readable):
                raise not_found("workflow", name)
            obj = fluxnb.load(wf.manifest, source=f"<workflow {name}>", params=params)
            s = current()
            billed = tenant or obj.router.tenant or s.tenant
            authorize(
                Action.RUN,
                store=plane.store,
                workflow=name,
                rbac=obj.router.rbac,
                namespace=wf.namespace,
                tenant=billed,
            )
            # a new id is 48 random bits more than fluxnb's usual one: no store look-up
            run_id = wanted or new_run_id() + secrets.token_hex(3)
            if not plane.reserve(run_id) or (wanted and registry.run_known(plane.store, run_id)):
                raise _taken(run_id)
            plane.note_run(run_id, wf, s.user)  # workflow_runs: written in batches
            job = {
                "run_id": run_id,
                "manifest": wf.manifest,
                "params": params,
                "tenant": tenant,
                "executor": executor,
                "seed": seed,
                "session": session_fields(s),
            }
            return {
                "job": job,
                "workflow": name,
                "version": wf.version,
                "namespace": wf.namespace,
                "tenant": billed,
                "kind": "run",
            }

        info = await self.call(admit)
        plane.start()
        run_id = info["job"]["run_id"]
        plane.remember(run_id, {**info, "state": "queued"})
        try:
            plane.pool.submit("run", info["job"])
        except QueueFull:
            plane.runs[run_id].update(
                state="rejected",
                error={"kind": "Unavailable", "message": "every worker is busy"},
            )
            raise ApiError(
                503, "Unavailable", "every worker is busy and the queue is full; try later"
            ) from None
        self.set_header("Location", self.request.path.split("/workflows/")[0] + f"/runs/{run_id}")
        self.send(
            {"run_id": run_id, "status": "queued", "workflow": name, "version": info["version"]},
            202,
        )


def worker_error(kind: str, message: str) -> ApiError:
    """The answer for a job a worker refused (its error's kind and text)."""
    status = {
        "PermissionDenied": 403, "NotFound": 404, "ReplayError": 409, "NotEnabled": 409,
        "RunBusy": 409, "WorkerDied": 503, "ManifestError": 400, "InternalError": 500,
    }.get(kind, 422)  # fmt: skip
    return ApiError(status, kind, message)


def session_fields(s: Any) -> tuple[str, str, str, str | None]:
    """A session as a worker process takes it (role, tenant, namespace, user)."""
    return (str(s.role), s.tenant, s.namespace, s.user)


def _taken(run_id: str) -> ApiError:
    return ApiError(
        409, "Conflict", f"run id '{run_id}' is already taken; leave run_id out for a new one"
    )


def _run_options(body: dict[str, Any]) -> tuple[Any, Any, Any, int, str | None]:
    unknown = set(body) - {"params", "tenant", "executor", "seed", "run_id"}
    if unknown:
        raise ApiError(
            422,
            "BadRequest",
            f"unknown keys {sorted(unknown)}; use params, tenant, executor, seed, run_id",
        )
    params = body.get("params") or {}
    if not isinstance(params, dict):
        raise ApiError(422, "BadRequest", "'params' must be an object of placeholder values")
    tenant = body.get("tenant")
    if tenant is not None and not isinstance(tenant, str):
        raise ApiError(422, "BadRequest", "'tenant' must be a tenant name")
    executor = body.get("executor")
    if executor is not None and executor not in ("local", "dask"):
        raise ApiError(
            422, "BadRequest", "'executor' is 'local' or 'dask' (an on-demand local cluster)"
        )
    seed = body.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ApiError(422, "BadRequest", "'seed' must be a whole number from 0")
    wanted = body.get("run_id")
    if wanted is not None and (not isinstance(wanted, str) or not _RUN_ID.fullmatch(wanted)):
        raise ApiError(
            422, "BadRequest", "'run_id' takes 1-128 letters, digits, '-', '_', '.' or ':'"
        )
    return params, tenant, executor, seed, wanted


class RunsHandler(_RunHandler):
    """GET /runs: newest first; filters workflow, status, tenant, namespace; limit/offset."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        limit = _int(self.get_query_argument("limit", "50"), "limit", 1, 1000)
        offset = _int(self.get_query_argument("offset", "0"), "offset", 0, 10**9)
        where: list[str] = []
        args: list[Any] = []
        for key in ("workflow", "status", "tenant"):
            value = self.get_query_argument(key, None)
            if value is not None:
                args.append(value)
                where.append(f"r.{key} = ${len(args)}")
        spaces = self.readable()
        asked = self.get_query_argument("namespace", None)
        if asked is not None:
            spaces = (self.session().namespace,)
        if spaces is not None:
            args.append(list(spaces))
            where.append(f"list_contains(${len(args)}, coalesce(r.namespace, 'default'))")
        query = f"SELECT {_RUN_SELECT} FROM runs r LEFT JOIN workflow_runs w USING (run_id)"
        if where:
            query += " WHERE " + " AND ".join(where)
        query += f" ORDER BY r.started_at DESC, r.run_id LIMIT {limit + 1} OFFSET {offset}"

        def read() -> list[tuple]:
            with self.plane.store.connect() as con:
                return con.execute(query, args).fetchall()

        rows = await self.call(read)
        runs = [_row((*RUN_FIELDS, "version"), r) for r in rows[:limit]]
        more = len(rows) > limit
        self.send(
            {
                "runs": runs,
                "limit": limit,
                "offset": offset,
                "next_offset": offset + limit if more else None,
            }
        )


def _int(text: str, name: str, low: int, high: int) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise ApiError(422, "BadRequest", f"{name} must be a whole number from {low} to {high}")
    return int(text)


class RunHandler(_RunHandler):
    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        self.send(await self.visible_run(run_id))


class RunEventsHandler(_RunHandler):
    """GET /runs/{id}/events: one row per attempt, in logical order."""

    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        await self.visible_run(run_id)

        def read() -> list[tuple]:
            with self.plane.store.connect() as con:
                return con.execute(
                    f"SELECT {', '.join(_EVENT_FIELDS)} FROM events WHERE run_id = $1 "
                    "ORDER BY seq, attempt",
                    [run_id],
                ).fetchall()

        rows = await self.call(read)
        self.send({"run_id": run_id, "events": [_row(_EVENT_FIELDS, r) for r in rows]})


class CancelHandler(_RunHandler):
    @web.authenticated
    @authorized
    async def post(self, run_id: str) -> None:
        run = await self.visible_run(run_id)
        await self.may(Action.RUN, run)
        outcome = self.plane.pool.cancel(run_id)
        if outcome is None:
            raise ApiError(
                409, "Conflict", f"run '{run_id}' is not running (status {run['status']})"
            )
        if outcome == "dequeued":
            self.plane.runs[run_id].update(state="cancelled")
            self.plane.bus.publish(
                run["namespace"],
                {
                    "type": "run.finished",
                    "run_id": run_id,
                    "workflow": run["workflow"],
                    "status": "cancelled",
                },
            )
        status = "cancelled" if outcome == "dequeued" else "cancelling"
        self.send({"run_id": run_id, "status": status}, 202)


class ResumeHandler(_RunHandler):
    """POST /runs/{id}/resume: continue a failed, cancelled or interrupted run (202)."""

    @web.authenticated
    @authorized
    async def post(self, run_id: str) -> None:
        body = self.body()
        run = await self.visible_run(run_id)
        if run["status"] == "succeeded":
            raise ApiError(409, "Conflict", f"run '{run_id}' succeeded: nothing to resume")
        if run_id in self.plane.pool.stopping:
            raise ApiError(
                409,
                "Conflict",
                f"run '{run_id}' is {run['status']} but still stopping: a step it cancelled "
                "is still executing in its thread (a thread cannot be stopped); resume it "
                "once that call returned",
            )
        if self.plane.pool.active(run_id) or run["status"] in ("queued", "running"):
            raise ApiError(
                409, "Conflict", f"run '{run_id}' is {run['status']}; resume it once it ended"
            )
        caller = await self.may(Action.RESUME, run)
        job = {
            "run_id": run_id,
            "force": bool(body.get("force")),
            "session": caller,
        }
        self.plane.start()
        self.plane.remember(
            run_id,
            {
                "workflow": run["workflow"],
                "namespace": run["namespace"],
                "kind": "resume",
                "version": run.get("version"),
            },
        )
        try:
            self.plane.pool.submit("resume", job)
        except QueueFull:
            raise ApiError(503, "Unavailable", "every worker is busy; try later") from None
        self.send({"run_id": run_id, "status": "resuming"}, 202)


class ReplayHandler(_RunHandler):
    """POST /runs/{id}/replay: re-execute in a worker and compare with the trace."""

    @web.authenticated
    @authorized
    async def post(self, run_id: str) -> None:
        run = await self.visible_run(run_id)
        if run["status"] in ("queued", "running"):
            raise ApiError(409, "Conflict", f"run '{run_id}' is {run['status']}")
        caller = await self.may(Action.REPLAY, run)
        self.plane.start()
        job = {"run_id": run_id, "session": caller}
        ok, payload, _ = await self.plane.pool.call("replay", job)
        if not ok:
            raise worker_error(*payload)
        self.send(payload)


class TimelineHandler(_RunHandler):
    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        await self.visible_run(run_id)
        from ..store import timeline

        svg = await self.call(lambda: timeline(run_id, store=self.plane.store).to_svg())
        self.send_text(svg, "image/svg+xml")


class StreamHandler(FluxnbHandler):
    """GET /stream: Server-Sent Events of what the caller may read. Resumes after
    ``Last-Event-ID`` (header, or ``?last_event_id=``); ``?timeout=`` ends the stream
    after that many seconds (default: never)."""

    auth_resource = "fluxnb:runs"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        readable = self.readable()
        if readable == ():
            self.session()  # no grant at all: 403
        last = self.request.headers.get("Last-Event-ID") or self.get_query_argument(
            "last_event_id", None
        )
        timeout = self.get_query_argument("timeout", None)
        try:
            lasts = float(timeout) if timeout is not None else math.inf
        except ValueError:
            raise ApiError(422, "BadRequest", "timeout is a number of seconds") from None
        if not lasts >= 0:
            raise ApiError(422, "BadRequest", "timeout is a number of seconds") from None
        self.set_header("Content-Type", "text/event-stream")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Accel-Buffering", "no")
        bus = self.plane.bus
        end = time.monotonic() + lasts
        try:
            while True:
                events, gap = bus.after(last, readable)
                if gap:
                    self.write(f"event: gap\ndata: {json.dumps({'boot': bus.boot})}\n\n")
                for event in events:
                    self.write(f"id: {event['id']}\nevent: {event['type']}\n")
                    self.write(f"data: {json.dumps(event, default=str)}\n\n")
                if events:
                    last = events[-1]["id"]
                elif last is None or gap:
                    last = f"{bus.boot}-{bus.published}"
                if not events and not gap:
                    self.write(": keep-alive\n\n")
                await self.flush()
                left = end - time.monotonic()
                if left <= 0:
                    break
                await bus.wait(min(left, 15.0))
        except StreamClosedError:
            return
        self.finish(set_content_type="text/event-stream")
