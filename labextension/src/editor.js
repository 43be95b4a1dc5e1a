// A workflow file (*.flux.yaml, *.pnml) in a main-area tab, drawn by the designer's own view
// (widgets/src, through lab_host.js). The control plane's design session does what the
// kernel does for a notebook's designer (apply an edit, validate, undo) and answers the
// file's new text, which goes into the document's model: JupyterLab marks the tab dirty and
// Save writes it through the Contents API. Run registers the YAML and runs it through the
// API; the colours come from GET /stream.
import { ABCWidgetFactory, DocumentWidget } from "@jupyterlab/docregistry";
import { ToolbarButton } from "@jupyterlab/apputils";
import { Widget } from "@lumino/widgets";
import { hostModel, mountDesigner } from "../../widgets/src/lab_host.js";
import { ApiError, describe, request, subscribe } from "./api.js";

export const FACTORY = "fluxnb Designer";
// what only a kernel's designer does (its palette lists the kernel's functions; a net's
// token game fires in the kernel): in a file there is no kernel
const KERNEL_ONLY = new Set(["functions", "add_function", "fire", "game"]);

export const formatOf = (path) => (path.toLowerCase().endsWith(".pnml") ? "pnml" : "yaml");
export const stemOf = (path) =>
  (path.split("/").pop() || "design").replace(/\.(flux\.ya?ml|pnml|ya?ml)$/i, "").replace(/[^A-Za-z0-9_.-]+/g, "_") || "design";

export class DesignerPanel extends Widget {
  constructor(context, commands) {
    super();
    this.addClass("fluxnb-lab-editor");
    this.context = context;
    this.commands = commands;
    this.node.tabIndex = -1;
    this.queue = Promise.resolve();
    this.writing = false;
    this.runId = null;
    this.unsubscribe = null;
    void context.ready.then(() => this.start());
  }

  get format() {
    return formatOf(this.context.path);
  }

  /** Open a design session for the file's text and draw it. */
  async start() {
    let opened;
    try {
      opened = await this.openSession();
    } catch (err) {
      this.showError(err);
      return;
    }
    this.serverText = opened.text;
    this.model = hostModel({
      send: (msg) => this.send(msg),
      onSet: (name, value) => {
        if (name === "selected") this.send({ type: "select", id: value });
      },
      state: opened.state,
    });
    this.host = document.createElement("div");
    this.node.replaceChildren(this.host);
    this.cleanup = mountDesigner(this.host, this.model, opened.fields);
    this.fitView();
    this.context.model.contentChanged.connect(this.textChanged, this);
    this.ready = true;
  }

  async openSession() {
    const opened = await request("designs", {
      method: "POST",
      body: { text: this.context.model.toString(), format: this.format, name: stemOf(this.context.path) },
    });
    this.sid = opened.id;
    return opened;
  }

  showError(err) {
    const box = document.createElement("div");
    box.className = "fluxnb-lab-error";
    const title = document.createElement("h3");
    title.textContent = `Cannot draw ${this.context.path}`;
    const text = document.createElement("pre");
    text.textContent = err instanceof ApiError ? describe(err) : String(err);
    const button = document.createElement("button");
    button.className = "jp-Button jp-mod-styled jp-mod-accept";
    button.textContent = "Open as text";
    button.addEventListener("click", () =>
      this.commands.execute("docmanager:open", { path: this.context.path, factory: "Editor" }),
    );
    box.append(title, text, button);
    this.node.replaceChildren(box);
  }

  // ------------------------------------------------------------------ the view's messages
  send(msg) {
    if (msg.type === "run") return void this.run();
    if (KERNEL_ONLY.has(msg.type)) {
      if (msg.type !== "functions") this.say("that runs in a notebook's kernel: use fluxnb.Designer there");
      return;
    }
    this.queue = this.queue.then(() => this.post(msg));
  }

  async post(msg, retry = true) {
    try {
      this.take(await request(`designs/${this.sid}`, { method: "POST", body: msg }));
    } catch (err) {
      if (retry && err instanceof ApiError && err.status === 404) {
        // the server restarted or dropped the session: start again from the document's
        // text (what the tab shows, saved or not) and send the edit again
        try {
          await this.reopen();
          await this.post(msg, false);
          this.say("the design session was reopened from the file (undo starts over)");
        } catch (again) {
          this.say(describe(again));
        }
        return;
      }
      this.say(err instanceof ApiError ? describe(err) : String(err));
    }
  }

  /** A new session for the document's text as it is: drawn, but not written back. */
  async reopen() {
    const opened = await this.openSession();
    this.serverText = opened.text;
    this.take(opened);
  }

  /** The session's answer: the view's state, messages for it, and the file's new text. */
  take(answer) {
    this.model.update(answer.state);
    for (const m of answer.messages || []) this.model.message(m);
    if (answer.text != null && answer.text !== this.serverText) {
      this.serverText = answer.text;
      if (answer.text !== this.context.model.toString()) {
        this.writing = true;
        try {
          // an edit as the text editor makes one: the document turns dirty, Save writes it
          const shared = this.context.model.sharedModel;
          shared.updateSource(0, shared.getSource().length, answer.text);
          this.context.model.dirty = true;
        } finally {
          this.writing = false;
        }
      }
    }
  }

  /** The file changed under us (revert, a reload from disk): draw the new text. */
  textChanged() {
    if (this.writing || !this.ready) return;
    clearTimeout(this.reread);
    this.reread = setTimeout(() => {
      if (this.context.model.toString() === this.serverText) return;
      // a new session: the reloaded file is not rewritten (nor marked dirty) by drawing it
      this.queue = this.queue.then(() => this.reopen().catch((err) => this.say(describe(err))));
    }, 200);
  }

  say(message) {
    if (this.model) this.model.update({ message });
  }

  // ------------------------------------------------------------------ validate and run
  name() {
    return (this.model.get("graph") || {}).name || stemOf(this.context.path);
  }

  /** POST /workflows/{name}/validate with the design's manifest (callables by import). */
  async validate() {
    if (!this.model) return;
    await this.queue;
    try {
      const r = await request(`workflows/${encodeURIComponent(this.name())}/validate`, {
        method: "POST",
        body: { manifest: this.model.get("yaml_text") },
      });
      this.say(`✓ ${r.kind} '${r.name}' is valid: the control plane can run it`);
      return true;
    } catch (err) {
      this.say(`✗ ${describe(err)}`);
      return false;
    }
  }

  /** Register the YAML (PUT /workflows/{name}), start a run, colour it from the stream. */
  async run() {
    if (!this.model) return;
    await this.queue;
    const name = this.name();
    const graph = this.model.get("graph") || { nodes: [] };
    try {
      this.say(`registering ${name}…`);
      await request(`workflows/${encodeURIComponent(name)}`, { method: "PUT", body: { manifest: this.model.get("yaml_text") } });
      this.status = {};
      for (const n of graph.nodes) if (n.kind !== "place") this.status[n.id] = { state: "pending", attempts: 0 };
      if (!this.unsubscribe) this.unsubscribe = subscribe((ev) => this.heard(ev));
      const started = await request(`workflows/${encodeURIComponent(name)}/runs`, { method: "POST", body: {} });
      this.runId = started.run_id;
      this.node.dataset.runId = this.runId;
      this.model.update({ status: { ...this.status } });
      this.say(`run ${this.runId}: ${started.status} (see it in the Runs panel)`);
      for (const ev of this.early || []) this.heard(ev);
      this.early = [];
    } catch (err) {
      this.say(`cannot run ${name}: ${describe(err)}`);
    }
  }

  heard(ev) {
    if (!ev.run_id) return;
    if (!this.runId) {
      (this.early ||= []).push(ev); // the stream may tell before POST answers
      return;
    }
    if (ev.run_id !== this.runId) return;
    if (ev.type === "step.status") {
      const old = this.status[ev.step] || {};
      this.status[ev.step] = { state: ev.status, attempts: Math.max(ev.attempt || 0, old.attempts || 0) };
      this.model.update({ status: { ...this.status } });
    } else if (ev.type === "run.started") {
      this.say(`run ${this.runId}: running`);
    } else if (ev.type === "run.finished" || ev.type === "run.rejected") {
      this.say(`run ${this.runId}: ${ev.status || ev.type}`);
      this.node.dataset.runStatus = ev.status || "rejected";
    }
  }

  onResize() {
    this.fitView();
  }

  onAfterShow() {
    this.fitView();
  }

  /** Follow the tab's size; the first time it has one, fit the design in view. */
  fitView() {
    const cy = this.host && this.host.fluxnb && this.host.fluxnb.cy;
    if (!cy) return;
    requestAnimationFrame(() => {
      cy.resize();
      if (!this.fitted && cy.width() > 0 && cy.height() > 0) {
        this.fitted = true;
        cy.fit(undefined, 30);
      }
    });
  }

  dispose() {
    if (this.isDisposed) return;
    if (this.unsubscribe) this.unsubscribe();
    if (this.cleanup) this.cleanup();
    if (this.sid) void request(`designs/${this.sid}`, { method: "DELETE" }).catch(() => {});
    super.dispose();
  }
}

export class DesignerFactory extends ABCWidgetFactory {
  constructor(options, commands) {
    super(options);
    this.commands = commands;
  }

  createNewWidget(context) {
    const content = new DesignerPanel(context, this.commands);
    const widget = new DocumentWidget({ content, context });
    widget.addClass("fluxnb-lab-document");
    widget.toolbar.addItem("fluxnb-validate", new ToolbarButton({
      label: "Validate",
      tooltip: "check the workflow as the control plane would run it (callables by import)",
      className: "fluxnb-lab-validate",
      onClick: () => void content.validate(),
    }));
    widget.toolbar.addItem("fluxnb-run", new ToolbarButton({
      label: "Run",
      tooltip: "register this workflow and run it through the control plane",
      className: "fluxnb-lab-run",
      onClick: () => void content.run(),
    }));
    return widget;
  }
}
