"""Small Arrow IPC files written without pyarrow: a run records before pyarrow is imported.

Importing pyarrow (and the pandas it loads on first use) costs 0.3-0.6 s in a fresh
process. A run's first segment (its ``runs`` row, written before its first step starts)
and the segments of small runs do not need it: this module writes an Arrow IPC *file*
(format version 5, little-endian, uncompressed, one record batch) of the few column types
the store's segments use, byte for byte what ``pyarrow.ipc`` reads and validates. Bigger
batches go through pyarrow (``_segments.write_segment``), which is faster per row.

The metadata are FlatBuffers, built back to front here as the FlatBuffers library does
(children first, each parent pointing forward to them): ``Message`` (a ``Schema`` or a
``RecordBatch``) and the file's ``Footer``; see the Arrow columnar format specification,
"Serialization and Interprocess Communication". Each column's buffers (validity bitmap,
offsets, values) are padded to 8 bytes in the message body.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Sequence

#: Column kinds of the segment schemas (``_segments.COLUMNS``).
UTF8, BINARY, INT32, INT64, FLOAT64, BOOL, TIMESTAMP_US = (
    "utf8",
    "binary",
    "int32",
    "int64",
    "float64",
    "bool",
    "timestamp_us",
)

_MAGIC = b"ARROW1"
_V5 = 4  # MetadataVersion.V5
_SCHEMA, _RECORD_BATCH = 1, 3  # MessageHeader
# Type union: Int = 2, FloatingPoint = 3, Binary = 4, Utf8 = 5, Bool = 6, Timestamp = 10
_TYPE_CODE = {INT32: 2, INT64: 2, FLOAT64: 3, BINARY: 4, UTF8: 5, BOOL: 6, TIMESTAMP_US: 10}
_FIXED = {INT32: "i", INT64: "q", TIMESTAMP_US: "q", FLOAT64: "d"}
_EOS = b"\xff\xff\xff\xff\x00\x00\x00\x00"
_ZEROS = bytes(8)


class _Builder:
    """A FlatBuffers builder: the buffer grows towards its front, positions are counted
    from its end (so an object written earlier is at a smaller position)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.minalign = 1
        self._slots: list[int] = []
        self._start = 0

    def _pad(self, size: int, additional: int = 0) -> None:
        """Align so that after ``additional`` more bytes a ``size``-byte value is aligned."""
        self.minalign = max(self.minalign, size)
        self.buf[0:0] = bytes((-(len(self.buf) + additional)) % size)

    def _put(self, fmt: str, *values: object) -> int:
        self.buf[0:0] = struct.pack("<" + fmt, *values)
        return len(self.buf)

    def scalar(self, fmt: str, value: object) -> int:
        self._pad(struct.calcsize(fmt))
        return self._put(fmt, value)

    def offset(self, target: int) -> int:
        """A uoffset to the object at ``target``; written after that object."""
        self._pad(4)
        return self._put("I", len(self.buf) + 4 - target)

    def string(self, text: str) -> int:
        data = text.encode()
        self._pad(4, len(data) + 1)
        self.buf[0:0] = data + b"\0"
        return self._put("I", len(data))

    def structs(self, fmt: str, items: Sequence[tuple]) -> int:
        """A vector of structs (8-byte aligned fields, ``fmt`` one struct's layout)."""
        size = struct.calcsize("<" + fmt)
        self._pad(4, size * len(items))
        self._pad(8, size * len(items))
        for item in reversed(items):
            self._put(fmt, *item)
        return self._put("I", len(items))

    def offsets(self, targets: Sequence[int]) -> int:
        """A vector of tables (written before it)."""
        self._pad(4, 4 * len(targets))
        for t in reversed(targets):
            self.offset(t)
        return self._put("I", len(targets))

    def start(self, fields: int) -> None:
        self._slots = [0] * fields
        self._start = len(self.buf)

    def field(self, slot: int, position: int) -> None:
        """The value just written (at ``position``) is field ``slot`` of the table."""
        self._slots[slot] = position

    def end(self) -> int:
        """Close the table: its soffset to a vtable written just before it."""
        self._pad(4)
        table = self._put("i", 0)
        slots = [table - s if s else 0 for s in self._slots]
        self._put("H" * (2 + len(slots)), 4 + 2 * len(slots), table - self._start, *slots)
        vtable = len(self.buf)
        at = len(self.buf) - table
        self.buf[at : at + 4] = struct.pack("<i", vtable - table)
        return table

    def finish(self, root: int) -> bytes:
        self._pad(max(self.minalign, 8), 4)
        self.offset(root)
        return bytes(self.buf)


def _table(b: _Builder, *fields: tuple[int, str, object]) -> int:
    """A table of scalar fields ``(slot, fmt, value)``, biggest first; ``fmt`` "o" is an
    offset already written."""
    slots = 1 + max((f[0] for f in fields), default=-1)
    ordered = sorted(fields, key=lambda f: -8 if f[1] == "o" else -struct.calcsize(f[1]))
    b.start(slots)
    for slot, fmt, value in ordered:
        if fmt == "o":
            b.field(slot, b.offset(value))  # type: ignore[arg-type]
        else:
            b.field(slot, b.scalar(fmt, value))
    return b.end()


def _type(b: _Builder, kind: str) -> int:
    if kind in (INT32, INT64):
        return _table(b, (0, "i", 32 if kind == INT32 else 64), (1, "?", True))
    if kind == FLOAT64:
        return _table(b, (0, "h", 2))  # Precision.DOUBLE
    if kind == TIMESTAMP_US:
        return _table(b, (0, "h", 2))  # TimeUnit.MICROSECOND, no time zone
    return _table(b)  # Utf8, Binary, Bool: no fields


def _schema(b: _Builder, columns: Sequence[tuple[str, str]]) -> int:
    fields = []
    for name, kind in columns:
        type_ = _type(b, kind)
        children = b.offsets([])
        text = b.string(name)
        fields.append(
            _table(
                b,
                (0, "o", text),
                (1, "?", True),  # nullable
                (2, "B", _TYPE_CODE[kind]),
                (3, "o", type_),
                (5, "o", children),
            )
        )
    vector = b.offsets(fields)
    return _table(b, (0, "h", 0), (1, "o", vector))  # little-endian


def _message(header_type: int, build: Callable[[_Builder], int], body_length: int) -> bytes:
    """An encapsulated message: continuation marker, length, padded FlatBuffer."""
    b = _Builder()
    header = build(b)
    root = _table(b, (0, "h", _V5), (1, "B", header_type), (2, "o", header), (3, "q", body_length))
    meta = b.finish(root)
    meta += bytes(-len(meta) % 8)
    return struct.pack("<Ii", 0xFFFFFFFF, len(meta)) + meta


@functools.cache
def _schema_message(columns: tuple[tuple[str, str], ...]) -> bytes:
    """The schema message of a table: the same for every file of it."""
    return _message(_SCHEMA, lambda b: _schema(b, columns), 0)


@functools.cache
def _schema_tail(columns: tuple[tuple[str, str], ...]) -> tuple[bytes, int, int]:
    """A footer's schema, written first (at the buffer's end): its bytes, its position
    and the builder's alignment then."""
    b = _Builder()
    position = _schema(b, columns)
    b._pad(8)  # what follows starts 8-byte aligned, as when built in place
    return bytes(b.buf), position, b.minalign


def _footer_start(columns: tuple[tuple[str, str], ...]) -> tuple[_Builder, int]:
    """A builder holding the footer's schema (built once per table), and its position."""
    data, position, minalign = _schema_tail(columns)
    b = _Builder()
    b.buf[:] = data
    b.minalign = minalign
    return b, position


def _bitmap(bits: Sequence[object]) -> bytes:
    out = bytearray((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        if bit:
            out[i >> 3] |= 1 << (i & 7)
    return bytes(out)


def _column(kind: str, values: Sequence[object]) -> tuple[list[bytes], int]:
    """A column's buffers (validity first) and its null count."""
    n = len(values)
    nulls = values.count(None)
    validity = b"" if not nulls else _bitmap([v is not None for v in values])
    if kind in _FIXED:
        data = struct.pack(f"<{n}{_FIXED[kind]}", *[0 if v is None else v for v in values])
        return [validity, data], nulls
    if kind == BOOL:
        for v in values:
            if v is not None and type(v) is not bool:
                raise TypeError(f"not a bool: {v!r}")
        return [validity, _bitmap(values)], nulls
    parts = []
    ends = [0]
    size = 0
    for v in values:
        if v is not None:
            if kind == UTF8 and isinstance(v, str):
                data = v.encode()
            elif kind == BINARY and isinstance(v, bytes):
                data = v
            else:
                raise TypeError(f"not a {kind} value: {v!r}")
            parts.append(data)
            size += len(data)
        ends.append(size)
    if size >= 1 << 31:
        raise OverflowError("a string column over 2 GB")
    return [validity, struct.pack(f"<{n + 1}i", *ends), b"".join(parts)], nulls


def ipc_file(columns: Sequence[tuple[str, str]], rows: Sequence[tuple]) -> bytes:
    """An Arrow IPC file of ``rows`` (tuples in ``columns`` order; ``columns`` are
    ``(name, kind)``), every column nullable.

    Raises TypeError, ValueError, OverflowError or struct.error for a value its column's
    kind cannot hold (the caller then leaves the batch to pyarrow, which says what)."""
    n = len(rows)
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
    if len(cols) != len(columns):
        raise ValueError(f"rows of {len(cols)} values for {len(columns)} columns")
    nodes: list[tuple[int, int]] = []
    buffers: list[tuple[int, int]] = []
    # the body's pieces, joined once with the rest of the file: a run's manifest (1 MB at
    # 10,000 steps, in both of its runs rows) is copied once here, not three times
    body: list[bytes] = []
    size = 0
    for (_, kind), values in zip(columns, cols, strict=True):
        parts, nulls = _column(kind, values)
        nodes.append((n, nulls))
        for part in parts:
            buffers.append((size, len(part)))
            pad = -len(part) % 8
            body += (part, _ZEROS[:pad])
            size += len(part) + pad

    def batch(b: _Builder) -> int:
        bufs = b.structs("qq", buffers)
        node_vector = b.structs("qq", nodes)
        return _table(b, (0, "q", n), (1, "o", node_vector), (2, "o", bufs))

    columns = tuple(columns)
    head = _MAGIC + b"\0\0" + _schema_message(columns)
    meta = _message(_RECORD_BATCH, batch, size)
    b, schema = _footer_start(columns)
    blocks = b.structs("qi4xq", [(len(head), len(meta), size)])
    dictionaries = b.structs("qi4xq", [])
    footer = b.finish(
        _table(b, (0, "h", _V5), (1, "o", schema), (2, "o", dictionaries), (3, "o", blocks))
    )
    return b"".join((head, meta, *body, _EOS, footer, struct.pack("<i", len(footer)), _MAGIC))
