"""A real JupyterLab in headless Chromium for widget tests (Playwright; never ``playwright
install``: the browser is Debian's ``chromium``). What the shared harness taught: run lab with
``--expose-app-in-browser`` and throw-away settings (no autosave, no news), open notebooks
through a fresh workspace with ``?reset``, and reach cytoscape's graph through the widget."""

from __future__ import annotations

import atexit
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
SETTINGS = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/docmanager-extension:plugin": {"autosave": False},
    "@jupyterlab/notebook-extension:tracker": {"scrollPastEnd": False, "windowingMode": "none"},
    # a save writes the widgets' state into the notebook, as the size test needs
    "@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True},
}


_PLAYWRIGHT: list[Any] = []


def _playwright() -> Any:
    """One Playwright driver for the browser tests: its sync API cannot be started twice in
    one thread, and the shared ``lab`` fixture keeps one open while other tests start their
    own JupyterLab. ``stop_playwright`` ends it when the browser tests are done: while it
    runs, its event loop counts as running in this thread, and every later test calling
    ``asyncio.run`` would fail."""
    if not _PLAYWRIGHT:
        from playwright.sync_api import sync_playwright

        _PLAYWRIGHT.append(sync_playwright().start())
        atexit.register(stop_playwright)
    return _PLAYWRIGHT[0]


def stop_playwright() -> None:
    """Stop the driver (idempotent)."""
    while _PLAYWRIGHT:
        _PLAYWRIGHT.pop().stop()


class Lab:
    """``with Lab(root) as lab: lab.open("x.ipynb"); lab.run_all(); lab.page...``"""

    def __init__(self, root: Path, app: str = "lab") -> None:
        self.root = root
        self.app = app  # "lab" (JupyterLab) or "notebook" (Notebook 7)
        self.tmp = Path(tempfile.mkdtemp(prefix="fluxnb-lab-"))
        self.proc: Any = None
        self.page: Any = None
        self._ctx: Any = None

    def __enter__(self) -> Lab:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.token = secrets.token_hex(16)
        for plugin, value in SETTINGS.items():
            if self.app != "lab" and "apputils" in plugin:
                continue  # Notebook 7 has no such plugin: a settings file for it breaks its load
            f = self.tmp / "settings" / (plugin.replace(":", "/") + ".jupyterlab-settings")
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(json.dumps(value))
        cls = "LabApp" if self.app == "lab" else "JupyterNotebookApp"
        cmd = [sys.executable, "-m", "jupyterlab" if self.app == "lab" else "notebook",
               "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", f"--IdentityProvider.token={self.token}",
               f"--ServerApp.root_dir={self.root}", "--expose-app-in-browser",
               f"--{cls}.user_settings_dir={self.tmp / 'settings'}",
               f"--{cls}.workspaces_dir={self.tmp / 'workspaces'}"]  # fmt: skip
        if self.app == "lab":
            cmd.append("--LabApp.extension_manager=readonly")
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        self.log = self.tmp / "lab.log"
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}"
        for _ in range(240):
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited: {self.log.read_text()[-2000:]}")
            try:
                req = urllib.request.Request(
                    f"{self.url}/api/status", headers={"Authorization": f"token {self.token}"}
                )
                urllib.request.urlopen(req, timeout=5).read()
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError("JupyterLab did not come up")
        self._ctx = _playwright().chromium.launch_persistent_context(
            str(self.tmp / "chromium"),
            executable_path=CHROMIUM,
            args=ARGS,
            headless=True,
            viewport={"width": 1400, "height": 1100},
        )
        self.page = self._ctx.new_page()
        self.console: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.console.append(m.text))
        self.page.on("pageerror", lambda e: self.console.append(str(e)))
        return self

    def open(self, path: str) -> None:
        page = self.page
        if self.app == "lab":
            workspace = f"/lab/workspaces/t{int(time.time())}/tree/{path}?reset"
            page.goto(f"{self.url}{workspace}&token={self.token}")
        else:
            page.goto(f"{self.url}/notebooks/{path}?token={self.token}")
        find = f"""() => {{ if (!window.jupyterapp) return false;
            const all = Array.from(jupyterapp.shell.widgets('main'));
            const w = [...all, jupyterapp.shell.currentWidget].find(w => w && w.context?.path === {json.dumps(path)});
            if (!w) return false; window.__nb = w; jupyterapp.shell.activateById(w.id);
            const k = w.sessionContext.session?.kernel; return !!(w.context.isReady && k && k.status === 'idle'); }}"""
        deadline = time.time() + 120
        while not page.evaluate(find):
            if time.time() > deadline:
                raise TimeoutError("the notebook or its kernel did not get ready")
            if page.locator(".jp-Dialog .jp-mod-accept").count():
                page.locator(".jp-Dialog .jp-mod-accept").first.click()
            page.wait_for_timeout(250)

    def run_all(self, timeout_s: int = 120) -> None:
        page = self.page
        page.evaluate("jupyterapp.commands.execute('notebook:run-all-cells')")
        page.wait_for_function(
            """() => { const nb = window.__nb; return nb.sessionContext.session?.kernel?.status === 'idle'
            && nb.content.widgets.every(c => c.model.type !== 'code' || c.model.executionCount); }""",
            timeout=timeout_s * 1000,
        )
        page.wait_for_function(
            "() => document.querySelectorAll('.fluxnb-designer').length > 0", timeout=30000
        )
        page.wait_for_timeout(1500)  # let the views finish drawing

    def __exit__(self, *exc: object) -> None:
        try:
            if self._ctx is not None:
                self._ctx.close()
        finally:
            if self.proc is not None:
                self.proc.terminate()
                try:
                    self.proc.wait(15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
            shutil.rmtree(self.tmp, ignore_errors=True)


def run_in_kernel(page: Any, code: str) -> str:
    """Run ``code`` in the open notebook's kernel (not as a cell); its stdout."""
    return str(
        page.evaluate(
            """async (code) => { const k = window.__nb.sessionContext.session.kernel;
            const f = k.requestExecute({code, store_history: false}); let out = '';
            f.onIOPub = (m) => { const t = m.header.msg_type;
              if (t === 'stream') out += m.content.text;
              if (t === 'error') out += 'ERROR ' + m.content.ename + ': ' + m.content.evalue + '\\n'; };
            await f.done; return out; }""",
            code,
        )
    )


def node_point(page: Any, index: int, node: str) -> tuple[float, float]:
    """Page coordinates of a node's centre in the index-th designer on the page."""
    page.evaluate(
        "([i]) => document.querySelectorAll('.fluxnb-designer')[i].scrollIntoView({block: 'center'})",
        [index],
    )
    where = """([i, id]) => { const root = document.querySelectorAll('.fluxnb-designer')[i];
        const cy = root.fluxnb.cy; const n = cy.getElementById(id);
        if (n.empty()) return null; const p = n.renderedPosition();
        const r = cy.container().getBoundingClientRect(), x = r.left + p.x, y = r.top + p.y;
        const hit = document.elementFromPoint(x, y);
        return [x, y, !!hit && hit.tagName === 'CANVAS' && root.contains(hit)]; }"""
    deadline = time.time() + 5
    while True:  # the view may still be fitting itself: wait until the node is on the canvas
        page.wait_for_timeout(100)
        xy = page.evaluate(where, [index, node])
        if xy is None:
            raise AssertionError(f"no node {node!r} drawn in designer {index}")
        if xy[2]:
            return float(xy[0]), float(xy[1])
        if time.time() > deadline:
            raise AssertionError(f"node {node!r} of designer {index} is not visible on its canvas")


def drag(page: Any, start: tuple[float, float], end: tuple[float, float], steps: int = 25) -> None:
    """Press, move in small steps (cytoscape needs them), release."""
    page.mouse.move(*start)
    page.mouse.down()
    for i in range(1, steps + 1):
        page.mouse.move(start[0] + (end[0] - start[0]) * i / steps,
                        start[1] + (end[1] - start[1]) * i / steps)  # fmt: skip
        page.wait_for_timeout(10)
    page.mouse.up()
    page.wait_for_timeout(300)


def pixels_drawn(page: Any, index: int) -> int:
    """Non-white pixels on the designer's canvases (0: a blank widget)."""
    return int(
        page.evaluate(
            """([i]) => { const root = document.querySelectorAll('.fluxnb-designer')[i];
            let n = 0; for (const c of root.querySelectorAll('canvas')) {
              const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
              for (let k = 0; k < d.length; k += 4) if (d[k+3] > 0 && (d[k] < 200 || d[k+1] < 200 || d[k+2] < 200)) n++; }
            return n; }""",
            [index],
        )
    )


def py(lab: Lab, code: str) -> Any:
    """Evaluate ``code`` in the open notebook's kernel; its value, through JSON."""
    out = run_in_kernel(lab.page, f"import json as _j\nprint(_j.dumps({code}, default=str))")
    return json.loads(out.strip().splitlines()[-1])


def wait_py(lab: Lab, code: str, ok: Any, timeout: float = 15.0) -> Any:
    """Evaluate ``code`` in the kernel until ``ok(value)``; the value (AssertionError if never)."""
    deadline = time.time() + timeout
    value = None
    while time.time() < deadline:
        value = py(lab, code)
        if ok(value):
            return value
        time.sleep(0.2)
    raise AssertionError(f"{code} stayed {value!r}")
