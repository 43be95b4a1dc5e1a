"""``fluxnb.remote(url, token=...)``: the control plane's verbs from Python, returning what
the local API returns (RunResult, DataFrames, Invoice). Standard library HTTP only: a
client needs neither Jupyter Server nor any other package.

>>> plane = fluxnb.remote("http://127.0.0.1:8888", token="...")  # doctest: +SKIP
>>> plane.register("etl", open("etl.yaml").read())                # doctest: +SKIP
>>> plane.run("etl").status                                       # doctest: +SKIP
<RunStatus.SUCCEEDED: 'succeeded'>
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from decimal import Decimal
from typing import Any

from .._exceptions import (
    BillingError,
    FluxError,
    ManifestError,
    Problem,
    QueryError,
    ReplayError,
    ResolutionError,
    RunError,
)

_TERMINAL = ("succeeded", "failed", "cancelled", "interrupted", "rejected")


class RemoteError(FluxError):
    """The control plane refused (403: ``kind`` PermissionDenied), found nothing (404) or
    answered with another error this client has no closer class for; ``status`` is the
    HTTP code, ``kind`` the server's error kind."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(f"{message} (HTTP {status}, {kind})")
        self.status = status
        self.kind = kind


class Remote:
    """A control plane at ``url`` (a Jupyter Server with fluxnb's extension), acting as the
    Jupyter user whose ``token`` is given, in ``namespace`` (default: the user's first)."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        namespace: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/") + "/fluxnb/api/v1/"
        self.token = token
        self.namespace = namespace
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"<fluxnb Remote {self.url}>"

    # ------------------------------------------------------------------ HTTP
    def request(
        self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None
    ) -> Any:
        """The JSON answer of ``method path`` (text for other types); errors raised as
        the Python API's exceptions."""
        params = {k: v for k, v in (query or {}).items() if v is not None}
        if self.namespace:
            params.setdefault("namespace", self.namespace)
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"token {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                raw, kind = r.read(), r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            raise _error(exc.code, exc.read()) from None
        except urllib.error.URLError as exc:
            raise FluxError(f"cannot reach the control plane at {self.url}: {exc.reason}") from None
        if not raw:
            return None
        return json.loads(raw) if kind.startswith("application/json") else raw.decode()

    # ------------------------------------------------------------------ verbs
    def register(self, name: str, manifest: str) -> dict[str, Any]:
        """Register (or update) the workflow ``name``; its registry entry."""
        return self.request("PUT", f"workflows/{name}", {"manifest": manifest})

    def start(
        self,
        name: str,
        params: dict[str, Any] | None = None,
        *,
        tenant: str | None = None,
        seed: int = 0,
        run_id: str | None = None,
    ) -> str:
        """Start a run of the registered workflow ``name``; its run id (it runs on)."""
        body: dict[str, Any] = {"params": params or {}, "seed": seed}
        if tenant is not None:
            body["tenant"] = tenant
        if run_id is not None:
            body["run_id"] = run_id
        return str(self.request("POST", f"workflows/{name}/runs", body)["run_id"])

    def run(
        self,
        name: str,
        params: dict[str, Any] | None = None,
        *,
        tenant: str | None = None,
        seed: int = 0,
        run_id: str | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Run ``name`` on the server and wait for its end: a RunResult, as
        ``fluxnb.run`` returns (outputs: those recorded as JSON)."""
        rid = self.start(name, params, tenant=tenant, seed=seed, run_id=run_id)
        return self.wait(rid, timeout=timeout)

    def wait(self, run_id: str, *, timeout: float | None = None) -> Any:
        """The RunResult of ``run_id`` once it has ended (RunError after ``timeout``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.02
        while True:
            run = self.request("GET", f"runs/{run_id}")
            if run["status"] in _TERMINAL:
                return _run_result(run)
            if deadline is not None and time.monotonic() > deadline:
                raise RunError(f"run {run_id} is still {run['status']} after {timeout} s")
            time.sleep(pause)
            pause = min(pause * 1.5, 0.5)

    def runs(self, limit: int = 20, **filters: Any) -> Any:
        """Recent runs as a DataFrame (filters: workflow, status, tenant)."""
        import pandas as pd

        found = self.request("GET", "runs", query={"limit": limit, **filters})["runs"]
        return pd.DataFrame(found)

    def sql(self, query: str, params: Any = None) -> Any:
        """SQL on the server's store (sealed, in your namespace) as a DataFrame."""
        import pandas as pd

        body: dict[str, Any] = {"query": query}
        if params is not None:
            body["params"] = params
        answer = self.request("POST", "sql", body)
        return pd.DataFrame(answer["rows"], columns=answer["columns"])

    def invoice(self, tenant: str, period: str) -> Any:
        """The Invoice of ``tenant`` for ``period`` (a month), as ``fluxnb.invoice``."""
        return _invoice(self.request("GET", f"invoices/{tenant}/{period}"))

    def instance(self, net: str) -> str:
        """A new long-lived instance of the registered net ``net``; its id."""
        return str(self.request("POST", f"nets/{net}/instances")["instance_id"])

    def fire(self, instance_id: str, transition: str, data: Any = None) -> dict[str, Any]:
        """Fire ``transition`` of a net instance; its state after (marking, enabled, ...)."""
        return self.request(
            "POST", f"instances/{instance_id}/fire", {"transition": transition, "data": data}
        )

    def put(self, instance_id: str, place: str, data: Any = None) -> dict[str, Any]:
        """Put a token with ``data`` into ``place`` of a net instance; its state after."""
        return self.request(
            "POST", f"instances/{instance_id}/tokens", {"place": place, "data": data}
        )


def remote(url: str, token: str | None = None, *, namespace: str | None = None) -> Remote:
    """A client of the control plane at ``url`` (see :class:`Remote`)."""
    return Remote(url, token, namespace=namespace)


def _error(status: int, raw: bytes) -> FluxError:
    try:
        err = json.loads(raw)["error"]
        kind, message = str(err["kind"]), str(err["message"])
        problems = [Problem(**p) for p in err.get("problems") or []]
    except (ValueError, KeyError, TypeError):
        return RemoteError(status, "HTTPError", raw.decode(errors="replace")[:500])
    if problems:
        cls = ResolutionError if kind == "ResolutionError" else ManifestError
        return cls(problems, source=None)
    if kind == "QueryError":
        return QueryError("", message.removeprefix("SQL error: "))
    known: dict[str, type[FluxError]] = {
        "BillingError": BillingError,
        "ReplayError": ReplayError,
        "RunError": RunError,
    }
    if kind in known:
        return known[kind](message)
    return RemoteError(status, kind, message)


def _us(text: str | None) -> int | None:
    return None if not text else int(datetime.fromisoformat(text).timestamp() * 1e6)


def _run_result(run: dict[str, Any]) -> Any:
    from ..engine import RunResult, RunStatus, StepError, StepResult, StepStatus

    steps = {}
    outputs = {}
    for s in run.get("steps") or []:
        error = None
        if s.get("error_type"):
            error = StepError(s["error_type"], s.get("error_message") or "", "", s["attempts"])
        steps[s["step"]] = StepResult(
            s["step"], StepStatus(s["status"]), s["attempts"], error=error
        )
        if s["status"] == "succeeded" and "output" in s:
            outputs[s["step"]] = s["output"]
    status = run["status"]
    if status == "rejected":
        raise RunError(f"run {run['run_id']} was refused: {run.get('error')}")
    started = _us(run.get("started_at")) or 0
    return RunResult(
        run_id=run["run_id"],
        workflow=run["workflow"],
        status=RunStatus(status),
        outputs=outputs,
        steps=steps,
        started_us=started,
        ended_us=_us(run.get("ended_at")) or started,
        duration=run.get("duration_s") or 0.0,
        namespace=run.get("namespace"),
        tenant=run.get("tenant"),
        reason=run.get("error"),
    )


def _invoice(d: dict[str, Any]) -> Any:
    from ..billing import Invoice, InvoiceLine, InvoiceState
    from ..billing._money import currency

    def dec(v: Any) -> Decimal | None:
        return None if v is None else Decimal(str(v))

    lines = [
        InvoiceLine(
            unit=ln["unit"],
            quantity=Decimal(ln["quantity"]),
            per=Decimal(ln["per"]),
            unit_price=dec(ln.get("unit_price")),
            tiers=ln.get("tiers") or [],
            amount=Decimal(ln["amount"]),
            card=ln.get("card") or "",
            note=ln.get("note"),
        )
        for ln in d.get("lines", [])
    ]
    issued = d.get("issued_at")
    return Invoice(
        invoice_id=d["invoice_id"],
        tenant=d["tenant"],
        namespace=d.get("namespace"),
        period=d["period"],
        period_start=_naive(d["period_start"]),
        period_end=_naive(d["period_end"]),
        currency=d["currency"],
        minor_unit=currency(d["currency"])[1],
        lines=lines,
        state=InvoiceState(d.get("state", "draft")),
        issued_at=_naive(issued) if issued else None,
        usage_events=d.get("usage_events", 0),
        notes=list(d.get("notes") or []),
    )


def _naive(text: str) -> datetime:
    """An ISO time as the store keeps it (UTC, no zone)."""
    return datetime.fromisoformat(text).replace(tzinfo=None)
