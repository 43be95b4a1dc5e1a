"""The three async modes in a real ipykernel (via jupyter_client), each interrupted mid-run:
the run is recorded cancelled with its rows, the kernel lives, the next cell runs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import start_new_kernel

import fluxnb

from .conftest import cli_env

SETUP = """
%load_ext fluxnb
import asyncio, fluxnb
def a():
    return 1
async def slow(a):
    await asyncio.sleep(60)
def after(slow):
    return slow
MANIFEST = "pipeline:\\n  - step: a\\n  - step: slow\\n    depends_on: a\\n  - step: after\\n    depends_on: slow\\n"
"""


@pytest.fixture
def kernel(tmp_path: Path) -> Any:
    env = cli_env()
    km, kc = start_new_kernel(kernel_name="python3", cwd=str(tmp_path), env=env)
    try:
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def execute(kc: Any, code: str, timeout: float = 60) -> dict[str, Any]:
    """Run a cell and return its execute_reply content (outputs are drained)."""
    msg_id = kc.execute(code)
    return wait_reply(kc, msg_id, timeout)


def execute_after_error(kc: Any, code: str) -> dict[str, Any]:
    """``execute`` right after a cell failed: a request that lands in ipykernel's short
    abort window after a failed cell (stop_on_error) is "aborted", so it is asked again."""
    reply = execute(kc, code)
    for _ in range(10):
        if reply["status"] != "aborted":
            break
        time.sleep(0.2)
        reply = execute(kc, code)
    return reply


def wait_reply(kc: Any, msg_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = kc.get_shell_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg["content"]
    raise TimeoutError(code_of(msg_id))


def code_of(msg_id: str) -> str:
    return f"no reply to {msg_id}"


def wait_for_first_step(store: str) -> None:
    seg = Path(store + ".segments")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if list(seg.glob("*-events.arrow")):
            return
        time.sleep(0.05)
    raise TimeoutError("the run never recorded its first step")


@pytest.mark.parametrize(
    "cell",
    [
        pytest.param("%%fluxroute --store {store}\n{{MANIFEST_BODY}}", id="blocking-magic"),
        pytest.param(
            "r = await fluxnb.arun(MANIFEST, globals(), store={store!r})", id="await-arun"
        ),
        pytest.param(
            "%%fluxroute --background -o h --store {store}\n{{MANIFEST_BODY}}", id="background"
        ),
    ],
)
def test_interrupt_cancels_the_run_and_the_kernel_lives(
    kernel: Any, tmp_path: Path, cell: str
) -> None:
    km, kc = kernel
    store = str(tmp_path / "k.duckdb")
    assert execute(kc, SETUP)["status"] == "ok"
    body = "pipeline:\n  - step: a\n  - step: slow\n    depends_on: a\n  - step: after\n    depends_on: slow\n"
    code = cell.replace("{{MANIFEST_BODY}}", body).format(store=store)
    # a 0.1 s flush timer makes 'a' reach the disk while 'slow' runs
    assert (
        execute(
            kc,
            "import os; os.environ['FLUXNB_FLUSH_SECONDS'] = '0.1'\n"
            "from fluxnb.store import _store_recorder as sr\n"
            "sr.StoreRecorder.flush_interval = 0.1",
        )["status"]
        == "ok"
    )
    msg_id = kc.execute(code)
    wait_for_first_step(store)
    km.interrupt_kernel()
    reply = wait_reply(kc, msg_id)
    if "arun" in cell:  # ipykernel cancels the cell's task: the await raises (docs/notebook.md)
        assert (reply["status"], reply["ename"]) == ("error", "CancelledError")
    if "background" in cell:
        assert reply["status"] == "ok"  # the cell itself returned at once
        # the interrupt reached the idle kernel; the handle's run is cancelled
        done = execute(
            kc,
            "import time\nfor _ in range(100):\n    if h.done(): break\n"
            "    time.sleep(0.1)\nprint(h.done(), h.status.value)",
        )
        assert done["status"] == "ok"
    # the kernel is alive and the next cell works
    nxt = execute_after_error(kc, "x = 40 + 2\nx")
    assert nxt["status"] == "ok"
    st = fluxnb.store(store)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        runs = st.sql("SELECT status FROM runs")
        if list(runs["status"]) == ["cancelled"]:
            break
        time.sleep(0.2)
    assert list(runs["status"]) == ["cancelled"]
    ev = st.sql("SELECT step, status FROM events ORDER BY seq")
    assert json.loads(ev.to_json(orient="records")) == [
        {"step": "a", "status": "succeeded"},
        {"step": "slow", "status": "cancelled"},
        {"step": "after", "status": "cancelled"},
    ]


def test_progress_arrives_as_live_display_updates(kernel: Any, tmp_path: Path) -> None:
    _, kc = kernel
    setup = "%load_ext fluxnb\nimport asyncio\nasync def s(**_):\n    await asyncio.sleep(0.15)\n"
    assert execute(kc, setup)["status"] == "ok"
    agents = "agents:\n" + "".join(f"  - id: s{i}\n    run: s\n" for i in range(6))
    steps = "".join(
        f"  - step: s{i}\n" + (f"    depends_on: s{i - 1}\n" if i else "") for i in range(6)
    )
    cell = f"%%fluxroute --store {tmp_path / 'p.duckdb'}\n{agents}pipeline:\n{steps}"
    msg_id = kc.execute(cell)
    updates, first_display = [], None
    while True:
        msg = kc.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind = msg["msg_type"]
        if kind == "display_data" and first_display is None:
            first_display = msg["content"].get("transient", {}).get("display_id")
        if kind == "update_display_data":
            updates.append(msg["content"])
        if kind == "status" and msg["content"]["execution_state"] == "idle":
            break
    assert first_display is not None
    assert len(updates) >= 3  # redrawn while it ran, not only at the end
    assert all(u["transient"]["display_id"] == first_display for u in updates)
    last = updates[-1]["data"]["text/html"]
    assert "6/6" in last and "succeeded" in last
    assert any("running" in u["data"]["text/html"] for u in updates[:-1])


def test_nothing_leaks_per_execution(kernel: Any, tmp_path: Path) -> None:
    _, kc = kernel
    setup = (
        "%load_ext fluxnb\nimport threading, asyncio, gc\n"
        "def a():\n    return 1\ndef b(a):\n    return a + 1\n"
    )
    assert execute(kc, setup)["status"] == "ok"
    cell = f"%%fluxroute --store {tmp_path / 'l.duckdb'}\npipeline:\n  - step: a\n  - step: b\n    depends_on: a\n"
    for _ in range(3):  # warm up: fluxnb's loop thread, the store
        assert execute(kc, cell)["status"] == "ok"
    probe = (
        "import time, json\ntime.sleep(0.5)\n"
        "print(json.dumps([threading.active_count(), "
        "len([t for t in asyncio.all_tasks(asyncio.get_event_loop()) if not t.done()])]))"
    )

    def counts() -> list[int]:
        msg_id = kc.execute(probe)
        while True:
            msg = kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
                return json.loads(msg["content"]["text"])

    before = counts()
    for _ in range(20):
        assert execute(kc, cell)["status"] == "ok"
    after = counts()
    assert after[0] <= before[0]  # no thread left behind
    assert after[1] <= before[1]  # no task left behind


def test_a_long_analysis_shows_its_count_in_place(kernel: Any) -> None:
    """fluxnb.analyze in a kernel: a count of markings in one output, updated in place and
    ending with the total (the one-second threshold is lowered to 0 for the test)."""
    _, kc = kernel
    setup = (
        "import sys, fluxnb, fluxnb._progress_line as pl\n"
        "pl.ProgressLine.__init__.__defaults__ = (0.0, 0.0)\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[1] / 'benchmarks')!r})\n"
        "from nets import dining_philosophers\n"
    )
    assert execute(kc, setup)["status"] == "ok"
    msg_id = kc.execute("a = fluxnb.analyze(dining_philosophers(13))")
    shown, updates = [], []
    while True:
        msg = kc.get_iopub_msg(timeout=120)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "display_data":
            shown.append(msg["content"])
        if msg["msg_type"] == "update_display_data":
            updates.append(msg["content"])
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    assert len(shown) == 1 and "markings so far" in shown[0]["data"]["text/plain"]
    assert updates and updates[-1]["transient"] == shown[0]["transient"]
    assert updates[-1]["data"]["text/plain"].startswith("analysing: 94,642 markings in ")


def test_ctrl_c_stops_a_long_analysis_and_the_kernel_carries_on(kernel: Any) -> None:
    """An interrupt stops fluxnb.analyze mid-search: KeyboardInterrupt, the garbage collector
    is back on, the next cell runs and a new analysis works."""
    km, kc = kernel
    setup = (
        "import gc, sys, fluxnb\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[1] / 'benchmarks')!r})\n"
        "from nets import dining_philosophers\n"
        "heard = []\n"
    )
    assert execute(kc, setup)["status"] == "ok"
    # 22 philosophers: 88 places, past the vectorised search's 64, so the generated code
    # explores ~300k markings a second: a 5,000,000-marking budget is many seconds away,
    # and the interrupt comes at 2 s
    msg_id = kc.execute(
        "fluxnb.analyze(dining_philosophers(22), max_states=5_000_000, progress=heard.append)"
    )
    time.sleep(2.0)
    km.interrupt_kernel()
    reply = wait_reply(kc, msg_id, timeout=60)
    assert reply["status"] == "error" and reply["ename"] == "KeyboardInterrupt"
    after = execute_after_error(
        kc,
        "assert gc.isenabled() and not (heard and heard[-1] >= 1_000_000)\n"
        "assert fluxnb.analyze(dining_philosophers(5)).reachable_markings == 82",
    )
    assert after["status"] == "ok", after


def test_a_background_runs_badge_is_updated_when_it_ends(kernel: Any, tmp_path: Path) -> None:
    _, kc = kernel
    setup = "%load_ext fluxnb\nimport asyncio\nasync def nap():\n    await asyncio.sleep(0.5)\n"
    assert execute(kc, setup)["status"] == "ok"
    cell = f"%%fluxroute --background --no-progress --store {tmp_path / 'b.duckdb'}\n"
    msg_id = kc.execute(cell + "pipeline:\n  - step: nap\n")
    shown, update, idle = None, None, False
    deadline = time.monotonic() + 60
    while update is None and time.monotonic() < deadline:
        msg = kc.get_iopub_msg(timeout=60)
        kind, content = msg["msg_type"], msg["content"]
        if kind == "display_data" and msg["parent_header"].get("msg_id") == msg_id:
            shown = content
        elif kind == "update_display_data":
            update = content
        elif kind == "status" and msg["parent_header"].get("msg_id") == msg_id:
            idle = idle or content["execution_state"] == "idle"
    assert shown is not None and ">running<" in shown["data"]["text/html"]
    assert idle  # the cell had ended: the badge changed afterwards, in place
    assert update is not None
    assert update["transient"]["display_id"] == shown["transient"]["display_id"]
    assert ">succeeded<" in update["data"]["text/html"]
