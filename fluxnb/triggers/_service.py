"""The trigger service: an asyncio loop that fires registered triggers, exactly once each.

One pass (:meth:`TriggerService.tick`) reads the triggers from the store and, for each,
works out what is due: schedule times up to now (with catch-up), new bus events, finished
runs of followed workflows, debounced file changes. Each due thing has a key; the service
takes the key's lease (a lock beside the store), then *claims* the key in the store —
recorded before any run starts, refused and recorded as a duplicate if any process claimed
it before — and only then starts the run. A process killed after the claim leaves a
``started`` row whose lease is free: the next pass of any service finds it and finishes,
resumes or starts its run (never a second run of the key). Tests drive :meth:`tick` with a
:class:`~fluxnb.triggers.ManualClock`; a server runs :meth:`run`.

Why over 400 lines: one loop's lifecycle (ticks, each kind's due things, the overlap and
queue policies, recovery, webhooks, watchers), which reads best in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import hashlib
import logging
import math
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from .._exceptions import FluxError
from ..store._leases import RunBusy, RunLease
from ..store._store import Store, open_store
from . import _records as rec
from ._clock import Clock, SystemClock
from ._launch import Firing, Launcher, LocalLauncher, Outcome
from ._records import Registered
from ._schedule import next_time, plan, times_between
from ._watch import watch_folder
from ._webhook import (
    DELIVERY_HEADER,
    REFUSED,
    SIGNATURE_HEADER,
    check_signature,
    delivery_problem,
)

log = logging.getLogger("fluxnb.triggers")

#: Seconds ``overlap: cancel_previous`` waits for the cancelled runs to end.
CANCEL_WAIT = 30.0
#: The body of a webhook delivery: larger ones are refused (413) before any work.
MAX_BODY = 10 * 1024 * 1024
#: Refused webhook deliveries recorded as ``firings`` rows per trigger and minute (by each
#: process); the rest are only counted in the trigger's ``rejections``.
RECORDED_REFUSALS = 10
#: Seconds a sender is asked to wait (``Retry-After``) before delivering to a paused trigger
#: again.
PAUSED_RETRY_AFTER = 60


@dataclass(frozen=True)
class HookAnswer:
    """The answer to a webhook delivery: HTTP ``status``, a JSON ``body`` and ``headers``
    (``Retry-After``)."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class TriggerService:
    """Fires the triggers registered in ``store``.

    Args:
        store: the store (a path, a Store; default: the default store).
        launcher: runs firings (default: :class:`LocalLauncher` on this loop).
        clock: the time source (default: the wall clock; tests pass a ManualClock).
        poll: seconds between passes when nothing is scheduled sooner (events, finished
            runs, queued firings and other processes' changes are seen on a pass).
        grace: a schedule time this many seconds late still fires as on time; an older
            one was missed, and the trigger's ``catch_up`` decides.
        workflows, namespace: for the default launcher (see LocalLauncher).
        root: ``watch:`` paths are relative to this folder and may not leave it (a
            server's root; None: watched as given, this process's user decides).

    >>> service = TriggerService("runs.duckdb")        # doctest: +SKIP
    >>> await service.start()                          # doctest: +SKIP
    """

    def __init__(
        self,
        store: str | Store | None = None,
        launcher: Launcher | None = None,
        *,
        clock: Clock | None = None,
        poll: float = 1.0,
        grace: float = 60.0,
        workflows: Mapping[str, Any] | None = None,
        namespace: Mapping[str, Any] | None = None,
        root: str | None = None,
    ) -> None:
        self.store = store if isinstance(store, Store) else open_store(store)
        self.root = root
        self.clock: Clock = clock or SystemClock()
        self.launcher: Launcher = launcher or LocalLauncher(self.store, workflows, namespace)
        self.poll = poll
        self.grace = grace
        #: Runs going in this process: key -> (trigger id, task).
        self._running: dict[str, tuple[str, asyncio.Task[None]]] = {}
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        #: Watch triggers' changes not fired yet: id -> (paths, time of the last change).
        self._changes: dict[str, tuple[set[str], datetime]] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._watching = False
        self._wake: asyncio.Event | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._leaving = False
        self._last_regs: list[Registered] = []
        #: Why a trigger could not be looked at in the last pass, by trigger id.
        self.errors: dict[str, str] = {}
        #: Refused deliveries by trigger id: (this minute's start, recorded in it, counted
        #: but not recorded yet).
        self._refusals: dict[str, tuple[datetime, int, int]] = {}

    # ------------------------------------------------------------------ listeners
    def subscribe(self, listener: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
        """Call ``listener(event)`` for every firing recorded by this service (the
        server's SSE stream subscribes); returns a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def _publish(self, event: dict[str, Any]) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # a listener's bug must not stop firing
                log.exception("a trigger listener failed")

    def _firing_event(self, reg: Registered, key: str, outcome: str, **more: Any) -> None:
        self._publish(
            {
                "type": "firing",
                "trigger": reg.id,
                "workflow": reg.trigger.workflow,
                "namespace": reg.namespace or "default",
                "key": key,
                "outcome": outcome,
                **more,
            }
        )

    async def _io(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Store work off the loop (a store file may be busy with another process)."""
        return await asyncio.to_thread(partial(fn, *args, **kwargs))

    # ------------------------------------------------------------------ the loop
    async def start(self) -> None:
        """Run :meth:`run` in the background until :meth:`stop`."""
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.get_running_loop().create_task(self.run())

    async def run(self) -> None:
        """Pass after pass until cancelled or stopped; file watches run meanwhile."""
        self._watching = True
        try:
            while True:
                try:
                    await self.tick()
                except Exception as exc:  # the store busy or broken: say so, try again
                    log.exception("trigger pass failed")
                    # of no one namespace: the server shows it to admins only
                    self._publish(
                        {"type": "trigger_error", "trigger": None, "namespace": None,
                         "error": str(exc)}
                    )  # fmt: skip
                await self._wait(self.next_wait())
        finally:
            self._watching = False
            for task in self._watchers.values():
                task.cancel()
            self._watchers.clear()

    async def stop(self, *, runs: str = "cancel") -> None:
        """Stop the loop. Runs going in this process: ``cancel`` them (recorded
        ``cancelled``), ``wait`` for them, or ``leave`` them as they are recorded
        (``started``: a server shutting down; the next service picks them up)."""
        if runs not in ("cancel", "wait", "leave"):
            raise ValueError(f"runs= is cancel, wait or leave, not {runs!r}")
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        self._leaving = runs == "leave"
        if runs != "wait":
            for _, task in self._running.values():
                task.cancel()
        await self.settle()

    async def settle(self) -> None:
        """Wait until no run started by this service is going (tests)."""
        while self._running:  # a run cancelled while its end was being recorded stays
            # ``started`` (the next pass finishes it): no reason for stop() to raise
            tasks = [t for _, t in list(self._running.values())]
            await asyncio.gather(*tasks, return_exceptions=True)

    def wake(self) -> None:
        """Make the loop pass now (an event was posted, a trigger registered)."""
        if self._wake is not None:
            self._wake.set()

    async def _wait(self, seconds: float) -> None:
        if self._wake is None:
            self._wake = asyncio.Event()
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()
            self._wake.clear()

    def next_wait(self) -> float:
        """Seconds until the next pass is due (a schedule time, a debounce ending, or
        ``poll``)."""
        now = self.clock.now()
        wait = self.poll
        for reg in self._last_regs:
            if reg.trigger.kind == "schedule" and not reg.paused:
                with contextlib.suppress(Exception):
                    due = (next_time(reg.trigger, now) - now).total_seconds()
                    wait = min(wait, max(due, 0.0))
        for tid, (_, last) in self._changes.items():
            watched = next((r for r in self._last_regs if r.id == tid), None)
            if watched is not None:
                left = watched.trigger.spec["debounce"] - (now - last).total_seconds()
                wait = min(wait, max(left, 0.0))
        return wait

    async def tick(self) -> None:
        """One pass: fire what is due now, start queued firings that have room, and pick
        up firings whose process died. One trigger's failure is logged, kept in
        :attr:`errors`, and never stops the others."""
        now = self.clock.now()
        regs: list[Registered] = await self._io(rec.all_triggers, self.store)
        self._last_regs = regs
        last = await self._io(rec.last_scheduled, self.store)
        if self._watching:
            self._sync_watchers(regs)
        for reg in regs:
            if reg.paused:
                continue
            try:
                await self._evaluate(reg, now, last.get(reg.id))
                self.errors.pop(reg.id, None)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                if self.errors.get(reg.id) == error:  # said already, in an earlier pass
                    continue
                log.exception("trigger %s failed to fire", reg.id)
                self.errors[reg.id] = error
                self._publish(
                    {"type": "trigger_error", "trigger": reg.id,
                     "namespace": reg.namespace or "default", "error": str(exc)}
                )  # fmt: skip
        await self._count_refusals(regs)
        await self._start_queued(regs)
        await self._recover(regs)

    async def _evaluate(self, reg: Registered, now: datetime, last: datetime | None) -> None:
        t = reg.trigger
        if t.kind == "schedule":
            after = max(reg.since, last) if last else reg.since
            times, overflow = times_between(t, after, now)
            if overflow:
                log.warning("trigger %s: over %d schedule times missed", reg.id, len(times))
            for when, why in plan(times, now, self.grace, t.catch_up):
                facts = {"scheduled_for": when.isoformat()}
                await self.fire(reg, f"{reg.id}@{when.isoformat()}", facts, when, skip=why)
        elif t.kind == "event":
            for eid, data, _ in await self._io(rec.pending_events, self.store, reg):
                facts = {"event": t.spec["name"], "event_id": eid, "data": data}
                await self.fire(reg, f"{reg.id}#event:{eid}", facts)
        elif t.kind == "on_run":
            for run in await self._io(rec.finished_runs, self.store, reg):
                facts = {
                    "upstream_run": run["run_id"],
                    "upstream_status": run["status"],
                    "outputs": run["outputs"],
                }
                await self.fire(reg, f"{reg.id}#run:{run['run_id']}", facts)
        elif t.kind == "watch":
            watch_folder(t, self.root)  # one outside the root: this trigger's error, each pass
            if reg.id not in self._changes:
                return
            paths, changed = self._changes[reg.id]
            if (now - changed).total_seconds() >= t.spec["debounce"]:
                del self._changes[reg.id]
                listed = sorted(paths)
                await self.fire(reg, f"{reg.id}#watch:{_burst_id(listed)}", {"paths": listed})

    # ------------------------------------------------------------------ firing
    async def fire(
        self,
        reg: Registered,
        key: str,
        facts: Mapping[str, Any],
        scheduled_for: datetime | None = None,
        *,
        skip: str | None = None,
    ) -> rec.Claim | None:
        """Claim ``key`` for ``reg`` and start its run if the claim says so. None: another
        process is claiming that key at this moment (it will record it)."""
        now = self.clock.now()
        if skip is None and reg.backoff_until is not None and now < reg.backoff_until:
            skip = (
                f"backing off after {reg.failures} failed runs in a row, until "
                f"{reg.backoff_until:%Y-%m-%d %H:%M:%S} UTC (last error: {reg.last_error})"
            )
        try:
            lease = RunLease(self.store, "firing:" + key)
        except RunBusy:  # its key is being fired now: a repeat is recorded as a duplicate
            claim = await self._io(
                rec.claim, self.store, key, reg.trigger, now=now, decide=None, payload=dict(facts)
            )
            if claim is not None:
                self._firing_event(reg, key, claim.outcome, run_id=claim.run_id)
            return claim
        try:
            claim = await self._io(
                rec.claim,
                self.store,
                key,
                reg.trigger,
                now=now,
                decide=partial(_decide, reg, skip),
                scheduled_for=scheduled_for,
                payload=dict(facts),
            )
        except BaseException:
            lease.release()
            raise
        if claim is None:  # pragma: no cover - a claim with decide= always records
            lease.release()
            return None
        self._firing_event(
            reg, key, claim.outcome, run_id=claim.run_id, skipped_because=claim.skipped_because
        )
        if claim.outcome != "started" or claim.run_id is None:
            lease.release()
            return claim
        if reg.trigger.overlap == "cancel_previous":  # and let them end before it starts
            previous = [t for k, (tid, t) in self._running.items() if tid == reg.id and k != key]
            for task in previous:
                task.cancel()
            if previous:
                await asyncio.wait(previous, timeout=CANCEL_WAIT)
        firing = Firing(key, reg, claim.run_id, scheduled_for, dict(facts))
        self._launch(firing, lease)
        return claim

    def _launch(self, firing: Firing, lease: RunLease, *, resume: bool = False) -> None:
        task = asyncio.get_running_loop().create_task(self._run(firing, lease, resume))
        self._running[firing.key] = (firing.trigger.id, task)

    async def _run(self, firing: Firing, lease: RunLease, resume: bool) -> None:
        reg = firing.trigger
        try:
            try:
                run = self.launcher.resume if resume else self.launcher.launch
                outcome = await run(firing)
            except asyncio.CancelledError:
                if self._leaving:  # recorded started: the next service continues it
                    return
                outcome = Outcome("cancelled", "cancelled (a newer firing, or the service stopped)")
            except Exception as exc:  # the workflow could not start: a failed firing
                outcome = Outcome("failed", f"{type(exc).__name__}: {exc}")
            status = outcome.status if outcome.status in rec.OUTCOMES else "failed"
            await self._io(
                rec.finish, self.store, reg, firing.key, status, self.clock.now(), outcome.error
            )
            self._firing_event(reg, firing.key, status, run_id=firing.run_id, error=outcome.error)
        except Exception:
            log.exception("trigger %s: could not record the end of %s", reg.id, firing.key)
        finally:
            lease.release()
            self._running.pop(firing.key, None)
            self.wake()

    async def _start_queued(self, regs: list[Registered]) -> None:
        queued = await self._io(rec.firing_rows, self.store, "outcome = 'queued'")
        by_id = {r.id: r for r in regs}
        for row in queued:
            reg = by_id.get(row["trigger"])
            if reg is None:
                continue
            key = row["key"]
            try:
                lease = RunLease(self.store, "firing:" + key)
            except RunBusy:
                continue
            took = await self._io(rec.start_queued, self.store, key, reg.id, _limit(reg))
            if not took:
                lease.release()
                continue
            facts = rec_payload(row)
            scheduled = rec.aware(row["scheduled_for"])
            self._firing_event(reg, key, "started", run_id=row["run_id"])
            self._launch(Firing(key, reg, row["run_id"], scheduled, facts), lease)

    async def _recover(self, regs: list[Registered]) -> None:
        """Firings recorded ``started`` whose process is gone (its lease is free): end,
        resume or start their run — the key is never fired again. A run that succeeded or
        failed gives the firing its outcome; one cancelled or interrupted by its process's
        end (a server's workers cancel their runs when it dies) is resumed."""
        started = await self._io(rec.firing_rows, self.store, "outcome = 'started'")
        by_id = {r.id: r for r in regs}
        for row in started:
            key = row["key"]
            reg = by_id.get(row["trigger"])
            if key in self._running or reg is None:
                continue
            try:
                lease = RunLease(self.store, "firing:" + key)
            except RunBusy:
                continue  # its process is alive and running it
            status = await self._io(rec.run_status, self.store, row["run_id"])
            firing = Firing(
                key, reg, row["run_id"], rec.aware(row["scheduled_for"]), rec_payload(row)
            )
            if status in ("succeeded", "failed"):
                await self._io(rec.finish, self.store, reg, key, status, self.clock.now(), None)
                lease.release()
                self._firing_event(reg, key, status, run_id=row["run_id"], recovered=True)
                continue
            log.warning("trigger %s: %s of a gone process, continuing run %s", reg.id, key, status)
            self._firing_event(reg, key, "started", run_id=row["run_id"], recovered=True)
            self._launch(firing, lease, resume=status is not None)

    # ------------------------------------------------------------------ faces
    async def fire_now(self, trigger_id: str) -> rec.Claim | None:
        """Fire a trigger now, by hand (its policies apply; key ``<id>#manual:<n>``)."""
        reg = await self._io(rec.require, self.store, trigger_id)
        n = self.clock.now()
        key = f"{trigger_id}#manual:{uuid.uuid4().hex[:12]}"
        return await self.fire(reg, key, {"manual": True, "at": n.isoformat()})

    async def webhook(self, trigger_id: str, body: bytes, headers: Mapping[str, str]) -> HookAnswer:
        """A delivery to ``POST /fluxnb/hooks/{trigger_id}``: 404 unknown trigger, 413 over
        MAX_BODY, 400 a delivery id that is not one, 401 bad signature (recorded
        ``rejected``, the first RECORDED_REFUSALS a minute; all counted), 400 no delivery id,
        503 the trigger is paused or backing off (``Retry-After``; nothing claimed, so a
        later retry fires), 200 a repeated delivery (no second run), 202 fired."""
        if len(body) > MAX_BODY:
            return _answer(413, "TooLarge", f"the delivery has {len(body)} bytes: over {MAX_BODY}")
        reg = await self._io(rec.get, self.store, trigger_id)
        if reg is None or reg.trigger.kind != "webhook":
            return _answer(404, "NotFound", f"no webhook trigger '{trigger_id}'")
        lower = {k.lower(): v for k, v in headers.items()}
        delivery = lower.get(DELIVERY_HEADER.lower())
        bad_id = delivery_problem(delivery)
        if bad_id is not None:  # before anything is written: the key is the caller's text
            return _answer(400, "BadRequest", bad_id)
        key = f"{reg.id}#delivery:{delivery or '-'}"
        why = check_signature(
            body, lower.get(SIGNATURE_HEADER.lower()), reg.trigger.spec["secret_env"]
        )
        if why is not None:
            await self._refuse(reg, key, why)
            return _answer(401, "Unauthorized", f"delivery refused: {REFUSED}")
        if not delivery:
            why = f"no {DELIVERY_HEADER} header: each delivery needs a unique id"
            await self._refuse(reg, key, why)
            return _answer(400, "BadRequest", why)
        wait = self._hold(reg)
        if wait is not None:  # not claimed: the sender retries, and a later retry fires
            state = "paused" if reg.paused else f"backing off after {reg.failures} failed runs"
            await self._refuse(reg, key, f"the trigger is {state}: 503, the sender may retry")
            message = (
                f"trigger '{reg.id}' is {state}: deliver again in {wait} s (nothing was "
                "claimed: the delivery fires once the trigger takes deliveries again)"
            )
            answer = _answer(503, "Unavailable", message)
            return HookAnswer(503, answer.body, {"Retry-After": str(wait)})
        text = body.decode("utf-8", errors="replace")
        facts: dict[str, Any] = {"body": text, "delivery": delivery, "json": _json_or_none(text)}
        claim = await self.fire(reg, key, facts)
        if claim is None:  # the same delivery is being claimed right now
            return HookAnswer(200, {"outcome": "duplicate", "key": key, "run_id": None})
        out = {"outcome": claim.outcome, "key": key, "run_id": claim.run_id}
        if claim.skipped_because:
            out["skipped_because"] = claim.skipped_because
        return HookAnswer(200 if claim.outcome == "duplicate" else 202, out)

    def _hold(self, reg: Registered) -> int | None:
        """Seconds a webhook's sender should wait before delivering again (None: it takes
        deliveries now): paused, or backing off after failed runs (until the backoff ends)."""
        if reg.paused:
            return PAUSED_RETRY_AFTER
        now = self.clock.now()
        if reg.backoff_until is not None and now < reg.backoff_until:
            return max(1, math.ceil((reg.backoff_until - now).total_seconds()))
        return None

    async def _refuse(self, reg: Registered, key: str, why: str) -> None:
        """Record a refused delivery (claiming nothing): the first RECORDED_REFUSALS of a
        trigger per minute get a ``rejected`` row, the rest are counted in its row only, so
        anonymous callers cannot grow the store."""
        now = self.clock.now()
        start, recorded, counted = self._refusals.get(reg.id, (now, 0, 0))
        if (now - start).total_seconds() >= 60:
            start, recorded = now, 0
        if recorded >= RECORDED_REFUSALS:
            self._refusals[reg.id] = (start, recorded, counted + 1)
            return
        self._refusals[reg.id] = (start, recorded + 1, 0)
        await self._io(rec.reject, self.store, key, reg.trigger, now, why, counted)
        self._firing_event(reg, key, "rejected", skipped_because=why)

    async def _count_refusals(self, regs: list[Registered]) -> None:
        """Add the refusals counted but not recorded to their triggers' ``rejections``."""
        by_id = {r.id: r for r in regs}
        for tid, (start, recorded, counted) in list(self._refusals.items()):
            if (self.clock.now() - start).total_seconds() >= 60 and not counted:
                del self._refusals[tid]  # a quiet minute: forget it
            elif counted and tid in by_id:
                self._refusals[tid] = (start, recorded, 0)
                await self._io(
                    rec.reject, self.store, None, by_id[tid].trigger, self.clock.now(), "", counted
                )

    def notice_changes(self, trigger_id: str, paths: list[str] | set[str]) -> None:
        """File changes for a watch trigger (what its watcher calls); they fire once no
        more changes came for the trigger's ``debounce``."""
        seen, _ = self._changes.get(trigger_id, (set(), self.clock.now()))
        self._changes[trigger_id] = (seen | set(paths), self.clock.now())
        self.wake()

    def _sync_watchers(self, regs: list[Registered]) -> None:
        wanted = {r.id: r for r in regs if r.trigger.kind == "watch" and not r.paused}
        for tid, reg in list(wanted.items()):
            try:
                watch_folder(reg.trigger, self.root)
            except FluxError:  # outside the root: its pass says so (errors, trigger_error)
                del wanted[tid]
        for tid in list(self._watchers):
            if tid not in wanted:
                self._watchers.pop(tid).cancel()
        for tid, reg in wanted.items():
            if tid not in self._watchers or self._watchers[tid].done():
                self._watchers[tid] = asyncio.get_running_loop().create_task(self._watch(reg))

    async def _watch(self, reg: Registered) -> None:
        import watchfiles

        folder, pattern = watch_folder(reg.trigger, self.root), reg.trigger.spec["glob"]
        os.makedirs(folder, exist_ok=True)
        async for changes in watchfiles.awatch(folder, debounce=50, step=20):
            paths = [
                p
                for _, p in changes
                if fnmatch.fnmatch(os.path.relpath(p, folder), pattern)
                or fnmatch.fnmatch(os.path.basename(p), pattern)
            ]
            if paths:
                self.notice_changes(reg.id, paths)


def _limit(reg: Registered) -> int | None:
    """How many runs of the trigger may go at once (None: no limit)."""
    t = reg.trigger
    if t.max_concurrency is not None:
        return t.max_concurrency
    return None if t.overlap == "allow" else 1


def _decide(reg: Registered, skip: str | None, running: int, queued: int) -> tuple[str, str | None]:
    """The overlap and concurrency policies, given this trigger's firings now started and
    queued (in the store, by any process)."""
    if skip is not None:
        return "skipped", skip
    limit = _limit(reg)
    if limit is None or (running < limit and queued == 0):
        return "started", None
    overlap = reg.trigger.overlap
    if overlap == "skip":
        return "skipped", f"the previous run is still going (overlap: skip, limit {limit})"
    if overlap == "cancel_previous":
        return "started", None
    return "queued", f"waiting for a running one to end (overlap: {overlap}, limit {limit})"


def rec_payload(row: dict[str, Any]) -> dict[str, Any]:
    import json

    return json.loads(row["payload"]) if row.get("payload") else {}


def _burst_id(paths: list[str]) -> str:
    """The same files in the same state give the same key, whichever process saw them."""
    h = hashlib.sha256()
    for p in paths:
        try:
            stamp = os.stat(p).st_mtime_ns
        except OSError:
            stamp = -1
        h.update(f"{p}\0{stamp}\0".encode())
    return h.hexdigest()[:24]


def _json_or_none(text: str) -> Any:
    import json

    try:
        return json.loads(text)
    except ValueError:
        return None


def _answer(status: int, kind: str, message: str) -> HookAnswer:
    return HookAnswer(status, {"error": {"kind": kind, "message": message, "problems": []}})
