"""``fluxnb.server.serve()``: the control plane in a thread of this process (a notebook,
a script, a test), on its own event loop; runs still execute in worker processes.

>>> from fluxnb.server import serve          # doctest: +SKIP
>>> plane = serve(store="demo.duckdb")        # doctest: +SKIP
>>> fluxnb.remote(plane.url, token=plane.token).runs()  # doctest: +SKIP
>>> plane.stop()                              # doctest: +SKIP

A script that calls it needs the ``if __name__ == "__main__":`` guard (the workers are
started with multiprocessing's spawn); a notebook kernel needs nothing.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._exceptions import FluxError


@dataclass
class Served:
    """A control plane running in this process."""

    #: ``http://127.0.0.1:PORT`` (what ``fluxnb.remote`` takes).
    url: str
    #: Jupyter's token for it.
    token: str
    _app: Any = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the server and its workers (waits up to ``timeout`` seconds)."""
        loop = self._app.io_loop.asyncio_loop
        loop.call_soon_threadsafe(self._app.stop)
        self._thread.join(timeout)

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    *,
    port: int = 0,
    token: str | None = None,
    store: str | None = None,
    workers: int = 1,
    roles: dict[str, Any] | None = None,
    timeout: float = 60.0,
    log_level: str = "ERROR",
) -> Served:
    """Start the control plane on 127.0.0.1 in a daemon thread and wait until it is ready
    (its store opens and its workers are up).

    Args:
        port: 0 for a free one.
        token: Jupyter's token (default: a random one, in ``.token``).
        store: the store file (default: FLUXNB_STORE, else .fluxnb/fluxnb.duckdb).
        workers: worker processes for runs.
        roles: ``c.FluxnbServer.roles`` (default: the token's user is admin).
        log_level: of the server's log (on this process's stderr; a notebook shows it).

    Raises:
        FluxError: it did not get ready within ``timeout`` seconds.
    """
    from jupyter_server.serverapp import ServerApp

    if port == 0:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
    token = token or secrets.token_hex(16)
    argv = [
        f"--ServerApp.port={port}",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port_retries=0",
        "--ServerApp.open_browser=False",
        "--ServerApp.allow_root=True",
        f"--ServerApp.log_level={log_level}",  # a notebook cell shows stderr
        f"--FluxnbServer.log_level={log_level}",
        f"--IdentityProvider.token={token}",
        "--ServerApp.jpserver_extensions={'fluxnb': True}",
        "--FluxnbServer.eager_workers=True",
        f"--FluxnbServer.workers={workers}",
    ]
    if store:
        argv.append(f"--FluxnbServer.store={Path(store).expanduser().absolute()}")
    if roles:
        argv.append(f"--FluxnbServer.roles={json.dumps(roles)}")
    app = ServerApp()
    made = threading.Event()
    failed: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        try:
            app.init_signal = lambda: None  # type: ignore[method-assign]  # not the main thread
            app.initialize(argv=argv, find_extensions=False)
        except BaseException as exc:
            failed.append(exc)
            made.set()
            return
        made.set()
        app.start()

    thread = threading.Thread(target=run, name="fluxnb-control-plane", daemon=True)
    thread.start()
    made.wait(timeout)
    if failed:
        raise FluxError(f"the control plane did not start: {failed[0]}")
    url = f"http://127.0.0.1:{port}"
    _wait_ready(app, url, timeout)
    return Served(url, token, app, thread)


def _wait_ready(app: Any, url: str, timeout: float) -> None:
    """Until the server answers and a worker is ready (asked in-process: polling /readyz
    would log a 503 for every try while the workers start)."""
    deadline = time.monotonic() + timeout
    while True:
        plane = getattr(app, "web_app", None) and app.web_app.settings.get("fluxnb_plane")
        if plane is not None and plane.started and plane.pool.alive() > 0:
            try:
                with urllib.request.urlopen(url + "/fluxnb/api/v1/healthz", timeout=2):
                    return
            except (OSError, urllib.error.URLError):
                pass
        if time.monotonic() > deadline:
            raise FluxError(f"the control plane at {url} was not ready after {timeout:g} s")
        time.sleep(0.05)
