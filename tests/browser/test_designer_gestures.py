"""Fewer gestures, in a real JupyterLab (the shared ``lab``): a 5-step workflow drawn from
an empty designer with the mouse, counted (a gesture = one click, one drag, or one typed
field committed), run and exported; the typed inspector; the run's feedback and a step's
last attempts; copy/paste at the pointer; the layered layout, and finding a node among 200.

A designer ``e`` on its own cell is added to the shared notebook for these tests and
removed after them. Screenshots go to ``$FLUXNB_SCREENSHOTS`` (default build/screenshots).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ..designer_steps import FIVE_STEP_ARCS
from .lab import Lab, drag, node_point, py, wait_py
from .test_designer_in_notebook import _set_theme, contrast

ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("FLUXNB_SCREENSHOTS", ROOT / "build" / "screenshots"))

# the five steps' functions (and ``shaky``) as the notebook's own, then an empty designer
CELL = (ROOT / "tests" / "designer_steps.py").read_text() + (
    '\ne = fluxnb.Designer(namespace=globals(), store=None, name="scores")\ne\n'
)

ADD_CELL = """async (src) => { const nb = window.__nb, content = nb.content, m = content.model;
    m.sharedModel.insertCell(m.cells.length, {cell_type: 'code', source: src});
    content.activeCellIndex = m.cells.length - 1;
    await jupyterapp.commands.execute('notebook:run-cell'); }"""
DROP_CELL = """() => { const m = window.__nb.content.model;
    m.sharedModel.deleteCell(m.cells.length - 1); }"""
INDEX = """() => Array.from(document.querySelectorAll('.fluxnb-designer'))
    .findIndex(r => r.fluxnb && r.fluxnb.model.get('graph').name === 'scores')"""


@pytest.fixture(scope="module")
def e(lab: Lab) -> Iterator[int]:
    """The index of designer ``e`` (empty, namespace=globals()) among the page's designers."""
    page = lab.page
    page.evaluate(ADD_CELL, CELL.strip())
    page.wait_for_function(f"() => ({INDEX})() >= 0", timeout=30000)
    page.wait_for_timeout(800)
    yield int(page.evaluate(INDEX))
    page.evaluate(DROP_CELL)
    py(lab, "e.close() or None")
    page.wait_for_function(f"() => ({INDEX})() < 0", timeout=10000)


def root(lab: Lab, i: int) -> Any:
    return lab.page.locator(f".fluxnb-designer >> nth={i}")


def cy(i: int) -> str:
    return f"document.querySelectorAll('.fluxnb-designer')[{i}].fluxnb.cy"


def canvas_point(lab: Lab, i: int, fx: float, fy: float) -> tuple[float, float]:
    """A point of the designer's canvas, as fractions of its width and height."""
    box = root(lab, i).locator(".fx-canvas").bounding_box()
    assert box is not None
    return box["x"] + box["width"] * fx, box["y"] + box["height"] * fy


def centre(lab: Lab, locator: Any) -> tuple[float, float]:
    box = locator.bounding_box()
    assert box is not None
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def boxes_overlap(lab: Lab, i: int) -> list[tuple[str, str]]:
    """Pairs of drawn nodes whose boxes overlap."""
    return [
        tuple(p)
        for p in lab.page.evaluate(
            f"""() => {{ const ns = {cy(i)}.nodes(); const out = [];
            for (let a = 0; a < ns.length; a++) for (let b = a + 1; b < ns.length; b++) {{
              const p = ns[a].boundingBox({{includeLabels: false}}), q = ns[b].boundingBox({{includeLabels: false}});
              if (p.x1 < q.x2 && q.x1 < p.x2 && p.y1 < q.y2 && q.y1 < p.y2) out.push([ns[a].id(), ns[b].id()]); }}
            return out; }}"""
        )
    ]


def test_a_five_step_workflow_from_an_empty_designer_in_at_most_12_gestures(
    lab: Lab, e: int
) -> None:
    page = lab.page
    designer = root(lab, e)
    designer.scroll_into_view_if_needed()
    hint = designer.locator(".fx-empty-hint")
    assert hint.is_visible() and "Drag a function" in hint.inner_text()
    assert designer.locator(".fx-issue").count() == 0  # empty is a start, not an error
    SHOTS.mkdir(parents=True, exist_ok=True)
    designer.screenshot(path=str(SHOTS / "designer-empty-hint.png"))
    gestures = 0
    # drag each function from the palette onto the canvas; stats lands on clean's spot
    drops = {
        "fetch": (0.15, 0.45),
        "clean": (0.4, 0.3),
        "stats": (0.4, 0.3),
        "report": (0.65, 0.45),
        "publish": (0.88, 0.45),
    }
    for n, (name, (fx, fy)) in enumerate(drops.items(), start=1):
        item = designer.locator(f".fx-function[data-name={name}]")
        drag(page, centre(lab, item), canvas_point(lab, e, fx, fy))
        gestures += 1
        wait_py(lab, "len(e.design.nodes)", lambda v, n=n: v == n)
    assert not hint.is_visible()
    edges = set(py(lab, "[x.id for x in e.design.edges]"))
    assert edges == FIVE_STEP_ARCS
    assert py(lab, "e.issues") == {}
    assert boxes_overlap(lab, e) == []  # two drops on one spot: side by side, not stacked
    # run: one click
    designer.locator("button[data-action=run]").click()
    gestures += 1
    wait_py(lab, "e.message", lambda m: m.startswith("run ") and "succeeded" in m, timeout=30)
    assert py(lab, "e.run_result['publish']") == "3.0 VALUES, MAX 3"
    page.wait_for_timeout(300)
    states = page.evaluate(f"() => {cy(e)}.nodes().map(n => n.data('state'))")
    assert states == ["succeeded"] * 5
    # export: one click downloads the manifest
    with page.expect_download() as got:
        designer.locator("button[data-action=export]").click()
    gestures += 1
    text = Path(got.value.path()).read_text()
    assert got.value.suggested_filename == "scores.yaml"
    manifest = yaml.safe_load(text)
    steps = {s["step"]: s.get("depends_on", []) for s in manifest["pipeline"]}
    assert steps == {
        "fetch": [],
        "clean": ["fetch"],
        "stats": ["fetch"],
        "report": ["clean", "stats"],
        "publish": ["report"],
    }
    assert {a["id"]: a["run"] for a in manifest["agents"]} == {s: s for s in steps}
    print(f"gestures: {gestures} (5 drags, run, export)")
    assert gestures <= 12
    designer.screenshot(path=str(SHOTS / "designer-five-steps-run.png"))


def test_the_palette_filters_by_search_and_a_click_adds_next_to_the_selection(
    lab: Lab, e: int
) -> None:
    page = lab.page
    designer = root(lab, e)
    search = designer.locator(".fx-function-search")
    search.fill("sha")
    assert designer.locator(".fx-function").all_inner_texts() == ["shaky(fetch)"]
    page.mouse.click(*node_point(page, e, "fetch"))
    wait_py(lab, "e.selected", lambda s: s == "fetch")
    designer.locator(".fx-function[data-name=shaky]").click()  # a click, no drag
    wait_py(lab, "'shaky' in e.design.nodes", bool)
    assert "fetch->shaky" in py(lab, "[x.id for x in e.design.edges]")
    fx, sx = py(lab, "[e.design.nodes['fetch'].x, e.design.nodes['shaky'].x]")
    assert sx > fx  # right of the selection
    assert boxes_overlap(lab, e) == []
    search.fill("")
    assert designer.locator(".fx-function").count() >= 6
    # the keyboard too: Tab to a function, Enter adds it
    designer.locator(".fx-function[data-name=publish]").focus()
    page.keyboard.press("Enter")
    wait_py(lab, "'publish_2' in e.design.nodes", bool)
    py(lab, "e.undo()")


def test_the_typed_inspector(lab: Lab, e: int) -> None:
    page = lab.page
    designer = root(lab, e)
    page.mouse.click(*node_point(page, e, "stats"))
    wait_py(lab, "e.selected", lambda s: s == "stats")
    side = designer.locator(".fx-side")
    groups = side.locator("details.fx-group").evaluate_all("ds => ds.map(d => d.dataset.group)")
    assert groups == ["basics", "resilience", "advanced"]
    # every key of a step reachable
    keys = set(side.locator(".fx-field").evaluate_all("fs => fs.map(f => f.dataset.field)"))
    assert set(py(lab, "e.schema['step']")) <= keys

    # enums as dropdowns, activation with its five policies
    def options(key: str) -> list[str]:
        return side.locator(f"select[data-key={key}]").evaluate(
            "s => Array.from(s.options).map(o => o.value)"
        )

    assert options("on_error") == ["", "stop", "continue", "skip", "retry"]
    assert options("activation") == ["", "any", "batch", "window", "custom"]  # "" is all
    # defaults as placeholders; help per key
    side.locator("summary", has_text="resilience").click()
    delay = side.locator("input[data-key='retry.initial_delay']")
    assert delay.get_attribute("placeholder") == "default: 0.1"
    # `with:` from the signature: stats(fetch, scale=1.0); fetch comes from the dependency
    scale = side.locator("input[data-key='with.scale']")
    assert scale.get_attribute("placeholder") == "default: 1.0"
    assert side.locator("input[data-key='with.fetch']").count() == 0
    scale.fill("2")
    page.keyboard.press("Enter")  # one typed commit
    wait_py(lab, "e.design.nodes['stats'].props.get('with')", lambda v: v == {"scale": 2})
    # a duration typed wrong is shown wrong and not sent; typed right, it is stored
    timeout = side.locator("input[data-key=timeout]")
    timeout.fill("soon")
    assert "fx-invalid" in (timeout.get_attribute("class") or "")
    help_text = designer.locator("[data-field=timeout] .fx-help")
    assert help_text.is_visible() and "How long the step may take" in help_text.inner_text()
    assert "duration" in designer.locator("[data-field=timeout] .fx-why").inner_text()
    page.keyboard.press("Enter")
    page.wait_for_timeout(300)
    assert py(lab, "e.design.nodes['stats'].props.get('timeout')") is None
    timeout = side.locator("input[data-key=timeout]")
    timeout.fill("2s")
    page.keyboard.press("Enter")
    wait_py(lab, "e.design.nodes['stats'].props.get('timeout')", lambda v: v == "2s")
    attempts = side.locator("input[data-key='retry.max_attempts']")
    attempts.fill("0")
    assert (
        "at least 1" in designer.locator("[data-field='retry.max_attempts'] .fx-why").inner_text()
    )
    page.keyboard.press("Escape")
    side.locator("select[data-key=on_error]").select_option("skip")
    wait_py(lab, "e.design.nodes['stats'].props.get('on_error')", lambda v: v == "skip")
    designer.screenshot(path=str(SHOTS / "designer-typed-inspector.png"))
    # the functions panel, the dropdowns and the help follow the dark theme, readable
    parts = ".fx-function, select.fx-select, .fx-help, .fx-function-search, .fx-group-title"
    try:
        _set_theme(lab, "JupyterLab Dark", True)
        timeout = side.locator("input[data-key=timeout]")
        timeout.focus()  # its help shows
        seen = designer.locator(parts).evaluate_all(
            """els => els.filter(e => e.offsetParent).map(e => { const s = getComputedStyle(e);
            let bg = s.backgroundColor, p = e;
            while (bg === 'rgba(0, 0, 0, 0)' && p.parentElement) { p = p.parentElement; bg = getComputedStyle(p).backgroundColor; }
            return [e.className, s.color, bg]; })"""
        )
        assert len(seen) > 10
        for cls, text, bg in seen:
            assert contrast(text, bg) >= 4.5, (cls, text, bg)
        designer.screenshot(path=str(SHOTS / "designer-typed-inspector-dark.png"))
    finally:
        _set_theme(lab, "JupyterLab Light", False)
    # a value no choice spells stays shown as it is (not as "not set")
    py(lab, "e.set('stats', 'on_error', {'strategy': 'retry', 'fallback': 'skip'})")
    shown = side.locator("select[data-key=on_error]")
    page.wait_for_function(
        "s => s.value.includes('fallback')", arg=shown.element_handle(), timeout=5000
    )
    for _ in range(4):
        py(lab, "e.undo()")
    assert py(lab, "e.design.nodes['stats'].props") == {"run": "stats"}


def test_run_feedback_and_a_steps_last_attempts(lab: Lab, e: int) -> None:
    page = lab.page
    designer = root(lab, e)
    py(lab, "e.set('shaky', 'retry.max_attempts', '2') or e.set('shaky', 'retry.backoff', 'none')")
    py(lab, "setattr(e, 'message', 'an old message') or None")
    designer.locator(".fx-message").evaluate(
        """m => { window.__shown = []; new MutationObserver(() => window.__shown.push(m.textContent))
        .observe(m, {childList: true, characterData: true, subtree: true}); }"""
    )
    designer.locator("button[data-action=run]").click()
    wait_py(lab, "e.message", lambda m: m.startswith("run ") and "succeeded" in m, timeout=30)
    shown = page.evaluate("() => window.__shown")
    # "running…" replaced the last message at once, then the run's outcome replaced it
    assert shown[0] == "running…" and "an old message" not in shown, shown
    assert designer.locator(".fx-message").inner_text().endswith("succeeded")
    page.mouse.click(*node_point(page, e, "shaky"))
    box = designer.locator(".fx-attempts")
    rows = box.locator(".fx-attempt")
    rows.nth(1).wait_for(timeout=5000)  # the selected step's two attempts
    assert rows.count() == 2
    first, second = rows.nth(0), rows.nth(1)
    assert "#1 failed" in first.inner_text()
    assert "ValueError: odd try" in first.locator(".fx-attempt-error").inner_text()
    first.locator("summary", has_text="traceback").click()
    assert "raise ValueError" in first.locator(".fx-traceback pre").inner_text()
    assert (
        "#2 succeeded" in second.inner_text() and second.locator(".fx-output").inner_text() == "3"
    )
    designer.screenshot(path=str(SHOTS / "designer-attempts.png"))
    # the next edit clears the run's colours, its message and the attempts
    root(lab, e).focus()
    page.keyboard.press("ArrowRight")
    wait_py(lab, "[e.status, e.message]", lambda v: v == [{}, ""])
    page.wait_for_timeout(300)
    assert page.evaluate(f"() => {cy(e)}.nodes('[state]').length") == 0
    assert designer.locator(".fx-attempts").count() == 0
    assert not designer.locator(".fx-message").is_visible()


def test_copy_paste_keeps_run_lands_at_the_pointer_and_selects_the_copies(lab: Lab, e: int) -> None:
    page = lab.page
    page.mouse.click(*node_point(page, e, "clean"))
    page.keyboard.down("Shift")
    page.mouse.click(*node_point(page, e, "stats"))
    page.keyboard.up("Shift")
    assert sorted(page.evaluate(f"() => {cy(e)}.$(':selected').map(n => n.id())")) == [
        "clean",
        "stats",
    ]
    page.keyboard.press("Control+c")
    x, y = canvas_point(lab, e, 0.5, 0.85)
    page.mouse.move(x, y)
    page.keyboard.press("Control+v")
    wait_py(lab, "'clean_copy1' in e.design.nodes", bool)
    copies = py(lab, "{k: [n.x, n.y, n.props] for k, n in e.design.nodes.items() if '_copy' in k}")
    assert copies["clean_copy1"][2] == {"run": "clean"}
    assert copies["stats_copy1"][2] == {"run": "stats"}
    at = page.evaluate(
        f"""([x, y]) => {{ const c = {cy(e)}, r = c.container().getBoundingClientRect();
        const p = c.pan(), z = c.zoom(); return [(x - r.left - p.x) / z, (y - r.top - p.y) / z]; }}""",
        [x, y],
    )
    mid = [sum(c[0] for c in copies.values()) / 2, sum(c[1] for c in copies.values()) / 2]
    assert math.dist(mid, at) < 5
    page.wait_for_timeout(300)
    assert sorted(page.evaluate(f"() => {cy(e)}.$(':selected').map(n => n.id())")) == [
        "clean_copy1",
        "stats_copy1",
    ]
    assert {"fetch->clean_copy1", "fetch->stats_copy1"} <= set(
        py(lab, "[x.id for x in e.design.edges]")
    )
    root(lab, e).screenshot(path=str(SHOTS / "designer-paste.png"))
    py(lab, "e.undo()")
    # the right-click menu on the empty canvas pastes there too
    x, y = canvas_point(lab, e, 0.2, 0.9)
    page.mouse.click(x, y, button="right")
    root(lab, e).locator(".fx-menu-item", has_text="Paste here").click()
    wait_py(lab, "'clean_copy1' in e.design.nodes", bool)
    xs = py(lab, "[n.x for k, n in e.design.nodes.items() if '_copy' in k]")
    assert (
        abs(
            sum(xs) / 2
            - page.evaluate(
                f"""([x]) => {{ const c = {cy(e)}, r = c.container().getBoundingClientRect();
        return (x - r.left - c.pan().x) / c.zoom(); }}""",
                [x],
            )
        )
        < 5
    )
    py(lab, "e.undo()")


def _hidden_edges(lab: Lab) -> list[tuple[str, str]]:
    """(arc, node) pairs where a straight arc runs through a step (110 x 38) it does not join."""
    at = py(lab, "{k: [n.x, n.y] for k, n in e.design.nodes.items()}")
    arcs = py(lab, "[[x.source, x.target] for x in e.design.edges]")
    hidden = []
    for s, t in arcs:
        (ax, ay), (bx, by) = at[s], at[t]
        for n, (nx, ny) in at.items():
            if n in (s, t):
                continue
            points = ((ax + (bx - ax) * k / 100, ay + (by - ay) * k / 100) for k in range(101))
            if any(abs(x - nx) < 55 and abs(y - ny) < 19 for x, y in points):
                hidden.append((f"{s}->{t}", n))
    return hidden


def test_layered_layout_never_hides_an_arc_and_200_steps_stay_findable(lab: Lab, e: int) -> None:
    page = lab.page
    designer = root(lab, e)
    triangle = "pipeline:\n- step: a\n- {step: b, depends_on: a}\n- {step: c, depends_on: [a, b]}"
    py(lab, f"e.apply_yaml({triangle!r}) or None")
    py(lab, "e.layout() or None")  # Python's own layering (no view needed)
    assert _hidden_edges(lab) == []
    before = py(lab, "{k: [n.x, n.y] for k, n in e.design.nodes.items()}")
    designer.locator("button[data-action=layout]").click()  # dagre, in the view
    wait_py(lab, "{k: [n.x, n.y] for k, n in e.design.nodes.items()}", lambda v: v != before)
    assert _hidden_edges(lab) == []
    designer.screenshot(path=str(SHOTS / "designer-layout-triangle.png"))
    # 200 steps: layered, fitted, labels stepping aside when too small, found by the search box
    big = {"name": "scores", "pipeline": [{"step": "step_0"}]}
    for k in range(1, 200):
        big["pipeline"].append(
            {
                "step": f"step_{k}",
                "depends_on": sorted({f"step_{k // 2}", f"step_{(k * 37 + 11) % k}"}),
            }
        )
    py(lab, f"e.apply_yaml({json.dumps(yaml.safe_dump(big))}) or None")
    designer.locator("button[data-action=layout]").click()
    wait_py(lab, "len({round(n.x) for n in e.design.nodes.values()})", lambda v: v > 5, timeout=30)
    view = page.evaluate(
        f"""() => {{ const c = {cy(e)}, v = c.extent(), b = c.nodes().boundingBox();
        return {{zoom: c.zoom(), inside: b.x1 >= v.x1 - 1 && b.y1 >= v.y1 - 1 && b.x2 <= v.x2 + 1 && b.y2 <= v.y2 + 1,
                 minFont: parseFloat(c.nodes()[0].style('min-zoomed-font-size'))}}; }}"""
    )
    assert view["inside"]  # the whole design fits after the layout
    assert view["zoom"] * 12 < view["minFont"]  # fitted, labels too small to read: not drawn
    designer.screenshot(path=str(SHOTS / "designer-200-steps.png"))
    find = designer.locator(".fx-find")
    find.fill("step_137")
    find.press("Enter")
    wait_py(lab, "e.selected", lambda s: s == "step_137")
    near = page.evaluate(
        f"""() => {{ const c = {cy(e)}, n = c.getElementById('step_137'), p = n.renderedPosition();
        return [p.x - c.width() / 2, p.y - c.height() / 2, c.zoom()]; }}"""
    )
    assert abs(near[0]) < 2 and abs(near[1]) < 2 and near[2] >= 1  # centred, readable
    designer.screenshot(path=str(SHOTS / "designer-200-steps-found.png"))
