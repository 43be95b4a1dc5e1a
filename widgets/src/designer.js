// The fluxnb designer's view: draws the design Python syncs in `graph`, and sends every
// edit to Python as a message (Python validates it, records it for undo, and syncs back).
// Each part lives in its own module and hangs what the others need on `view`.
import cytoscape from "cytoscape";
import { el } from "./dom.js";
import { style } from "./style.js";
import { readTheme } from "./theme.js";
import { attachMinimap } from "./minimap.js";
import { attachToolbar } from "./toolbar.js";
import { attachGraph } from "./graph.js";
import { attachInspector } from "./inspector.js";
import { attachKeys } from "./keys.js";
import { attachConnect } from "./connect.js";
import { attachPalette } from "./palette.js";
import { attachLayout } from "./layout.js";
import { attachTokenGame } from "./tokengame.js";

function render({ model, el: root, bundle }) {
  root.classList.add("fluxnb-designer");
  root.setAttribute("data-jp-suppress-context-menu", ""); // keep JupyterLab's menu away
  root.tabIndex = 0;
  let theme = readTheme(root);

  const toolbar = el("div", "fx-toolbar");
  const body = el("div", "fx-body");
  const canvas = el("div", "fx-canvas");
  canvas.tabIndex = -1; // focusable by a click (the wheel zooms then), not by Tab
  const side = el("div", "fx-side");
  const message = el("div", "fx-message");
  const tooltip = el("div", "fx-tooltip");
  const handle = el("div", "fx-handle");
  handle.title = "drag to connect";
  const menu = el("div", "fx-menu");
  canvas.append(handle, tooltip, menu);
  body.append(canvas, side);
  root.append(toolbar, body, message);
  canvas.style.height = `${model.get("height")}px`;

  const cy = cytoscape({
    container: canvas,
    style: style(theme),
    layout: { name: "preset" },
    boxSelectionEnabled: true,
    minZoom: 0.02, // 200 steps laid out in layers still fit (labels step aside when small)
    maxZoom: 3,
  });
  root.fluxnb = { cy, model, theme: () => theme }; // browser tests find the graph here
  canvas.fluxnb = root.fluxnb;

  // what every part shares: the model, the DOM, the graph, and a few actions
  const view = {
    model,
    bundle, // the shared model holding the view's code and the step keys' fields
    root,
    cy,
    body,
    canvas,
    side,
    toolbar,
    message,
    tooltip,
    handle,
    menu,
    syncing: false, // true while the view (un)selects to match Python: no echo back
    send: (msg) => model.send(msg),
    theme: () => theme,
    mode: () => (model.get("graph") || {}).mode || "dag",
    selection: () => cy.$(":selected").map((e) => e.id()),
    deleteSelection() {
      const ids = view.selection();
      if (ids.length) view.send({ type: "delete", ids });
    },
    zoomBy(f) {
      const z = Math.min(cy.maxZoom(), Math.max(cy.minZoom(), cy.zoom() * f));
      cy.zoom({ level: z, renderedPosition: { x: cy.width() / 2, y: cy.height() / 2 } });
    },
    toggleYaml: () => inspector.toggleYaml(),
    layout: () => layout.layout(),
    cancel: () => connect.cancel(),
  };

  const bar = attachToolbar(view);
  const layout = attachLayout(view);
  const palette = attachPalette(view);
  attachTokenGame(view);
  const graph = attachGraph(view);
  const inspector = attachInspector(view);
  attachKeys(view);
  const connect = attachConnect(view);
  view.drawSide = inspector.draw;

  function draw() {
    graph.draw();
    connect.draw();
    bar.draw();
    palette.draw();
    inspector.draw();
  }

  // ------------------------------------------------------------ edits from the canvas
  cy.on("dragfree", "node", (e) => {
    const moved = e.target.selected() ? cy.$("node:selected") : e.target;
    view.send({ type: "move", moves: moved.map((n) => ({ id: n.id(), x: n.position("x"), y: n.position("y") })) });
  });
  cy.on("select unselect", () => {
    if (view.syncing) return;
    const ids = view.selection();
    const one = ids.length === 1 ? ids[0] : "";
    if (one !== model.get("selected")) {
      model.set("selected", one);
      model.save_changes();
    }
  });
  cy.on("tap", "node[kind = 'transition']", (e) => {
    if ((model.get("enabled") || []).includes(e.target.id())) view.send({ type: "fire", id: e.target.id() });
  });
  canvas.addEventListener("mousedown", (ev) => {
    if (!minimap.el.contains(ev.target)) root.focus();
  });
  const minimap = attachMinimap(cy, canvas, () => theme);
  // JupyterLab's theme switch changes the CSS variables (and data-jp-theme-* on the body)
  const restyle = () => {
    const next = readTheme(root);
    if (JSON.stringify(next) === JSON.stringify(theme)) return;
    theme = next;
    cy.style(style(theme));
    draw();
    minimap.draw();
  };
  // the theme's style sheet may land a moment after the body's attributes change
  const themeWatch = new MutationObserver(() => [0, 250, 1000].forEach((ms) => setTimeout(restyle, ms)));
  themeWatch.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name"] });

  // cytoscape caches where its canvas is; JupyterLab scrolls notebooks inside a panel, which
  // cytoscape does not hear of, so clicks would land beside the nodes: refresh on any scroll
  let refresh = 0;
  const onScroll = () => {
    if (!refresh) refresh = requestAnimationFrame(() => {
      refresh = 0;
      cy.resize();
    });
  };
  document.addEventListener("scroll", onScroll, true);
  canvas.addEventListener("mouseenter", () => cy.resize());

  // ------------------------------------------------------------ messages and sync
  const showMessage = () => {
    const text = model.get("message");
    message.textContent = text;
    message.style.display = text ? "block" : "none";
  };
  model.on("change:status", graph.statusChanged);
  for (const name of ["graph", "issues", "enabled", "selected", "can_undo", "can_redo"]) {
    model.on(`change:${name}`, draw);
  }
  model.on("change:yaml_text", inspector.draw);
  model.on("change:details", inspector.draw);
  model.on("change:functions", () => {
    palette.draw();
    inspector.draw();
  });
  // Python names elements to select (the copies a paste made): after the graph drew them
  model.on("msg:custom", (msg) => {
    if (msg.type !== "select") return;
    cy.elements().unselect();
    for (const id of msg.ids) cy.getElementById(id).select();
  });
  model.on("change:message", showMessage);
  draw();
  showMessage();
  requestAnimationFrame(() => {
    cy.resize();
    cy.fit(undefined, 30);
  });

  return () => {
    document.removeEventListener("scroll", onScroll, true);
    themeWatch.disconnect();
    graph.destroy();
    palette.destroy();
    minimap.destroy();
    connect.destroy();
    cy.destroy();
  };
}

export default { render };
