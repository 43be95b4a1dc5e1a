"""The designer as a good citizen of JupyterLab, in the real thing (the shared ``lab``
fixture): keys pressed in it never reach the notebook's shortcuts; Enter commits and
Escape cancels an inspector field; the wheel scrolls the notebook unless the canvas has
the focus or Ctrl is held; the zoom buttons and the minimap; the dark theme with its status
colours checked for WCAG contrast; and the size a saved notebook pays per designer.

Screenshots go to ``$FLUXNB_SCREENSHOTS`` (default ``build/screenshots``).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from .conftest import NOTEBOOK
from .lab import Lab, node_point, py, wait_py

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("FLUXNB_SCREENSHOTS", ROOT / "build" / "screenshots"))
DAG = ".fluxnb-designer >> nth=0"
CY = "document.querySelectorAll('.fluxnb-designer')[0].fluxnb.cy"

NOTEBOOK_STATE = """() => { const nb = window.__nb.content;
    return { cells: nb.widgets.length, active: nb.activeCellIndex, mode: nb.mode,
             sources: nb.widgets.map(c => c.model.sharedModel.getSource()) }; }"""


def focus_canvas(lab: Lab) -> None:
    """Click an empty spot of the DAG designer's canvas: the designer has the focus."""
    page = lab.page
    box = page.locator(DAG).locator(".fx-canvas").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 12, box["y"] + box["height"] - 12)
    page.wait_for_function(
        "() => document.querySelectorAll('.fluxnb-designer')[0] === document.activeElement"
    )


def notebook_state(lab: Lab) -> dict[str, Any]:
    return dict(lab.page.evaluate(NOTEBOOK_STATE))


def test_keys_in_the_designer_never_reach_notebook_shortcuts(lab: Lab) -> None:
    page = lab.page
    node_point(page, 0, "extract")  # scrolled into view, drawn
    focus_canvas(lab)
    before = notebook_state(lab)
    # x cuts a cell, b inserts one, d d deletes one, z undoes, arrows and Enter move or edit
    for key in ["x", "b", "a", "d", "d", "z", "ArrowUp", "ArrowDown", "Enter", "Escape", "m"]:
        page.keyboard.press(key)
    page.wait_for_timeout(300)
    after = notebook_state(lab)
    assert after == before
    assert page.evaluate("() => document.activeElement.classList.contains('fluxnb-designer')")
    # Ctrl+A selects the whole design, Escape clears the selection
    page.keyboard.press("Control+a")
    everything = page.evaluate(f"() => [{CY}.$(':selected').length, {CY}.elements().length]")
    assert everything[0] == everything[1] > 0
    page.keyboard.press("Escape")
    assert page.evaluate(f"() => {CY}.$(':selected').length") == 0
    assert notebook_state(lab) == before


def test_arrow_keys_nudge_the_selection_as_one_edit(lab: Lab) -> None:
    page = lab.page
    x0, y0 = py(lab, "[d.design.nodes['load'].x, d.design.nodes['load'].y]")
    page.mouse.click(*node_point(page, 0, "load"))
    wait_py(lab, "d.selected", lambda s: s == "load")
    before = notebook_state(lab)
    undo_depth = py(lab, "len(d.design.undo_stack)")
    for key in ["ArrowRight", "ArrowRight", "ArrowRight", "Shift+ArrowDown"]:
        page.keyboard.press(key)
    x, y = wait_py(
        lab,
        "[d.design.nodes['load'].x, d.design.nodes['load'].y]",
        lambda v: v[0] != x0,
    )
    assert (round(x - x0), round(y - y0)) == (30, 50)
    assert py(lab, "len(d.design.undo_stack)") == undo_depth + 1  # one edit, one undo
    assert notebook_state(lab) == before
    py(lab, "d.undo()")
    wait_py(lab, "d.design.nodes['load'].x", lambda v: v == x0)


def test_enter_commits_an_inspector_field_and_escape_cancels(lab: Lab) -> None:
    page = lab.page
    page.mouse.click(*node_point(page, 0, "extract"))
    wait_py(lab, "d.selected", lambda s: s == "extract")
    field = page.locator(DAG).locator("input[data-key=description]")
    before = notebook_state(lab)
    field.click()
    field.fill("reads the scores")
    page.keyboard.press("Enter")
    wait_py(lab, "d.design.nodes['extract'].props.get('description')", lambda v: v is not None)
    assert py(lab, "d.design.nodes['extract'].props['description']") == "reads the scores"
    # the field keeps the focus after Python synced back; Escape drops a change not committed
    field = page.locator(DAG).locator("input[data-key=description]")
    assert field.evaluate("e => e === document.activeElement")
    field.fill("something else")
    page.keyboard.press("Escape")
    assert field.input_value() == "reads the scores"
    page.wait_for_timeout(300)
    assert py(lab, "d.design.nodes['extract'].props['description']") == "reads the scores"
    assert notebook_state(lab) == before
    py(lab, "d.undo()")
    wait_py(lab, "d.design.nodes['extract'].props.get('description')", lambda v: v is None)


def _scroll_top(lab: Lab) -> float:
    return float(
        lab.page.evaluate(
            "() => window.__nb.node.querySelector('.jp-WindowedPanel-outer').scrollTop"
        )
    )


def _zoom(lab: Lab) -> float:
    return float(lab.page.evaluate(f"() => {CY}.zoom()"))


def test_the_wheel_scrolls_the_notebook_unless_the_canvas_has_focus(lab: Lab) -> None:
    page = lab.page
    cx, cy = node_point(page, 0, "transform")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.mouse.move(cx, cy)
    top, zoom = _scroll_top(lab), _zoom(lab)
    page.mouse.wheel(0, 240)  # over an unfocused canvas: the notebook scrolls
    page.wait_for_timeout(400)
    assert _scroll_top(lab) > top + 100
    assert _zoom(lab) == zoom
    cx, cy = node_point(page, 0, "transform")
    page.mouse.move(cx, cy)
    top = _scroll_top(lab)
    page.keyboard.down("Control")  # Ctrl+wheel zooms, one notch by a normal step
    page.mouse.wheel(0, -100)
    page.keyboard.up("Control")
    page.wait_for_timeout(300)
    step = _zoom(lab) / zoom
    assert 1.1 < step < 1.35, step
    assert _scroll_top(lab) == top
    focus_canvas(lab)  # a focused canvas zooms without Ctrl
    page.mouse.move(cx, cy)
    zoom, top = _zoom(lab), _scroll_top(lab)
    page.mouse.wheel(0, 100)
    page.wait_for_timeout(300)
    assert 0.74 < _zoom(lab) / zoom < 0.91
    assert _scroll_top(lab) == top
    page.locator(DAG).locator("button[data-action=fit]").click()


def test_zoom_buttons_and_the_minimap(lab: Lab) -> None:
    page = lab.page
    designer = page.locator(DAG)
    designer.locator("button[data-action=fit]").click()
    page.wait_for_timeout(200)
    zoom = _zoom(lab)
    minimap = designer.locator(".fx-minimap")
    assert not minimap.is_visible()  # everything in view: no minimap
    designer.locator("button[data-action=zoom-in]").click()
    assert abs(_zoom(lab) / zoom - 1.25) < 0.01
    designer.locator("button[data-action=zoom-out]").click()
    assert abs(_zoom(lab) / zoom - 1.0) < 0.01
    for _ in range(4):
        designer.locator("button[data-action=zoom-in]").click()
    minimap.wait_for(state="visible", timeout=3000)  # part of the design is out of view now
    pan = page.evaluate(f"() => {CY}.pan()")
    box = minimap.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 6, box["y"] + box["height"] / 2)  # the far left of the map
    page.wait_for_timeout(200)
    assert page.evaluate(f"() => {CY}.pan()")["x"] > pan["x"]  # the view moved left
    designer.screenshot(path=str(SHOTS / "designer-minimap.png"))
    designer.locator("button[data-action=fit]").click()
    minimap.wait_for(state="hidden", timeout=3000)


CONTRAST = """() => { const root = document.querySelectorAll('.fluxnb-designer')[0];
    const t = root.fluxnb.theme(), cy = root.fluxnb.cy;
    const canvas = getComputedStyle(root.querySelector('.fx-canvas')).backgroundColor;
    const drawn = Object.fromEntries(cy.nodes('[state]').map(n => [n.data('state'),
        [n.style('background-color'), n.style('color'), n.style('border-color'), n.data('label')]]));
    const input = root.querySelector('.fx-input');
    const field = input && [getComputedStyle(input).backgroundColor, getComputedStyle(input).color];
    const legend = Array.from(root.querySelectorAll('.fx-legend-item')).map(i =>
        [i.dataset.state, i.querySelector('.fx-swatch').textContent]);
    return {dark: t.dark, canvas, states: t.states, drawn, field, legend}; }"""


def _luminance(colour: str) -> float:
    if colour.startswith("#"):
        rgb = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
    else:
        rgb = [int(float(v)) for v in colour[colour.index("(") + 1 : -1].split(",")[:3]]
    lin = [
        c / 255 / 12.92 if c / 255 <= 0.04045 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb
    ]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    """The WCAG contrast ratio of two opaque colours (``#rrggbb`` or ``rgb(r, g, b)``)."""
    hi, lo = sorted([_luminance(a), _luminance(b)], reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def check_contrast(seen: dict[str, Any]) -> None:
    bg = seen["canvas"]
    icons = set()
    for name, look in seen["states"].items():
        # the node stands out from the canvas by its fill or its outline (WCAG 1.4.11: 3:1)
        edge = max(contrast(look["fill"], bg), contrast(look["border"], bg))
        assert edge >= 3, (name, look, bg, edge)
        assert contrast(look["text"], look["fill"]) >= 4.5, (name, look)  # its label: 4.5:1
        icons.add(look["icon"])
    assert len(icons) == len(seen["states"])  # an icon per state, not colour alone
    for name, (fill, text, border, label) in seen["drawn"].items():  # what cytoscape drew
        look = seen["states"][name]
        assert contrast(text, fill) >= 4.5, (name, fill, text)
        assert max(contrast(fill, bg), contrast(border, bg)) >= 3, (name, fill, border, bg)
        assert label.startswith(look["icon"] + " "), label
    assert [s for s, _ in seen["legend"]] == list(seen["states"])
    assert [i for _, i in seen["legend"]] == [seen["states"][s]["icon"] for s in seen["states"]]
    if seen["field"]:  # inspector fields in the theme too (no white box in a dark page)
        field_bg, field_text = seen["field"]
        assert contrast(field_text, field_bg) >= 4.5, seen["field"]
        assert (_luminance(field_bg) < 0.2) == seen["dark"], seen["field"]


def _set_theme(lab: Lab, name: str, dark: bool) -> None:
    page = lab.page
    page.evaluate(
        f"() => jupyterapp.commands.execute('apputils:change-theme', {{theme: {json.dumps(name)}}})"
    )
    page.wait_for_function(
        f"() => document.querySelectorAll('.fluxnb-designer')[0].fluxnb.theme().dark === {json.dumps(dark)}",
        timeout=15000,
    )
    page.wait_for_timeout(800)  # the style sheet settles, the view restyles


def test_dark_theme_is_followed_and_states_keep_their_contrast(lab: Lab) -> None:
    page = lab.page
    states = ["succeeded", "failed", "retrying"]
    run_in = {"extract": "succeeded", "transform": "retrying", "load": "failed"}
    py(
        lab,
        f"setattr(d, 'status', {{k: {{'state': v, 'attempts': 1}} for k, v in {run_in!r}.items()}}) or None",
    )
    page.mouse.click(*node_point(page, 0, "extract"))  # the inspector shows fields
    wait_py(lab, "d.selected", lambda s: s == "extract")
    try:
        _set_theme(lab, "JupyterLab Dark", True)
        seen = page.evaluate(CONTRAST)
        assert seen["dark"] and sorted(seen["drawn"]) == sorted(states)
        check_contrast(seen)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.locator(DAG).screenshot(path=str(SHOTS / "designer-dark.png"))
    finally:
        _set_theme(lab, "JupyterLab Light", False)
    seen = page.evaluate(CONTRAST)
    assert not seen["dark"]
    check_contrast(seen)
    page.locator(DAG).screenshot(path=str(SHOTS / "designer-light-states.png"))
    py(lab, "setattr(d, 'status', {}) or None")


def test_a_saved_notebook_carries_the_designer_code_once(lab: Lab) -> None:
    """Saved with its widget state, the notebook holds the view's code once (gzipped, in a
    shared model) and each designer's own state is a few KB: ~488 KB per designer before."""
    page = lab.page
    path = Path(page.evaluate("() => window.__nb.context.path"))
    assert path.name == NOTEBOOK
    file = Path(py(lab, "__import__('os').getcwd()")) / path
    stamp = file.stat().st_mtime
    page.evaluate("() => jupyterapp.commands.execute('docmanager:save')")
    deadline = time.time() + 20
    while file.stat().st_mtime == stamp and time.time() < deadline:
        time.sleep(0.2)
    saved = json.loads(file.read_text())
    state = saved["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    designers = {k: v for k, v in state.items() if v["model_name"] == "AnyModel"}
    shared = [
        v
        for v in state.values()
        if "code" in v["state"] or any(b["path"] == ["code"] for b in v.get("buffers", []))
    ]
    assert len(designers) >= 2 and len(shared) == 1
    per_designer = [len(json.dumps(v)) for v in designers.values()]
    size = file.stat().st_size
    print(f"saved notebook: {size} bytes; designers' own state: {per_designer} bytes")
    assert max(per_designer) < 8_000  # was ~488,000 each (the whole module in _esm)
    assert size < 260_000  # measured ~225 KB with two designers; was ~980 KB
