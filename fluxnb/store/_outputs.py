"""How step outputs are recorded: JSON when it round-trips, else pickle; size-capped.

The format is visible in each event row (``output_format``): ``json``, ``pickle``,
``too_large`` (bigger than the cap: only the digest is kept), ``unpicklable`` (neither
JSON nor pickle could hold it: only a digest of its ``repr``), or NULL (no output: the
attempt failed or was cancelled). ``output_digest`` (SHA-256 of the stored bytes, 32 hex
digits) is what replay and diff compare.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

from .._exceptions import ReplayError

#: Outputs whose serialised form is larger than this many bytes keep only their digest.
CAP = int(os.environ.get("FLUXNB_OUTPUT_CAP", str(1 << 20)))


Encoded = tuple[str | None, str | None, bytes | None, str | None, int | None]
NOTHING: Encoded = (None, None, None, None, None)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def _scalar_json(value: Any) -> str | None:
    """JSON text of a plain scalar, without json.dumps's per-call set-up (the hot path)."""
    t = type(value)
    if t is int:
        return str(value)
    if value is None:
        return "null"
    if t is bool:
        return "true" if value else "false"
    if t is str:
        return encode_basestring(value)
    if t is float and math.isfinite(value):
        return repr(value)
    return None


def encode(value: Any) -> Encoded:
    """``(format, json_text, pickle_bytes, digest, size)`` for one output."""
    text = _scalar_json(value)
    if text is None and isinstance(value, list | dict):
        try:
            candidate = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
            if json.loads(candidate) == value:  # tuples, int keys... would come back changed
                text = candidate
        except (TypeError, ValueError, RecursionError):
            pass
    if text is not None:
        data = text.encode()
        if len(data) > CAP:
            return ("too_large", None, None, _digest(data), len(data))
        return ("json", text, None, _digest(data), len(data))
    try:
        blob = pickle.dumps(value, protocol=5)
    except Exception:
        data = repr(value).encode(errors="replace")
        return ("unpicklable", None, None, _digest(data), None)
    if len(blob) > CAP:
        return ("too_large", None, None, _digest(blob), len(blob))
    return ("pickle", None, blob, _digest(blob), len(blob))


def decode(fmt: str | None, text: str | None, blob: bytes | None, step: str = "") -> Any:
    """The recorded value; ReplayError when only a digest was kept."""
    if fmt == "json":
        return json.loads(text or "null")
    if fmt == "pickle":
        return pickle.loads(blob or b"")  # the user's own recording, from their own store
    raise ReplayError(
        f"the recorded output of step '{step}' is not available ({fmt or 'none'}): "
        "it has to run again"
    )


def available(fmt: str | None) -> bool:
    return fmt in ("json", "pickle")
