// The side panel: the selected node's or arc's fields, typed (dropdowns for choices, numbers
// and durations checked as typed, defaults as placeholders, help per key, `with:` from the
// function's signature, grouped basics / resilience / advanced), its last run's attempts,
// the design's problems, the YAML view and the legend of run states.
import { el } from "./dom.js";

const GROUPS = ["basics", "resilience", "advanced"];
const DURATION = /^\s*(\d+(\.\d*)?|\.\d+)\s*$|^\s*((\d+(\.\d*)?|\.\d+)(us|µs|ms|s|m|h))+\s*$/;

// Enter commits a field (as leaving it does), Escape puts back what Python has and leaves it.
// `check` says what is wrong with a value (""/undefined: nothing): a wrong value is shown,
// not sent.
export function editable(input, commit, root, check) {
  const wrong = () => {
    const why = check ? check(input.value) : "";
    input.classList.toggle("fx-invalid", !!why);
    input.title = why || input.dataset.help || "";
    const note = input.parentElement && input.parentElement.querySelector(".fx-why");
    if (note) note.textContent = why || "";
    return why;
  };
  const send = () => {
    if (input.value !== input.defaultValue && !wrong()) {
      commit(input.value);
      input.defaultValue = input.value; // the blur that may follow sends nothing more
    }
  };
  input.addEventListener("input", wrong);
  input.addEventListener("change", send);
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") {
      ev.preventDefault();
      send();
    } else if (ev.key === "Escape") {
      ev.preventDefault();
      input.value = input.defaultValue;
      wrong();
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

const shown = (v) => (v === undefined || v === null ? "" : Array.isArray(v) && v.every((x) => typeof x === "string") ? v.join(", ") : typeof v === "object" ? JSON.stringify(v) : String(v));

// what is wrong with a typed value, by the field's kind ("" when it is fine or empty)
function checker(f) {
  if (!f) return undefined;
  if (f.kind === "int")
    return (v) => {
      if (!v.trim()) return "";
      if (!/^\s*-?\d+\s*$/.test(v)) return `${f.key} must be a whole number`;
      return f.minimum !== null && Number(v) < f.minimum ? `${f.key} must be at least ${f.minimum}` : "";
    };
  if (f.kind === "duration") return (v) => (!v.trim() || DURATION.test(v.replace(/ /g, "")) ? "" : `${f.key}: a duration like 250ms, 10s, 5m, 1h, 1m30s, or seconds`);
  return undefined;
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

function seconds(s) {
  return s === null || s === undefined ? "" : s < 1 ? `${Math.round(s * 1000)} ms` : `${s.toFixed(2)} s`;
}

// the selected step's attempts in the last run
function attemptsBox(details) {
  const box = el("div", "fx-attempts");
  box.append(el("div", "fx-group-title", "last run"));
  for (const a of details) {
    const row = el("div", `fx-attempt fx-attempt-${a.status}`);
    row.dataset.attempt = a.attempt;
    row.append(el("div", "fx-attempt-head", `#${a.attempt} ${a.status} · ${seconds(a.duration_s)}`));
    if (a.error_type) row.append(el("div", "fx-attempt-error", `${a.error_type}: ${a.error_message || ""}`));
    if (a.traceback) {
      const tb = el("details", "fx-traceback");
      tb.append(el("summary", "", "traceback"), el("pre", "", a.traceback));
      row.append(tb);
    }
    if (a.output !== undefined) row.append(el("pre", "fx-output", a.output));
    box.append(row);
  }
  return box;
}

export function attachInspector(view) {
  const { model, root, side, send } = view;
  let yamlOpen = false;
  let fields = {}; // per key: kind, choices, default, group, help (the bundle's `fields`)
  if (view.bundle) {
    fields = view.bundle.get("fields") || {};
    view.bundle.on("change:fields", () => {
      fields = view.bundle.get("fields") || {};
      draw();
    });
  }

  function row(key, help) {
    const r = el("label", "fx-field");
    r.dataset.field = key;
    const k = el("span", "fx-key", key);
    if (help) k.title = help;
    r.append(k);
    return r;
  }

  // one field of a node or an arc, by its kind
  function field(target, key, value, placeholder) {
    const f = fields[key];
    const r = row(key, f && f.help);
    const set = (v) => send({ type: "set", id: target, key, value: v });
    const def = placeholder !== undefined ? placeholder : f && f.default !== null && f.default !== undefined ? `default: ${f.default}` : "";
    if (f && f.kind === "choice") {
      const sel = el("select", "fx-input fx-select");
      sel.dataset.key = key;
      sel.append(Object.assign(el("option", "", def || "(not set)"), { value: "" }));
      for (const c of f.choices) sel.append(Object.assign(el("option", "", c), { value: c }));
      // a value no choice spells (on_error: {strategy: retry, fallback: skip}) stays shown
      if (shown(value) && !f.choices.includes(shown(value))) sel.append(Object.assign(el("option", "", shown(value)), { value: shown(value), disabled: true }));
      sel.value = shown(value);
      sel.addEventListener("change", () => set(sel.value));
      r.append(sel);
    } else if (f && f.kind === "activation") {
      r.append(activation(key, value, set));
    } else {
      const input = el("input", "fx-input");
      input.dataset.key = key;
      if (f) input.dataset.help = f.help;
      input.placeholder = def;
      input.defaultValue = shown(value);
      if (f && f.kind === "callable") input.setAttribute("list", functionList.id);
      editable(input, set, root, checker(f));
      r.append(input, el("div", "fx-why"));
    }
    if (f && f.help) r.append(el("div", "fx-help", f.help));
    return r;
  }

  // activation: a choice, and its argument for batch (N), window (a duration), custom
  function activation(key, value, set) {
    const box = el("span", "fx-activation");
    const kind = typeof value === "string" ? value : value && typeof value === "object" ? Object.keys(value).find((k) => ["batch", "window", "custom"].includes(k)) : "";
    const sel = el("select", "fx-input fx-select");
    sel.dataset.key = key;
    sel.append(Object.assign(el("option", "", "all (default)"), { value: "" }));
    for (const c of fields[key].choices) if (c !== "all" || kind === "all") sel.append(Object.assign(el("option", "", c), { value: c }));
    sel.value = kind || "";
    const arg = el("input", "fx-input fx-activation-arg");
    arg.dataset.key = `${key}.arg`;
    const args = { batch: "items per run, e.g. 10", window: "interval, e.g. 2s", custom: "module:function" };
    const argCheck = () => (sel.value === "batch" ? (v) => (/^\s*[1-9]\d*\s*$/.test(v) ? "" : "batch needs a whole number ≥ 1") : sel.value === "window" ? (v) => (DURATION.test(v.replace(/ /g, "")) ? "" : "window needs a duration like 2s") : undefined);
    const showArg = () => {
      arg.style.display = args[sel.value] ? "" : "none";
      arg.placeholder = args[sel.value] || "";
    };
    arg.defaultValue = kind && value && typeof value === "object" ? shown(value[kind]) : "";
    showArg();
    sel.addEventListener("change", () => {
      showArg();
      arg.value = "";
      if (!args[sel.value]) set(sel.value);
      else arg.focus();
    });
    editable(arg, (v) => set(`${sel.value} ${v.trim()}`), root, (v) => (argCheck() ? argCheck()(v) : ""));
    box.append(sel, arg, el("div", "fx-why"));
    return box;
  }

  // the function's parameters that no dependency fills, as `with.<name>` fields
  function signatureFields(node, deps) {
    const fns = model.get("functions") || [];
    const ref = (node.props && node.props.run) || node.id;
    const fn = fns.find((f) => f.name === ref);
    if (!fn) return [];
    const given = (node.props && node.props.with) || {};
    return fn.params
      .filter((p) => !deps.has(p.name))
      .map((p) => {
        const r = row(`with.${p.name}`, `${fn.signature}: ${p.required ? "required" : `default ${p.default}`}`);
        const input = el("input", "fx-input fx-param");
        input.dataset.key = `with.${p.name}`;
        input.placeholder = p.required ? "required" : `default: ${p.default}`;
        input.defaultValue = shown(given[p.name]);
        editable(input, (v) => send({ type: "set", id: node.id, key: `with.${p.name}`, value: v }), root);
        r.append(input);
        return r;
      });
  }

  function stepFields(node, g) {
    const keys = (model.get("schema") || {})[node.kind] || [];
    const deps = new Set(g.edges.filter((e) => e.target === node.id).map((e) => e.source));
    const boxes = {};
    const out = [];
    for (const group of GROUPS) {
      const box = el("details", "fx-group");
      box.dataset.group = group;
      box.append(el("summary", "fx-group-title", group));
      boxes[group] = box;
    }
    for (const key of keys) {
      const f = fields[key];
      const group = f ? f.group : "advanced";
      if (key === "with") boxes.basics.append(...signatureFields(node, deps));
      const value = get(node.props, key);
      boxes[group].append(field(node.id, key, value));
      if (value !== undefined && value !== null) boxes[group].open = true;
    }
    boxes.basics.open = true;
    for (const group of GROUPS) if (boxes[group].children.length > 1) out.push(boxes[group]);
    return out;
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

  const functionList = el("datalist");
  functionList.id = `fx-fns-${Math.random().toString(36).slice(2)}`;

  function draw() {
    // a redraw (Python synced something) must not take away a field being typed in
    const active = side.contains(document.activeElement) ? document.activeElement : null;
    const keep = active && { key: active.dataset.key, value: active.value, at: active.selectionStart, dirty: active.value !== active.defaultValue };
    const open = new Set([...side.querySelectorAll("details[open]")].map((d) => d.dataset.group || d.className));
    side.replaceChildren();
    functionList.replaceChildren(...(model.get("functions") || []).map((f) => Object.assign(el("option"), { value: f.name })));
    side.append(functionList);
    const g = model.get("graph") || { nodes: [], edges: [] };
    const issues = model.get("issues") || {};
    const sel = model.get("selected");
    const head = el("div", "fx-title", `${g.name || "design"} · ${view.mode() === "dag" ? "DAG" : "Petri net"}`);
    side.append(head);
    const node = g.nodes.find((n) => n.id === sel);
    const edge = g.edges.find((e) => e.id === sel);
    const schema = model.get("schema") || {};
    if (node) {
      const idRow = row("id");
      const idInput = el("input", "fx-input fx-rename");
      idInput.dataset.key = "id";
      idInput.defaultValue = node.id;
      editable(idInput, (v) => send({ type: "rename", id: node.id, new: v.trim() }), root);
      idRow.append(idInput);
      side.append(el("div", "fx-kind", node.kind), idRow);
      const details = model.get("details") || [];
      if (details.length) side.append(attemptsBox(details));
      if (node.kind === "step") side.append(...stepFields(node, g));
      else for (const key of schema[node.kind] || []) side.append(field(node.id, key, get(node.props, key)));
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
    for (const d of side.querySelectorAll("details")) if (open.has(d.dataset.group || d.className)) d.open = true;
    if (keep && keep.key) {
      const again = side.querySelector(`[data-key="${CSS.escape(keep.key)}"]`);
      if (again) {
        if (keep.dirty) again.value = keep.value;
        again.focus();
        if (keep.at !== null && keep.at !== undefined && again.setSelectionRange) again.setSelectionRange(keep.at, keep.at);
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
