// The designer outside a notebook (the JupyterLab extension's document editor): a model
// object with the small part of anywidget's model API the designer's modules use (get, set,
// on, off, send, save_changes), fed by whoever hosts it instead of a kernel's comm.
import designer from "./designer.js";

// change events per key, as anywidget's `change:name`, and `msg:custom` for messages
function emitter() {
  const handlers = new Map();
  return {
    on(event, fn) {
      if (!handlers.has(event)) handlers.set(event, new Set());
      handlers.get(event).add(fn);
    },
    off(event, fn) {
      handlers.get(event)?.delete(fn);
    },
    emit(event, ...args) {
      for (const fn of handlers.get(event) || []) fn(...args);
    },
  };
}

/** A model for the designer's view. `send(msg)` gets what the view sends (edits, undo, run...);
 * `onSet(name, value)` what it sets itself (the selection, the token game's speed). Push the
 * host's state with `update({graph, issues, ...})`: only keys whose value changed fire. */
export function hostModel({ send, onSet = () => {}, state = {} }) {
  const values = { height: 460, ...state };
  const events = emitter();
  const same = (a, b) => a === b || JSON.stringify(a) === JSON.stringify(b);
  return {
    get: (name) => values[name],
    set(name, value) {
      if (same(values[name], value)) return;
      values[name] = value;
      onSet(name, value);
      events.emit(`change:${name}`);
    },
    save_changes() {},
    on: events.on,
    off: events.off,
    send: (msg) => send(msg),
    /** Take the host's state: fire `change:<key>` for each key whose value changed. */
    update(state) {
      const changed = Object.keys(state).filter((k) => !same(values[k], state[k]));
      for (const k of changed) values[k] = state[k];
      for (const k of changed) events.emit(`change:${k}`);
    },
    /** A custom message from the host (e.g. {type: "select", ids}), as a kernel would send it. */
    message: (msg) => events.emit("msg:custom", msg),
  };
}

/** Draw the designer into `el` over a `hostModel`; `fields` are the step keys' fields the
 * inspector offers (per key: kind, choices, default, group, help). Returns the cleanup. */
export function mountDesigner(el, model, fields = {}) {
  const bundle = { get: (name) => (name === "fields" ? fields : undefined), on() {} };
  return designer.render({ model, el, bundle });
}
