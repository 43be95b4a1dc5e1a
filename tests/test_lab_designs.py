"""Design sessions (``/designs``): the designer's Python side for JupyterLab's workflow
editor, through real HTTP, every answer checked against openapi.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.server_api import SUMS, Client, server_config

pytest_plugins = ["pytest_jupyter.jupyter_server"]
pytest.importorskip("anywidget")


@pytest.fixture
def jp_server_config(tmp_path: Path) -> dict[str, Any]:
    return server_config(str(tmp_path / "plane" / "fluxnb.duckdb"))


@pytest.fixture
def api(jp_fetch: Any) -> Client:
    return Client(jp_fetch)


async def _open(api: Client, text: str, token: str = "O", fmt: str = "yaml") -> dict[str, Any]:
    r = await api.post("designs", token, {"text": text, "format": fmt})
    assert r.code == 201, r.body
    return dict(r.json)


async def test_edits_change_the_files_text_and_undo_restores_it(api: Client) -> None:
    opened = await _open(api, SUMS)
    sid, before = opened["id"], yaml.safe_load(opened["text"])
    assert {n["id"] for n in opened["state"]["graph"]["nodes"]} == {"numbers", "total"}
    assert opened["state"]["issues"] == {}  # tests.server_steps imports in the server
    assert "run" in opened["fields"]  # what the inspector offers per step key

    added = (await api.post(f"designs/{sid}", "O", {"type": "add", "kind": "step"})).json
    new = {n["id"] for n in added["state"]["graph"]["nodes"]} - {"numbers", "total"}
    assert len(new) == 1 and added["state"]["can_undo"]
    assert new <= {s["step"] for s in yaml.safe_load(added["text"])["pipeline"]}
    assert added["state"]["issues"]  # unconnected, and no callable for it by import

    undone = (await api.post(f"designs/{sid}", "O", {"type": "undo"})).json
    assert yaml.safe_load(undone["text"]) == before
    assert undone["state"]["can_redo"]


async def test_a_refused_edit_says_why_and_leaves_the_text(api: Client) -> None:
    opened = await _open(api, SUMS)
    sid = opened["id"]
    loop = {"type": "connect", "source": "total", "target": "numbers"}
    r = (await api.post(f"designs/{sid}", "O", loop)).json
    assert "cycle" in r["state"]["message"]
    assert r["text"] == opened["text"]


async def test_a_paste_tells_the_view_what_to_select(api: Client) -> None:
    sid = (await _open(api, SUMS))["id"]
    await api.post(f"designs/{sid}", "O", {"type": "copy", "ids": ["numbers"]})
    pasted = (await api.post(f"designs/{sid}", "O", {"type": "paste"})).json
    assert pasted["messages"] and pasted["messages"][0]["type"] == "select"


async def test_sessions_belong_to_their_user_and_close(api: Client) -> None:
    sid = (await _open(api, SUMS, token="V"))["id"]  # a viewer may draw a file
    assert (await api.post(f"designs/{sid}", "B", {"type": "undo"})).code == 404
    assert (await api.post(f"designs/{sid}", "N", {"type": "undo"})).code == 403
    assert (await api.delete(f"designs/{sid}", "V")).code == 204
    assert (await api.post(f"designs/{sid}", "V", {"type": "undo"})).code == 404


async def test_running_from_a_session_is_refused(api: Client) -> None:
    sid = (await _open(api, SUMS))["id"]
    r = await api.post(f"designs/{sid}", "O", {"type": "run"})
    assert r.code == 422 and "/runs" in r.error["message"]
    assert (await api.post(f"designs/{sid}", "O", {"kind": "undo"})).code == 422


async def test_a_bad_file_gets_located_problems(api: Client) -> None:
    r = await api.post("designs", "O", {"text": SUMS.replace("depends_on", "depend")})
    assert r.code == 400 and r.error["problems"][0]["line"] == 8
    assert (await api.post("designs", "O", {"text": 3})).code == 422
    # a one-line text is text, never a file of the server's read by its path
    secret = await api.post("designs", "O", {"text": "/etc/hostname"})
    assert secret.code == 400 and secret.error["problems"][0]["found"] == "/etc/hostname"
    assert (await api.post("designs", "O", {"text": "/etc/hostname", "format": "pnml"})).code == 422


async def test_pnml_and_new_designs(api: Client) -> None:
    pnml = (Path(__file__).parent / "data").glob("*.pnml")
    new_net = await _open(api, "", fmt="pnml")
    assert new_net["state"]["graph"]["mode"] == "net"
    sid = new_net["id"]
    half = (await api.post(f"designs/{sid}", "O", {"type": "add", "kind": "place"})).json
    assert half["text"] is None and "transitions" in half["state"]["message"]  # not yet a net
    added = (await api.post(f"designs/{sid}", "O", {"type": "add", "kind": "transition"})).json
    assert added["text"].lstrip().startswith("<?xml") and "<place" in added["text"]
    for f in list(pnml)[:1]:
        opened = await _open(api, f.read_text(), fmt="pnml")
        assert opened["state"]["graph"]["mode"] == "net"
    new_dag = await _open(api, "")
    assert new_dag["state"]["graph"]["nodes"] == []


def test_dropped_sessions_let_their_widgets_go(monkeypatch: pytest.MonkeyPatch) -> None:
    from ipywidgets.widgets.widget import _instances

    from fluxnb.server import _design_handlers as designs

    monkeypatch.setattr(designs, "MAX_SESSIONS", 2)
    monkeypatch.setattr(designs, "_sessions", type(designs._sessions)())
    for _ in range(2):  # full, and the shared bundle widget exists
        designs.open_design("u", SUMS, "yaml", "sums")
    before = len(_instances)
    for _ in range(5):
        designs.open_design("u", SUMS, "yaml", "sums")
    assert len(designs._sessions) == 2
    assert len(_instances) == before  # one widget in, one (the oldest) out, each time
