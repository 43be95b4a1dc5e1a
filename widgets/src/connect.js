// Connecting by dragging from a node's handle (cytoscape-edgehandles), the tooltip of a
// node's problems and the right-click menu.
import cytoscape from "cytoscape";
import edgehandles from "cytoscape-edgehandles";
import { el } from "./dom.js";

cytoscape.use(edgehandles);

export function attachConnect(view) {
  const { cy, model, canvas, handle, tooltip, menu, send } = view;
  // connect by dragging from a handle (edgehandles 4 draws none itself)
  const eh = cy.edgehandles({
    // Python says what may be joined (and why not): refusing here made edgehandles' snap
    // skip the node under the pointer for the next nearest one that fits, so a drop on a
    // place from a place drew an arc to a transition beside it instead of the message
    canConnect: (s, t) => !s.same(t),
    edgeParams: () => ({ data: {} }),
    hoverDelay: 60,
    snap: true,
    snapThreshold: 30,
    noEdgeEventsInDraw: true,
    disableBrowserGestures: true,
  });
  let handleNode = null;
  let drawing = false;
  function placeHandle(node) {
    handleNode = node;
    // beside the node, never on it: a transition is 16 px wide, and a click on it fires it
    const box = node.renderedBoundingBox({ includeLabels: false });
    handle.style.left = `${box.x2 + 3}px`;
    handle.style.top = `${(box.y1 + box.y2) / 2 - 6}px`;
    handle.style.display = "block";
  }
  cy.on("mouseover", "node", (e) => {
    if (!drawing && !e.target.hasClass("eh-ghost-node")) placeHandle(e.target);
    const msgs = (model.get("issues") || {})[e.target.id()];
    if (msgs && msgs.length) {
      const p = e.target.renderedPosition();
      tooltip.textContent = msgs.join("\n");
      tooltip.style.left = `${p.x + 20}px`;
      tooltip.style.top = `${p.y + 20}px`;
      tooltip.style.display = "block";
    }
  });
  cy.on("mouseout", "node", () => {
    tooltip.style.display = "none";
  });
  cy.on("pan zoom drag position", () => {
    if (handleNode && !drawing) placeHandle(handleNode);
  });
  handle.addEventListener("mousedown", (ev) => {
    if (!handleNode) return;
    ev.preventDefault();
    ev.stopPropagation();
    drawing = true;
    handle.style.display = "none";
    eh.start(handleNode);
  });
  // the gesture began on our handle, not on cytoscape's canvas, so cytoscape sends no
  // tapdrag / tapend for it: follow the mouse and end the gesture from the window
  const follow = (ev) => {
    if (!drawing) return;
    const r = canvas.getBoundingClientRect();
    const pan = cy.pan();
    const zoom = cy.zoom();
    eh.update({ x: (ev.clientX - r.left - pan.x) / zoom, y: (ev.clientY - r.top - pan.y) / zoom });
  };
  const stop = () => {
    if (drawing) {
      drawing = false;
      eh.snap(); // settle the target under the pointer before ending
      eh.stop();
    }
  };
  window.addEventListener("mousemove", follow);
  window.addEventListener("mouseup", stop);
  cy.on("ehcomplete", (event, source, target, added) => {
    added.remove(); // Python decides; the edge comes back with the next graph if accepted
    send({ type: "connect", source: source.id(), target: target.id() });
  });

  // right-click menu: delete, rename, copy; on the empty canvas, paste there
  cy.on("cxttap", (e) => {
    const target = e.target;
    menu.replaceChildren();
    const item = (label, fn) => {
      const b = el("div", "fx-menu-item", label);
      b.addEventListener("click", () => {
        menu.style.display = "none";
        fn();
      });
      menu.append(b);
    };
    if (target === cy) item("Paste here", () => send({ type: "paste", x: e.position.x, y: e.position.y }));
    else if (!target.selected()) {
      cy.elements().unselect();
      target.select();
    }
    if (target !== cy) item("Delete", () => view.deleteSelection());
    if (target !== cy && target.isNode()) {
      item("Rename…", () => {
        const name = window.prompt("New id", target.id());
        if (name && name !== target.id()) send({ type: "rename", id: target.id(), new: name });
      });
      item("Copy", () => send({ type: "copy", ids: view.selection() }));
    }
    const p = e.renderedPosition;
    menu.style.left = `${p.x}px`;
    menu.style.top = `${p.y}px`;
    menu.style.display = "block";
  });
  cy.on("tap", () => {
    menu.style.display = "none";
  });

  return {
    // Escape: drop a connection being drawn and the menu
    cancel() {
      if (drawing) {
        drawing = false;
        eh.stop();
      }
      menu.style.display = "none";
    },
    // after a redraw: hide what described a node that is gone
    draw() {
      tooltip.style.display = "none";
      if (handleNode && handleNode.removed()) {
        handle.style.display = "none";
        handleNode = null;
      }
    },
    destroy() {
      window.removeEventListener("mouseup", stop);
      window.removeEventListener("mousemove", follow);
      eh.destroy();
    },
  };
}
