"""Where a step's callable runs: the executor interface and the local executor.

The local executor runs async callables on the run's event loop and sync callables in a
bounded thread pool. An async callable is first driven inline: if it finishes without
suspending (a cache hit, a no-op, pure computation) it never becomes an asyncio Task,
which is most of the floor's per-step cost. Only a callable that really waits is handed
to a Task, resumed exactly where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import os
import sys
import types
import warnings
import weakref
from asyncio import tasks as _tasks  # current_task() bookkeeping: see StandIn
from collections.abc import Callable, Coroutine, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from ..spec import Binding


class Executor(Protocol):
    """Runs step callables for a scheduler: one run, or (LocalExecutor) runs at the same
    time on one loop, each opening and closing it.

    An executor may also define ``async def aclose()``, awaited after ``close()``.
    """

    #: Recorded in each event row's ``executor`` column.
    name: str

    def open(self, loop: asyncio.AbstractEventLoop, max_threads: int | None) -> None:
        """Prepare to run on ``loop``."""

    def start(self, binding: Binding, kwargs: dict[str, Any]) -> tuple[bool, Any]:
        """Begin one call. Returns ``(True, value)`` when it already finished, or
        ``(False, future)`` with an asyncio future to wait for. Raises what the callable
        raised when it failed at once."""

    def placement(self, fut: Any) -> str | None:
        """Where a finished call ran (e.g. a worker's address), if the executor knows."""

    def close(self) -> None:
        """Release resources; calls still running in threads are abandoned, not joined."""


#: Where a caller collects the calls of sync steps running in threads, for runs started in
#: this context: a cancelled run leaves them running (a thread cannot be stopped), and a
#: control plane must not start the run again until they returned (``concurrent.futures.
#: wait`` on the set). None (the default): nothing is collected.
thread_calls: contextvars.ContextVar[set[Future[Any]] | None] = contextvars.ContextVar(
    "fluxnb_thread_calls", default=None
)


class LocalExecutor:
    """Async callables on the loop (inline first), sync callables in a thread pool."""

    name = "local"

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._factory = False  # the loop has a task factory: tasks are made by it
        #: Runs that opened it and have not closed it, and whether more than one has
        #: since it was last idle (each run then sets its context before starting steps).
        self.serving = 0
        self.shared = False
        self._pool: ThreadPoolExecutor | None = None
        self._max_threads: int | None = 1
        #: Async callables seen to suspend: they go straight to a task, as the floor does.
        self.suspends: set[Any] = set()
        # the run's own context (``serve_context`` when shared): every step starts from a
        # copy of it, whichever task (the run's, or a finished step's) happens to start it
        self._context = contextvars.copy_context()
        #: A step's task reporting its end right now, free to run one more step (see
        #: ``_drive``), and the step handed to it.
        self._tail: asyncio.Task[Any] | None = None
        self._handed: tuple[Any, Any, dict[str, Any], Box] | None = None
        #: Tasks made since a step's task last reported: past ``_BURST`` (a wide fan-out
        #: starting), the next ones are plain (see ``_drive``).
        self._burst = 0
        #: A step's task is being made: one that starts running at once (an eager task
        #: factory) runs the plain way (its references are not a task's usual ones).
        self._making = False

    def open(self, loop: asyncio.AbstractEventLoop, max_threads: int | None) -> None:
        """Serve a run on ``loop``. Runs at the same time may share one instance (on one
        loop): its thread pool closes when the last of them closes it, and each run's
        steps start from copies of that run's own context (``serve_context``)."""
        old = self._loop
        if self.serving and old is not loop and (old is None or old.is_closed()):
            self.serving = 0  # a run that never closed it, on a loop that is gone
        self.serving += 1
        if self.serving > 1:
            if loop is not old:
                self.serving -= 1
                raise RuntimeError(
                    "this LocalExecutor serves a run on another event loop: give each "
                    "loop's runs an executor of their own (LocalExecutor())"
                )
            self.shared = True
            return
        self._loop = loop
        # a step's task: made directly (loop.create_task's Python checks, twice a step,
        # are a few percent of a step that awaits), unless the loop has a task factory
        self._factory = loop.get_task_factory() is not None
        self._max_threads = max_threads  # None: decided when a sync step first needs one
        self._context = contextvars.copy_context()

    def serve_context(self, context: contextvars.Context) -> None:
        """The steps started from now on start from copies of ``context``: a run sharing
        this executor with others says so before it starts its steps."""
        self._context = context

    def start(self, binding: Binding, kwargs: dict[str, Any]) -> tuple[bool, Any]:
        done, value, _ = self.start_reporting(binding, kwargs)
        return done, value

    def start_reporting(  # noqa: PLR0915 (every step's start: one frame, the hot path)
        self, binding: Binding, kwargs: dict[str, Any], box: Any = None
    ) -> tuple[bool, Any, Any]:
        """``start``, plus the box through which a step's task reports its own end from
        inside (set ``box.report`` and ``box.token``): no done-callback turn of the loop.
        ``box``: the caller's own (any object with a ``Box``'s attributes), else a new one.

        An async callable runs inline first; once it has been seen to suspend, the next
        calls of it go straight to a task (one coroutine frame less, no context copy)."""
        loop = self._loop
        assert loop is not None, "LocalExecutor.open() was not called"
        if binding.is_async:
            fn = binding.fn
            box = Box() if box is None else box
            try:
                seen = fn in self.suspends
            except Exception:  # an unhashable callable: known by its id (suspend_key)
                seen = id(fn) in self.suspends
            if seen:
                tail = self._tail
                if tail is not None:  # a step's task is ending: it runs this step next
                    self._tail = None
                    self._handed = (tail, fn, kwargs, box)
                    return False, tail, box
                # the step's coroutine is made inside its task: a task cancelled before it
                # ever ran leaves no coroutine never awaited
                self._burst += 1
                drive = (
                    _drive(box, fn, kwargs, ex=self)
                    if self._burst <= _BURST
                    else _plainly(box, fn, kwargs, None, self)  # a fan-out: see _drive
                )
                if not self._factory:  # asyncio's Task, made directly (no partial's dict)
                    return (
                        False,
                        _TASK(drive, loop=loop, name=STEP_TASK, context=self._context.copy()),
                        box,
                    )
                self._making = True  # an eager task factory runs its first step in here
                try:
                    task = loop.create_task(drive, name=STEP_TASK, context=self._context.copy())
                finally:
                    self._making = False
                return False, task, box
            context = self._context.copy()
            coro = context.run(fn, **kwargs)
            stand_in = StandIn(box, coro)
            current = _tasks.current_task(loop)
            if current is not None:
                _tasks._leave_task(loop, current)
            # current_task() is the step's stand-in, not ours (asyncio takes any object here)
            _tasks._enter_task(loop, stand_in)  # type: ignore[arg-type]
            try:
                yielded = context.run(coro.send, None)
            except StopIteration as stop:
                if stand_in.callbacks:  # the step added done-callbacks to "its task"
                    stand_in.ended_inline(stop.value, None)
                return True, stop.value, None
            except BaseException as exc:
                if stand_in.callbacks:
                    stand_in.ended_inline(None, exc)
                raise
            finally:
                _tasks._leave_task(loop, stand_in)  # type: ignore[arg-type]
                if current is not None:
                    _tasks._enter_task(loop, current)
            self.suspends.add(suspend_key(fn))
            return False, continue_in_task(loop, coro, yielded, context, stand_in, self), box
        context = self._context.copy()
        if self._pool is None:
            # os.cpu_count() costs ~7 us: asked only by a run that has a sync step
            threads = self._max_threads or min(32, (os.cpu_count() or 1) + 4)
            self._pool = ThreadPoolExecutor(threads, thread_name_prefix="fluxnb-step")
        call = functools.partial(context.run, binding.fn, **kwargs)
        calls = context.get(thread_calls)
        if calls is None:
            return False, loop.run_in_executor(self._pool, call), None
        future = self._pool.submit(call)
        calls.add(future)
        future.add_done_callback(calls.discard)
        return False, asyncio.wrap_future(future, loop=loop), None

    def placement(self, fut: Any) -> str | None:
        return None

    def close(self) -> None:
        self.serving = max(0, self.serving - 1)
        if self.serving:  # another run still uses it (its queued sync steps too)
            return
        self.shared = False
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def open_all(executors: Any, loop: asyncio.AbstractEventLoop, max_threads: int | None) -> None:
    """Open each of a run's executors; if one raises, the ones opened before it are
    closed again (a shared LocalExecutor would count the run as serving for ever)."""
    opened: list[Any] = []
    try:
        for ex in executors:
            ex.open(loop, max_threads)
            opened.append(ex)
    except BaseException:
        for ex in opened:
            with contextlib.suppress(Exception):
                ex.close()
        raise


async def close_all(executors: Any) -> None:
    """Close each of a run's executors (``close()``, then ``aclose()`` if it has one).
    One that raises does not keep the others open, nor cost the run its result: the
    error is a RuntimeWarning naming the executor (the run's work is done)."""
    for ex in executors:
        try:
            ex.close()
            aclose = getattr(ex, "aclose", None)
            if aclose is not None:
                await aclose()
        except Exception as exc:
            name = getattr(ex, "name", type(ex).__name__)
            warnings.warn(
                f"fluxnb could not close the executor {name!r}: {type(exc).__name__}: {exc}",
                RuntimeWarning,
                stacklevel=2,
            )


def suspend_key(fn: Any) -> Any:
    """How ``LocalExecutor.suspends`` knows ``fn``: itself, or its id when it cannot be
    hashed (an instance with ``__eq__`` and an async ``__call__``, or a decorator class
    like it; its binding holds it for the run, so the id stays its own)."""
    try:
        hash(fn)
    except Exception:  # TypeError, or whatever a __hash__ of the user's own raises
        return id(fn)
    return fn


def continue_in_task(
    loop: asyncio.AbstractEventLoop,
    coro: Any,
    yielded: Any,
    context: Any,
    stand_in: StandIn,
    ex: LocalExecutor | None = None,
) -> asyncio.Task[Any]:
    """A task that goes on with ``coro``, whose first segment ran inline (with ``stand_in``
    as the current task) and suspended on ``yielded``; it reports its end through the
    stand-in's box, and the stand-in acts on it from now on. The task runs no step handed
    over (its coroutine is ``_Continuing``'s: each of its turns costs a call more); the
    executor ``ex``, if given, is told while an eager task factory may run its first turn.

    Cancelled before its first turn (the run stopped, a timeout already expired, the step
    cancelled "its task" before it suspended: ``StandIn.cancel``), the cancellation is
    thrown into the step's coroutine where it stopped, as asyncio does for a task's: its
    ``except`` and ``finally`` run, ``asyncio.timeout`` turns it into TimeoutError."""
    resume = _Resume(coro, yielded)
    if ex is not None:
        ex._making = True  # an eager task factory runs the task's first step in here
    try:
        task = loop.create_task(
            _Continuing(_plainly(stand_in.box, None, None, resume, None), resume),
            name=STEP_TASK,
            context=context,
        )
    finally:
        if ex is not None:
            ex._making = False
    stand_in.task = task
    callbacks = stand_in.callbacks
    if callbacks:  # added to "its task" before it had one
        stand_in.callbacks = None
        for fn, cx in callbacks:
            task.add_done_callback(fn, context=cx)
    pending = stand_in.pending
    if pending:  # the step cancelled its stand-in before it suspended: its task, now
        stand_in.pending = None
        if asyncio.isfuture(yielded):  # what it waits on is cancelled, as by Task.cancel
            yielded.cancel()
        for msg in pending:
            task.cancel(msg)
    return task


class _Continuing(Coroutine[Any, Any, Any]):
    """The coroutine of a task that goes on with a step whose first segment ran inline.
    A coroutine that has not started cannot take a cancellation thrown in before its
    first turn (it ends at once, running nothing): this one starts ``_drive`` and has its
    ``_Resume`` throw it into the step where the step stopped."""

    __slots__ = ("inner", "resume", "started")

    def __init__(self, inner: Any, resume: _Resume) -> None:
        self.inner = inner
        self.resume = resume
        self.started = False

    def send(self, value: Any) -> Any:
        self.started = True
        return self.inner.send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if not self.started:  # before the first turn: thrown in where the step stopped
            self.started = True
            if isinstance(typ, BaseException):
                self.resume.first = typ
            else:
                self.resume.first = val if isinstance(val, BaseException) else typ(val)
            return self.inner.send(None)
        if val is None and tb is None:
            return self.inner.throw(typ)
        return self.inner.throw(typ, val, tb)

    def close(self) -> None:
        self.inner.close()

    def __await__(self) -> Generator[Any, Any, Any]:
        return self.inner.__await__()  # type: ignore[no-any-return]

    # what debuggers and Task.get_stack() read of a task's coroutine: the step's own
    @property
    def cr_frame(self) -> Any:
        return getattr(self.resume.coro, "cr_frame", None)

    @property
    def cr_await(self) -> Any:
        return getattr(self.resume.coro, "cr_await", None)

    @property
    def cr_code(self) -> Any:
        return getattr(self.resume.coro, "cr_code", None)

    @property
    def cr_running(self) -> bool:
        return bool(getattr(self.inner, "cr_running", False))

    @property
    def __name__(self) -> str:  # a task's repr names the step's function
        return str(getattr(self.resume.coro, "__qualname__", "step"))


class _Resume:
    """Continue driving a coroutine that already yielded ``yielded`` once.

    The Task sees exactly what the coroutine yields (futures, or None for a bare
    ``sleep(0)``) and sends and throws (cancellation) straight into it. A bare yield
    asked for one turn of the loop, and the Task's first step is that turn: it resumes the
    coroutine at once instead of yielding once more.
    """

    __slots__ = ("coro", "first", "yielded")

    def __init__(self, coro: Any, yielded: Any) -> None:
        self.coro = coro
        self.yielded = yielded
        #: Thrown in first, instead of resuming (a cancellation before the task's first
        #: turn: see ``_Continuing``).
        self.first: BaseException | None = None

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, yielded, first = self.coro, self.yielded, self.first
        if first is not None:
            self.first = None
            try:
                yielded = coro.throw(first)
            except StopIteration as stop:
                return stop.value
        elif yielded is None:
            try:
                yielded = coro.send(None)
            except StopIteration as stop:
                return stop.value
        while True:
            try:
                sent = yield yielded
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    yielded = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


#: ``report(box, value, error, cancelled)``: how a step's task ended (``box.token`` says
#: whose attempt it was).
Report = Callable[[Any, Any, "BaseException | None", bool], None]


class Box:
    """Where a step's task reports its end: set ``report`` and ``token`` before the task
    runs (it runs on a later turn of the loop); None leaves the task's future to tell.
    ``started``: the task's coroutine has begun (it reports from then on)."""

    # class defaults and no __init__: making one runs no Python frame (one per step)
    report: Report | None = None
    token: Any = None
    started = False


class StandIn:
    """``asyncio.current_task()`` while a step's first segment runs inline, before it has a
    task of its own: what ``asyncio.timeout()`` (and any code cancelling or watching "the
    current task") acts on. A cancel or a done-callback asked for before the step has a
    task waits for it (``pending``, ``callbacks``); once the step suspends, every call goes
    to the step's own task. Without it, the run's task (or another step's) was current,
    and a step's ``asyncio.timeout`` cancelled the whole run."""

    __slots__ = ("__weakref__", "box", "callbacks", "coro", "outcome", "over", "pending", "task")

    def __init__(self, box: Box, coro: Any = None) -> None:
        self.box = box
        self.task: Any = None
        self.over = False
        #: cancel()'s messages before the step had a task (its inline first segment): the
        #: task gets them when it is made, so the step is cancelled at its first await.
        self.pending: list[Any] | None = None
        self.coro = coro
        #: add_done_callback()'s before the step had a task: the task gets them when it is
        #: made; if the step ends in its first segment, they are called then, with this
        #: stand-in (done, with the step's result or exception: ``outcome``).
        self.callbacks: list[tuple[Any, Any]] | None = None
        self.outcome: tuple[Any, BaseException | None] | None = None

    def ended_inline(self, value: Any, error: BaseException | None) -> None:
        """The step ended in its first segment (no task): its done-callbacks are due."""
        self.over = True
        self.outcome = (value, error)
        callbacks, self.callbacks = self.callbacks, None
        if callbacks:
            loop = asyncio.get_running_loop()
            for fn, context in callbacks:
                loop.call_soon(fn, self, context=context)

    def add_done_callback(self, fn: Any, *, context: Any = None) -> None:
        if self.task is not None:
            self.task.add_done_callback(fn, context=context)
        elif self.over:  # its step has ended
            asyncio.get_running_loop().call_soon(fn, self, context=context)
        else:
            self.callbacks = [*(self.callbacks or ()), (fn, context)]

    def remove_done_callback(self, fn: Any) -> int:
        if self.task is not None:
            return int(self.task.remove_done_callback(fn))
        callbacks = self.callbacks or []
        kept = [c for c in callbacks if c[0] != fn]
        self.callbacks = kept or None
        return len(callbacks) - len(kept)

    def get_coro(self) -> Any:
        return self.task.get_coro() if self.task is not None else self.coro

    def result(self) -> Any:
        if self.task is not None:
            return self.task.result()
        if self.outcome is None:
            raise asyncio.InvalidStateError("Result is not set.")
        value, error = self.outcome
        if error is not None:
            raise error
        return value

    def exception(self) -> BaseException | None:
        if self.task is not None:
            return self.task.exception()  # type: ignore[no-any-return]
        if self.outcome is None:
            raise asyncio.InvalidStateError("Exception is not set.")
        return self.outcome[1]

    def cancelled(self) -> bool:
        return bool(self.task.cancelled()) if self.task is not None else False

    def cancel(self, msg: Any = None) -> bool:
        task = self.task
        if task is None:
            if self.over:
                return False
            # its first segment is running: as asyncio does to a running task, the cancel
            # reaches the step at its next await (continue_in_task); a step that returns
            # without one ends as it returned (asyncio would end its task cancelled; the
            # step's value stands, as for a step in a task of its own: see _drive)
            self.pending = [*(self.pending or ()), msg]
            return True
        # before its first turn too: _Continuing throws it into the step where it stopped
        return bool(task.cancel(msg))

    def uncancel(self) -> int:
        if self.task is not None:
            return int(self.task.uncancel())
        if self.pending:
            self.pending.pop()
        return len(self.pending or ())

    def cancelling(self) -> int:
        if self.task is not None:
            return int(self.task.cancelling())
        return len(self.pending or ())

    def get_name(self) -> str:
        return str(self.task.get_name()) if self.task is not None else "fluxnb-step"

    def done(self) -> bool:
        if self.over:
            return True
        return bool(self.task.done()) if self.task is not None else False

    def get_loop(self) -> Any:
        return self.task.get_loop() if self.task is not None else asyncio.get_running_loop()

    def __getattr__(self, name: str) -> Any:
        if self.task is None:
            when = "has ended" if self.over else "has not started yet"
            raise AttributeError(f"the step's task {when} ({name})")
        return getattr(self.task, name)


#: How many strong and weak references a step's task holds when its ``_drive`` starts is
#: what it holds at a step's end when no step kept it (CPython: elsewhere no task is
#: handed on). ``HAND_OVER`` off: one task per step (tests compare the two).
_refs: Callable[[Any], int] | None = getattr(sys, "getrefcount", None)
if not all(hasattr(asyncio.Task, a) for a in ("_callbacks", "_must_cancel", "cancelling")):
    _refs = None  # a Python whose tasks do not show what the checks read: never handed on
_weakrefs = weakref.getweakrefcount
HAND_OVER = True
#: The fewest references a step's task was seen to hold when its ``_drive`` started (the
#: loop's, the runner's, this frame's): a task that started with more (someone held it,
#: ``asyncio.all_tasks()`` in a step, a factory's list) is never handed on, since what it
#: let go later could hide a reference a step keeps.
_least = [1 << 30]
#: Only asyncio's own (C) tasks are handed on: a factory's Task subclass may carry
#: attributes a step sets, a pure-Python task's callbacks cannot be compared.
_TASK: Any = asyncio.Task
#: Every step's task is named so (a name made per task costs; a step that renames its
#: task is then seen at once, and a task's repr says what it runs).
STEP_TASK = "fluxnb-step"
_BURST = 16
#: The loop's current tasks (asyncio's own table; ``asyncio.current_task()`` is a Python
#: function in 3.11), if this Python has it.
_CURRENT: dict[Any, Any] | None = getattr(_tasks, "_current_tasks", None)


async def _drive(  # noqa: PLR0915 (a step's whole life in one frame: the hot path)
    box: Box,
    fn: Any,
    kwargs: Any,
    ex: LocalExecutor | None = None,
) -> Any:
    """Drive a step to its end inside its own task and report it from there: the next
    steps start in this same turn of the loop (no done-callback turn, no wake-up turn).

    A step seen to suspend every time is called here (``fn(**kwargs)``: a task cancelled
    before it ever ran leaves no coroutine never awaited), in this one frame, as the floor
    does. (One whose first segment ran inline goes on in ``continue_in_task``'s task.)

    Given its executor ``ex``, the task offers itself while it reports a step's end: the
    first suspending step that end lets start (a chain's next step, a layer's) is handed
    to this task instead of a new one, and runs here at once, in a context of its own
    (``_go_on``) — no task to make and no turn of the loop before its first line, where
    the floor spends both. Nothing a step did to its task may reach the next step, so the
    task is offered only when it is as it was when it started: no more strong or weak
    references (a step kept ``asyncio.current_task()``, a bound method of it, a
    WeakKeyDictionary entry), the same name, no done-callback added, not being cancelled;
    and only after a step that suspended (steps that finish at once do not run on and on
    in one turn of the loop). (Giving each step a stand-in task of its own instead costs
    12-17% a step: the current task swapped at every resumption.) A task made in a burst
    (more than ``_BURST`` tasks since a step last reported, a wide fan-out's steps, whose
    ends mostly start nothing) is not offered: it runs ``_plainly``, with no bookkeeping
    (~4% a step) and a smaller frame (thousands are alive at once).
    """
    task: Any = None
    if ex is not None and _refs is not None and HAND_OVER and not ex._making:
        task = _tasks.current_task() if _CURRENT is None else _CURRENT.get(ex._loop)
    if type(task) is not _TASK:  # not offered: a step's task, plainly (also not a C task)
        return await _plainly(box, fn, kwargs, None, ex)
    box.started = True
    assert ex is not None and _refs is not None
    base = _refs(task)  # what the task holds now
    weak, name, calls = _weakrefs(task), task.get_name(), task._callbacks
    least = _least[0]
    if base < least:
        _least[0] = least = base
    if base > least:
        base = -1  # never offered
    context: Any = None
    suspended = True
    while True:
        error: BaseException | None = None
        try:
            if context is None:
                value = await fn(**kwargs)
            else:  # a handed step: its own context, its first segment at once
                coro = context.run(fn, **kwargs)
                try:
                    yielded = context.run(coro.send, None)
                except StopIteration as stop:
                    value, suspended = stop.value, False
                else:
                    suspended = True
                    value = await _go_on(coro, yielded, context)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            if box.report is None:
                raise
            error, value = exc, None
        else:
            if box.report is None:
                return value
        if error is not None and isinstance(error, asyncio.CancelledError):
            # reported outside the except block: what the report starts (inline, in here)
            # does not run inside this step's exception handling
            try:
                box.report(box, None, error, True)
                raise error
            finally:
                error = None
        offered = (
            suspended
            and _refs(task) <= base
            and _weakrefs(task) <= weak
            and task.get_name() is name
            and task._callbacks == calls
            and not task.cancelling()
            and not task._must_cancel  # cancel() then uncancel() leaves it set (3.11)
        )
        if offered:
            ex._tail = task
        ex._burst = 0
        raised = True
        try:
            box.report(box, value, error, False)
            raised = False
        finally:
            ex._tail = None
            # taken even when the report raised, and only by the task it was handed to (a
            # step of an eager task factory can end inside another step's report)
            handed = ex._handed
            if handed is not None and handed[0] is task:
                ex._handed = None
            else:
                handed = None
            if raised and handed is not None:  # an interrupt in the report: the step
                _never_ran(handed[3])  # handed over never runs, and is told so
        if error is not None:
            watched = bool(task._callbacks) and handed is None
            try:
                if watched:  # a done-callback on the task: it ends as the step did
                    raise error
            finally:
                error = None  # its traceback holds this frame: no cycle per failed step
        if handed is None:
            return value  # what a done-callback on the task sees
        fn, kwargs, box = handed[1:]
        handed = None  # it holds this task: kept, it would count as a step's reference
        box.started = True
        if task.cancelling():
            # cancelled (the run stopped) between being handed and its first line: it
            # never runs, as a task cancelled before it started never does
            raise _never_ran(box)
        context = ex._context.copy()


def _never_ran(box: Any) -> asyncio.CancelledError:
    """A step handed to a task that cannot run it (cancelled, or an interrupt raised in
    the report that handed it): reported cancelled, never started."""
    never = asyncio.CancelledError()
    box.started = True
    if box.report is not None:
        with contextlib.suppress(Exception):
            box.report(box, None, never, True)
    return never


async def _plainly(
    box: Box, fn: Any, kwargs: Any, resume: _Resume | None, ex: LocalExecutor | None
) -> Any:
    """A step's task that is not offered (see ``_drive``): the step, then its report. Its
    own small frame: a wide fan-out keeps thousands of them at once."""
    box.started = True
    error: BaseException | None = None
    try:
        value = await (fn(**kwargs) if resume is None else resume)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # a cancellation too
        if box.report is None:
            raise
        error, value = exc, None
    if error is None:
        if box.report is not None:
            if ex is not None:
                ex._burst = 0
            box.report(box, value, None, False)
        return value
    # outside the except block: the steps this end starts (inline, in here) do not run
    # inside this step's exception handling, nor get its error as their errors' context
    cancelled = isinstance(error, asyncio.CancelledError)
    task: Any = None
    try:
        if box.report is not None:
            if ex is not None and not cancelled:
                ex._burst = 0
            box.report(box, None, error, cancelled)
        task = _tasks.current_task()
        if cancelled or getattr(task, "_callbacks", None):  # watched: it ends as the step did
            raise error
    finally:
        error = task = None  # its traceback holds this frame: no cycle
    return None  # reported: the task itself ends quietly


@types.coroutine
def _go_on(coro: Any, yielded: Any, context: Any) -> Generator[Any, Any, Any]:
    """Continue a handed step's coroutine, which yielded ``yielded``, inside its own
    context: the task sees what it yields and sends and throws (cancellation) into it."""
    run = context.run
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            run(coro.close)
            raise
        except BaseException as exc:
            try:
                yielded = run(coro.throw, exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = run(coro.send, sent)
            except StopIteration as stop:
                return stop.value
