"""What the control-plane tests share: the server's configuration (users, roles, store),
a client that checks every answer against fluxnb/server/openapi.json, and manifests."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FLUXNB, ROOT, cli_env
from tests.server_users import TokenUsers

SPEC_PATH = Path(__file__).resolve().parents[1] / "fluxnb" / "server" / "openapi.json"

#: token -> (Jupyter user, Hub groups)
USERS = {
    "A": ("alice", []),  # admin
    "O": ("otto", []),  # operator of team-a
    "V": ("vic", []),  # viewer of team-a
    "B": ("bea", []),  # operator of team-b: team-a must stay invisible to her
    "G": ("gus", ["auditors"]),  # viewer of team-a and team-b through a Hub group
    "N": ("nobody", []),  # authenticated by Jupyter, no fluxnb role
}
ROLES = {
    "alice": {"role": "admin", "namespaces": ["team-a"]},
    "otto": {"role": "operator", "namespaces": ["team-a"], "tenant": "acme"},
    "vic": {"role": "viewer", "namespaces": ["team-a"], "tenant": "acme"},
    "bea": {"role": "operator", "namespaces": ["team-b"], "tenant": "globex"},
    "group:auditors": {"role": "viewer", "namespaces": ["team-a", "team-b"]},
}


def server_config(store: str, **fluxnb: Any) -> dict[str, Any]:
    return {
        "ServerApp": {
            "jpserver_extensions": {"fluxnb": True},
            "identity_provider_class": TokenUsers,
        },
        "TokenUsers": {"users": USERS},
        # roles map users: nothing is importable until listed (the steps live in tests.*)
        "FluxnbServer": {
            "store": store,
            "workers": 1,
            "roles": ROLES,
            "allowed_modules": ["tests"],
            **fluxnb,
        },
    }


SUMS = """name: sums
agents:
  - {id: numbers, run: "tests.server_steps:numbers"}
  - {id: total, run: "tests.server_steps:total"}
pipeline:
  - step: numbers
  - step: total
    depends_on: numbers
"""

GATED = """name: gated
agents:
  - {id: first, run: "tests.server_steps:noop"}
  - {id: wait, run: "tests.server_steps:wait_for_file"}
  - {id: last, run: "tests.server_steps:noop"}
pipeline:
  - step: first
  - step: wait
    depends_on: first
  - step: last
    depends_on: wait
"""

TICKET = """name: ticket
states: [open, closed, archived]
initial_state: open
final: [archived]
transitions:
  - {id: close, from_states: [open], to_state: closed}
  - {id: archive, from_states: [closed], to_state: archived}
"""


#: A net whose 'crash' action ends the process running it (external: fired by hand).
CRASHY = """name: crashy
net:
  places:
    inbox: 0
    done: 0
  transitions:
    - id: crash
      inputs: [inbox]
      outputs: [done]
      run: "tests.server_steps:die"
      external: true
"""


class Answer:
    def __init__(self, code: int, body: bytes, headers: Any) -> None:
        self.code = code
        self.body = body
        self.headers = headers

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> dict[str, Any]:
        return self.json["error"]


class Client:
    """``await api.put("workflows/sums", "O", {"manifest": ...})`` → Answer, every answer
    validated against the OpenAPI document (operation, status code, body schema)."""

    def __init__(self, fetch: Any) -> None:
        from openapi_core import OpenAPI

        self.fetch = fetch
        self.spec = OpenAPI.from_dict(json.loads(SPEC_PATH.read_text()))
        self.checked = 0

    async def call(
        self,
        method: str,
        path: str,
        token: str | None,
        body: Any = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Answer:
        sent = dict(headers or {})
        sent["Authorization"] = f"token {token}" if token else "token none"
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        if data is None and method in ("POST", "PUT"):
            data = b""
        r = await self.fetch(
            "fluxnb/api/v1/" + path, method=method, body=data, headers=sent,
            params=params, raise_error=False, allow_nonstandard_methods=True,
        )  # fmt: skip
        answer = Answer(r.code, r.body or b"", r.headers)
        self.validate(method, path, params, answer)
        return answer

    def validate(
        self, method: str, path: str, params: dict[str, str] | None, answer: Answer
    ) -> None:
        from openapi_core.testing import MockRequest, MockResponse

        request = MockRequest(
            "http://localhost", method.lower(), "/fluxnb/api/v1/" + path, args=params or {}
        )
        kind = (answer.headers.get("Content-Type") or "application/json").split(";")[0]
        data = answer.body if kind == "application/json" else answer.body.decode()
        response = MockResponse(data, status_code=answer.code, content_type=kind)
        self.spec.validate_response(request, response)
        self.checked += 1

    async def get(self, path: str, token: str | None, **kw: Any) -> Answer:
        return await self.call("GET", path, token, **kw)

    async def post(self, path: str, token: str | None, body: Any = None, **kw: Any) -> Answer:
        return await self.call("POST", path, token, body, **kw)

    async def put(self, path: str, token: str | None, body: Any = None, **kw: Any) -> Answer:
        return await self.call("PUT", path, token, body, **kw)

    async def delete(self, path: str, token: str | None, **kw: Any) -> Answer:
        return await self.call("DELETE", path, token, **kw)

    async def register(self, name: str, manifest: str, token: str = "O") -> Answer:
        r = await self.put(f"workflows/{name}", token, {"manifest": manifest})
        assert r.code in (200, 201), r.body
        return r

    async def wait_status(
        self, run_id: str, token: str, wanted: tuple[str, ...], seconds: float = 20
    ) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while True:
            run = (await self.get(f"runs/{run_id}", token)).json
            if run["status"] in wanted or loop.time() > end:
                return run
            await asyncio.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module", name="served")
def served_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``fluxnb serve`` on a free loopback port (token T, one worker); its URL."""
    folder = tmp_path_factory.mktemp("serve")
    port = _free_port()
    env = {**cli_env(), "PYTHONPATH": str(ROOT)}
    log = (folder / "log").open("w")
    server = subprocess.Popen(
        [*FLUXNB, "serve", "--port", str(port), "--token", "T", "--workers", "1",
         "--store", str(folder / "s.duckdb")],
        cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url + "/fluxnb/api/v1/readyz", timeout=1) as r:
                    if json.loads(r.read())["ready"]:
                        break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("fluxnb serve did not get ready: " + (folder / "log").read_text()[-2000:])
        yield url
    finally:
        server.terminate()
        server.wait(10)
        log.close()
