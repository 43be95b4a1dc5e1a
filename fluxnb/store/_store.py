"""The trace store: a DuckDB file (or memory) with runs and events, queried with SQL.

How two processes share one store file (measured, see docs/store.md): DuckDB lets one
process at a time open a file for writing. So fluxnb never keeps the file open.
Runs write their rows as Parquet segments (no lock at all); reads and loads attach the
file to a process-wide in-memory DuckDB for milliseconds, retrying while another process
holds it, and report a clear StoreLockedError only if it stays locked.

Why over 400 lines: one object's lifecycle (attach, migrate, fold, query, the sealed scoped
SQL of non-admins); folding, quarantine, settling and health live in their own modules.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from .._exceptions import QueryError, RecordingFailed, StoreError, StoreLockedError
from ._fold import APPEND, FoldReport, fold
from ._schema import MIGRATIONS, SCHEMA_VERSION, VIEWS

MEMORY = ":memory:"
_ALIAS = "fluxnb_store"


def default_path() -> str:
    """``FLUXNB_STORE`` if set, else ``.fluxnb/fluxnb.duckdb`` under the current directory."""
    return os.environ.get("FLUXNB_STORE") or str(Path.cwd() / ".fluxnb" / "fluxnb.duckdb")


class _Instance:
    """One in-memory DuckDB per process; store files are attached to it briefly."""

    _lock = threading.RLock()
    _con: Any = None
    _attached: str | None = None  # the store attached now (nested connect() reuses it)

    @classmethod
    def connection(cls) -> Any:
        if cls._con is None:
            import duckdb

            cls._con = duckdb.connect(MEMORY)
        return cls._con


class Store:
    """A trace store. Use :func:`fluxnb.store` to get one; see the class methods below.

    >>> fluxnb.store().sql("SELECT status, count(*) FROM runs GROUP BY 1")  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike[str] = MEMORY, *, lock_timeout: float | None = None):
        self.path = str(path) if str(path) == MEMORY else str(Path(path).expanduser().absolute())
        self.lock_timeout = (
            lock_timeout
            if lock_timeout is not None
            else float(os.environ.get("FLUXNB_LOCK_TIMEOUT", "30"))
        )
        self._memory_con: Any = None
        self._lock = threading.RLock()
        #: What the last access's fold did, or how it failed (for ``flush``).
        self._opened: FoldReport | Exception = FoldReport()
        self._flushing = False
        self._output_key: bytes | None = None

    @property
    def in_memory(self) -> bool:
        return self.path == MEMORY

    @property
    def segments_dir(self) -> Path:
        """Where runs drop their rows until the next access loads them."""
        return Path(self.path + ".segments")

    def __repr__(self) -> str:
        return f"<fluxnb Store {self.path}>"

    # ------------------------------------------------------------------ connections
    @contextmanager
    def connect(self) -> Iterator[Any]:
        """A DuckDB connection on this store, migrated and with segments loaded.

        Held for the ``with`` block only; keep it short: other processes wait meanwhile.
        """
        if self.in_memory:
            with self._lock:
                if self._memory_con is None:
                    import duckdb

                    con = duckdb.connect(MEMORY)
                    _migrate(con, self.path)
                    self._memory_con = con
                yield self._memory_con
            return
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        _ignore_folder(Path(self.path).parent)
        with _Instance._lock:
            con = _Instance.connection()
            if _Instance._attached is not None:
                if _Instance._attached != self.path:
                    raise StoreError(
                        f"cannot open {self.path} while {_Instance._attached} is open in this "
                        "thread; finish the outer query first"
                    )
                yield con  # nested use of the same store: already attached
                return
            self._attach(con)
            _Instance._attached = self.path
            try:
                con.execute(f"USE {_ALIAS}")
                _migrate(con, self.path)
                self._fold_on_open(con)
                if time.monotonic() - _REAPED.get(self.path, -1e9) >= _REAP_EVERY_S:
                    import duckdb

                    with suppress(OSError, duckdb.Error):  # a best effort, never in the way
                        self._mark_interrupted(con)
                yield con
            finally:
                _Instance._attached = None
                try:
                    con.execute("USE memory")
                finally:
                    self._detach(con)

    def _detach(self, con: Any) -> None:
        """DETACH checkpoints the file; on a full disk that fails after the commit went to
        the write-ahead log (``.wal``): nothing is lost, the next access replays it."""
        import duckdb

        try:
            con.execute(f"DETACH {_ALIAS}")
        except duckdb.IOException as exc:
            self._opened = exc
            if not self._flushing:
                warnings.warn(str(_not_written(self, exc)), RuntimeWarning, stacklevel=5)

    def _attach(self, con: Any) -> None:
        import duckdb

        deadline = time.monotonic() + self.lock_timeout
        pause = 0.005
        quoted = self.path.replace("'", "''")
        while True:
            try:
                con.execute(f"ATTACH '{quoted}' AS {_ALIAS}")
                return
            except duckdb.Error as exc:
                text = str(exc)
                if "lock" not in text.lower():
                    raise StoreError(f"cannot open the trace store {self.path}: {text}") from None
                if time.monotonic() >= deadline:
                    raise StoreLockedError(self.path, self.lock_timeout, _short(text)) from None
                time.sleep(pause * (0.5 + random.random()))
                pause = min(pause * 2, 0.25)

    def _load_segments(self, con: Any) -> int:
        """Load pending segments in one transaction (see ``_fold``); segments loaded."""
        _remove_stale_temporaries(self.segments_dir)
        return fold(con, self.segments_dir).loaded

    def _fold_on_open(self, con: Any) -> None:
        """The fold every access does. A file that cannot take the rows (a full disk)
        must not stop reads: the failure is kept for ``flush`` and warned about, and the
        segments wait."""
        import duckdb

        _remove_stale_temporaries(self.segments_dir)
        try:
            self._opened = fold(con, self.segments_dir)
        except (duckdb.Error, OSError) as exc:
            if not _write_failure(exc):
                raise
            self._opened = exc
            if not self._flushing:  # flush raises it instead
                warnings.warn(str(_not_written(self, exc)), RuntimeWarning, stacklevel=4)

    def append(self, table: str, rows: list[tuple]) -> None:
        """Add ``rows`` (tuples in the table's column order) to ``events``,
        ``circuit_events``, ``usage`` or ``audit``: a segment for a store file (no lock
        taken), an insert for an in-memory store. Raises OSError if the disk refuses."""
        if not rows:
            return
        from ._segments import arrow_table, write_segment

        if not self.in_memory:
            write_segment(self.segments_dir, table, rows)  # a small batch needs no pyarrow
            return
        self.append_table(table, arrow_table(table, rows))

    def append_table(self, table: str, data: Any) -> None:
        """:meth:`append` for rows already in an Arrow table of the table's segment schema."""
        if data.num_rows == 0:
            return
        from ._segments import write_segment

        if not self.in_memory:
            write_segment(self.segments_dir, table, data)
            return
        import pyarrow as pa

        data = data.append_column("segment", pa.array([0] * data.num_rows, pa.int32()))
        with self.connect() as con:
            con.register("_fluxnb_batch", data)
            try:
                con.execute(APPEND[table].format(source="_fluxnb_batch"))
            finally:
                con.unregister("_fluxnb_batch")

    def load_pending(self) -> int:
        """Move rows waiting in segments into the DuckDB file now; returns segments loaded.

        Any access does this anyway; ``flush`` says more about what it did.
        """
        return self.flush().loaded

    def flush(self) -> FoldReport:
        """Fold every pending segment into the DuckDB file now, so that other programs
        (``duckdb.connect(path, read_only=True)``) see every row; what it did.

        ``fluxnb.run()``, ``fluxnb.resume()`` and every CLI command do this as they end;
        ``arun`` and background runs leave it to the next access (see docs/store.md).

        Raises:
            RecordingFailed: the file cannot take the rows (a full disk); they wait.
            StoreLockedError: another program holds the file.
        """
        if self.in_memory:
            return FoldReport()
        with _Instance._lock:
            self._opened, self._flushing = FoldReport(), True
            try:
                with self.connect():
                    pass
            finally:
                self._flushing = False
            outcome = self._opened
        if isinstance(outcome, Exception):
            raise _not_written(self, outcome) from None
        return outcome

    def check(self) -> Any:
        """The store's health: what was set aside as corrupt, what waits, whether the file
        opens (``fluxnb store check``); see ``StoreHealth``."""
        from ._health import check

        return check(self)

    def prune_cache(self, budget: int | None = None, *, everything: bool = False) -> Any:
        """Keep the large-output store of incremental runs within ``budget`` bytes (default
        ``FLUXNB_CACHE_BUDGET``), least recently used first; ``everything=True`` removes
        every large output and forgets every cache key (``fluxnb cache prune``). Returns
        a ``PruneReport`` (files removed, bytes freed and kept). See docs/caching.md."""
        from ._cache import prune

        return prune(self, budget, everything=everything)

    def has_run(self, run_id: str) -> bool:
        """Whether a run with this id is in the store, in any namespace (internal: it
        reads past the session's namespace, so it answers only yes or no)."""
        with self.connect() as con:
            found = con.execute("SELECT 1 FROM runs WHERE run_id = $1", [run_id]).fetchall()
        return bool(found)

    def output_key(self) -> bytes:
        """This store's key for signing the pickles it records (HMAC-SHA256), made on
        first use and kept in the store's ``fluxnb_secrets`` table, which no non-admin
        query can read. See ``fluxnb.store._outputs``."""
        if self._output_key is None:
            import secrets

            query = "SELECT value FROM fluxnb_secrets WHERE name = 'output_key'"
            with self.connect() as con:
                rows = con.execute(query).fetchall()  # all: an open result blocks the next
                row = rows[0] if rows else None
                if row is None:  # made once: reading it writes nothing (a full disk)
                    import duckdb

                    try:
                        con.execute(
                            "INSERT OR IGNORE INTO fluxnb_secrets VALUES ('output_key', $1)",
                            [secrets.token_bytes(32)],
                        )
                    except duckdb.Error as exc:
                        if not _write_failure(exc):
                            raise
                        raise _not_written(self, exc) from None
                    row = con.execute(query).fetchall()[0]
            self._output_key = bytes(row[0])
        return self._output_key

    # ------------------------------------------------------------------ queries
    def sql(self, query: str, params: Mapping[str, Any] | list[Any] | None = None) -> Any:
        """Run SQL on the store and return a pandas DataFrame.

        Tables: ``runs`` (one row per run) and ``events`` (one row per step attempt).
        Pass values as ``params`` (``$name`` or ``?`` placeholders), never by formatting.
        """
        from .._session import current

        session = current()
        if not session.is_admin:
            return self._scoped_sql(query, params, session.namespace)
        import duckdb

        with self.connect() as con:
            try:
                rel = con.execute(query, params) if params is not None else con.execute(query)
                return _frame(rel)
            except duckdb.Error as exc:
                raise QueryError(query, str(exc)) from None

    def mark_interrupted(self) -> list[str]:
        """Give the runs of this machine that say ``running`` but whose process has ended
        (killed, a restarted kernel, a crash) the status ``interrupted``; their ids.

        Every access to a store file does this too, at most every few seconds per file, so
        ``runs()``, ``sql()``, ``%fluxsql`` and the CLI never show such a run as running.
        Runs of other machines are left as they are (their processes cannot be seen from
        here). Nothing else of the run changes: ``fluxnb resume`` continues it.
        """
        if self.in_memory:
            return []
        _REAPED[self.path] = time.monotonic()  # the access below must not do it first
        with self.connect() as con:
            return self._mark_interrupted(con)

    def _mark_interrupted(self, con: Any) -> list[str]:
        from ._liveness import interrupted_rows
        from ._segments import write_segment

        _REAPED[self.path] = time.monotonic()
        rows = interrupted_rows(con)
        if rows:
            write_segment(self.segments_dir, "runs", rows)
            self._load_segments(con)
        return [r[0] for r in rows]

    def sealed_sql(
        self,
        query: str,
        params: Any = None,
        namespace: str | None = None,
        *,
        timeout: float | None = None,
        limit: int | None = None,
    ) -> Any:
        """``query`` on a sealed scratch copy (no files, no Python, no store changes) of
        ``namespace``'s rows, or of every namespace's for None: how the control plane runs
        anyone's SQL, an admin's too (a server's files are not its users' to read).

        The scratch database has ``SEALED_LIMITS`` (memory, threads); ``timeout`` (seconds)
        interrupts the statement (QueryError with ``.timeout``); ``limit``: the frame
        holds at most ``limit + 1`` rows (one more says there were more), and no more are
        fetched than that (the result is streamed: a query that can stop early does)."""
        return self._scoped_sql(query, params, namespace, timeout=timeout, limit=limit)

    def _scoped_sql(
        self,
        query: str,
        params: Any,
        namespace: str | None,
        *,
        timeout: float | None = None,
        limit: int | None = None,
    ) -> Any:
        """``query`` as a non-admin sees it: on a throwaway DuckDB holding only the rows of
        ``namespace`` (copied out of the store for the tables the query names), sealed off
        from files and Python (``_SEALED``), so no SQL at all — not a qualified name, a
        system function, an ATTACH of the store file, a file reader or a Python variable —
        can reach another namespace's rows, and nothing it does can change the store."""
        import duckdb

        words = set(re.findall(r"[a-z_][a-z0-9_]*", query.lower()))
        views = [v for v in VIEWS if v in words]
        needed = {t for t in _SCOPED if t in words}
        for view in views:
            needed |= {t for t in _SCOPED if t in VIEWS[view]}
        copies: dict[str, Any] = {}
        if needed:
            with self.connect() as con:
                for table in sorted(needed):
                    if namespace is None:
                        copies[table] = _to_arrow(con, f"SELECT * FROM {table}", None)
                        continue
                    bind = {"ns": namespace} if "$ns" in _SCOPED[table] else None
                    copies[table] = _to_arrow(con, _SCOPED[table], bind)
        bounded = timeout is not None or limit is not None  # the control plane's
        scratch = duckdb.connect(
            MEMORY, config={**SEALED_LIMITS, **_SEALED} if bounded else _SEALED
        )
        timer = None
        if timeout:
            timer = threading.Timer(timeout, _interrupt, (scratch,))
            timer.daemon = True
            timer.start()
        try:
            for table, data in copies.items():
                scratch.register(table, data)
            for view in views:
                scratch.execute(f"CREATE VIEW {view} AS {VIEWS[view]}")
            if limit is not None:
                return _first_rows(scratch, query, params, limit + 1)
            rel = scratch.execute(query, params) if params is not None else scratch.execute(query)
            return _frame(rel)
        except duckdb.InterruptException:
            raise QueryError(
                query, f"the query ran longer than {timeout:g} s and was stopped", timeout=timeout
            ) from None
        except duckdb.Error as exc:
            seen = "every namespace" if namespace is None else f"namespace '{namespace}' only"
            raise QueryError(query, f"{exc} (this session sees {seen})") from None
        finally:
            if timer is not None:
                timer.cancel()
            scratch.close()

    def traces(self, run_id: str | None = None) -> Any:
        """Events (one row per attempt) of one run, or of all runs, in logical order."""
        if run_id is None:
            return self.sql(
                "SELECT e.* FROM events e JOIN runs r USING (run_id) "
                "ORDER BY r.started_at, e.run_id, e.seq, e.attempt"
            )
        return self.sql(
            "SELECT * FROM events WHERE run_id = $run ORDER BY seq, attempt", {"run": run_id}
        )

    def runs(self, limit: int = 20) -> Any:
        """The most recent runs, newest first."""
        return self.sql(
            "SELECT run_id, workflow, status, started_at, duration_s, steps, namespace, tenant, "
            "error FROM runs ORDER BY started_at DESC LIMIT $n",
            {"n": int(limit)},
        )

    def recorder(self) -> Any:
        """A new recorder that writes one run into this store."""
        from ._store_recorder import StoreRecorder

        return StoreRecorder(self)


#: The scratch database of a non-admin query can reach neither files (no ATTACH of the store,
#: no read_csv / read_parquet / COPY, no extension installs) nor Python objects by name, and
#: the query cannot change that: the configuration is locked.
_SEALED: dict[str, str | bool | int | float | list[str]] = {
    "enable_external_access": False,
    "python_enable_replacements": False,
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "lock_configuration": True,
}

#: When each store file was last checked for runs whose process has ended (monotonic s).
_REAPED: dict[str, float] = {}
_REAP_EVERY_S = 2.0

_IN_NAMESPACE = "SELECT run_id FROM runs WHERE coalesce(namespace, 'default') = $ns"
#: What a non-admin session sees of each table: its namespace's rows (runs without a
#: namespace count as 'default'); rate cards and tenants are not namespaced.
_SCOPED = {
    "runs": "SELECT * FROM runs WHERE coalesce(namespace, 'default') = $ns",
    "events": f"SELECT * FROM events WHERE run_id IN ({_IN_NAMESPACE})",
    "circuit_events": f"SELECT * FROM circuit_events WHERE run_id IN ({_IN_NAMESPACE})",
    "usage": "SELECT * FROM usage WHERE namespace = $ns",
    "audit": "SELECT * FROM audit WHERE namespace = $ns",
    "invoices": "SELECT * FROM invoices WHERE namespace = $ns",
    "invoice_lines": "SELECT * FROM invoice_lines WHERE invoice_id IN "
    "(SELECT invoice_id FROM invoices WHERE namespace = $ns)",
    "rate_cards": "SELECT * FROM rate_cards",
    "rate_card_prices": "SELECT * FROM rate_card_prices",
    "tenants": "SELECT * FROM tenants",
    "cache_entries": f"SELECT * FROM cache_entries WHERE run_id IN ({_IN_NAMESPACE})",
    "llm_calls": "SELECT * FROM llm_calls WHERE coalesce(namespace, 'default') = $ns",
    "llm_prices": "SELECT * FROM llm_prices",
    "workflows": "SELECT * FROM workflows WHERE namespace = $ns",
    "workflow_runs": "SELECT * FROM workflow_runs WHERE namespace = $ns",
    "triggers": "SELECT * FROM triggers WHERE coalesce(namespace, 'default') = $ns",
    "firings": "SELECT * FROM firings WHERE trigger IN (SELECT trigger_id FROM triggers "
    "WHERE coalesce(namespace, 'default') = $ns)",
    "bus_events": "SELECT * FROM bus_events WHERE coalesce(namespace, 'default') = $ns",
}


#: What a control plane's sealed scratch database may use (sealed_sql with a timeout or a
#: limit): a query of one user cannot take the server's memory or every core.
SEALED_LIMITS: dict[str, str | int] = {"memory_limit": "1GB", "threads": 2}


def _interrupt(con: Any) -> None:
    with suppress(Exception):  # it ended (and was closed) meanwhile
        con.interrupt()


def _first_rows(con: Any, query: str, params: Any, n: int) -> Any:
    """The first ``n`` rows of ``query`` as ``_frame`` makes them, streamed: DuckDB stops
    once they are fetched where it can (``range(10**12)`` costs ``n`` rows; an ORDER BY
    still reads everything)."""
    import pyarrow as pa

    rel = con.sql(query, params=params)
    if rel is None:  # a statement without rows (CREATE, SET ...)
        return _frame(con.execute("SELECT NULL AS result WHERE false"))
    reader = rel.to_arrow_reader(min(n, 10_000))
    batches, got = [], 0
    try:
        while got < n:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            batches.append(batch)
            got += batch.num_rows
    finally:
        reader.close()
        del rel
    table = pa.Table.from_batches(batches, schema=reader.schema).slice(0, n)
    con.register("fluxnb_first_rows", table)
    return _frame(con.execute("SELECT * FROM fluxnb_first_rows"))


def _frame(res: Any) -> Any:
    """A query result as a pandas DataFrame, DECIMAL columns as ``decimal.Decimal`` values
    (DuckDB's own conversion gives float64, which would round money) and NULL strings as
    ``None`` (pandas 3's text dtype would give NaN; see ``_frames``). Other columns convert
    as DuckDB converts them. Cast to DOUBLE in SQL for floats."""
    from ._frames import nulls_as_none

    decimals = [i for i, d in enumerate(res.description or ()) if str(d[1]).startswith("DECIMAL")]
    if not decimals:
        return nulls_as_none(res.df())
    import pandas as pd

    table = _fetch_arrow(res)
    cursor = res.cursor()  # DuckDB's conversion for the other columns, on the same database
    try:
        frame = cursor.from_arrow(table).df()
    finally:
        cursor.close()
    for i in decimals:
        frame.isetitem(i, pd.Series(table.column(i).to_pylist(), dtype=object, index=frame.index))
    return nulls_as_none(frame)


def _to_arrow(con: Any, query: str, params: Any) -> Any:
    """A query's result as a pyarrow Table. DuckDB 2 warns that a DB-API result costs a
    copy and suggests ``con.sql``, which refuses to run on the store's connection (it has
    unfinished results from the loading); the copy is what this path wants anyway."""
    return _fetch_arrow(con.execute(query, params))


def _fetch_arrow(res: Any) -> Any:
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Arrow output on a DB-API result")
        fetch = getattr(res, "to_arrow_table", None) or res.fetch_arrow_table
        return fetch()


def _migrate(con: Any, path: str) -> None:
    con.execute(
        "CREATE TABLE IF NOT EXISTS fluxnb_schema "
        "(version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL, description VARCHAR)"
    )
    # fetchall: a result left unfinished (fetchone) makes DuckDB refuse the connection's
    # next register() (an Arrow batch insert) with "unfinished result"
    applied = {v for (v,) in con.execute("SELECT version FROM fluxnb_schema").fetchall()}
    current = max(applied, default=0)
    if current > SCHEMA_VERSION:
        raise StoreError(
            f"the trace store {path} has schema version {current}, newer than this fluxnb "
            f"knows ({SCHEMA_VERSION}); upgrade fluxnb to use it"
        )
    # every migration not applied yet, by version: one numbered below the newest applied
    # (built in parallel with it) is applied too, not skipped
    for m in sorted(MIGRATIONS, key=lambda m: m.version):
        if m.version in applied:
            continue
        con.execute("BEGIN")
        try:
            for statement in m.statements:
                con.execute(statement)
            con.execute(
                "INSERT INTO fluxnb_schema VALUES ($1, now(), $2)", [m.version, m.description]
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise


def _write_failure(exc: BaseException) -> bool:
    """The disk refused a write (full, too large, read-only), as opposed to a bug."""
    import duckdb

    text = str(exc)
    return (
        isinstance(exc, (OSError, duckdb.IOException))
        or "Could not write" in text
        or "No space left" in text
    )


def _not_written(store: Store, exc: BaseException) -> RecordingFailed:
    """A DuckDB or OS write failure during a fold, as the error people read."""
    import errno as errnos

    from ._segments import pending_segments

    text = str(exc)
    text = text.rsplit("Original error: ", maxsplit=1)[-1].strip()
    code = getattr(exc, "errno", None)
    if code is None and "No space left" in text:
        code = errnos.ENOSPC
    return RecordingFailed(
        store.path,
        _short(text),
        errno=code,
        pending=len(pending_segments(store.segments_dir)),
    )


def _remove_stale_temporaries(folder: Path, age: float = 3600.0) -> None:
    """A writer killed mid-write leaves a ``.tmp`` file that will never be renamed."""
    if not folder.is_dir():
        return
    cutoff = time.time() - age
    for tmp in folder.glob("*.tmp"):
        with suppress(OSError):
            if tmp.stat().st_mtime < cutoff:
                tmp.unlink()


def _ignore_folder(folder: Path) -> None:
    """Keep a fresh ``.fluxnb`` folder out of git."""
    if folder.name == ".fluxnb":
        marker = folder / ".gitignore"
        if not marker.exists():
            with suppress(OSError):
                marker.write_text("*\n")


def _short(text: str) -> str:
    text = text.split(". See also", maxsplit=1)[0].replace("IO Error: ", "")
    return text.replace("TransactionContext Error: ", "")


_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def open_store(path: str | os.PathLike[str] | None = None) -> Store:
    """The Store for ``path`` (default: :func:`default_path`), one object per path."""
    key = str(path) if path is not None else default_path()
    if key != MEMORY:
        key = str(Path(key).expanduser().absolute())
    with _stores_lock:
        if key not in _stores:
            _stores[key] = Store(key)
        return _stores[key]
