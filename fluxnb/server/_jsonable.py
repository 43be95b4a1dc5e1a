"""Values as JSON takes them, for every answer of the control plane (and a worker's net
instances): money exact (Decimal as a string), times as ISO 8601 (the store's naive times
are UTC), NaN and infinities as null, numpy scalars as Python numbers, a token as its id and
data, and anything else as its repr. No Jupyter import: the workers use it too."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any


def jsonable(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):  # pandas' Timestamp too; its NaT is a null
        if type(value).__name__ == "NaTType":
            return None
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if hasattr(value, "item") and not isinstance(value, list | tuple | dict):  # numpy
        return jsonable(value.item())
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    from ..engine import Token

    if isinstance(value, Token):
        return {"id": value.id, "data": jsonable(value.data)}
    return repr(value)
