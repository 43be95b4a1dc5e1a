// The palette: the notebook's functions (Python sends them in `functions`), with a search
// box. Drag one onto the canvas (or click it) and Python makes a step running it, connected
// by its parameters' names, in free space. An empty design shows a hint instead.
import { el } from "./dom.js";

const DRAG_PX = 4; // a press that moves less than this is a click

export function attachPalette(view) {
  const { model, canvas, cy, send } = view;
  const panel = el("div", "fx-functions");
  const head = el("div", "fx-functions-head", "Functions");
  const search = el("input", "fx-input fx-function-search");
  search.type = "search";
  search.placeholder = "search…";
  search.dataset.key = "function-search";
  const list = el("div", "fx-function-list");
  panel.append(head, search, list);
  view.body.prepend(panel);
  const hint = el("div", "fx-empty-hint");
  canvas.append(hint);

  search.addEventListener("input", drawList);
  search.addEventListener("focus", () => send({ type: "functions" })); // any defined since
  search.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") {
      ev.preventDefault();
      const first = list.querySelector(".fx-function");
      if (first) send({ type: "add_function", name: first.dataset.name });
    } else if (ev.key === "Escape") {
      search.value = "";
      drawList();
      view.root.focus();
    }
  });

  function drawList() {
    const q = search.value.trim().toLowerCase();
    const fns = model.get("functions") || [];
    list.replaceChildren();
    for (const f of fns) {
      if (q && !f.name.toLowerCase().includes(q) && !(f.doc || "").toLowerCase().includes(q)) continue;
      const item = el("div", "fx-function");
      item.dataset.name = f.name;
      item.title = `${f.signature}${f.doc ? "\n" + f.doc : ""}\ndrag onto the canvas, or click: a step running it`;
      item.append(el("span", "fx-function-name", f.name), el("span", "fx-function-params", `(${f.params.map((p) => p.name).join(", ")})`));
      item.addEventListener("mousedown", (ev) => press(ev, f.name));
      item.tabIndex = 0; // Tab reaches it, Enter adds it (next to the selection)
      item.setAttribute("role", "button");
      item.addEventListener("keydown", (ev) => {
        if (ev.key !== "Enter" && ev.key !== " ") return;
        ev.preventDefault();
        send({ type: "add_function", name: f.name });
      });
      list.append(item);
    }
    if (!list.children.length) list.append(el("div", "fx-hint", fns.length ? "no function matches" : "define functions in the notebook: they show here"));
  }

  // a drag from the list: a ghost follows the pointer; released over the canvas, the step
  // lands there (Python finds the free spot nearest to it)
  let drag = null;
  function press(ev, name) {
    if (ev.button !== 0) return;
    ev.preventDefault();
    drag = { name, x0: ev.clientX, y0: ev.clientY, ghost: null };
  }
  const move = (ev) => {
    if (!drag) return;
    if (!drag.ghost && Math.hypot(ev.clientX - drag.x0, ev.clientY - drag.y0) < DRAG_PX) return;
    if (!drag.ghost) {
      drag.ghost = el("div", "fx-ghost", drag.name);
      document.body.append(drag.ghost);
    }
    drag.ghost.style.left = `${ev.clientX + 8}px`;
    drag.ghost.style.top = `${ev.clientY + 8}px`;
  };
  const release = (ev) => {
    if (!drag) return;
    const { name, ghost } = drag;
    drag = null;
    if (!ghost) {
      send({ type: "add_function", name }); // a click: next to the selection
      return;
    }
    ghost.remove();
    const r = canvas.getBoundingClientRect();
    if (ev.clientX < r.left || ev.clientX > r.right || ev.clientY < r.top || ev.clientY > r.bottom) return;
    const pan = cy.pan();
    const zoom = cy.zoom();
    send({ type: "add_function", name, x: (ev.clientX - r.left - pan.x) / zoom, y: (ev.clientY - r.top - pan.y) / zoom });
    view.root.focus();
  };
  window.addEventListener("mousemove", move);
  window.addEventListener("mouseup", release);

  function draw() {
    const g = model.get("graph") || { nodes: [] };
    const dag = view.mode() === "dag";
    panel.style.display = dag ? "" : "none";
    hint.style.display = g.nodes.length ? "none" : "block";
    hint.textContent = dag
      ? "Empty design. Drag a function from the list on the left onto the canvas: it becomes a step, connected to the steps its parameters name. Or press + Step."
      : "Empty net. Press + Place and + Transition, then drag from a node's blue handle to connect.";
    drawList();
  }

  return {
    draw,
    destroy() {
      window.removeEventListener("mousemove", move);
      window.removeEventListener("mouseup", release);
      if (drag && drag.ghost) drag.ghost.remove();
    },
  };
}
