"""A step's traceback as its author wants to read it: without fluxnb's own frames on top
(the scheduler, the executor, asyncio and concurrent.futures that called the step)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import traceback as tb_module
from pathlib import Path

_ENGINE_DIR = str(Path(__file__).parent)
# frames of the machinery that called the step, left off the top of its traceback
_MACHINERY = (
    _ENGINE_DIR,
    str(Path(asyncio.__file__).parent),
    str(Path(concurrent.futures.__file__).parent),
)


def user_traceback(exc: BaseException) -> str:
    """The traceback without the scheduler's own frames on top."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_MACHINERY):
        tb = tb.tb_next
    return "".join(tb_module.format_exception(type(exc), exc, tb))
