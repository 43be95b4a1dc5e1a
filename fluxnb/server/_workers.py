"""The server's bounded pool of worker processes (see ``_worker`` for their side).

Each worker runs up to ``per_worker`` runs at once; more wait in a bounded queue. A worker
that dies (a crash, a kill -9, an ``os._exit`` in a step) is noticed when its pipe closes:
its runs are handed to ``on_death`` (which records them ``interrupted``) and a new worker
takes its place.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import multiprocessing
import threading
from collections import deque
from collections.abc import Callable
from typing import Any


class QueueFull(Exception):
    """Every worker is busy and the queue is full."""


class _Worker:
    def __init__(self, process: Any, conn: Any) -> None:
        self.process = process
        self.conn = conn
        self.runs: set[str] = set()
        self.lock = threading.Lock()
        self.ready = False  # it has imported fluxnb and waits for jobs

    def send(self, msg: tuple) -> bool:
        try:
            with self.lock:
                self.conn.send(msg)
        except (OSError, ValueError):  # it is dying: its reader will say so
            return False
        return True


class Pool:
    def __init__(
        self,
        store_path: str,
        imports: Any,
        size: int,
        per_worker: int,
        queue_limit: int,
        on_message: Callable[[tuple], None],
        on_death: Callable[[list[str]], None],
        log: Any,
    ) -> None:
        self.store_path = store_path
        self.imports = imports  # the workers' ImportPolicy (c.FluxnbServer.allowed_modules)
        self.size = size
        self.per_worker = per_worker
        self.queue_limit = queue_limit
        self.on_message = on_message
        self.on_death = on_death
        self.log = log
        self.workers: list[_Worker] = []
        self.queue: deque[tuple[str, dict[str, Any]]] = deque()
        self.where: dict[str, _Worker] = {}  # run id -> the worker running it
        #: Runs that ended while a step's thread still executes (cancelled): held in
        #: ``where`` until the worker says "released", so they cannot be started again.
        self.stopping: set[str] = set()
        self.replies: dict[int, tuple[asyncio.Future[Any], _Worker]] = {}
        self._ids = itertools.count(1)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closing = False
        self.restarts = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the workers (on the event loop's thread; once)."""
        if self.loop is not None:
            return
        self.loop = asyncio.get_running_loop()
        for _ in range(self.size):
            self._spawn()

    def _spawn(self) -> None:
        from . import _worker

        ctx = multiprocessing.get_context("spawn")  # never fork a threaded server
        ours, theirs = ctx.Pipe()
        process = ctx.Process(
            target=_worker.main,
            args=(theirs, self.store_path, self.imports),
            name="fluxnb-worker",
            daemon=True,
        )
        process.start()
        theirs.close()
        worker = _Worker(process, ours)
        self.workers.append(worker)
        threading.Thread(
            target=self._read, args=(worker,), name="fluxnb-worker-reader", daemon=True
        ).start()

    def _read(self, worker: _Worker) -> None:
        assert self.loop is not None
        while True:
            try:
                msg = worker.conn.recv()
            except (EOFError, OSError):
                break
            try:
                self.loop.call_soon_threadsafe(self._received, worker, msg)
            except RuntimeError:  # the loop is closed: the server is gone
                return
        worker.process.join(5)
        with contextlib.suppress(RuntimeError):  # the loop is closed: the server is gone
            self.loop.call_soon_threadsafe(self._exited, worker)

    def alive(self) -> int:
        """Workers up and ready for jobs."""
        return sum(1 for w in self.workers if w.ready and w.process.is_alive())

    async def close(self) -> None:
        self.closing = True
        for w in self.workers:
            w.send(("stop",))
        for w in self.workers:  # a step still running in a thread would keep it up: 2 s
            await asyncio.to_thread(w.process.join, 2)
            if w.process.is_alive():
                w.process.kill()
            w.conn.close()

    # ------------------------------------------------------------------ jobs
    def submit(self, kind: str, job: dict[str, Any]) -> None:
        """Queue a run or resume (``job["run_id"]``); QueueFull if the queue is full."""
        if len(self.queue) >= self.queue_limit:
            raise QueueFull
        self.queue.append((kind, job))
        self._dispatch()

    def queued(self, run_id: str) -> bool:
        return any(job["run_id"] == run_id for _, job in self.queue)

    def active(self, run_id: str) -> bool:
        return run_id in self.where or self.queued(run_id)

    def cancel(self, run_id: str) -> str | None:
        """'dequeued' (it never started), 'cancelling' (its worker was told), or None."""
        for item in list(self.queue):
            if item[1]["run_id"] == run_id:
                self.queue.remove(item)
                return "dequeued"
        worker = self.where.get(run_id)
        if run_id in self.stopping:  # already ended: its last thread is returning
            return None
        if worker is not None and worker.send(("cancel", run_id)):
            return "cancelling"
        return None

    async def call(self, kind: str, job: dict[str, Any], worker: Any = None) -> Any:
        """Send a job that answers (a replay, a net instance's) to ``worker`` (default: the
        least busy); ``(ok, payload, worker)``. A worker that dies first answers
        ``(False, ("WorkerDied", ...))``."""
        assert self.loop is not None
        if worker is None:
            live = [w for w in self.workers if w.process.is_alive()]
            if not live:
                raise QueueFull
            worker = min(live, key=lambda w: len(w.runs))
        request = next(self._ids)
        future: asyncio.Future[Any] = self.loop.create_future()
        self.replies[request] = (future, worker)
        if not worker.send((kind, {**job, "request": request})):
            self.replies.pop(request, None)
            return False, ("WorkerDied", "the worker process has ended"), worker
        ok, payload = await future
        return ok, payload, worker

    def _dispatch(self) -> None:
        while self.queue:
            free = [w for w in self.workers if w.process.is_alive()]
            free = [w for w in free if len(w.runs) < self.per_worker]
            if not free:
                return
            worker = min(free, key=lambda w: len(w.runs))
            kind, job = self.queue.popleft()
            worker.runs.add(job["run_id"])
            self.where[job["run_id"]] = worker
            if not worker.send((kind, job)):
                worker.runs.discard(job["run_id"])
                self.where.pop(job["run_id"], None)
                self.queue.appendleft((kind, job))
                return

    def _received(self, worker: _Worker, msg: tuple) -> None:
        if msg[0] == "ready":
            worker.ready = True
            return
        if msg[0] == "released" or (msg[0] == "done" and not msg[3]):
            worker.runs.discard(msg[1])
            self.where.pop(msg[1], None)
            self.stopping.discard(msg[1])
            self._dispatch()
            if msg[0] == "released":
                return
        elif msg[0] == "done":  # ended, but a step's thread still executes: held
            self.stopping.add(msg[1])
        elif msg[0] == "reply":
            future, _ = self.replies.pop(msg[1], (None, None))
            if future is not None and not future.done():
                future.set_result((msg[2], msg[3]))
            return
        self.on_message(msg)

    def _exited(self, worker: _Worker) -> None:
        if worker in self.workers:
            self.workers.remove(worker)
        lost = sorted(worker.runs - self.stopping)  # stopping ones were recorded ended
        for run_id in worker.runs:
            self.where.pop(run_id, None)
            self.stopping.discard(run_id)
        for request, (future, holder) in list(self.replies.items()):
            if holder is worker:  # its answers will never come
                del self.replies[request]
                if not future.done():
                    why = f"the worker process ended (exit code {worker.process.exitcode})"
                    future.set_result((False, ("WorkerDied", why)))
        if self.closing:
            return
        self.log.warning(
            "fluxnb worker %s ended (exit code %s) with %d run(s): %s",
            worker.process.pid,
            worker.process.exitcode,
            len(lost),
            ", ".join(lost) or "none",
        )
        self.restarts += 1
        self._spawn()
        if lost:
            self.on_death(lost)
        self._dispatch()
