"""The control plane's state in the server process: the store, who may do what, the
threads store access runs on, the worker pool, the live event bus and net instances."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..spec._resolve import ImportPolicy
from ..store import Store
from ..store import _registry as registry
from ._access import Roles
from ._bus import Bus
from ._workers import Pool

#: Runs the server remembers beyond the store (queued ones, refusals), newest kept.
_REMEMBERED = 100_000


class Plane:
    def __init__(
        self,
        *,
        store_path: str,
        roles: Roles,
        workers: int,
        runs_per_worker: int,
        queue_limit: int,
        max_body_bytes: int,
        stream_buffer: int,
        log: Any,
        imports: ImportPolicy | None = None,
        sql_timeout: float = 30.0,
        sql_threads: int = 2,
    ) -> None:
        self.store = Store(store_path)
        self.roles = roles
        self.max_body_bytes = max_body_bytes
        self.log = log
        #: Where manifests' callables may be imported from (c.FluxnbServer.allowed_modules).
        self.imports = imports
        #: Seconds a POST /sql statement may run (0: no limit).
        self.sql_timeout = sql_timeout
        # store access blocks (DuckDB, the file lock): off the event loop, a few at a time
        self.threads = ThreadPoolExecutor(4, thread_name_prefix="fluxnb-server")
        # anyone's SQL on threads of its own: slow queries never hold the routes' threads
        self.sql_threads = ThreadPoolExecutor(sql_threads, thread_name_prefix="fluxnb-sql")
        #: SQL statements executing or waiting, at most 2 x sql_threads (more: 503).
        self.sql_slots = threading.BoundedSemaphore(2 * sql_threads)
        self.bus = Bus(stream_buffer)
        self.pool = Pool(
            self.store.path,
            imports,
            workers,
            runs_per_worker,
            queue_limit,
            self._from_worker,
            self._workers_died,
            log,
        )
        #: run id -> what the server knows beyond the store: namespace, workflow, version,
        #: and ``state`` (queued, running, rejected) with ``error`` for a refusal.
        self.runs: OrderedDict[str, dict[str, Any]] = OrderedDict()
        #: The folder Jupyter serves (set by the extension): ``watch:`` triggers stay under it.
        self.root: str | None = None
        #: net instance id -> (the worker holding it, namespace, registered net)
        self.instances: dict[str, Any] = {}
        self.started = False
        self._lock = threading.Lock()
        self._workflows: dict[tuple[str, str], registry.RegisteredWorkflow | None] = {}
        self._reserved: OrderedDict[str, None] = OrderedDict()
        self._unrecorded: list[tuple[str, registry.RegisteredWorkflow, str | None]] = []
        self._flusher: asyncio.Task[None] | None = None
        #: Told ``(run_id, status)`` when a worker ends a run (the triggers' launcher).
        self.run_listeners: list[Any] = []
        self._triggers: Any = None

    def start(self) -> None:
        """Start the workers (from the event loop; once)."""
        if not self.started:
            self.started = True
            self.pool.start()
            self._flusher = asyncio.get_running_loop().create_task(self._flush_runs())
            self.trigger_service()

    def trigger_service(self) -> Any:
        """The trigger service (issue #18), started with the plane on the running loop:
        triggers fire in the server, with no notebook open."""
        if self._triggers is None:
            from ._triggers import start_service

            self._triggers = start_service(self)
        return self._triggers

    def wake_triggers(self) -> None:
        """Make the trigger service look now (an event was posted, a trigger changed),
        starting the plane if nothing did yet."""
        self.start()
        self.trigger_service().wake()

    async def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            with self._lock:
                rows, self._unrecorded = self._unrecorded, []
            if rows:
                await asyncio.to_thread(registry.record_runs, self.store, rows)
        if self._triggers is not None:  # firings in flight stay started: resumed next time
            await self._triggers.stop(runs="leave")
        await self.pool.close()  # each worker closes its net instances (records their end)
        self.threads.shutdown(wait=False, cancel_futures=True)
        self.sql_threads.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ registry
    def workflow(self, namespace: str, name: str) -> registry.RegisteredWorkflow | None:
        """The latest version of a registered workflow (kept here: starting a run does not
        read the store for it). Only this server changes the registry of its store."""
        key = (namespace, name)
        with self._lock:
            if key in self._workflows:
                return self._workflows[key]
        found = registry.get(self.store, namespace, name)
        with self._lock:
            self._workflows[key] = found
        return found

    def forget(self, namespace: str, name: str) -> None:
        """``name`` changed (registered anew, deleted): read it from the store next time."""
        with self._lock:
            self._workflows.pop((namespace, name), None)

    # ------------------------------------------------------------------ runs
    def reserve(self, run_id: str) -> bool:
        """Claim ``run_id`` for a run of this server; False if it was claimed before (by
        one of the last 100,000 runs: older ones are in the store, where a caller's own
        run id is also looked up)."""
        with self._lock:
            if run_id in self._reserved:
                return False
            self._reserved[run_id] = None
            while len(self._reserved) > _REMEMBERED:
                self._reserved.popitem(last=False)
            return True

    def note_run(self, run_id: str, wf: registry.RegisteredWorkflow, user: str | None) -> None:
        """Record (within ~0.1 s, with others in one write) the version ``run_id`` runs."""
        with self._lock:
            self._unrecorded.append((run_id, wf, user))

    async def _flush_runs(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(0.1)
            with self._lock:
                rows, self._unrecorded = self._unrecorded, []
            if rows:
                try:
                    await loop.run_in_executor(self.threads, registry.record_runs, self.store, rows)
                except Exception as exc:  # the store is locked or full: try again next time
                    self.log.warning("fluxnb: recording run versions failed: %s", exc)
                    with self._lock:
                        self._unrecorded[:0] = rows

    def remember(self, run_id: str, info: dict[str, Any]) -> None:
        self.runs[run_id] = info
        while len(self.runs) > _REMEMBERED:
            self.runs.popitem(last=False)

    def _from_worker(self, msg: tuple) -> None:
        if msg[0] == "event":
            _, namespace, event = msg
            if event["type"] == "run.rejected" and event["run_id"] in self.runs:
                self.runs[event["run_id"]].update(state="rejected", error=event["error"])
            elif event["type"] == "run.started" and event["run_id"] in self.runs:
                self.runs[event["run_id"]]["state"] = "running"
            self.bus.publish(namespace, event)
        elif msg[0] == "done":
            run_id, status = msg[1], msg[2]
            for listener in self.run_listeners:
                listener(run_id, status)
            info = self.runs.get(run_id, {})
            info.pop("job", None)  # its manifest and params: needed only to queue it again
            # its state stays as it was (running) until the store shows the run's row,
            # written in batches: a GET right after the end never answers 404, and never a
            # final status without the steps that go with it
            if status != "rejected":
                self.bus.publish(
                    info.get("namespace"),
                    {
                        "type": "run.finished",
                        "run_id": run_id,
                        "workflow": info.get("workflow"),
                        "status": status,
                    },
                )

    def _workers_died(self, run_ids: list[str]) -> None:
        """Runs of a worker that died: the store marks those it started ``interrupted``
        (their process is gone); one that never started is queued again, once."""

        async def settle() -> None:
            assert self.pool.loop is not None
            marked = set(await self.pool.loop.run_in_executor(self.threads, self._mark))
            for run_id in run_ids:
                info = self.runs.get(run_id, {})
                job = info.get("job")
                if run_id not in marked and job is not None and not info.get("requeued"):
                    info["requeued"] = True
                    info["state"] = "queued"
                    self.pool.submit(info["kind"], job)
                    continue
                info["state"] = "interrupted"  # until the store shows it so
                for listener in self.run_listeners:
                    listener(run_id, "interrupted")
                if run_id not in marked and job is not None:
                    info.update(state="rejected", error=_worker_died(run_id))
                self.bus.publish(
                    info.get("namespace"),
                    {
                        "type": "run.finished",
                        "run_id": run_id,
                        "workflow": info.get("workflow"),
                        "status": "interrupted",
                    },
                )

        assert self.pool.loop is not None
        self.pool.loop.create_task(settle())

    def _mark(self) -> list[str]:
        return self.store.mark_interrupted()


def _worker_died(run_id: str) -> dict[str, str]:
    return {
        "kind": "WorkerDied",
        "message": f"the worker process running {run_id} ended twice before the run "
        "started (a module it imports may end the process); see the server's log",
    }
