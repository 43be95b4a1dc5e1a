// Drawing what Python syncs: the graph (nodes, arcs, issues, enabled transitions, the
// selection) and the live run status of each node.
import { ENABLED_ICON, tokenImage } from "./style.js";

export function attachGraph(view) {
  const { cy, model } = view;

  // what a node shows of a run: its state (icon + colour), attempts (a transition: how
  // often it fired), tokens, and ⚡ on a transition that can fire now. `name` is what the
  // node is called on the canvas: its display name (PNML <name>), else its id.
  function runData(name, kind, baseTokens, st, canFire) {
    const theme = view.theme();
    const tokens = st.tokens !== undefined ? st.tokens : baseTokens;
    let label = kind !== "place" && st.attempts > 1 ? `${name} ×${st.attempts}` : name;
    const look = st.state && theme.states[st.state];
    if (look) label = `${look.icon} ${label}`; // the state in a shape, not only a colour
    if (canFire) label = `${ENABLED_ICON} ${label}`;
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
        node.data(runData(node.data("name"), node.data("kind"), node.data("baseTokens"), st, node.hasClass("enabled")));
      }
    });
    shownStatus = status;
  }

  function draw() {
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
        const name = n.label || n.id;
        const data = { id: n.id, kind: n.kind, name, ...runData(name, n.kind, n.tokens, status[n.id] || {}, enabled.has(n.id)) };
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
      view.syncing = true; // our own (un)select events must not echo back to Python
      cy.elements().unselect();
      if (sel) cy.getElementById(sel).select();
      view.syncing = false;
    }
  }

  return {
    draw,
    statusChanged() {
      if (!statusFrame) statusFrame = requestAnimationFrame(drawStatus);
    },
    destroy() {
      if (statusFrame) cancelAnimationFrame(statusFrame);
    },
  };
}
