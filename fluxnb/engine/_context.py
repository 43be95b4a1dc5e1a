"""The ``ctx`` argument a step receives when it declares one."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StepContext:
    """Facts about the attempt in progress, and a logger that tags its records with them."""

    #: The run's id (as stored in the ``runs`` table).
    run_id: str
    #: The workflow's name.
    workflow: str
    #: The step's id.
    step: str
    #: 1 for the first try, 2 for the first retry, ...
    attempt: int
    #: A logger named ``fluxnb.steps.<step>`` whose records carry run_id, step and attempt.
    logger: logging.LoggerAdapter = field(repr=False, compare=False)  # type: ignore[type-arg]

    @classmethod
    def make(cls, run_id: str, workflow: str, step: str, attempt: int) -> StepContext:
        extra = {"run_id": run_id, "step": step, "attempt": attempt}
        logger = logging.LoggerAdapter(logging.getLogger(f"fluxnb.steps.{step}"), extra)
        return cls(run_id, workflow, step, attempt, logger)
