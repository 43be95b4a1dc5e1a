// The keyboard and the wheel inside the designer, as a JupyterLab user expects them.

// zoom per wheel notch (Chrome sends deltaY 100 per notch): ~16%, like map and diagram tools
const ZOOM_RATE = 0.0015;
const NUDGE = 10; // px an arrow key moves the selection (Shift: 5x)
const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };

export function attachKeys(view) {
  const { cy, root, body, canvas, send } = view;
  // where the pointer is on the canvas (model coordinates): a paste lands there
  let pointer = null;
  canvas.addEventListener("mousemove", (ev) => {
    const r = canvas.getBoundingClientRect();
    const pan = cy.pan();
    const zoom = cy.zoom();
    pointer = { x: (ev.clientX - r.left - pan.x) / zoom, y: (ev.clientY - r.top - pan.y) / zoom };
  });
  canvas.addEventListener("mouseleave", () => {
    pointer = null;
  });
  // Arrow keys move the selection at once and tell Python once the keys rest (one edit)
  let nudged = null;
  function nudge(dx, dy) {
    const nodes = cy.$("node:selected");
    if (nodes.empty()) {
      cy.panBy({ x: -dx * 4, y: -dy * 4 }); // nothing selected: the arrows pan the view
      return;
    }
    nodes.forEach((n) => n.position({ x: n.position("x") + dx, y: n.position("y") + dy }));
    clearTimeout(nudged);
    nudged = setTimeout(() => {
      send({ type: "move", moves: nodes.map((n) => ({ id: n.id(), x: n.position("x"), y: n.position("y") })) });
    }, 300);
  }
  // JupyterLab and Notebook 7 hear keys as they bubble to the document: every key pressed in
  // the designer stops here, so `x`, `b`, Enter, the arrows... never reach a notebook command.
  // Only Ctrl/⌘+S (save) and Shift/Ctrl+Enter on the canvas (run the cell) go through.
  root.addEventListener("keydown", (ev) => {
    const ctrl = ev.ctrlKey || ev.metaKey;
    const typing = ev.target.tagName === "INPUT" || ev.target.tagName === "TEXTAREA";
    if (ctrl && ev.key.toLowerCase() === "s") return;
    if (!typing && ev.key === "Enter" && (ev.shiftKey || ctrl)) return;
    ev.stopPropagation();
    if (typing) return; // the field's own keys (Enter commits, Escape cancels)
    const arrow = ARROWS[ev.key];
    if (ev.key === "Delete" || ev.key === "Backspace") view.deleteSelection();
    else if (ctrl && ev.key === "z") send({ type: "undo" });
    else if (ctrl && (ev.key === "y" || (ev.shiftKey && ev.key === "Z"))) send({ type: "redo" });
    else if (ctrl && ev.key === "c") send({ type: "copy", ids: view.selection() });
    else if (ctrl && ev.key === "v") send({ type: "paste", ...(pointer || {}) });
    else if (ctrl && ev.key === "a") cy.elements().select();
    else if (ev.key === "Escape") {
      view.cancel();
      cy.elements().unselect();
    } else if (arrow && !ctrl) nudge(arrow[0] * NUDGE * (ev.shiftKey ? 5 : 1), arrow[1] * NUDGE * (ev.shiftKey ? 5 : 1));
    else if (ev.key === "+" || ev.key === "=") view.zoomBy(1.25);
    else if (ev.key === "-") view.zoomBy(0.8);
    else return;
    ev.preventDefault();
  });
  // The wheel: over a canvas that does not have the focus it scrolls the notebook, as over
  // any output; with the focus (click the canvas) or with Ctrl/⌘ held (a trackpad pinch too)
  // it zooms about the pointer. Cytoscape never sees the wheel: its rate is far too slow.
  body.addEventListener(
    "wheel",
    (ev) => {
      if (!canvas.contains(ev.target)) return;
      ev.stopPropagation();
      const focused = document.activeElement === root || document.activeElement === canvas;
      if (!focused && !ev.ctrlKey && !ev.metaKey) return; // the page scrolls
      ev.preventDefault();
      const px = ev.deltaY * (ev.deltaMode === 1 ? 33 : ev.deltaMode === 2 ? 400 : 1);
      const f = Math.min(2, Math.max(0.5, Math.exp(-px * ZOOM_RATE)));
      const r = canvas.getBoundingClientRect();
      const z = Math.min(cy.maxZoom(), Math.max(cy.minZoom(), cy.zoom() * f));
      cy.zoom({ level: z, renderedPosition: { x: ev.clientX - r.left, y: ev.clientY - r.top } });
    },
    { capture: true, passive: false },
  );
}
