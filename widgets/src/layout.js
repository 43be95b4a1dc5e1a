// Layout and finding your way in a big design: a layered layout with crossing
// minimisation (dagre), labels that step aside when too small to read, and a search box that
// jumps to a node.
import cytoscape from "cytoscape";
import dagre from "cytoscape-dagre";
import { el } from "./dom.js";

cytoscape.use(dagre);

// left to right, ranks far enough apart for a label on the arcs; an arc spanning ranks is
// routed through its own slot in each rank it crosses, so it never runs under a node
export const LAYERED = { name: "dagre", rankDir: "LR", nodeSep: 40, rankSep: 80, edgeSep: 20, ranker: "network-simplex", fit: false, animate: false };

export function attachLayout(view) {
  const { cy, model, send, toolbar } = view;

  // Lay out in the view, then tell Python where everything went: one undoable edit
  function layout() {
    const nodes = cy.nodes().filter((n) => !n.hasClass("eh-ghost-node"));
    if (nodes.empty()) return;
    const edges = cy.edges().filter((e) => !e.hasClass("eh-preview") && !e.hasClass("eh-ghost-edge"));
    nodes.union(edges).layout(LAYERED).run();
    send({ type: "layout", moves: nodes.map((n) => ({ id: n.id(), x: Math.round(n.position("x")), y: Math.round(n.position("y")) })) });
    cy.fit(undefined, 30);
  }

  // the search box: type part of an id (or a name), Enter jumps to the first match
  const find = el("input", "fx-input fx-find");
  find.type = "search";
  find.placeholder = "find a node…";
  find.dataset.key = "find";
  find.title = "find a node: Enter jumps to it and selects it";
  const options = el("datalist");
  options.id = `fx-find-${Math.random().toString(36).slice(2)}`;
  find.setAttribute("list", options.id);
  toolbar.append(find, options);
  function jump(text) {
    const q = text.trim().toLowerCase();
    if (!q) return false;
    const nodes = cy.nodes().filter((n) => !n.hasClass("eh-ghost-node"));
    const hit = nodes.filter((n) => n.id().toLowerCase() === q)[0] || nodes.filter((n) => n.id().toLowerCase().includes(q) || String(n.data("label") || "").toLowerCase().includes(q))[0];
    if (!hit) return false;
    cy.elements().unselect();
    hit.select();
    cy.zoom({ level: Math.max(cy.zoom(), 1), renderedPosition: hit.renderedPosition() });
    cy.center(hit);
    return true;
  }
  find.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") {
      ev.preventDefault();
      find.classList.toggle("fx-invalid", !jump(find.value));
    } else if (ev.key === "Escape") {
      find.value = "";
      find.classList.remove("fx-invalid");
      view.root.focus();
    }
  });
  find.addEventListener("focus", () => {
    const g = model.get("graph") || { nodes: [] };
    options.replaceChildren(...g.nodes.slice(0, 500).map((n) => Object.assign(el("option"), { value: n.id })));
  });

  return { layout, jump };
}
