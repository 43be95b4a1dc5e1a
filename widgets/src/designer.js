// The fluxnb designer's view: draws the design Python syncs in `graph`, and sends every
// edit to Python as a message (Python validates it, records it for undo, and syncs back).
import cytoscape from "cytoscape";
import edgehandles from "cytoscape-edgehandles";
import { readTheme } from "./theme.js";
import { attachMinimap } from "./minimap.js";

cytoscape.use(edgehandles);

// zoom per wheel notch (Chrome sends deltaY 100 per notch): ~16%, like map and diagram tools
const ZOOM_RATE = 0.0015;
const NUDGE = 10; // px an arrow key moves the selection (Shift: 5x)

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function style(t) {
  const states = Object.entries(t.states).map(([name, c]) => ({
    selector: `node[state = '${name}']`,
    style: { "background-color": c.fill, color: c.text, "border-color": c.border, "border-style": c.borderStyle, "border-width": 2 },
  }));
  return [
    {
      selector: "node",
      style: {
        "background-color": t.node,
        "border-width": 1.5,
        "border-color": t.muted,
        "font-family": "system-ui, sans-serif",
        "font-size": 12,
        color: t.text,
      },
    },
    { selector: "node[label]", style: { label: "data(label)" } },
    {
      selector: "node[kind = 'step']",
      style: {
        shape: "round-rectangle",
        width: 110,
        height: 38,
        "text-valign": "center",
        "text-halign": "center",
        "text-wrap": "ellipsis",
        "text-max-width": 100,
      },
    },
    {
      selector: "node[kind = 'place']",
      style: {
        shape: "ellipse",
        width: 44,
        height: 44,
        "text-valign": "bottom",
        "text-margin-y": 6,
      },
    },
    {
      selector: "node[kind = 'transition']",
      style: {
        shape: "rectangle",
        width: 16,
        height: 48,
        "background-color": t.text,
        "text-valign": "top",
        "text-margin-y": -6,
      },
    },
    {
      selector: "node[kind = 'place'][tokens > 0]",
      style: {
        "background-image": "data(tokenImage)",
        "background-fit": "contain",
      },
    },
    ...states,
    // places and transitions carry their label outside the shape: keep it the text colour
    { selector: "node[kind != 'step']", style: { color: t.text } },
    { selector: "node.enabled", style: { "border-color": t.ok, "border-width": 4, "background-color": t.states.succeeded.fill } },
    { selector: "node.issue", style: { "border-color": t.error, "border-width": 3, "border-style": "dashed" } },
    { selector: "node:selected", style: { "overlay-color": t.brand, "overlay-opacity": 0.15, "border-color": t.brand, "border-width": 3 } },
    {
      selector: "edge",
      style: {
        width: 2,
        "line-color": t.muted,
        "target-arrow-color": t.muted,
        "target-arrow-shape": "triangle",
        "curve-style": "bezier",
        "font-size": 11,
        color: t.text,
      },
    },
    { selector: "edge[label]", style: { label: "data(label)", "text-background-color": t.bg, "text-background-opacity": 1 } },
    { selector: "edge[?inhibitor]", style: { "target-arrow-shape": "circle", "line-style": "dashed" } },
    { selector: "edge:selected", style: { "line-color": t.brand, "target-arrow-color": t.brand, width: 3 } },
    { selector: "edge.issue", style: { "line-color": t.error, "target-arrow-color": t.error } },
    { selector: ".eh-preview, .eh-ghost-edge", style: { "line-color": t.brand, "target-arrow-color": t.brand, "line-style": "dashed" } },
    { selector: ".eh-ghost-node", style: { opacity: 0 } },
  ];
}

function tokenImage(n, colour) {
  // up to 5 dots, else the number, as an SVG data URI drawn inside the place
  const dots = [];
  if (n <= 5) {
    const spots = [[22, 22], [14, 14], [30, 30], [30, 14], [14, 30]];
    const order = n === 1 ? [0] : n === 2 ? [1, 2] : n === 3 ? [0, 1, 2] : n === 4 ? [1, 2, 3, 4] : [0, 1, 2, 3, 4];
    for (const i of order) dots.push(`<circle cx='${spots[i][0]}' cy='${spots[i][1]}' r='4' fill='${colour}'/>`);
  } else {
    dots.push(`<text x='22' y='27' font-size='14' text-anchor='middle' font-family='sans-serif' fill='${colour}'>${n}</text>`);
  }
  const svg = `<svg xmlns='http://www.w3.org/2000/svg' width='44' height='44'>${dots.join("")}</svg>`;
  return "data:image/svg+xml;utf8," + encodeURIComponent(svg);
}

function render({ model, el: root }) {
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

  const send = (msg) => model.send(msg);
  const buttons = {};
  const button = (name, label, title, onclick) => {
    const b = el("button", `fx-btn fx-${name}`, label);
    b.title = title;
    b.dataset.action = name;
    b.addEventListener("click", onclick);
    toolbar.append(b);
    buttons[name] = b;
    return b;
  };

  const cy = cytoscape({
    container: canvas,
    style: style(theme),
    layout: { name: "preset" },
    boxSelectionEnabled: true,
    minZoom: 0.2,
    maxZoom: 3,
  });
  root.fluxnb = { cy, model, theme: () => theme }; // browser tests find the graph here
  canvas.fluxnb = root.fluxnb;

  // ------------------------------------------------------------ toolbar
  const mode = () => (model.get("graph") || {}).mode || "dag";
  const centre = () => {
    const ext = cy.extent();
    return { x: (ext.x1 + ext.x2) / 2 + (Math.random() - 0.5) * 40, y: (ext.y1 + ext.y2) / 2 + (Math.random() - 0.5) * 40 };
  };
  const addButtons = el("span", "fx-palette");
  toolbar.append(addButtons);
  function drawPalette() {
    addButtons.replaceChildren();
    const kinds = mode() === "dag" ? [["step", "+ Step"]] : [["place", "+ Place"], ["transition", "+ Transition"]];
    for (const [kind, label] of kinds) {
      const b = el("button", `fx-btn fx-add-${kind}`, label);
      b.dataset.action = `add-${kind}`;
      b.title = `add a ${kind}`;
      b.addEventListener("click", () => send({ type: "add", kind, ...centre() }));
      addButtons.append(b);
    }
  }
  button("undo", "↶ Undo", "undo (Ctrl+Z)", () => send({ type: "undo" }));
  button("redo", "↷ Redo", "redo (Ctrl+Y)", () => send({ type: "redo" }));
  button("delete", "✕ Delete", "delete the selection (Delete)", () => deleteSelection());
  button("layout", "⇶ Layout", "lay out left to right", () => send({ type: "layout" }));
  const zoomBy = (f) => {
    const z = Math.min(cy.maxZoom(), Math.max(cy.minZoom(), cy.zoom() * f));
    cy.zoom({ level: z, renderedPosition: { x: cy.width() / 2, y: cy.height() / 2 } });
  };
  button("zoom-in", "+", "zoom in (Ctrl+wheel)", () => zoomBy(1.25));
  button("zoom-out", "−", "zoom out (Ctrl+wheel)", () => zoomBy(0.8));
  button("fit", "⤢ Fit", "fit the design in view", () => cy.fit(undefined, 30));
  button("run", "▶ Run", "run the design (nets: then click an enabled transition to fire it)", () => send({ type: "run" }));
  button("yaml", "YAML", "show or edit the manifest", () => {
    yamlOpen = !yamlOpen;
    drawSide();
  });

  // ------------------------------------------------------------ drawing from Python
  let syncing = false;
  // what a node shows of a run: its state (icon + colour), attempts, tokens
  function runData(id, kind, baseTokens, st) {
    const tokens = st.tokens !== undefined ? st.tokens : baseTokens;
    let label = kind === "step" && st.attempts > 1 ? `${id} ×${st.attempts}` : id;
    const look = st.state && theme.states[st.state];
    if (look) label = `${look.icon} ${label}`; // the state in a shape, not only a colour
    const data = { label, tokens: tokens || 0, baseTokens: baseTokens || 0 };
    if (kind === "place") data.tokenImage = tokenImage(tokens || 0, theme.text);
    if (look) data.state = st.state;
    return data;
  }
  // A run sends a status change per attempt: restyle only the nodes whose status changed,
  // at most once a frame (redrawing the whole design each time cost seconds at 200 steps).
  let shownStatus = {};
  let statusFrame = 0;
  function drawStatus() {
    statusFrame = 0;
    const status = model.get("status") || {};
    cy.batch(() => {
      for (const id of new Set([...Object.keys(status), ...Object.keys(shownStatus)])) {
        const st = status[id] || {};
        const old = shownStatus[id] || {};
        if (st.state === old.state && st.attempts === old.attempts && st.tokens === old.tokens) continue;
        const node = cy.getElementById(id);
        if (node.empty()) continue;
        node.removeData("state");
        node.data(runData(id, node.data("kind"), node.data("baseTokens"), st));
      }
    });
    shownStatus = status;
  }
  function draw() {
    tooltip.style.display = "none"; // whatever it described may be gone
    const g = model.get("graph") || { nodes: [], edges: [] };
    const status = model.get("status") || {};
    const issues = model.get("issues") || {};
    const enabled = new Set(model.get("enabled") || []);
    const want = new Set([...g.nodes.map((n) => n.id), ...g.edges.map((e) => e.id)]);
    const placed = []; // nodes Python put somewhere new (added, laid out, undone, moved by code)
    shownStatus = status;
    cy.batch(() => {
      cy.elements().forEach((e) => {
        if (!want.has(e.id()) && !e.hasClass("eh-preview") && !e.hasClass("eh-ghost")) e.remove();
      });
      for (const n of g.nodes) {
        const data = { id: n.id, kind: n.kind, ...runData(n.id, n.kind, n.tokens, status[n.id] || {}) };
        let node = cy.getElementById(n.id);
        if (node.empty()) {
          node = cy.add({ group: "nodes", data, position: { x: n.x, y: n.y } });
          placed.push(node);
        } else {
          node.removeData("state");
          node.data(data);
          const p = node.position();
          if (!node.grabbed() && (p.x !== n.x || p.y !== n.y)) {
            node.position({ x: n.x, y: n.y });
            placed.push(node);
          }
        }
        node.toggleClass("issue", !!issues[n.id]);
        node.toggleClass("enabled", enabled.has(n.id));
      }
      for (const e of g.edges) {
        const w = (e.props || {}).weight;
        const data = { id: e.id, source: e.source, target: e.target, inhibitor: !!(e.props || {}).inhibitor };
        if (w && w !== 1) data.label = String(w);
        const edge = cy.getElementById(e.id);
        if (edge.empty()) cy.add({ group: "edges", data });
        else {
          edge.removeData("label");
          edge.data(data);
        }
        cy.getElementById(e.id).toggleClass("issue", !!issues[e.id]);
      }
    });
    if (placed.length && cy.width() > 0) {
      // a node placed by code where the user cannot see it: bring the whole design into view
      const out = (b, v = cy.extent()) => b.x1 < v.x1 || b.y1 < v.y1 || b.x2 > v.x2 || b.y2 > v.y2;
      const unseen = placed.filter((n) => out(n.boundingBox()));
      if (unseen.length) {
        cy.fit(undefined, 30);
        if (out(unseen[0].boundingBox())) cy.center(unseen[0]); // too big to fit at min zoom
      }
    }
    const sel = model.get("selected");
    const now = cy.$(":selected");
    if (!(sel ? now.length === 1 && now.id() === sel : now.empty() || now.length > 1)) {
      syncing = true; // our own (un)select events must not echo back to Python
      cy.elements().unselect();
      if (sel) cy.getElementById(sel).select();
      syncing = false;
    }
    if (handleNode && handleNode.removed()) {
      handle.style.display = "none";
      handleNode = null;
    }
    buttons.undo.disabled = !model.get("can_undo");
    buttons.redo.disabled = !model.get("can_redo");
    drawPalette();
    drawSide();
  }

  // ------------------------------------------------------------ side panel
  let yamlOpen = false;
  // Enter commits a field (as leaving it does), Escape puts back what Python has and leaves it
  function editable(input, commit) {
    input.addEventListener("change", () => {
      if (input.value !== input.defaultValue) commit(input.value);
    });
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") {
        ev.preventDefault();
        if (input.value !== input.defaultValue) commit(input.value);
        input.defaultValue = input.value; // the blur that may follow sends nothing more
      } else if (ev.key === "Escape") {
        ev.preventDefault();
        input.value = input.defaultValue;
        root.focus();
      }
    });
    return input;
  }
  function field(target, key, value) {
    const row = el("label", "fx-field");
    row.append(el("span", "fx-key", key));
    const input = el("input", "fx-input");
    input.dataset.key = key;
    input.defaultValue = value === undefined || value === null ? "" : typeof value === "object" ? JSON.stringify(value) : String(value);
    editable(input, (v) => send({ type: "set", id: target, key, value: v }));
    row.append(input);
    return row;
  }
  function legend() {
    const box = el("div", "fx-legend");
    box.title = "run states";
    for (const [name, look] of Object.entries(theme.states)) {
      const item = el("span", "fx-legend-item");
      item.dataset.state = name;
      const sw = el("span", "fx-swatch", look.icon);
      sw.style.background = look.fill;
      sw.style.color = look.text;
      sw.style.borderColor = look.border;
      sw.style.borderStyle = look.borderStyle;
      item.append(sw, el("span", "", name));
      box.append(item);
    }
    return box;
  }
  function get(props, key) {
    let cur = props;
    for (const part of key.split(".")) {
      if (cur === undefined || cur === null) return undefined;
      cur = cur[part];
    }
    return cur;
  }
  function drawSide() {
    // a redraw (Python synced something) must not take away a field being typed in
    const active = side.contains(document.activeElement) ? document.activeElement : null;
    const keep = active && { key: active.dataset.key, value: active.value, at: active.selectionStart, dirty: active.value !== active.defaultValue };
    side.replaceChildren();
    const g = model.get("graph") || { nodes: [], edges: [] };
    const issues = model.get("issues") || {};
    const sel = model.get("selected");
    const head = el("div", "fx-title", `${g.name || "design"} · ${mode() === "dag" ? "DAG" : "Petri net"}`);
    side.append(head);
    const node = g.nodes.find((n) => n.id === sel);
    const edge = g.edges.find((e) => e.id === sel);
    const schema = model.get("schema") || {};
    if (node) {
      const idRow = el("label", "fx-field");
      idRow.append(el("span", "fx-key", "id"));
      const idInput = el("input", "fx-input fx-rename");
      idInput.dataset.key = "id";
      idInput.defaultValue = node.id;
      editable(idInput, (v) => send({ type: "rename", id: node.id, new: v.trim() }));
      idRow.append(idInput);
      side.append(el("div", "fx-kind", node.kind), idRow);
      for (const key of schema[node.kind] || []) side.append(field(node.id, key, get(node.props, key)));
    } else if (edge) {
      side.append(el("div", "fx-kind", mode() === "dag" ? "dependency" : "arc"), el("div", "fx-edge", `${edge.source} → ${edge.target}`));
      if (mode() === "net") for (const key of schema.arc || []) side.append(field(edge.id, key, get(edge.props, key)));
    } else {
      side.append(el("div", "fx-hint", "Select a node or an arc to edit it. Drag from a node's blue handle to connect; Delete removes; Ctrl+Z undoes."));
    }
    const mine = issues[sel] || [];
    const all = Object.entries(issues);
    if (mine.length || (!sel && all.length)) {
      const box = el("div", "fx-issues");
      const list = sel ? mine.map((m) => [sel, m]) : all.flatMap(([k, ms]) => ms.map((m) => [k, m]));
      for (const [k, m] of list) box.append(el("div", "fx-issue", k ? `${k}: ${m}` : m));
      side.append(box);
    }
    if (yamlOpen) {
      const area = el("textarea", "fx-yaml-text");
      area.dataset.key = "yaml";
      area.defaultValue = model.get("yaml_text");
      area.spellcheck = false;
      area.title = "Ctrl+Enter applies, Escape puts back the design's YAML";
      const apply = el("button", "fx-btn fx-apply", "Apply YAML");
      apply.addEventListener("click", () => send({ type: "yaml", text: area.value }));
      area.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
          ev.preventDefault();
          send({ type: "yaml", text: area.value });
        } else if (ev.key === "Escape") {
          ev.preventDefault();
          area.value = area.defaultValue;
          root.focus();
        }
      });
      side.append(area, apply);
    }
    side.append(legend());
    if (keep && keep.key) {
      const again = side.querySelector(`[data-key="${CSS.escape(keep.key)}"]`);
      if (again) {
        if (keep.dirty) again.value = keep.value;
        again.focus();
        if (keep.at !== null && keep.at !== undefined) again.setSelectionRange(keep.at, keep.at);
      }
    }
  }

  // ------------------------------------------------------------ edits from the canvas
  function selection() {
    return cy.$(":selected").map((e) => e.id());
  }
  function deleteSelection() {
    const ids = selection();
    if (ids.length) send({ type: "delete", ids });
  }
  cy.on("dragfree", "node", (e) => {
    const moved = e.target.selected() ? cy.$("node:selected") : e.target;
    send({ type: "move", moves: moved.map((n) => ({ id: n.id(), x: n.position("x"), y: n.position("y") })) });
  });
  cy.on("select unselect", () => {
    if (syncing) return;
    const ids = selection();
    const one = ids.length === 1 ? ids[0] : "";
    if (one !== model.get("selected")) {
      model.set("selected", one);
      model.save_changes();
    }
  });
  cy.on("tap", "node[kind = 'transition']", (e) => {
    if ((model.get("enabled") || []).includes(e.target.id())) send({ type: "fire", id: e.target.id() });
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
  const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
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
    if (ev.key === "Delete" || ev.key === "Backspace") deleteSelection();
    else if (ctrl && ev.key === "z") send({ type: "undo" });
    else if (ctrl && (ev.key === "y" || (ev.shiftKey && ev.key === "Z"))) send({ type: "redo" });
    else if (ctrl && ev.key === "c") send({ type: "copy", ids: selection() });
    else if (ctrl && ev.key === "v") send({ type: "paste" });
    else if (ctrl && ev.key === "a") cy.elements().select();
    else if (ev.key === "Escape") {
      if (drawing) {
        drawing = false;
        eh.stop();
      }
      menu.style.display = "none";
      cy.elements().unselect();
    } else if (arrow && !ctrl) nudge(arrow[0] * NUDGE * (ev.shiftKey ? 5 : 1), arrow[1] * NUDGE * (ev.shiftKey ? 5 : 1));
    else if (ev.key === "+" || ev.key === "=") zoomBy(1.25);
    else if (ev.key === "-") zoomBy(0.8);
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

  // connect by dragging from a handle (edgehandles 4 draws none itself)
  const eh = cy.edgehandles({
    canConnect: (s, t) => !s.same(t) && (mode() === "dag" || s.data("kind") !== t.data("kind")),
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
    const box = node.renderedBoundingBox({ includeLabels: false });
    handle.style.left = `${box.x2 - 5}px`;
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

  // right-click menu: delete, rename
  cy.on("cxttap", "node, edge", (e) => {
    const target = e.target;
    if (!target.selected()) {
      cy.elements().unselect();
      target.select();
    }
    menu.replaceChildren();
    const item = (label, fn) => {
      const b = el("div", "fx-menu-item", label);
      b.addEventListener("click", () => {
        menu.style.display = "none";
        fn();
      });
      menu.append(b);
    };
    item("Delete", deleteSelection);
    if (target.isNode()) {
      item("Rename…", () => {
        const name = window.prompt("New id", target.id());
        if (name && name !== target.id()) send({ type: "rename", id: target.id(), new: name });
      });
      item("Copy", () => send({ type: "copy", ids: selection() }));
    }
    const p = e.renderedPosition;
    menu.style.left = `${p.x}px`;
    menu.style.top = `${p.y}px`;
    menu.style.display = "block";
  });
  cy.on("tap", () => {
    menu.style.display = "none";
  });

  // ------------------------------------------------------------ messages and sync
  const showMessage = () => {
    const text = model.get("message");
    message.textContent = text;
    message.style.display = text ? "block" : "none";
  };
  model.on("change:status", () => {
    if (!statusFrame) statusFrame = requestAnimationFrame(drawStatus);
  });
  for (const name of ["graph", "issues", "enabled", "selected", "can_undo", "can_redo"]) {
    model.on(`change:${name}`, draw);
  }
  model.on("change:yaml_text", drawSide);
  model.on("change:message", showMessage);
  draw();
  showMessage();
  requestAnimationFrame(() => {
    cy.resize();
    cy.fit(undefined, 30);
  });

  return () => {
    window.removeEventListener("mouseup", stop);
    window.removeEventListener("mousemove", follow);
    document.removeEventListener("scroll", onScroll, true);
    themeWatch.disconnect();
    if (statusFrame) cancelAnimationFrame(statusFrame);
    minimap.destroy();
    eh.destroy();
    cy.destroy();
  };
}

export default { render };
