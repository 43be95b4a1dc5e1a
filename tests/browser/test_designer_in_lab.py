"""The designer in a real JupyterLab, driven by Playwright through Debian's Chromium: the
widget renders; dragging a node, drawing an edge from a handle, deleting and undoing reach
Python; a cycle is refused; Run colours the steps; a click fires a net transition.

Screenshots go to ``$FLUXNB_SCREENSHOTS`` (default ``build/screenshots``) for a person to
look at; CI keeps them as artefacts.
"""

from __future__ import annotations

import os
from pathlib import Path

from .lab import Lab, drag, node_point, pixels_drawn, py, wait_py

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("FLUXNB_SCREENSHOTS", ROOT / "build" / "screenshots"))


def positions(lab: Lab, var: str = "d") -> dict[str, tuple[float, float]]:
    return {
        k: tuple(v)
        for k, v in py(lab, f"{{n['id']: [n['x'], n['y']] for n in {var}.graph['nodes']}}").items()
    }


def edges(lab: Lab, var: str = "d") -> list[str]:
    return py(lab, f"[e['id'] for e in {var}.graph['edges']]")


def rgb(hex_colour: str) -> str:
    """``#1a7f37`` as cytoscape's computed style writes it: ``rgb(26,127,55)``."""
    h = hex_colour.lstrip("#")
    return "rgb({},{},{})".format(*(int(h[i : i + 2], 16) for i in (0, 2, 4)))


def test_renders_without_widget_errors_and_draws(lab: Lab) -> None:
    page = lab.page
    assert page.locator(".jupyter-widgets-error-widget").count() == 0
    assert page.locator(".fluxnb-designer").count() == 2
    assert (
        page.evaluate(
            "() => document.querySelectorAll('.fluxnb-designer')[0].fluxnb.cy.nodes().length"
        )
        == 3
    )
    assert pixels_drawn(page, 0) > 500  # the canvas is not blank
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(".fluxnb-designer").first.screenshot(path=str(SHOTS / "designer-dag.png"))


def test_dragging_a_node_moves_it_in_python(lab: Lab) -> None:
    before = positions(lab)["load"]
    x, y = node_point(lab.page, 0, "load")
    drag(lab.page, (x, y), (x + 60, y + 70))
    after = wait_py(
        lab,
        "{n['id']: [n['x'], n['y']] for n in d.graph['nodes']}['load']",
        lambda v: tuple(v) != before,
    )
    assert after[0] > before[0] + 20 and after[1] > before[1] + 20
    assert py(lab, "d.can_undo") is True


def test_dragging_from_the_handle_creates_the_edge_in_python(lab: Lab) -> None:
    py(lab, "d.add('step', 'audit', 560, 380) and None")
    lab.page.wait_for_timeout(400)
    lab.page.locator(".fluxnb-designer").first.locator("button[data-action=fit]").click()
    lab.page.wait_for_timeout(400)
    start = node_point(lab.page, 0, "load")
    lab.page.mouse.move(*start)  # hovering shows the handle
    handle = lab.page.locator(".fluxnb-designer").first.locator(".fx-handle")
    handle.wait_for(state="visible", timeout=5000)
    box = handle.bounding_box()
    assert box is not None
    target = node_point(lab.page, 0, "audit")
    drag(lab.page, (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2), target)
    got = wait_py(lab, "[e['id'] for e in d.graph['edges']]", lambda v: "load->audit" in v)
    assert got == ["extract->transform", "transform->load", "load->audit"]
    # connected now, but no function 'audit' exists in the notebook: marked red, with the
    # resolver's message as its tooltip
    issues = py(lab, "d.issues")
    assert list(issues) == ["audit"] and "no callable named 'audit'" in issues["audit"][0]
    marked = lab.page.evaluate(
        "() => document.querySelectorAll('.fluxnb-designer')[0].fluxnb.cy.nodes('.issue').map(n => n.id())"
    )
    assert marked == ["audit"]
    x, y = node_point(lab.page, 0, "audit")
    lab.page.mouse.move(x - 150, y - 150)
    lab.page.mouse.move(x, y, steps=8)
    tip = lab.page.locator(".fluxnb-designer").first.locator(".fx-tooltip")
    tip.wait_for(state="visible", timeout=5000)
    assert "no callable named 'audit'" in tip.inner_text()


def test_a_cycle_edge_is_refused_and_said(lab: Lab) -> None:
    before = edges(lab)
    lab.page.mouse.move(*node_point(lab.page, 0, "audit"))
    handle = lab.page.locator(".fluxnb-designer").first.locator(".fx-handle")
    handle.wait_for(state="visible", timeout=5000)
    box = handle.bounding_box()
    assert box is not None
    drag(
        lab.page,
        (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2),
        node_point(lab.page, 0, "extract"),
    )
    message = wait_py(lab, "d.message", lambda m: "cycle" in m)
    assert "a DAG cannot loop" in message
    assert edges(lab) == before
    shown = lab.page.locator(".fluxnb-designer").first.locator(".fx-message")
    assert "cycle" in shown.inner_text()
    drawn = lab.page.evaluate(
        "() => document.querySelectorAll('.fluxnb-designer')[0].fluxnb.cy.edges().length"
    )
    assert drawn == len(before)


def test_delete_key_and_undo_button(lab: Lab) -> None:
    page = lab.page
    page.mouse.click(*node_point(page, 0, "audit"))
    wait_py(lab, "d.selected", lambda s: s == "audit")
    page.keyboard.press("Delete")
    wait_py(lab, "[n['id'] for n in d.graph['nodes']]", lambda v: "audit" not in v)
    assert "load->audit" not in edges(lab)
    page.locator(".fluxnb-designer").first.locator("button[data-action=undo]").click()
    wait_py(lab, "[n['id'] for n in d.graph['nodes']]", lambda v: "audit" in v)
    assert "load->audit" in edges(lab)


def test_run_colours_the_nodes_live(lab: Lab) -> None:
    page = lab.page
    py(lab, "d.delete('audit') or None")
    page.locator(".fluxnb-designer").first.locator("button[data-action=run]").click()
    seen = wait_py(
        lab,
        "d.status.get('transform', {}).get('state')",
        lambda s: s in ("running", "retrying", "succeeded"),
    )
    assert seen in ("running", "retrying", "succeeded")
    status = wait_py(
        lab,
        "d.status",
        lambda s: all(v.get("state") == "succeeded" for v in s.values()) and len(s) == 3,
        timeout=30,
    )
    assert status["transform"]["attempts"] == 2
    fills = page.evaluate(
        "() => { const cy = document.querySelectorAll('.fluxnb-designer')[0].fluxnb.cy;"
        " return Object.fromEntries(cy.nodes().map(n => [n.id(), n.style('background-color')])); }"
    )
    succeeded = page.evaluate(
        "() => document.querySelectorAll('.fluxnb-designer')[0].fluxnb.theme().states.succeeded.fill"
    )
    assert set(fills.values()) == {rgb(succeeded)}, fills
    label = page.evaluate(
        "() => document.querySelectorAll('.fluxnb-designer')[0].fluxnb.cy.getElementById('transform').data('label')"
    )
    assert label == "\u2713 transform \u00d72"  # the state's icon, the attempt count beside the id
    page.wait_for_timeout(300)
    page.locator(".fluxnb-designer").first.screenshot(path=str(SHOTS / "designer-dag-run.png"))
    assert "succeeded" in py(lab, "d.message")


def test_clicking_an_enabled_transition_fires_it(lab: Lab) -> None:
    page = lab.page
    designer = page.locator(".fluxnb-designer").nth(1)
    designer.scroll_into_view_if_needed()
    designer.locator("button[data-action=run]").click()
    wait_py(lab, "n.enabled", lambda v: v == ["submit"])
    page.wait_for_timeout(300)
    page.mouse.click(*node_point(page, 1, "submit"))
    marking = wait_py(lab, "n.net_run.marking", lambda m: m["review"] == 1)
    assert marking == {"draft": 0, "review": 1, "done": 0}
    assert py(lab, "n.enabled") == ["approve"]
    tokens = page.evaluate(
        "() => document.querySelectorAll('.fluxnb-designer')[1].fluxnb.cy.getElementById('review').data('tokens')"
    )
    assert tokens == 1
    page.wait_for_timeout(300)
    designer.screenshot(path=str(SHOTS / "designer-net-fired.png"))


def test_a_node_added_by_code_out_of_view_is_brought_into_view(lab: Lab) -> None:
    """``d.add(...)`` far off the visible canvas refits the view: the node is not hidden."""
    page = lab.page
    in_view = """() => { const cy = document.querySelectorAll('.fluxnb-designer')[0].fluxnb.cy;
        const n = cy.getElementById('faraway'); if (n.empty()) return null;
        const b = n.boundingBox(), v = cy.extent();
        return b.x1 >= v.x1 && b.y1 >= v.y1 && b.x2 <= v.x2 && b.y2 <= v.y2; }"""
    py(lab, "d.add('step', 'faraway', 2400, 1600) and None")
    page.wait_for_function(f"() => ({in_view})() !== null", timeout=10000)
    assert page.evaluate(in_view) is True
    py(lab, "d.undo() and None")
