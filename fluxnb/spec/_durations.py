"""Durations as people write them: ``250ms``, ``10s``, ``5m``, ``1h``, ``1m30s`` or seconds."""

from __future__ import annotations

import math
import re

_UNITS = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(us|µs|ms|s|m|h)")

DURATION_HELP = "a duration like 250ms, 10s, 5m, 1h, 1m30s, or a number of seconds"


def parse_duration(value: object) -> float:
    """Seconds in ``value``; raise ValueError with a readable message when it is not one.

    >>> parse_duration("1m30s")
    90.0
    >>> parse_duration(2)
    2.0
    """
    if isinstance(value, bool):
        raise ValueError(f"expected {DURATION_HELP}, found a boolean")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            pos = 0
            seconds = 0.0
            for m in _PART.finditer(text):
                if m.start() != pos:
                    break
                seconds += float(m.group(1)) * _UNITS[m.group(2)]
                pos = m.end()
            if pos != len(text) or not text:
                raise ValueError(f"expected {DURATION_HELP}, found '{value}'") from None
    else:
        raise ValueError(f"expected {DURATION_HELP}, found {type(value).__name__}")
    if math.isnan(seconds) or seconds < 0:
        raise ValueError(f"expected a duration that is not negative, found '{value}'")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of ``seconds`` that ``parse_duration`` reads back."""
    for unit, factor in (("h", 3600.0), ("m", 60.0), ("s", 1.0), ("ms", 1e-3)):
        n = seconds / factor
        if n >= 1 and abs(n - round(n)) < 1e-9:
            return f"{round(n)}{unit}"
    return f"{seconds:g}s"
