// The side panel: the selected node's or arc's fields, the design's problems, the YAML view
// and the legend of run states.
import { el } from "./dom.js";

// Enter commits a field (as leaving it does), Escape puts back what Python has and leaves it
export function editable(input, commit, root) {
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

function get(props, key) {
  let cur = props;
  for (const part of key.split(".")) {
    if (cur === undefined || cur === null) return undefined;
    cur = cur[part];
  }
  return cur;
}

function legend(theme) {
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

export function attachInspector(view) {
  const { model, root, side, send } = view;
  let yamlOpen = false;

  function field(target, key, value) {
    const row = el("label", "fx-field");
    row.append(el("span", "fx-key", key));
    const input = el("input", "fx-input");
    input.dataset.key = key;
    input.defaultValue = value === undefined || value === null ? "" : typeof value === "object" ? JSON.stringify(value) : String(value);
    editable(input, (v) => send({ type: "set", id: target, key, value: v }), root);
    row.append(input);
    return row;
  }

  function yamlView() {
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
    return [area, apply];
  }

  function draw() {
    // a redraw (Python synced something) must not take away a field being typed in
    const active = side.contains(document.activeElement) ? document.activeElement : null;
    const keep = active && { key: active.dataset.key, value: active.value, at: active.selectionStart, dirty: active.value !== active.defaultValue };
    side.replaceChildren();
    const g = model.get("graph") || { nodes: [], edges: [] };
    const issues = model.get("issues") || {};
    const sel = model.get("selected");
    const head = el("div", "fx-title", `${g.name || "design"} · ${view.mode() === "dag" ? "DAG" : "Petri net"}`);
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
      editable(idInput, (v) => send({ type: "rename", id: node.id, new: v.trim() }), root);
      idRow.append(idInput);
      side.append(el("div", "fx-kind", node.kind), idRow);
      for (const key of schema[node.kind] || []) side.append(field(node.id, key, get(node.props, key)));
    } else if (edge) {
      side.append(el("div", "fx-kind", view.mode() === "dag" ? "dependency" : "arc"), el("div", "fx-edge", `${edge.source} → ${edge.target}`));
      if (view.mode() === "net") for (const key of schema.arc || []) side.append(field(edge.id, key, get(edge.props, key)));
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
    if (yamlOpen) side.append(...yamlView());
    side.append(legend(view.theme()));
    if (keep && keep.key) {
      const again = side.querySelector(`[data-key="${CSS.escape(keep.key)}"]`);
      if (again) {
        if (keep.dirty) again.value = keep.value;
        again.focus();
        if (keep.at !== null && keep.at !== undefined) again.setSelectionRange(keep.at, keep.at);
      }
    }
  }

  return {
    draw,
    toggleYaml() {
      yamlOpen = !yamlOpen;
      draw();
    },
  };
}
