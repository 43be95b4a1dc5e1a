"""What every control-plane handler shares: the caller's session, JSON in and out, and
errors as ``{"error": {"kind", "message", "problems": [...]}}`` with meaningful codes.

``kind`` is the Python API's exception class name (``ManifestError``, ``PermissionDenied``,
``ReplayError``, ...) or one of the control plane's own: ``BadRequest`` (not JSON, a bad
value), ``NotFound``, ``Conflict``, ``TooLarge``, ``Unavailable``. ``problems`` are a
ManifestError's located problems (``kind``, ``path``, ``message``, ``line``, ``column``, ...).
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import functools
import json
import re
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

from jupyter_server.base.handlers import APIHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web

from .._exceptions import (
    BillingError,
    FluxError,
    ManifestError,
    PermissionDenied,
    QueryError,
    ReplayError,
    ResolutionError,
    RunError,
    StoreLockedError,
)
from .._session import Session, acting
from ..spec._resolve import allowed_imports

T = TypeVar("T")

NOT_AUTHENTICATED = "not authenticated: send Jupyter's token (Authorization: token T)"
#: What a name or id in a URL may be (a run id as ``fluxnb.run(run_id=...)`` takes it).
SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


class ApiError(Exception):
    """An error answer: HTTP ``status``, ``kind``, a message for people, located problems."""

    def __init__(
        self, status: int, kind: str, message: str, problems: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.problems = problems or []


def not_found(what: str, name: str) -> ApiError:
    """The one answer for a thing that is missing *or* in a namespace the caller cannot
    read: the two must not be told apart."""
    return ApiError(404, "NotFound", f"no {what} '{name}' in the namespaces you can read")


def problem_json(p: Any) -> dict[str, Any]:
    d = dataclasses.asdict(p)
    if d.get("found") is not None and not isinstance(d["found"], str | int | float | bool):
        d["found"] = repr(d["found"])
    return d


def api_error(exc: BaseException) -> ApiError:
    """The HTTP answer for an exception of the Python API."""
    if isinstance(exc, ApiError):
        return exc
    message = str(exc)
    kind = type(exc).__name__
    if isinstance(exc, ResolutionError):  # the text is fine, the server cannot import it
        return ApiError(422, kind, message, [problem_json(p) for p in exc.problems])
    if isinstance(exc, ManifestError):
        return ApiError(400, kind, message, [problem_json(p) for p in exc.problems])
    if isinstance(exc, PermissionDenied):  # the local advice (FLUXNB_ROLE...) does not apply
        target = f" workflow '{exc.workflow}'" if exc.workflow else ""
        text = message.split(". Act with another role", maxsplit=1)[0]
        if not text.startswith("role "):
            text = f"role '{exc.role}' may not {exc.action}{target}"
        return ApiError(403, kind, f"{text} (roles come from c.FluxnbServer.roles)")
    if isinstance(exc, StoreLockedError):
        return ApiError(503, kind, message)
    if isinstance(exc, QueryError) and exc.timeout is not None:
        return ApiError(422, "QueryTimeout", f"{message} (c.FluxnbServer.sql_timeout)")
    if isinstance(exc, QueryError | BillingError):
        return ApiError(422, kind, message)
    if isinstance(exc, ReplayError | RunError):
        return ApiError(409, kind, message)
    if isinstance(exc, FluxError):
        return ApiError(422, kind, message)
    raise exc


class FluxnbHandler(ExtensionHandlerMixin, APIHandler):
    """Base of every fluxnb route. Subclasses set ``auth_resource`` (``fluxnb:workflows``,
    ``fluxnb:runs``, ``fluxnb:billing``, ``fluxnb:sql``, ``fluxnb:nets``) and decorate
    their methods with ``@web.authenticated`` and ``@authorized``."""

    auth_resource = "fluxnb:workflows"
    #: Whether the caller needs a fluxnb role (every route but the probes and the document).
    needs_role = True

    # APIHandler.prepare() takes no arguments, unlike the JupyterHandler it overrides
    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        for segment in self.path_args:
            if not SEGMENT.fullmatch(segment):
                raise ApiError(404, "NotFound", f"nothing is named {segment!r} here")
        if self.needs_role:  # before the body is read: no role, no other answer than 403
            self.session()

    @property
    def plane(self) -> Any:
        return self.settings["fluxnb_plane"]

    # ------------------------------------------------------------------ who
    def user_name(self) -> str:
        user = self.current_user
        return str(getattr(user, "username", None) or getattr(user, "name", None) or user)

    def user_groups(self) -> list[str]:
        user = self.current_user
        hub = getattr(user, "hub_user", None)
        groups = hub.get("groups") if isinstance(hub, dict) else getattr(user, "groups", None)
        return [str(g) for g in groups or ()]

    def session(self) -> Session:
        """Who acts for this request, in the namespace it asks for (403 if not granted)."""
        if not self.current_user:  # never a grant for "None" or "*" without a user
            raise ApiError(403, "PermissionDenied", NOT_AUTHENTICATED)
        asked = self.get_query_argument("namespace", None) or self.request.headers.get(
            "X-Fluxnb-Namespace"
        )
        try:
            return self.plane.roles.session(self.user_name(), self.user_groups(), asked)
        except FluxError as exc:
            raise api_error(exc) from None

    def readable(self) -> tuple[str, ...] | None:
        """Namespaces this caller may read (None: all, an admin)."""
        return self.plane.roles.readable(self.user_name(), self.user_groups())

    def check_readable(self, namespace: str | None, what: str, name: str) -> None:
        spaces = self.readable()
        if spaces is not None and (namespace or "default") not in spaces:
            raise not_found(what, name)

    # ------------------------------------------------------------------ work
    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)`` on the plane's threads (store access blocks), acting as
        this request's session, its errors turned into API errors."""
        return await self.call_on(self.plane.threads, functools.partial(fn, *args, **kwargs))

    async def call_on(self, threads: Executor, fn: Callable[[], T]) -> T:
        """``fn()`` on ``threads`` as :meth:`call` runs it: as this request's session,
        importing callables only from c.FluxnbServer.allowed_modules."""
        s, imports = self.session(), self.plane.imports
        ctx = contextvars.copy_context()

        def work() -> T:
            try:
                with acting(s), allowed_imports(imports):
                    return fn()
            except (Exception, KeyboardInterrupt):
                raise
            except BaseException as exc:  # SystemExit out of a thread would end the server
                raise RuntimeError(f"{type(exc).__name__}: {exc}") from None

        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(threads, ctx.run, work)
        except FluxError as exc:
            raise api_error(exc) from None

    # ------------------------------------------------------------------ JSON
    def body(self) -> dict[str, Any]:
        """The request's JSON object (empty body: {}); 413 too large, 400 not JSON."""
        raw = self.request.body or b""
        if len(raw) > self.plane.max_body_bytes:
            raise ApiError(
                413,
                "TooLarge",
                f"the request body has {len(raw)} bytes; the limit is "
                f"{self.plane.max_body_bytes} (c.FluxnbServer.max_body_bytes)",
            )
        if not raw.strip():
            return {}
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise ApiError(400, "BadRequest", f"the request body is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ApiError(400, "BadRequest", "the request body must be a JSON object")
        return data

    def send(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data, default=str))

    def send_text(self, text: str, content_type: str) -> None:
        """Finish with ``text`` of that type (APIHandler would call it JSON)."""
        self.finish(text, set_content_type=content_type)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            status_code, kind, message, problems = (
                exc.status,
                exc.kind,
                exc.message,
                exc.problems,
            )
        elif isinstance(exc, web.HTTPError):
            kind = {403: "PermissionDenied", 404: "NotFound", 405: "BadRequest"}.get(
                status_code, "HTTPError"
            )
            message, problems = exc.log_message or exc.reason or str(status_code), []
            if status_code == 403 and not self.current_user:
                message = NOT_AUTHENTICATED
        else:
            kind, message, problems = "InternalError", "the server failed; see its log", []
        self.clear()
        self.set_status(status_code)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": {"kind": kind, "message": message, "problems": problems}}))

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, ApiError):  # an answer, not a failure: no traceback in the log
            self.log.info("%s %s: %s %s", self.request.method, self.request.path, e.status, e)
            if not self._finished:
                self.send_error(e.status, exc_info=(type(e), e, e.__traceback__))
            return
        super()._handle_request_exception(e)  # type: ignore[arg-type]
