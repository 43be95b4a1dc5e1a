"""Running a workflow that streams: compiled to a net (``spec/_stream_net.py``) and
played by the net engine, with the workflow's permission checks, run id and record.

``_runner.run`` / ``arun`` come here when the workflow's plan says it streams (it has a
generator step); the result is a ``NetResult``
whose ``outputs`` (and ``result[step]``) are each step's items, or its last item with
``keep: last``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from ..spec import Workflow
from ..spec._stream_net import compile_streams
from ..store._recorder import Recorder, RunRecord
from ._executor import Executor
from ._net_run import NetEngine, plan_net
from ._net_tokens import NetResult
from ._plan import Plan
from ._setup import executors_for
from ._states import RunStatus


class StreamRun:
    """A stream workflow ready to run (admitted, its run id checked, callables found);
    it runs like a ``Scheduler`` does: ``await run(record)``, then ``result``."""

    def __init__(
        self,
        wf: Workflow,
        plan: Plan,
        namespace: Mapping[str, Any] | None,
        recorder: Recorder,
        run_id: str,
        seed: int,
        executor: Executor | str | None,
    ) -> None:
        fns = {sid: b.fn for sid, b in zip(plan.ids, plan.bindings, strict=True) if b}
        net = self.net = compile_streams(wf, fns)
        self.plan = plan_net(net, namespace)
        self.recorder = recorder
        self.run_id, self.seed = run_id, seed
        self.default, self.executors = executors_for(
            executor,
            net.router.executor,
            [t.executor for t in net.transitions],
            self.plan.bindings,
            [t.step or t.id for t in net.transitions],
            net.name,
            "pipeline[{}]",
            "step",
        )
        self.status = RunStatus.RUNNING
        self.result: NetResult | None = None

    async def run(self, record: RunRecord) -> NetResult:
        engine = NetEngine(
            self.plan,
            run_id=self.run_id,
            recorder=self.recorder,
            executors=self.executors,
            default_executor=self.default,
            seed=self.seed,
        )
        self.recorder.run_started(record)
        try:
            await engine.advance()
        except asyncio.CancelledError:
            self.result = engine.result(
                record, RunStatus.CANCELLED, "cancelled", "the run was cancelled"
            )
            self.status = self.result.status
            raise
        except Exception as exc:  # fluxnb's own fault: the run is still recorded as ended
            self.result = engine.result(
                record, RunStatus.FAILED, "failed", f"{type(exc).__name__}: {exc}"
            )
            self.status = self.result.status
            raise
        finally:
            await engine.aclose()
        self.result = engine.result(record, *engine.conclude())
        self.status = self.result.status
        return self.result


__all__ = ["StreamRun"]
