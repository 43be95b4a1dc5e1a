"""Design sessions: the designer's Python side for the JupyterLab extension's editor.

A workflow file opened in JupyterLab is drawn by the same view as the notebook's designer
(``widgets/src``); what a kernel does for that view (apply an edit, validate it, keep undo
and redo, write the YAML) the control plane does here, with the same ``Designer`` object
(no comm: its state is read after each message). Callables are looked up by import, as a
registered workflow's are, so the issues shown are the ones a run through the API would hit.

``POST /designs`` {"text", "format": "yaml"|"pnml"} opens one; ``POST /designs/{id}`` sends
it a message of the view (``{"type": "add", ...}``, as the widget's ``_on_message`` takes);
both answer the view's state and ``text``, the file's new content. ``DELETE`` closes it.
Sessions live in the server's memory, belong to the user who opened them, and the oldest
are dropped past ``MAX_SESSIONS`` (the editor opens a new one when told 404).
"""

from __future__ import annotations

import functools
import secrets
import threading
from collections import OrderedDict
from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ._base import ApiError, FluxnbHandler, not_found

#: Design sessions kept at once (one per open editor tab); the least recently used go.
MAX_SESSIONS = 64
#: What the view draws from (the widget's synced traits it reads).
VIEW_KEYS = (
    "graph",
    "issues",
    "enabled",
    "selected",
    "yaml_text",
    "message",
    "can_undo",
    "can_redo",
    "schema",
    "details",
)
#: View messages that would run code in the server's process: the editor runs through
#: ``POST /workflows/{name}/runs`` (a worker process) instead.
REFUSED = {"run", "fire", "game", "functions", "add_function"}


class _Session:
    def __init__(self, owner: str, fmt: str, designer: Any) -> None:
        self.owner = owner
        self.format = fmt
        self.designer = designer
        self.outbox: list[dict[str, Any]] = []
        self.lock = threading.Lock()


_sessions: OrderedDict[str, _Session] = OrderedDict()
_guard = threading.Lock()


@functools.cache
def _designer_class() -> Any:
    try:
        from ..designer._widget import Designer
    except ImportError as exc:  # the server extra without the widgets extra
        raise ApiError(
            503,
            "Unavailable",
            f"the designer needs anywidget in the server's environment: "
            f"pip install 'fluxnb[lab]' ({exc})",
        ) from None

    class _ServerDesigner(Designer):  # type: ignore[misc, valid-type]
        """A Designer with no browser on the other end: what it would send is kept."""

        _outbox: list[dict[str, Any]]

        def send(self, content: Any, buffers: Any = None) -> None:
            self._outbox.append(content)

    return _ServerDesigner


def open_design(owner: str, text: str, fmt: str, name: str) -> tuple[str, _Session]:
    """A new session showing ``text`` (YAML or PNML; empty: a new DAG or net)."""
    from ..designer._model import DAG, NET, Design

    cls = _designer_class()
    if not text.strip():
        design = Design(NET if fmt == "pnml" else DAG, name)
        designer = cls(design, namespace={}, store=None)
    elif fmt == "pnml":
        if not text.lstrip().startswith("<"):  # never read as a path of the server's
            raise ApiError(422, "BadRequest", "the PNML text must start with '<' (XML)")
        designer = cls.from_pnml(text, namespace={}, store=None)
    else:  # a one-line text must stay text, never a path of the server's
        designer = cls.from_yaml(
            text if text.endswith("\n") else text + "\n", namespace={}, store=None
        )
    session = _Session(owner, fmt, designer)
    designer._outbox = session.outbox
    designer.check()  # the issues with callables looked up by import
    sid = secrets.token_hex(12)
    with _guard:
        _sessions[sid] = session
        while len(_sessions) > MAX_SESSIONS:
            _close(_sessions.popitem(last=False)[1])
    return sid, session


def _close(session: _Session) -> None:
    """Let the widget go (ipywidgets keeps every open widget in a registry)."""
    session.designer.close()


def _session(sid: str, owner: str) -> _Session:
    with _guard:
        session = _sessions.get(sid)
        if session is None or session.owner != owner:
            raise not_found("design session", sid)
        _sessions.move_to_end(sid)
        return session


def state(session: _Session) -> dict[str, Any]:
    """What the view draws, the file's text in its format, and messages for the view."""
    d = session.designer
    out: dict[str, Any] = {"state": {k: getattr(d, k) for k in VIEW_KEYS}}
    try:
        out["text"] = d.to_pnml() if session.format == "pnml" else d.to_yaml()
    except Exception as exc:  # a half-drawn design cannot be written yet: say why
        out["text"] = None
        out["state"]["message"] = out["state"]["message"] or f"cannot write the file yet: {exc}"
    out["messages"], session.outbox[:] = list(session.outbox), []
    return out


def apply(session: _Session, message: dict[str, Any]) -> dict[str, Any]:
    kind = message.get("type")
    if not isinstance(kind, str):
        raise ApiError(422, "BadRequest", "a message needs 'type', e.g. {'type': 'undo'}")
    if kind in REFUSED:
        raise ApiError(
            422,
            "BadRequest",
            f"'{kind}' is not done in a design session: run the workflow through "
            "POST /workflows/{name}/runs",
        )
    with session.lock:
        session.designer._on_message(session.designer, message, None)
        return state(session)


class DesignsHandler(FluxnbHandler):
    """POST /designs: open a design session for an editor tab."""

    auth_resource = "fluxnb:workflows"

    @web.authenticated
    @authorized(action="read")  # drawing a file is not running it: a viewer may
    async def post(self) -> None:
        body = self.body()
        text, fmt = body.get("text", ""), body.get("format", "yaml")
        name = body.get("name", "design")
        if not isinstance(text, str) or fmt not in ("yaml", "pnml") or not isinstance(name, str):
            raise ApiError(
                422, "BadRequest", "the body is {'text': str, 'format': 'yaml'|'pnml', 'name': str}"
            )
        from ..spec._step_fields import step_fields

        def start() -> dict[str, Any]:
            sid, session = open_design(self.user_name(), text, fmt, name)
            fields = {f.key: f.as_dict() for f in step_fields()}
            return {"id": sid, "fields": fields, **state(session)}

        self.send(await self.call(start), 201)


class DesignHandler(FluxnbHandler):
    """POST /designs/{id}: a message of the view; DELETE: close the session."""

    auth_resource = "fluxnb:workflows"

    @web.authenticated
    @authorized(action="read")
    async def post(self, sid: str) -> None:
        body = self.body()
        session = _session(sid, self.user_name())
        self.send(await self.call(apply, session, body))

    @web.authenticated
    @authorized(action="read")
    async def delete(self, sid: str) -> None:
        _session(sid, self.user_name())
        with _guard:
            gone = _sessions.pop(sid, None)
        if gone is not None:
            _close(gone)
        self.set_status(204)
        self.finish()
