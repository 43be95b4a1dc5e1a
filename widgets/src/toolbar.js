// The toolbar: add buttons for the design's mode, undo/redo, delete, layout, zoom, run, YAML.
import { el } from "./dom.js";

export function attachToolbar(view) {
  const { cy, model, toolbar, send } = view;
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
  const centre = () => {
    const ext = cy.extent();
    return { x: (ext.x1 + ext.x2) / 2 + (Math.random() - 0.5) * 40, y: (ext.y1 + ext.y2) / 2 + (Math.random() - 0.5) * 40 };
  };
  const addButtons = el("span", "fx-palette");
  toolbar.append(addButtons);
  function drawAddButtons() {
    addButtons.replaceChildren();
    const kinds = view.mode() === "dag" ? [["step", "+ Step"]] : [["place", "+ Place"], ["transition", "+ Transition"]];
    for (const [kind, label] of kinds) {
      const b = el("button", `fx-btn fx-add-${kind}`, label);
      b.dataset.action = `add-${kind}`;
      b.title = `add a ${kind}`;
      b.addEventListener("click", () => send({ type: "add", kind, ...(view.selection().length ? {} : centre()) }));
      addButtons.append(b);
    }
  }
  button("undo", "↶ Undo", "undo (Ctrl+Z)", () => send({ type: "undo" }));
  button("redo", "↷ Redo", "redo (Ctrl+Y)", () => send({ type: "redo" }));
  button("delete", "✕ Delete", "delete the selection (Delete)", () => view.deleteSelection());
  button("layout", "⇶ Layout", "lay out left to right in layers, with few crossings", () => view.layout());
  button("zoom-in", "+", "zoom in (Ctrl+wheel)", () => view.zoomBy(1.25));
  button("zoom-out", "−", "zoom out (Ctrl+wheel)", () => view.zoomBy(0.8));
  button("fit", "⤢ Fit", "fit the design in view", () => cy.fit(undefined, 30));
  button("run", "▶ Run", "run the design (nets: then click an enabled transition to fire it)", () => {
    view.message.textContent = "running…"; // at once: the last run's message is stale now
    view.message.style.display = "block";
    send({ type: "run" });
  });
  button("export", "⬇ Export", "download the manifest (YAML), as a %%fluxroute cell or fluxnb run takes it", () => {
    const name = ((model.get("graph") || {}).name || "design").replace(/[^\w.-]+/g, "_");
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([model.get("yaml_text") || ""], { type: "application/x-yaml" }));
    a.download = `${name}.yaml`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  });
  button("yaml", "YAML", "show or edit the manifest", () => view.toggleYaml());

  return {
    draw() {
      buttons.undo.disabled = !model.get("can_undo");
      buttons.redo.disabled = !model.get("can_redo");
      drawAddButtons();
    },
  };
}
