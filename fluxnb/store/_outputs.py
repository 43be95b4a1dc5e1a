"""How step outputs are recorded: JSON when it round-trips, else pickle; size-capped.

JSON text is UTF-8, so a str holding a lone surrogate (or an int too long for ``str()``)
is pickled. The format is visible in each event row (``output_format``): ``json``, ``pickle``,
``too_large`` (bigger than the cap: only the digest is kept), ``unpicklable`` (neither
JSON nor pickle could hold it: only a digest of its ``repr``, and ``output_json`` holds
``{"reason": ...}``), or NULL (no output: the attempt failed or was cancelled).
``output_digest`` (SHA-256 of the serialised bytes, 32 hex digits) is what replay and diff
compare.

Pickles are code: unpickling one runs whatever its author chose. So a store signs the
pickles it records with a key of its own (HMAC-SHA256, ``sign``), and ``decode`` unpickles
only a pickle carrying this store's valid signature, unless the caller passes
``trust=True`` (a trace file from elsewhere, an old unsigned recording). A signed blob is
``MAGIC + mac + pickle``; the digest and size are of the pickle alone.

Big outputs are never serialised whole to find out they are too big: pickles stream
through a hashing writer that keeps bytes only up to the cap, and a JSON-like value whose
size is certainly over the cap (a cheap lower bound) goes the same way.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import pickle
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

from .._exceptions import ReplayError, UntrustedOutput

#: Outputs whose serialised form is larger than this many bytes keep only their digest.
CAP = int(os.environ.get("FLUXNB_OUTPUT_CAP", str(1 << 20)))
#: A signed pickle starts with these bytes, then a 32-byte HMAC-SHA256 of the pickle.
MAGIC = b"FXS1"
_MAC = 32

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


def _at_least(value: Any, budget: int) -> int:
    """A lower bound of ``value``'s JSON size in bytes, counted only until it passes
    ``budget`` (so a huge value costs no more than ``budget`` worth of walking, and no
    copy of it: containers are walked through iterators)."""
    total = 0
    stack: list[Any] = [iter((value,))]
    while stack and total <= budget:
        v: Any = next(stack[-1], _END)
        if v is _END:
            stack.pop()
            continue
        t = type(v)
        if t is str:
            total += len(v) + 2
        elif t is list or t is tuple:
            total += len(v) + 1
            stack.append(iter(v))
        elif t is dict:
            total += 2 * len(v) + 1
            stack.append(iter(v.keys()))
            stack.append(iter(v.values()))
        else:
            total += 1
    return total


_END = object()


class _Sink:
    """A file for pickle: hashes and counts everything, keeps bytes only up to ``cap``."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.size = 0
        self.hash = hashlib.sha256()
        self.parts: list[bytes] | None = []

    def write(self, data: Any) -> int:
        n = len(memoryview(data).cast("B"))
        self.size += n
        self.hash.update(data)
        if self.parts is not None:
            if self.size > self.cap:
                self.parts = None  # over the cap: from here on only the digest is kept
            else:
                self.parts.append(bytes(data))
        return n


def _pickled(value: Any) -> Encoded:
    sink = _Sink(CAP)
    pickle.Pickler(sink, protocol=5).dump(value)
    digest = sink.hash.hexdigest()[:32]
    if sink.parts is None:
        return ("too_large", None, None, digest, sink.size)
    return ("pickle", None, b"".join(sink.parts), digest, sink.size)


def _big_string(value: str) -> Encoded:
    """A string certainly over the cap: its JSON text's digest, a chunk at a time."""
    h = hashlib.sha256(b'"')
    size = 2
    step = 1 << 20
    for i in range(0, len(value), step):
        chunk = encode_basestring(value[i : i + step])[1:-1].encode()
        size += len(chunk)
        h.update(chunk)
    h.update(b'"')
    return ("too_large", None, None, h.hexdigest()[:32], size)


def _unrecordable(value: Any, exc: BaseException) -> Encoded:
    """Neither JSON nor pickle: a digest of its ``repr`` if it has one, and why."""
    try:
        data = repr(value).encode(errors="replace")
    except Exception as rexc:  # a repr that raises must not stop the run
        data = f"<{type(value).__qualname__}: repr raised {type(rexc).__name__}>".encode()
    reason = f"cannot pickle {type(value).__qualname__}: {type(exc).__name__}: {exc}"[:500]
    return ("unpicklable", json.dumps({"reason": reason}), None, _digest(data), None)


#: Small outputs already encoded, by value (ints, strings) or JSON text (None, bools,
#: floats: ``0.0 == -0.0`` but their texts differ): steps return the same small values
#: again and again, and a SHA-256 costs ~1 µs. Bounded: each is emptied when full.
_SEEN_INT: dict[int, Encoded] = {}
_SEEN_STR: dict[str, Encoded] = {}
_SEEN_TEXT: dict[str, Encoded] = {}
_SEEN_LEN, _SEEN_MAX = 64, 4096


def encode(value: Any) -> Encoded:
    """``(format, json_text, pickle_bytes, digest, size)`` for one output (unsigned)."""
    t = type(value)
    if t is int or t is str:
        seen = _SEEN_INT if t is int else _SEEN_STR
        known = seen.get(value)
        if known is not None and (known[4] or 0) <= CAP:  # (the cap may have changed)
            return known
        try:
            if t is str and len(value) > CAP:
                return _big_string(value)
            return _remember(seen, value, str(value) if t is int else encode_basestring(value))
        except ValueError:  # a lone surrogate (no UTF-8), an int over 4,300 digits
            return _pickle_or_note(value)
    text = _scalar_json(value)
    if text is not None and len(text) <= _SEEN_LEN:
        known = _SEEN_TEXT.get(text)
        if known is not None and (known[4] or 0) <= CAP:
            return known
        return _remember(_SEEN_TEXT, text, text)
    if text is None and isinstance(value, list | dict):
        if _at_least(value, CAP) > CAP:
            return _pickle_or_note(value)
        try:
            candidate = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
            if json.loads(candidate) == value:  # tuples, int keys... would come back changed
                text = candidate
        except (TypeError, ValueError, RecursionError):
            pass
    if text is not None:
        try:
            return _json(text)
        except UnicodeEncodeError:  # a str inside holds a lone surrogate: no UTF-8 text
            pass
    return _pickle_or_note(value)


def _remember(seen: dict[Any, Encoded], key: Any, text: str) -> Encoded:
    """``_json(text)``, kept in ``seen`` under ``key`` when short."""
    known = _json(text)
    if len(text) <= _SEEN_LEN and known[0] == "json":
        if len(seen) >= _SEEN_MAX:
            seen.clear()
        seen[key] = known
    return known


def _json(text: str) -> Encoded:
    data = text.encode()
    if len(data) > CAP:
        return ("too_large", None, None, _digest(data), len(data))
    return ("json", text, None, _digest(data), len(data))


def _pickle_or_note(value: Any) -> Encoded:
    try:
        return _pickled(value)
    except Exception as exc:  # anything a __reduce__ may raise
        return _unrecordable(value, exc)


def _mac(key: bytes, where: str, blob: bytes) -> bytes:
    h = hmac.new(key, where.encode(errors="surrogatepass") + b"\0", hashlib.sha256)
    h.update(blob)
    return h.digest()


def where(run_id: str, step: str) -> str:
    """What a signature binds a pickle to besides its bytes: its run and step, so a pickle
    cannot be moved to another run (a re-imported export with a new run id) or step."""
    return f"{run_id}\0{step}"


def sign(blob: bytes, key: bytes, place: str) -> bytes:
    """A recorded pickle as this store keeps it: MAGIC, its HMAC under ``key`` (over its
    ``place``, see :func:`where`, and its bytes), itself."""
    return MAGIC + _mac(key, place, blob) + blob


def signed_by(blob: bytes, key: bytes | None, place: str) -> bool:
    """Whether ``blob`` carries a valid signature under ``key`` for ``place``."""
    if key is None or not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + _MAC:
        return False
    mac, payload = blob[len(MAGIC) : len(MAGIC) + _MAC], blob[len(MAGIC) + _MAC :]
    return hmac.compare_digest(mac, _mac(key, place, payload))


def payload(blob: bytes) -> bytes:
    """The pickle inside a recorded blob (signed or not)."""
    return blob[len(MAGIC) + _MAC :] if blob.startswith(MAGIC) else blob


def decode(
    fmt: str | None,
    text: str | None,
    blob: bytes | None,
    step: str = "",
    *,
    key: bytes | None = None,
    place: str = "",
    trust: bool = False,
) -> Any:
    """The recorded value; ReplayError when only a digest was kept.

    A pickle is loaded only when it carries a valid signature under ``key`` (the store's
    own key, for a run read from that store) for ``place`` (its run and step, see
    :func:`where`), or when ``trust`` is true. A pickle that names a class or function this
    process cannot import is a ReplayError saying which, not an AttributeError.

    Raises:
        UntrustedOutput: a pickle this store did not sign, without ``trust=True``.
        ReplayError: only a digest was recorded.
    """
    if fmt == "json":
        return json.loads(text or "null")
    if fmt == "pickle":
        data = bytes(blob or b"")
        if not (trust or signed_by(data, key, place)):
            raise UntrustedOutput(step)
        try:
            return pickle.loads(payload(data))  # signed by this store, or trusted
        except (AttributeError, ImportError, pickle.UnpicklingError, EOFError, TypeError) as exc:
            raise ReplayError(
                f"the recorded output of step '{step}' cannot be rebuilt in this process: "
                f"{type(exc).__name__}: {exc}. Import the module that defines its class "
                "(a class defined in a script's __main__ or a notebook must be defined "
                "again, or moved into a module and passed with --import)"
            ) from None
    raise ReplayError(
        f"the recorded output of step '{step}' is not available ({fmt or 'none'}): "
        "it has to run again"
    )


def available(fmt: str | None) -> bool:
    return fmt in ("json", "pickle")
