"""A worker process of the control plane: runs, resumes and replays, off the server.

The server sends it jobs over a pipe; it runs them on an event loop of its own (several at
once), records into the store like any other writer (segments, no lock), and sends back
live events (run started, each step's status, breaker changes, the run's end). A step
that crashes the process or hangs only costs this worker: the server sees the pipe close,
records its runs ``interrupted`` (their process is gone) and starts another worker.

Messages in: ``("run" | "resume" | "replay" | "net.create" | "net.put" | "net.fire" |
"net.get", job)``, ``("cancel", run_id)``, ``("stop",)``.
Messages out: ``("ready",)`` once, ``("event", namespace, event)``, ``("done", run_id, status,
stopping)`` (``stopping``: a cancelled step's thread still executes; ``("released", run_id)``
follows once it returned),
``("reply", request_id, ok, payload)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from ._net_state import Instances, net_job


class Forwarding:
    """A recorder that records through the store's recorder and tells the server what
    happened as it happens."""

    def __init__(self, inner: Any, send: Any, namespace: str) -> None:
        self._recorder = inner
        self._send = send
        self._namespace = namespace

    # The server made the run id unique (workflow_runs' primary key) and authorized and
    # audited the run: the engine's own checks would only make every worker open the store
    # file, which the server reads all the time. So the Store is not reachable from here
    # (audit_store follows .store, .inner and ._inner; measured: 9.5 -> see docs/server.md).
    def __getattr__(self, name: str) -> Any:
        if name in ("store", "inner", "_inner"):
            raise AttributeError(name)
        return getattr(self._recorder, name)

    @property
    def location(self) -> Any:
        return self._recorder.location

    def _tell(self, event: dict[str, Any]) -> None:
        self._send(("event", self._namespace, event))

    def run_started(self, run: Any) -> None:
        self._recorder.run_started(run)
        self._tell(
            {
                "type": "run.started",
                "run_id": run.run_id,
                "workflow": run.workflow,
                "status": run.status,
            }
        )

    def attempt_started(self, step: str, attempt: int) -> None:
        hook = getattr(self._recorder, "attempt_started", None)
        if hook is not None:
            hook(step, attempt)

    def event(self, row: Any) -> None:
        self._recorder.event(row)
        self._tell(
            {
                "type": "step.status",
                "run_id": row[0],
                "step": row[2],
                "attempt": row[3],
                "status": row[4],
                "final": bool(row[5]),
            }
        )

    def circuit_event(self, row: Any) -> None:
        self._recorder.circuit_event(row)
        self._tell(
            {
                "type": "breaker.changed",
                "agent": row[1],
                "from": row[2],
                "to": row[3],
                "reason": row[4],
                "run_id": row[6],
            }
        )

    def run_finished(self, run: Any) -> None:  # the server tells the end ("done")
        self._recorder.run_finished(run)

    def flush(self) -> None:
        self._recorder.flush()


def main(conn: Any, store_path: str, imports: Any = None) -> None:
    """The worker's whole life: take jobs until told to stop or the pipe closes. Callables
    are imported only from the modules ``imports`` (an ImportPolicy) allows."""
    import fluxnb  # noqa: F401 (loaded before saying ready: a first run does not wait)

    from .._session import Role, Session
    from ..spec._resolve import set_process_import_policy
    from ..store import Store

    set_process_import_policy(imports)  # also in threads that do not inherit a context
    store = Store(store_path)
    store.recorder()  # loads pyarrow and pandas too
    lock = threading.Lock()
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="fluxnb-worker-loop", daemon=True).start()
    running: dict[str, Any] = {}
    instances: Instances = {}  # long-lived net instances held by this worker
    nets = ThreadPoolExecutor(1, thread_name_prefix="fluxnb-nets")

    def send(msg: tuple) -> None:
        with lock:
            conn.send(msg)

    def session_of(job: dict[str, Any]) -> Session:
        role, tenant, namespace, user = job["session"]
        return Session(role=Role(role), tenant=tenant, namespace=namespace, user=user)

    send(("ready",))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            break
        kind = msg[0]
        if kind == "stop":
            break
        if kind == "cancel":
            future = running.get(msg[1])
            if future is not None:
                loop.call_soon_threadsafe(future.cancel)
            continue
        job = msg[1]
        if kind == "replay":
            threading.Thread(
                target=_answer,
                args=(job, session_of(job), imports, send, _replay, job, store),
                daemon=True,
            ).start()
            continue
        if kind.startswith("net."):  # one at a time, in order, off the runs' loop
            nets.submit(
                _answer, job, session_of(job), imports, send, net_job, kind, job, instances, store
            )
            continue
        coro = _execute(kind, job, session_of(job), imports, store, send)
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        running[job["run_id"]] = future
        future.add_done_callback(_forget(running, job["run_id"]))
    for future in list(running.values()):
        loop.call_soon_threadsafe(future.cancel)
    nets.submit(_close_all, instances).result(timeout=5)


def _close_all(instances: Instances) -> None:
    """End every net instance (its run is recorded as it stands)."""
    for run, _, _ in instances.values():
        with contextlib.suppress(Exception):  # one that fails must not stop the rest
            run.close()


def _forget(running: dict[str, Any], run_id: str) -> Any:
    return lambda _future: running.pop(run_id, None)


async def _execute(
    kind: str, job: dict[str, Any], session: Any, imports: Any, store: Any, send: Any
) -> None:
    import fluxnb

    from .._session import acting
    from ..engine._executor import thread_calls
    from ..spec._resolve import allowed_imports

    run_id = job["run_id"]
    recorder = Forwarding(store.recorder(), send, session.namespace)
    status = "failed"
    calls: set[Any] = set()
    thread_calls.set(calls)  # this task's own context: the run's steps in threads
    try:
        with acting(session), allowed_imports(imports):
            if kind == "run":
                result = await fluxnb.arun(
                    job["manifest"],
                    store=recorder,
                    tenant=job.get("tenant"),
                    seed=int(job.get("seed") or 0),
                    executor=job.get("executor"),
                    run_id=run_id,
                    params=job.get("params") or None,
                )
            else:
                result = await fluxnb.aresume(run_id, store=store, force=bool(job.get("force")))
        status = str(result.status)
    except asyncio.CancelledError:
        status = "cancelled"
    except Exception as exc:  # refused before it started: the server says so
        send(("event", session.namespace, _refused(run_id, exc)))
        status = "rejected"
    going = [f for f in calls if not f.done()]
    # "done" records the end; while a cancelled step's thread still executes, the run
    # stays on this worker ("stopping": not resumable) until "released"
    send(("done", run_id, status, bool(going)))
    if going:
        threading.Thread(
            target=_release, args=(run_id, going, send), name="fluxnb-release", daemon=True
        ).start()


def _release(run_id: str, going: list[Any], send: Any) -> None:
    """Tell the server once the threads a run left executing have returned."""
    wait(going)
    send(("released", run_id))


def _refused(run_id: str, exc: Exception) -> dict[str, Any]:
    return {
        "type": "run.rejected",
        "run_id": run_id,
        "status": "rejected",
        "error": {"kind": type(exc).__name__, "message": str(exc)},
    }


def _answer(
    job: dict[str, Any], session: Any, imports: Any, send: Any, work: Any, *args: Any
) -> None:
    """Reply to a request: ``work(*args)`` as ``session``, or the error's kind and text."""
    from .._session import acting
    from ..spec._resolve import allowed_imports

    try:
        with acting(session), allowed_imports(imports):
            payload = work(*args)
        send(("reply", job["request"], True, payload))
    except Exception as exc:
        from .._exceptions import FluxError
        from ._net_state import NetJobError

        if isinstance(exc, NetJobError):
            kind = exc.kind
        elif isinstance(exc, FluxError):
            kind = type(exc).__name__
        else:  # a bug, not an answer: the server says 500
            kind = "InternalError"
        text = f"{type(exc).__name__}: {exc}" if kind == "InternalError" else str(exc)
        send(("reply", job["request"], False, (kind, text)))


def _replay(job: dict[str, Any], store: Any) -> dict[str, Any]:
    import fluxnb

    report = fluxnb.replay(job["run_id"], store=store)
    return {
        "run_id": report.run_id,
        "identical": bool(report.identical),
        "first_divergence": report.first_divergence,
        "mismatches": len(report.mismatches),
    }
