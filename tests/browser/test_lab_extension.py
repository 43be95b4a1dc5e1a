"""The JupyterLab extension (labextension/) in a real JupyterLab and Chromium: a workflow
file opened from the file browser shows the designer; mouse edits change the file on disk
once saved; Run goes through the control plane and colours the steps; the run shows in the
Runs panel with its timeline; a viewer sees no action buttons and the API refuses anyway.

Needs the extension installed where JupyterLab finds it (``pip install -e '.[lab]'``).
Screenshots go to ``$FLUXNB_SCREENSHOTS`` (default ``build/screenshots``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.server_api import GATED, SUMS

from .lab import Lab, drag, node_point

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("FLUXNB_SCREENSHOTS", ROOT / "build" / "screenshots"))
FILE = "sums.flux.yaml"
CY = "document.querySelector('.fluxnb-lab-editor .fluxnb-designer').fluxnb.cy"


def _installed() -> bool:
    from jupyter_core.paths import jupyter_path

    return any(
        Path(d, "fluxnb-lab", "package.json").exists() for d in jupyter_path("labextensions")
    )


pytestmark = pytest.mark.skipif(not _installed(), reason="pip install -e '.[lab]' first")


def start(lab: Lab) -> None:
    """JupyterLab with a fresh workspace, its file browser listing the root."""
    page = lab.page
    page.goto(f"{lab.url}/lab/workspaces/x{int(time.time() * 1000)}?reset&token={lab.token}")
    page.wait_for_function("() => !!window.jupyterapp && !!jupyterapp.shell", timeout=60000)
    page.wait_for_selector(".jp-DirListing-content", timeout=60000)


def open_from_file_browser(lab: Lab, name: str) -> None:
    item = lab.page.locator(f".jp-DirListing-item[title^='Name: {name}']")
    item.dblclick()
    lab.page.wait_for_function(
        f"() => {{ try {{ return {CY}.nodes().length > 0; }} catch {{ return false; }} }}"
    )


def shot(lab: Lab, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    lab.page.screenshot(path=str(SHOTS / name))


def node_ids(lab: Lab) -> set[str]:
    return set(lab.page.evaluate(f"() => {CY}.nodes().map(n => n.id())"))


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, _one_playwright_driver: Any) -> Iterator[Lab]:
    root: Path = tmp_path_factory.mktemp("labext")
    (root / FILE).write_text(SUMS)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FLUXNB_TEST_GATE", str(root / "never"))  # GATED's 'wait' step waits
        with Lab(root) as running:
            start(running)
            yield running


def call(lab: Lab, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """The control plane from the page, as the Lab user (its token)."""
    return tuple(
        lab.page.evaluate(
            """async ([method, path, body]) => { const s = jupyterapp.serviceManager.serverSettings;
            const r = await fetch(s.baseUrl + 'fluxnb/api/v1/' + path, { method,
              headers: { Authorization: 'token ' + s.token, 'Content-Type': 'application/json' },
              body: body === null ? undefined : JSON.stringify(body) });
            return [r.status, r.status === 204 ? null : await r.json()]; }""",
            [method, path, body],
        )
    )


def test_a_workflow_file_opens_in_the_designer(lab: Lab) -> None:
    open_from_file_browser(lab, FILE)
    assert node_ids(lab) == {"numbers", "total"}
    page = lab.page
    assert page.locator(".jp-DocumentWidget.fluxnb-lab-document .jp-mod-dirty").count() == 0
    tab = page.locator(".lm-TabBar-tab.jp-mod-current")
    assert FILE in tab.inner_text() and "jp-mod-dirty" not in (tab.get_attribute("class") or "")
    shot(lab, "lab-designer-open.png")


def test_mouse_edits_are_saved_to_the_file_and_undo(lab: Lab) -> None:
    page, path = lab.page, lab.root / FILE
    before = yaml.safe_load(path.read_text())
    x, y = node_point(page, 0, "total")
    drag(page, (x, y), (x + 80, y + 60))
    page.locator(".fluxnb-lab-editor .fx-add-step").click()
    page.wait_for_function(f"() => {CY}.nodes().length === 3")
    tab = page.locator(".lm-TabBar-tab.jp-mod-current")
    page.wait_for_function(
        "() => document.querySelector('.lm-TabBar-tab.jp-mod-current').classList.contains('jp-mod-dirty')"
    )
    page.locator(".fluxnb-lab-editor .fx-canvas").click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+s")
    page.wait_for_function(
        "() => !document.querySelector('.lm-TabBar-tab.jp-mod-current').classList.contains('jp-mod-dirty')"
    )
    saved = yaml.safe_load(path.read_text())
    added = {s["step"] for s in saved["pipeline"]} - {"numbers", "total"}
    assert len(added) == 1
    moved, was = saved["layout"]["total"], before.get("layout", {}).get("total")
    assert was is None or moved != was
    shot(lab, "lab-designer-edited.png")
    # undo (the designer's button) the new step, save: the file runs again
    page.locator(".fluxnb-lab-editor .fx-undo").click()
    page.wait_for_function(f"() => {CY}.nodes().length === 2")
    page.evaluate("() => jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function(
        "() => !document.querySelector('.lm-TabBar-tab.jp-mod-current').classList.contains('jp-mod-dirty')"
    )
    assert {s["step"] for s in yaml.safe_load(path.read_text())["pipeline"]} == {"numbers", "total"}
    assert "jp-mod-dirty" not in (tab.get_attribute("class") or "")


def test_revert_redraws_the_file_and_a_lost_session_is_reopened(lab: Lab) -> None:
    page = lab.page
    dirty = "jupyterapp.shell.currentWidget.context.model.dirty"
    page.locator(".fluxnb-lab-editor .fx-add-step").click()
    page.wait_for_function(f"() => {CY}.nodes().length === 3 && {dirty}")
    page.evaluate("() => jupyterapp.shell.currentWidget.context.revert()")
    page.wait_for_function(f"() => {CY}.nodes().length === 2")
    page.wait_for_timeout(500)
    shown = page.evaluate("() => jupyterapp.shell.currentWidget.context.model.toString()")
    assert shown == (lab.root / FILE).read_text()  # drawing the file did not rewrite it
    # the server forgets the session (a restart, say): the next edit opens a new one
    sid = page.evaluate(
        "() => jupyterapp.shell.currentWidget.content.sid"  # the panel's session id
    )
    assert call(lab, "DELETE", f"designs/{sid}")[0] == 204
    seen = len(lab.console)
    page.locator(".fluxnb-lab-editor .fx-add-step").click()
    page.wait_for_function(f"() => {CY}.nodes().length === 3")
    # the browser logs the session's 404 it was told: expected here, and only that
    assert all("404" in m for m in lab.console[seen:])
    del lab.console[seen:]
    assert "reopened" in page.locator(".fluxnb-lab-editor .fx-message").inner_text()
    page.locator(".fluxnb-lab-editor .fx-undo").click()
    page.wait_for_function(f"() => {CY}.nodes().length === 2")
    page.evaluate("() => jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function(f"() => !{dirty}")


def test_validate_and_run_through_the_api_colour_the_steps(lab: Lab) -> None:
    page = lab.page
    page.locator(".fluxnb-lab-document .fluxnb-lab-validate").click()
    page.wait_for_function(
        "() => document.querySelector('.fluxnb-lab-editor .fx-message').textContent.includes('valid')"
    )
    page.locator(".fluxnb-lab-document .fluxnb-lab-run").click()
    page.wait_for_function(
        f"() => {CY}.nodes().every(n => n.data('state') === 'succeeded')", timeout=60000
    )
    run_id = page.evaluate("() => document.querySelector('.fluxnb-lab-editor').dataset.runId")
    assert run_id
    fill = page.evaluate(f"() => {CY}.getElementById('total').style('background-color')")
    assert fill != page.evaluate(f"() => {CY}.getElementById('total').data('baseFill') || ''")
    shot(lab, "lab-designer-run.png")
    lab.run_id = run_id  # type: ignore[attr-defined]


def test_the_run_shows_in_the_runs_panel_with_its_timeline(lab: Lab) -> None:
    page, run_id = lab.page, lab.run_id  # type: ignore[attr-defined]
    page.evaluate("() => jupyterapp.commands.execute('fluxnb:show-runs')")
    row = page.locator(f".fluxnb-run[data-run-id='{run_id}']")
    row.wait_for(timeout=30000)
    # the designer colours the steps from the stream as each ends; the run's own end (its
    # final row) follows a moment later, and the panel shows it live
    page.wait_for_function(
        "(id) => document.querySelector(`.fluxnb-run[data-run-id='${id}']`)?.textContent.includes('succeeded')",
        arg=run_id,
        timeout=30000,
    )
    assert "succeeded" in row.inner_text()
    row.click()
    page.wait_for_function(
        "() => { const i = document.querySelector('.fluxnb-run-timeline-img');"
        " return !!i && i.complete && i.naturalWidth > 0; }",
        timeout=30000,
    )
    page.locator(".fluxnb-run-timeline-img").click()  # at full size in a tab
    page.wait_for_function(
        "() => { const i = document.querySelector('.fluxnb-timeline-full');"
        " return !!i && i.complete && i.naturalWidth > 0; }"
    )
    shot(lab, "lab-run-timeline.png")
    steps = page.locator(".fluxnb-run-steps td:first-child").all_inner_texts()
    assert set(steps) >= {"numbers", "total"}
    assert page.locator(".fluxnb-run-replay").count() == 1  # an admin may replay
    assert page.locator(".fluxnb-run-cancel").count() == 0  # a finished run: nothing to cancel
    # a filter that matches nothing empties the list
    page.locator(".fluxnb-runs-filter input[name='workflow']").fill("no-such-workflow")
    page.locator(".fluxnb-runs-filter input[name='workflow']").press("Enter")
    page.wait_for_selector(".fluxnb-runs-empty")
    page.locator(".fluxnb-runs-filter input[name='workflow']").fill("sums")
    page.locator(".fluxnb-runs-filter input[name='workflow']").press("Enter")
    row.wait_for()
    shot(lab, "lab-runs-panel.png")


def test_an_operator_cancels_a_running_run_from_the_panel(lab: Lab) -> None:
    page = lab.page
    assert call(lab, "PUT", "workflows/gated", {"manifest": GATED})[0] in (200, 201)
    code, started = call(lab, "POST", "workflows/gated/runs", {})
    assert code == 202
    row = page.locator(f".fluxnb-run[data-run-id='{started['run_id']}']")
    page.locator(".fluxnb-runs-filter input[name='workflow']").fill("")
    page.locator(".fluxnb-runs-filter input[name='workflow']").press("Enter")
    page.wait_for_function(  # live: the stream tells the panel, no refresh click
        "(id) => document.querySelector(`.fluxnb-run[data-run-id='${id}']`)?.textContent.includes('running')",
        arg=started["run_id"],
        timeout=30000,
    )
    row.click()
    page.locator(".fluxnb-run-cancel").click()
    page.wait_for_function(
        "(id) => document.querySelector(`.fluxnb-run[data-run-id='${id}']`)?.textContent.includes('cancelled')",
        arg=started["run_id"],
        timeout=30000,
    )
    page.locator(".fluxnb-run-cancel").wait_for(state="detached")  # the detail follows


def test_triggers_section_fires_pauses_and_resumes(lab: Lab) -> None:
    page = lab.page
    assert call(lab, "PUT", "workflows/sums/triggers/on-ping", {"event": "ping"})[0] == 201
    page.locator(".fluxnb-runs-refresh").click()
    trigger = page.locator(".fluxnb-trigger[data-trigger-id='on-ping']")
    trigger.wait_for()
    assert "never fired" in trigger.inner_text()
    trigger.locator(".fluxnb-trigger-fire").click()
    page.wait_for_function(  # the firing comes back through the stream
        "() => document.querySelector(\"[data-trigger-id='on-ping']\")?.textContent.includes('last: succeeded')",
        timeout=30000,
    )
    trigger.locator(".fluxnb-trigger-pause").click()
    trigger.locator(".fluxnb-trigger-resume").wait_for()
    assert "paused" in trigger.inner_text()
    trigger.locator(".fluxnb-trigger-resume").click()
    trigger.locator(".fluxnb-trigger-pause").wait_for()
    shot(lab, "lab-runs-triggers.png")


def test_open_with_editor_still_gives_the_text(lab: Lab) -> None:
    page = lab.page
    page.evaluate("() => jupyterapp.commands.execute('filebrowser:activate')")
    page.locator(f".jp-DirListing-item[title^='Name: {FILE}']").click(button="right")
    page.locator(".lm-Menu-item:has-text('Open With')").hover()
    page.locator(".lm-Menu-item:has-text('Editor')").last.click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-FileEditor .cm-content')]"
        ".some(e => e.textContent.includes('name: sums'))"
    )


def test_new_workflow_and_new_petri_net_commands(lab: Lab) -> None:
    page = lab.page
    for command, suffix in (
        ("fluxnb:new-workflow", ".flux.yaml"),
        ("fluxnb:new-petri-net", ".pnml"),
    ):
        page.evaluate(f"() => jupyterapp.commands.execute('{command}')")
        page.wait_for_function(
            "(s) => { const w = jupyterapp.shell.currentWidget;"
            " return !!w && w.context?.path.endsWith(s)"
            " && !!w.node.querySelector('.fluxnb-designer') && w.node.querySelector('.fluxnb-designer').fluxnb.cy.nodes().length > 0; }",
            arg=suffix,
        )
    made = sorted(p.name for p in lab.root.iterdir() if p.name.startswith("untitled"))
    assert any(n.endswith(".flux.yaml") for n in made) and any(n.endswith(".pnml") for n in made)
    assert page.evaluate(
        "() => ['fluxnb:new-workflow', 'fluxnb:new-petri-net'].every(c => jupyterapp.commands.hasCommand(c))"
    )
    shot(lab, "lab-new-petri-net.png")


def test_a_new_petri_net_saves_as_pnml(lab: Lab) -> None:
    page = lab.page  # the net New Petri net opened last is the current tab
    path = page.evaluate("() => jupyterapp.shell.currentWidget.context.path")
    assert path.endswith(".pnml")
    tab = page.evaluate("() => jupyterapp.shell.currentWidget.id")
    page.locator(f"[id='{tab}'] .fluxnb-lab-editor .fx-add-place").click()
    page.wait_for_function(
        "() => jupyterapp.shell.currentWidget.node.querySelector('.fluxnb-designer').fluxnb.cy.nodes().length === 4"
    )
    page.evaluate("() => jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("() => !jupyterapp.shell.currentWidget.context.model.dirty")
    text = (lab.root / path).read_text()
    assert text.lstrip().startswith("<?xml") and text.count("<place ") == 3
    # a net runs through the API too: its transition colours as it fires
    page.locator(f"[id='{tab}'] .fluxnb-lab-run").click()
    page.wait_for_function(
        f"() => document.getElementById('{tab}').querySelector('.fluxnb-designer')"
        ".fluxnb.cy.getElementById('go').data('state') === 'succeeded'",
        timeout=30000,
    )


def test_the_runs_list_works_from_the_keyboard(lab: Lab) -> None:
    page = lab.page
    page.evaluate("() => jupyterapp.commands.execute('fluxnb:show-runs')")
    page.wait_for_function(  # the net's run has ended and is listed: the list holds still
        "() => document.querySelectorAll('.fluxnb-run').length >= 2 && !document.querySelector("
        "'.fluxnb-run.fluxnb-status-running, .fluxnb-run.fluxnb-status-queued')"
    )
    page.wait_for_timeout(500)
    ids = page.locator(".fluxnb-run").evaluate_all("rows => rows.map(r => r.dataset.runId)")
    focused = "() => document.activeElement.dataset.runId"
    page.locator(f".fluxnb-run[data-run-id='{ids[0]}']").focus()
    page.keyboard.press("ArrowDown")
    assert page.evaluate(focused) == ids[1]
    page.locator(".fluxnb-runs-refresh").evaluate("b => b.click()")  # a refresh, as live
    page.wait_for_timeout(500)
    assert page.evaluate(focused) == ids[1]  # keeps the focus
    page.keyboard.press("Enter")
    page.wait_for_selector(f".fluxnb-run-detail[data-run-id='{ids[1]}']")


def test_the_editor_and_the_panel_follow_the_dark_theme(lab: Lab) -> None:
    page = lab.page
    page.evaluate(
        f"() => jupyterapp.commands.execute('docmanager:open', {{path: '{FILE}', factory: 'fluxnb Designer'}})"
    )
    page.evaluate("() => jupyterapp.commands.execute('fluxnb:show-runs')")
    dark = "document.querySelector('.fluxnb-lab-editor .fluxnb-designer').fluxnb.theme().dark"
    background = "getComputedStyle(document.querySelector('.fluxnb-runs')).backgroundColor"
    light_panel = page.evaluate(f"() => {background}")
    try:
        page.evaluate(
            "() => jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})"
        )
        page.wait_for_function(f"() => {dark} === true", timeout=15000)
        page.wait_for_timeout(800)  # the style sheet settles, the view restyles
        assert page.evaluate(f"() => {background}") != light_panel
        shot(lab, "lab-dark.png")
    finally:
        page.evaluate(
            "() => jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})"
        )
        page.wait_for_function(f"() => {dark} === false", timeout=15000)


def test_no_console_errors(lab: Lab) -> None:
    assert lab.console == []


def test_a_viewer_sees_no_actions_and_the_api_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _one_playwright_driver: Any
) -> None:
    import fluxnb

    root = tmp_path / "viewer"
    (root / ".fluxnb").mkdir(parents=True)
    store = root / ".fluxnb" / "fluxnb.duckdb"
    from tests import server_steps

    result = fluxnb.run(SUMS, namespace=vars(server_steps), store=str(store))
    config = tmp_path / "config"
    config.mkdir()
    roles = {"*": {"role": "viewer", "namespaces": ["default"]}}
    (config / "jupyter_server_config.json").write_text(
        json.dumps({"FluxnbServer": {"roles": roles, "store": str(store)}})
    )
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(config))
    with Lab(root) as lab:
        start(lab)
        page = lab.page
        page.evaluate("() => jupyterapp.commands.execute('fluxnb:show-runs')")
        page.wait_for_function(
            "() => document.querySelector('.fluxnb-runs')?.dataset.role === 'viewer'"
        )
        row = page.locator(f".fluxnb-run[data-run-id='{result.run_id}']")
        row.wait_for(timeout=30000)
        row.click()
        page.wait_for_selector(f".fluxnb-run-detail[data-run-id='{result.run_id}']")
        actions = page.locator(".fluxnb-run-actions button")
        assert actions.count() == 0
        page.wait_for_selector(".fluxnb-triggers h2")  # the section, with no buttons
        assert page.locator(".fluxnb-trigger-actions").count() == 0
        status = page.evaluate(
            """async (id) => { const s = jupyterapp.serviceManager.serverSettings;
            const r = await fetch(s.baseUrl + 'fluxnb/api/v1/runs/' + id + '/cancel', {
              method: 'POST', headers: { Authorization: 'token ' + s.token } });
            return [r.status, (await r.json()).error.kind]; }""",
            result.run_id,
        )
        assert status == [403, "PermissionDenied"]
        shot(lab, "lab-runs-panel-viewer.png")
