// The Runs panel (left sidebar): recent runs across the namespaces the user may read
// (GET /runs), live from GET /stream, filtered by workflow, status and tenant; a click shows
// the run's steps, error and timeline (GET /runs/{id}, /runs/{id}/timeline.svg), with
// Cancel / Replay / Resume where the user's role allows them (GET /whoami; the API checks
// again: a viewer's request is refused whatever the page shows).
import { MainAreaWidget } from "@jupyterlab/apputils";
import { Widget } from "@lumino/widgets";
import { describe, request, subscribe } from "./api.js";

const STATUSES = ["", "queued", "running", "succeeded", "failed", "cancelled", "interrupted"];
const ACTING = new Set(["operator", "admin"]); // what Action.RUN/REPLAY/RESUME need
const LIVE = new Set(["queued", "running", "cancelling"]);

const h = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

function input(label, name, choices) {
  const wrap = h("label", "fluxnb-runs-filter");
  wrap.append(h("span", "", label));
  let field;
  if (choices) {
    field = h("select", "jp-mod-styled");
    for (const c of choices) field.append(Object.assign(h("option", "", c || "any"), { value: c }));
  } else {
    field = h("input", "jp-mod-styled");
    field.placeholder = "any";
  }
  field.name = name;
  field.setAttribute("aria-label", `filter by ${name}`);
  wrap.append(field);
  return [wrap, field];
}

export class RunsPanel extends Widget {
  constructor(shell) {
    super();
    this.shell = shell;
    this.timelines = new Map();
    this.id = "fluxnb-runs";
    this.addClass("fluxnb-runs");
    this.title.caption = "fluxnb runs";
    this.selected = null;
    this.role = null;
    const head = h("div", "fluxnb-runs-head");
    head.append(h("h2", "", "Runs"));
    const refresh = h("button", "jp-Button jp-mod-minimal fluxnb-runs-refresh", "⟳");
    refresh.title = "refresh";
    refresh.setAttribute("aria-label", "refresh the runs");
    refresh.addEventListener("click", () => this.refresh());
    head.append(refresh);
    const filters = h("div", "fluxnb-runs-filters");
    const [w, workflow] = input("workflow", "workflow");
    const [s, status] = input("status", "status", STATUSES);
    const [t, tenant] = input("tenant", "tenant");
    filters.append(w, s, t);
    this.filters = { workflow, status, tenant };
    for (const f of Object.values(this.filters)) f.addEventListener("change", () => this.refresh());
    this.who = h("div", "fluxnb-runs-who");
    this.list = h("ul", "fluxnb-runs-list");
    this.list.setAttribute("role", "listbox");
    this.list.setAttribute("aria-label", "recent runs");
    this.detail = h("div", "fluxnb-runs-detail");
    this.error = h("div", "fluxnb-runs-error");
    this.triggers = h("div", "fluxnb-triggers");
    this.node.append(head, this.who, filters, this.error, this.list, this.detail, this.triggers);
  }

  // only while the panel is open: a closed one costs the server nothing
  onAfterShow() {
    if (!this.unsubscribe) this.unsubscribe = subscribe((ev) => this.heard(ev));
    if (!this.role) void this.whoami();
    void this.refresh();
  }

  onAfterHide() {
    this.stopListening();
  }

  stopListening() {
    if (this.unsubscribe) this.unsubscribe();
    this.unsubscribe = null;
  }

  dispose() {
    this.stopListening();
    super.dispose();
  }

  async whoami() {
    try {
      const me = await request("whoami");
      this.role = me.role;
      this.who.textContent = `${me.user} · ${me.role} · ${(me.namespaces || [me.namespace]).join(", ")}`;
      this.node.dataset.role = me.role;
    } catch (err) {
      this.role = "none";
      this.who.textContent = describe(err);
    }
  }

  heard(ev) {
    if (ev.type === "firing" || ev.type === "trigger_error") void this.refreshTriggers();
    if (!ev.run_id) return;
    if (ev.run_id === this.selected) this.selectedHeard = true;
    clearTimeout(this.soon); // a run sends many events: refresh once they pause
    this.soon = setTimeout(() => {
      void this.refresh();
      if (this.selectedHeard && this.selected) void this.showRun(this.selected);
      this.selectedHeard = false;
    }, 300);
  }

  async refresh() {
    const query = new URLSearchParams({ limit: "50" });
    for (const [k, f] of Object.entries(this.filters)) if (f.value.trim()) query.set(k, f.value.trim());
    const asked = (this.runsAsked = (this.runsAsked || 0) + 1);
    try {
      const { runs } = await request(`runs?${query}`);
      if (asked !== this.runsAsked) return; // a later answer is coming: this one is stale
      this.error.textContent = "";
      this.draw(runs);
      void this.refreshTriggers();
    } catch (err) {
      this.error.textContent = describe(err);
    }
  }

  draw(runs) {
    // a live refresh must not take the keyboard away: the focused run keeps the focus
    const active = document.activeElement;
    const focused = this.list.contains(active) ? active.dataset.runId : null;
    this.list.replaceChildren();
    if (!runs.length) this.list.append(h("li", "fluxnb-runs-empty", "no runs yet"));
    for (const run of runs) {
      const li = h("li", `fluxnb-run fluxnb-status-${run.status}`);
      li.dataset.runId = run.run_id;
      li.tabIndex = 0;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", String(run.run_id === this.selected));
      li.append(h("span", "fluxnb-run-status", run.status), h("span", "fluxnb-run-workflow", run.workflow),
        h("span", "fluxnb-run-when", (run.started_at || "").replace("T", " ").slice(0, 19)));
      li.title = `${run.run_id} · ${run.namespace || "default"}${run.tenant ? ` · ${run.tenant}` : ""}`;
      const open = () => void this.showRun(run.run_id);
      li.addEventListener("click", open);
      li.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") {
          ev.preventDefault();
          open();
        } else if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
          ev.preventDefault();
          (ev.key === "ArrowDown" ? li.nextElementSibling : li.previousElementSibling)?.focus();
        }
      });
      this.list.append(li);
      if (run.run_id === focused) li.focus();
    }
  }

  async showRun(runId) {
    this.selected = runId;
    for (const li of this.list.children) li.setAttribute("aria-selected", String(li.dataset.runId === runId));
    const asked = (this.runAsked = (this.runAsked || 0) + 1);
    let run;
    try {
      run = await request(`runs/${encodeURIComponent(runId)}`);
    } catch (err) {
      if (asked === this.runAsked) this.detail.replaceChildren(h("div", "fluxnb-runs-error", describe(err)));
      return;
    }
    if (asked !== this.runAsked) return; // another run was clicked, or a later answer comes
    const box = h("div", "fluxnb-run-detail");
    box.dataset.runId = runId;
    box.append(h("h3", "", `${run.workflow} · ${run.status}`), h("div", "fluxnb-run-id", run.run_id));
    if (run.error) box.append(h("pre", "fluxnb-run-error", run.error));
    const actions = h("div", "fluxnb-run-actions");
    if (ACTING.has(this.role)) {
      if (LIVE.has(run.status)) actions.append(this.action("cancel", "Cancel", runId));
      else {
        actions.append(this.action("replay", "Replay", runId));
        if (run.status !== "succeeded") actions.append(this.action("resume", "Resume", runId));
      }
    }
    box.append(actions);
    const table = h("table", "fluxnb-run-steps");
    const head = h("tr");
    for (const c of ["step", "status", "tries", "s"]) head.append(h("th", "", c));
    table.append(head);
    for (const s of run.steps || []) {
      const tr = h("tr", `fluxnb-status-${s.status}`);
      tr.append(h("td", "", s.step), h("td", "", s.status), h("td", "", String(s.attempts ?? "")),
        h("td", "", s.duration_s == null ? "" : s.duration_s.toFixed(3)));
      table.append(tr);
      if (s.error_message) {
        const err = h("tr", "fluxnb-run-step-error");
        const td = h("td", "", `${s.error_type || "error"}: ${s.error_message}`);
        td.colSpan = 4;
        err.append(td);
        table.append(err);
      }
    }
    box.append(table);
    const timeline = h("div", "fluxnb-run-timeline");
    box.append(timeline);
    this.detail.replaceChildren(box);
    if (!LIVE.has(run.status)) void this.timeline(runId, timeline);
  }

  async timeline(runId, where) {
    try {
      const svg = await request(`runs/${encodeURIComponent(runId)}/timeline.svg`, { as: "text" });
      const img = h("img", "fluxnb-run-timeline-img");
      img.alt = `timeline of run ${runId}`;
      // an <img> never runs what an SVG might carry
      img.src = URL.createObjectURL(new Blob([svg], { type: "image/svg+xml" }));
      img.tabIndex = 0;
      img.title = "open the timeline in a tab";
      const open = () => this.openTimeline(runId, svg);
      img.addEventListener("click", open);
      img.addEventListener("keydown", (ev) => ev.key === "Enter" && open());
      where.replaceChildren(img);
    } catch (err) {
      where.textContent = describe(err);
    }
  }

  // ------------------------------------------------------------------ triggers
  async refreshTriggers() {
    const asked = (this.triggersAsked = (this.triggersAsked || 0) + 1);
    let triggers;
    try {
      ({ triggers } = await request("triggers"));
      if (asked !== this.triggersAsked) return; // a later answer is coming: this one is stale
    } catch (err) {
      this.triggers.replaceChildren(h("div", "fluxnb-runs-error", describe(err)));
      return;
    }
    const title = h("h2", "", "Triggers");
    const list = h("ul", "fluxnb-trigger-list");
    if (!triggers.length) list.append(h("li", "fluxnb-runs-empty", "no triggers"));
    for (const t of triggers) {
      const li = h("li", "fluxnb-trigger");
      li.dataset.triggerId = t.id;
      const when = t.paused ? "paused" : t.next_fire ? `next ${t.next_fire.replace("T", " ").slice(0, 16)}` : t.kind;
      li.append(h("span", "fluxnb-trigger-id", `${t.id} → ${t.workflow}`), h("span", "fluxnb-trigger-when", when));
      const last = t.last_outcome ? `last: ${t.last_outcome}${t.last_fired_at ? ` ${t.last_fired_at.replace("T", " ").slice(0, 19)}` : ""}` : "never fired";
      li.append(h("span", "fluxnb-trigger-last", t.last_error ? `${last} · ${t.last_error}` : last));
      if (ACTING.has(this.role)) {
        const actions = h("span", "fluxnb-trigger-actions");
        const verb = t.paused ? "resume" : "pause";
        actions.append(this.button(`fluxnb-trigger-${verb}`, t.paused ? "Resume" : "Pause", () =>
          request(`triggers/${encodeURIComponent(t.id)}/${verb}`, { method: "POST", body: {} })));
        actions.append(this.button("fluxnb-trigger-fire", "Fire now", () =>
          request(`triggers/${encodeURIComponent(t.id)}/fire`, { method: "POST", body: {} })));
        li.append(actions);
      }
      list.append(li);
    }
    this.triggers.replaceChildren(title, list);
  }

  /** A button that runs `act` once per click, says why it failed, then `after()`. */
  button(cls, label, act, after = () => void this.refreshTriggers()) {
    const b = h("button", `jp-Button jp-mod-styled ${cls}`, label);
    b.addEventListener("click", async () => {
      b.disabled = true;
      try {
        await act();
      } catch (err) {
        this.error.textContent = describe(err);
      }
      after();
    });
    return b;
  }

  /** The timeline at full size in a main-area tab. */
  openTimeline(runId, svg) {
    const id = `fluxnb-timeline-${runId}`;
    const open = this.timelines.get(id);
    if (open && !open.isDisposed) this.shell.activateById(id);
    else {
      const content = new Widget();
      content.addClass("fluxnb-timeline");
      const img = h("img", "fluxnb-timeline-full");
      img.alt = `timeline of run ${runId}`;
      img.src = URL.createObjectURL(new Blob([svg], { type: "image/svg+xml" }));
      content.node.append(img);
      const tab = new MainAreaWidget({ content });
      tab.id = id;
      tab.title.label = `timeline ${runId.slice(-8)}`;
      tab.title.caption = `run ${runId}`;
      tab.title.closable = true;
      tab.disposed.connect(() => URL.revokeObjectURL(img.src));
      this.timelines.set(id, tab);
      this.shell.add(tab, "main");
      this.shell.activateById(id);
    }
  }

  action(verb, label, runId) {
    const act = async () => {
      const r = await request(`runs/${encodeURIComponent(runId)}/${verb}`, { method: "POST", body: {} });
      this.error.textContent = `${label}: ${r.status || "done"}${r.run_id && r.run_id !== runId ? ` (run ${r.run_id})` : ""}`;
    };
    return this.button(`fluxnb-run-${verb}`, label, act, () => {
      void this.refresh();
      void this.showRun(runId);
    });
  }

}
