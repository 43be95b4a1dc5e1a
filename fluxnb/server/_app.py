"""``FluxnbServer``: the Jupyter Server extension and its configuration."""

from __future__ import annotations

import os
from typing import Any

from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Dict, Float, Int, List, Unicode

from ._routes import handlers


class FluxnbServer(ExtensionApp):
    """fluxnb's control plane (REST under ``/fluxnb/api/v1/``) in a Jupyter Server.

    Configure it in ``jupyter_server_config.py`` (``c.FluxnbServer.<name> = ...``); every
    option is documented in docs/server.md.
    """

    name = "fluxnb"
    extension_url = "/fluxnb/api/v1/healthz"
    #: ``fluxnb serve`` (``launch_instance``) loads only this extension: a control plane
    #: without Lab, kernels' UI or terminals. In a Lab server the flag plays no part.
    load_other_extensions = False

    roles = Dict(
        default_value={},
        help="""Who may do what: Jupyter user name (or 'group:NAME' for a JupyterHub group,
        or '*' for anyone authenticated) -> {"role": "viewer|operator|admin",
        "namespaces": [...], "tenant": "..."}. A user's own entry wins, then the first
        group entry (in this order) the user belongs to, then '*'. Someone matching none
        gets 403 on every route. Empty (the default): every authenticated user is admin,
        as the owner of a single-user Jupyter Server is.""",
    ).tag(config=True)

    allowed_modules = List(
        Unicode(),
        default_value=None,
        allow_none=True,
        help="""Modules that manifests' 'run: module:function' callables (and 'custom:'
        predicates) may be imported from, each with its submodules ('mysteps' allows
        'mysteps.etl'); '*' allows every module. Importing a module runs its code and a
        callable runs anything ('subprocess:getoutput'): whoever may register or validate a
        manifest chooses what the server executes. None (the default): every module but
        '__main__' when roles is empty (a single-user server, whose user runs kernels
        anyway), and no module at all when roles maps users, until an admin lists them.
        Names are checked before anything is imported; a refused reference is a 422.""",
    ).tag(config=True)

    sql_timeout = Float(
        30.0,
        help="Seconds a POST /sql statement may run before it is interrupted (422 "
        "QueryTimeout); 0 for no limit.",
    ).tag(config=True)

    sql_threads = Int(
        2,
        help="POST /sql statements executing at once, on threads of their own (other routes "
        "never wait for SQL); as many more may wait, beyond that /sql answers 503.",
    ).tag(config=True)

    store = Unicode(
        "",
        help="The store file runs and the registry are recorded in (default: FLUXNB_STORE, "
        "else .fluxnb/fluxnb.duckdb under the server's root directory).",
    ).tag(config=True)

    workers = Int(2, help="Worker processes that execute runs.").tag(config=True)

    runs_per_worker = Int(
        8, help="Runs a worker process executes at once (each on fluxnb's event loop)."
    ).tag(config=True)

    queue_limit = Int(
        10_000, help="Runs waiting for a worker before POST .../runs answers 503."
    ).tag(config=True)

    max_body_bytes = Int(
        1 << 20, help="Largest request body accepted (bytes); larger ones get 413."
    ).tag(config=True)

    eager_workers = Bool(
        False,
        help="Start the worker processes with the server (fluxnb serve does) instead of on "
        "the API's first use: a JupyterLab whose users never call the API starts none.",
    ).tag(config=True)

    stream_buffer = Int(
        10_000,
        help="Events kept for GET /stream to resume from (Last-Event-ID); older ones are "
        "gone and a client resuming from before them is told so.",
    ).tag(config=True)

    def _store_path(self) -> str:
        if self.store:
            return self.store
        if os.environ.get("FLUXNB_STORE"):
            return os.environ["FLUXNB_STORE"]
        root = getattr(self.serverapp, "root_dir", None) or os.getcwd()
        return os.path.join(root, ".fluxnb", "fluxnb.duckdb")

    def import_policy(self) -> Any:
        """The ImportPolicy of ``allowed_modules`` (see its help)."""
        from ..spec._resolve import ImportPolicy

        if self.allowed_modules is not None:
            allowed = tuple(self.allowed_modules)
        else:
            allowed = () if self.roles else ("*",)
        return ImportPolicy(allowed, "c.FluxnbServer.allowed_modules")

    def initialize_settings(self) -> None:
        from ._access import Roles
        from ._plane import Plane

        plane = Plane(
            store_path=self._store_path(),
            roles=Roles(self.roles),
            workers=max(1, self.workers),
            runs_per_worker=max(1, self.runs_per_worker),
            queue_limit=max(1, self.queue_limit),
            max_body_bytes=max(1, self.max_body_bytes),
            stream_buffer=max(1, self.stream_buffer),
            imports=self.import_policy(),
            sql_timeout=max(0.0, self.sql_timeout),
            sql_threads=max(1, self.sql_threads),
            log=self.log,
        )
        # watch: triggers stay under the folder Jupyter serves (server/_triggers.watch_root)
        plane.root = getattr(self.serverapp, "root_dir", None) or os.getcwd()
        self.settings["fluxnb_plane"] = plane
        self.log.info("fluxnb control plane: store %s", plane.store.path)

    def initialize_handlers(self) -> None:
        self.handlers.extend(handlers())

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        if self.eager_workers:  # a first run need not wait for them
            self.settings["fluxnb_plane"].start()

    async def stop_extension(self) -> None:
        plane: Any = self.settings.get("fluxnb_plane")
        if plane is not None:
            await plane.close()
