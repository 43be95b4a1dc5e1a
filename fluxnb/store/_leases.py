"""Run leases: at most one process continues a given run at a time.

Two ``resume`` calls of one run (two kernels, a kernel and a terminal) would both re-run
its unfinished steps and bill them twice. Whoever resumes a run first takes its lease; a
second is refused with a message naming the holder. A lease is an exclusive ``flock`` on
a small file beside the store (``<store>.locks/<run>.lock``, removed on release): the
operating system drops the lock when its holder ends, however it ends (kill -9 included), so
a lease never outlives its process and needs no expiry. An in-memory store's leases live
in this process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
from pathlib import Path
from typing import Any

from .._exceptions import ReplayError

_local_lock = threading.Lock()
_local: set[tuple[int, str]] = set()


class RunBusy(ReplayError):
    """Another process (or call) is continuing this run now (``run_id``, ``holder``)."""

    def __init__(self, run_id: str, holder: dict[str, Any]) -> None:
        self.run_id = run_id
        self.holder = holder
        who = (
            f"process {holder.get('pid')} on {holder.get('host')}"
            if holder.get("pid")
            else "another resume"
        )
        super().__init__(
            f"run {run_id} is being resumed by {who}; only one resume of a run can go at a "
            "time — wait for it to end, then look at the run's status"
        )


class RunLease:
    """The exclusive right to continue one run; ``release()`` (or ``with``) gives it back."""

    def __init__(self, store: Any, run_id: str) -> None:
        self.run_id = run_id
        self._fd: int | None = None
        self._path: Path | None = None
        self._key: tuple[int, str] | None = None
        if store.in_memory:
            self._take_local(store)
        else:
            self._take_file(Path(store.path + ".locks"))

    def _take_local(self, store: Any) -> None:
        key = (id(store), self.run_id)
        with _local_lock:
            if key in _local:
                raise RunBusy(self.run_id, {})
            _local.add(key)
        self._key = key

    def _take_file(self, folder: Path) -> None:
        import fcntl

        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (hashlib.sha256(self.run_id.encode()).hexdigest()[:32] + ".lock")
        for _ in range(100):
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _read_holder(fd)
                os.close(fd)
                raise RunBusy(self.run_id, holder) from None
            try:  # the holder before us may have removed the file as we opened it
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        else:  # pragma: no cover - a hundred removals in a row
            raise RunBusy(self.run_id, {})
        info = {"run_id": self.run_id, "pid": os.getpid(), "host": socket.gethostname()}
        # who holds it, for the message a second resume gets; the flock is the lease, so a
        # disk too full to take these bytes leaves it held (the message says "another")
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps(info).encode())
        self._fd, self._path = fd, path

    def release(self) -> None:
        """Give the lease back (idempotent); its file goes too (removed while still
        locked, so whoever opened it meanwhile sees it gone and opens a fresh one)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            if self._path is not None:
                with contextlib.suppress(OSError):
                    self._path.unlink()
            os.close(fd)  # closing the descriptor drops the flock
        if self._key is not None:
            with _local_lock:
                _local.discard(self._key)
            self._key = None

    def __enter__(self) -> RunLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        data = os.pread(fd, 4096, 0)
        holder = json.loads(data or b"{}")
        return holder if isinstance(holder, dict) else {}
    except (OSError, ValueError):
        return {}
