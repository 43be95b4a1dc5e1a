// A minimap for designs bigger than the view: the whole design in a corner, the view as a
// rectangle on it; click or drag on it to move the view. Shown only while part of the
// design is out of view.
const W = 160;
const H = 100;

export function attachMinimap(cy, container, theme) {
  const el = document.createElement("canvas");
  el.className = "fx-minimap";
  el.width = W * devicePixelRatio;
  el.height = H * devicePixelRatio;
  el.style.width = `${W}px`;
  el.style.height = `${H}px`;
  el.title = "minimap: click or drag to move the view";
  container.append(el);
  const ctx = el.getContext("2d");
  let frame = 0;
  let map = null; // model -> minimap transform of the last drawing

  function draw() {
    frame = 0;
    const nodes = cy.nodes().filter((n) => !n.hasClass("eh-ghost-node"));
    const bb = nodes.boundingBox({ includeLabels: false });
    const view = cy.extent();
    const outside = nodes.nonempty() && (bb.x1 < view.x1 || bb.y1 < view.y1 || bb.x2 > view.x2 || bb.y2 > view.y2);
    el.style.display = outside ? "block" : "none";
    if (!outside) return;
    const t = theme();
    const x1 = Math.min(bb.x1, view.x1);
    const y1 = Math.min(bb.y1, view.y1);
    const w = Math.max(bb.x2, view.x2) - x1;
    const h = Math.max(bb.y2, view.y2) - y1;
    const k = Math.min((W - 8) / w, (H - 8) / h);
    const ox = (W - w * k) / 2 - x1 * k;
    const oy = (H - h * k) / 2 - y1 * k;
    map = { k, ox, oy };
    ctx.setTransform(devicePixelRatio, 0, 0, devicePixelRatio, 0, 0);
    ctx.fillStyle = t.node;
    ctx.fillRect(0, 0, W, H);
    ctx.fillStyle = t.muted;
    nodes.forEach((n) => {
      const b = n.boundingBox({ includeLabels: false });
      ctx.fillRect(ox + b.x1 * k, oy + b.y1 * k, Math.max(2, b.w * k), Math.max(2, b.h * k));
    });
    ctx.strokeStyle = t.brand;
    ctx.lineWidth = 1.5;
    ctx.strokeRect(ox + view.x1 * k, oy + view.y1 * k, view.w * k, view.h * k);
  }
  const later = () => {
    if (!frame) frame = requestAnimationFrame(draw);
  };
  cy.on("pan zoom resize add remove position", later);

  function goTo(ev) {
    if (!map) return;
    const r = el.getBoundingClientRect();
    const x = (ev.clientX - r.left - map.ox) / map.k;
    const y = (ev.clientY - r.top - map.oy) / map.k;
    const z = cy.zoom();
    cy.pan({ x: cy.width() / 2 - x * z, y: cy.height() / 2 - y * z });
  }
  let dragging = false;
  const down = (ev) => {
    ev.preventDefault();
    ev.stopPropagation();
    dragging = true;
    goTo(ev);
  };
  const move = (ev) => dragging && goTo(ev);
  const up = () => {
    dragging = false;
  };
  el.addEventListener("mousedown", down);
  window.addEventListener("mousemove", move);
  window.addEventListener("mouseup", up);
  later();
  return {
    el,
    draw: later,
    destroy() {
      window.removeEventListener("mousemove", move);
      window.removeEventListener("mouseup", up);
      if (frame) cancelAnimationFrame(frame);
    },
  };
}
