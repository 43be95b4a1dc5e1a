"""What incremental runs keep in a store: cache keys and decisions, reusable outputs.

``cache_entries`` holds one row per step per cached run (its key, the decision, why, and
the fingerprint the key was made of). A later run of the same workflow in the same
namespace loads, in one query, the newest reusable attempt per key (a final
``succeeded`` or ``cached`` event with an output) and each step's last fingerprint (to say
what changed); a step is reused only when its key is among them.

Outputs come back under the store's trust rules: a pickle is loaded only with this store's
signature (``_outputs.decode``). Outputs over the row cap live in the **large-output
store**, a folder beside the store file (``<store>.outputs/``): DataFrames and Arrow
tables as Parquet (checked against the SHA-256 recorded with the row before reading),
anything else as a pickle signed with the store's key and bound to its digest. The folder
keeps to a size budget (``FLUXNB_CACHE_BUDGET``, bytes, default 2 GiB): the least recently
used files go first; ``fluxnb cache prune`` does the same on demand.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._exceptions import ReplayError, UntrustedOutput
from ._outputs import Encoded, decode, payload, sign, signed_by, where

if TYPE_CHECKING:
    from ._store import Store

#: Bytes the large-output folder may hold (FLUXNB_CACHE_BUDGET).
BUDGET = int(os.environ.get("FLUXNB_CACHE_BUDGET", str(2 << 30)))


@dataclass(frozen=True)
class Source:
    """A recorded attempt whose output a cache hit reuses."""

    run_id: str
    step: str
    attempt: int
    #: The run that computed it (a hit's own row names the run it reused).
    origin: str
    output_format: str | None
    output_digest: str | None
    output_size: int | None
    large_output: str | None
    large_sha: str | None


_LOAD_SOURCES = """
    SELECT c.cache_key, c.run_id, c.step, c.attempt, coalesce(c.source_run_id, c.run_id),
           e.output_format, e.output_digest, e.output_size,
           c.large_output, c.large_sha
    FROM cache_entries c
    JOIN runs r ON r.run_id = c.run_id
    JOIN events e ON e.run_id = c.run_id AND e.step = c.step AND e.attempt = c.attempt
    WHERE r.workflow = $wf AND coalesce(r.namespace, 'default') = $ns
      AND c.cache_key IS NOT NULL AND e.final AND e.status IN ('succeeded', 'cached')
      AND (e.output_format IN ('json', 'pickle') OR c.large_output IS NOT NULL)
    QUALIFY row_number() OVER (PARTITION BY c.cache_key ORDER BY c.recorded_at DESC) = 1"""

#: Each step's newest entry: its fingerprint (to say what changed) and, when it has one,
#: its output (the likeliest hit, so iterating on one step costs no further access).
_LOAD_LAST = """
    WITH newest AS (
        SELECT c.step, c.fingerprint, c.run_id, c.attempt
        FROM cache_entries c JOIN runs r ON r.run_id = c.run_id
        WHERE r.workflow = $wf AND coalesce(r.namespace, 'default') = $ns
          AND c.fingerprint IS NOT NULL AND c.decision <> 'off'
        QUALIFY row_number() OVER (PARTITION BY c.step ORDER BY c.recorded_at DESC) = 1)
    SELECT n.step, n.fingerprint, n.run_id, n.attempt,
           e.output_format, e.output_json, e.output_pickle
    FROM newest n LEFT JOIN events e
      ON e.run_id = n.run_id AND e.step = n.step AND e.attempt = n.attempt AND e.final
         AND e.status IN ('succeeded', 'cached') AND e.output_format IN ('json', 'pickle')"""


class Index:
    """What a run knows of its workflow's recorded keys (one access to the store)."""

    def __init__(self, store: Store, workflow: str, namespace: str) -> None:
        with store.connect() as con:
            args = {"wf": workflow, "ns": namespace}
            #: cache key -> the newest reusable attempt with it
            self.sources = {
                r[0]: Source(*r[1:]) for r in con.execute(_LOAD_SOURCES, args).fetchall()
            }
            last = con.execute(_LOAD_LAST, args).fetchall()
        #: step -> its newest fingerprint (JSON)
        self.last: dict[str, str] = {r[0]: r[1] for r in last}
        #: (run id, step, attempt) -> its recorded output columns (format, JSON, blob)
        self.outputs: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {
            (r[2], r[0], r[3]): (r[4], r[5], r[6]) for r in last if r[4] is not None
        }


def write_entries(store: Store, rows: list[tuple]) -> None:
    """Add ``cache_entries`` rows (CACHE_COLUMNS order) as one segment, as a run's events
    are written (no lock); a store that cannot take them warns (the run's own rows are not
    affected; its steps are just not reusable)."""
    try:
        store.append("cache_entries", rows)
    except Exception as exc:  # a full disk, a locked in-memory store: never fail the run
        warnings.warn(
            f"fluxnb could not record this run's cache keys in {store.path}: {exc}; "
            "its steps will run again next time",
            RuntimeWarning,
            stacklevel=3,
        )


def fetch(store: Store, src: Source, index: Index | None = None) -> tuple[Any, Encoded]:
    """The output ``src`` recorded, under the trust rules, and its stored columns (as
    ``_outputs.encode`` gives them: the pickle unsigned), for the reusing row.

    Raises:
        UntrustedOutput: a pickle (or a large pickle file) this store did not sign.
        ReplayError: the output is gone (pruned) or cannot be rebuilt here.
    """
    if src.large_output is not None:
        value = read_large(store, src.large_output, src.large_sha, src.output_digest or "")
        return value, ("too_large", None, None, src.output_digest, src.output_size)
    known = None if index is None else index.outputs.get((src.run_id, src.step, src.attempt))
    rows = [known] if known is not None else _read_output(store, src)
    if not rows:
        raise ReplayError(f"the recorded output of step '{src.step}' is gone")
    fmt, text, blob = rows[0]
    key = store.output_key() if fmt == "pickle" else None  # JSON needs no key (no access)
    value = decode(fmt, text, blob, src.step, key=key, place=where(src.run_id, src.step))
    raw = None if blob is None else payload(bytes(blob))
    return value, (fmt, text, raw, src.output_digest, src.output_size)


def _read_output(store: Store, src: Source) -> list[tuple[Any, Any, Any]]:
    with store.connect() as con:
        return con.execute(
            "SELECT output_format, output_json, output_pickle FROM events "
            "WHERE run_id = $1 AND step = $2 AND attempt = $3 AND final",
            [src.run_id, src.step, src.attempt],
        ).fetchall()  # all: a result left open blocks the connection's next statement


# ---------------------------------------------------------------------- large outputs
def large_dir(store: Store) -> Path | None:
    """The large-output folder of a store file (None for an in-memory store)."""
    return None if store.in_memory else Path(store.path + ".outputs")


def _kind(value: Any) -> str:
    module = type(value).__module__.split(".")[0]
    name = type(value).__name__
    if module == "pandas" and name == "DataFrame":
        return "pandas"
    if module == "pyarrow" and name == "Table":
        return "arrow"
    return "pickle"


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _atomic(path: Path, write: Any) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_large(store: Store, value: Any, digest: str) -> tuple[str, str] | None:
    """Keep ``value`` (whose recorded digest is ``digest``) in the large-output store;
    ``(file name, its SHA-256)``, or None when it cannot be kept (an in-memory store, a
    value neither Parquet nor pickle can hold, a full disk: a warning says which)."""
    folder = large_dir(store)
    if folder is None:
        return None
    kind = _kind(value)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if kind != "pickle":
            path = folder / f"{digest}.{kind}.parquet"
            if not path.exists():
                try:
                    _atomic(path, lambda tmp: _to_parquet(value, kind, tmp))
                except (ValueError, TypeError, ImportError, NotImplementedError):
                    kind = "pickle"  # columns Parquet cannot hold: a pickle instead
                    path = folder / f"{digest}.pickle"
        if kind == "pickle":
            path = folder / f"{digest}.pickle"
            if not path.exists():
                blob = sign(pickle.dumps(value, protocol=5), store.output_key(), _place(digest))
                _atomic(path, lambda tmp: tmp.write_bytes(blob))
        sha = _file_sha(path)
    except Exception as exc:  # a value that cannot be kept just runs again next time
        warnings.warn(
            f"fluxnb could not keep a large output in {folder}: {type(exc).__name__}: {exc}",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    enforce_budget(store)
    return path.name, sha


def _to_parquet(value: Any, kind: str, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(value) if kind == "pandas" else value
    pq.write_table(table, str(path))


def _place(digest: str) -> str:
    """What a large pickle's signature binds it to: its digest (so it cannot be renamed)."""
    return f"large\0{digest}"


def read_large(store: Store, name: str, sha: str | None, digest: str) -> Any:
    """A value kept by :func:`write_large`, checked before it is read."""
    folder = large_dir(store)
    path = None if folder is None else folder / name
    if path is None or not path.is_file():
        raise ReplayError(f"its large output {name} was pruned")
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: pruned last
    if name.endswith(".pickle"):
        blob = path.read_bytes()
        if not signed_by(blob, store.output_key(), _place(digest)):
            raise UntrustedOutput(name)
        return decode("pickle", None, blob, name, trust=True)
    if sha is None or _file_sha(path) != sha:
        raise ReplayError(f"its large output {name} was changed since it was recorded")
    import pyarrow.parquet as pq

    table = pq.read_table(str(path))
    return table.to_pandas() if name.endswith(".pandas.parquet") else table


@dataclass(frozen=True)
class PruneReport:
    """What :func:`prune` did."""

    #: Files removed and the bytes they held.
    removed: int
    freed: int
    #: Bytes the large-output store holds now.
    kept: int
    #: Cache entries forgotten (``everything=True``).
    forgotten: int = 0


def enforce_budget(store: Store, budget: int | None = None) -> PruneReport:
    """Remove the least recently used large outputs until the folder holds at most
    ``budget`` bytes (default ``FLUXNB_CACHE_BUDGET``)."""
    folder = large_dir(store)
    limit = BUDGET if budget is None else budget
    if folder is None or not folder.is_dir():
        return PruneReport(0, 0, 0)
    files = []
    for p in folder.iterdir():
        with contextlib.suppress(OSError):
            st = p.stat()
            files.append((st.st_mtime, st.st_size, p))
    total = sum(f[1] for f in files)
    removed = freed = 0
    for _, size, p in sorted(files, key=lambda f: (f[0], f[2].name)):
        if total <= limit:
            break
        with contextlib.suppress(OSError):
            p.unlink()
            total -= size
            freed += size
            removed += 1
    return PruneReport(removed, freed, total)


def prune(store: Store, budget: int | None = None, *, everything: bool = False) -> PruneReport:
    """``fluxnb cache prune``: keep the large-output store within ``budget`` bytes; with
    ``everything``, remove every large output and forget every cache key too (nothing is
    reused after that; the runs' own records stay)."""
    if not everything:
        return enforce_budget(store, budget)
    report = enforce_budget(store, 0)
    with store.connect() as con:
        n = con.execute("SELECT count(*) FROM cache_entries").fetchall()[0][0]
        con.execute("DELETE FROM cache_entries")
    return PruneReport(report.removed, report.freed, report.kept, forgotten=int(n))


def now_us() -> int:
    return time.time_ns() // 1000
