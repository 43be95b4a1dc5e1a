// The control plane (fluxnb.server, /fluxnb/api/v1/) as the extension calls it: JSON requests
// through JupyterLab's ServerConnection (its token and XSRF cookie), and one shared
// EventSource on GET /stream for every listener (the browser resumes it with Last-Event-ID).
import { URLExt } from "@jupyterlab/coreutils";
import { ServerConnection } from "@jupyterlab/services";

const settings = ServerConnection.makeSettings();

// (not URLExt.join: it would mangle a query string)
export const apiUrl = (path) => `${URLExt.join(settings.baseUrl, "fluxnb/api/v1")}/${path}`;

/** An error answer of the API: `status`, `kind`, a message for people, located `problems`. */
export class ApiError extends Error {
  constructor(status, kind, message, problems = []) {
    super(message);
    this.status = status;
    this.kind = kind;
    this.problems = problems;
  }
}

/** `await request("runs?limit=20")`, `request("designs", {method: "POST", body: {...}})`;
 * `as: "text"` for a non-JSON answer (the timeline's SVG). */
export async function request(path, { method = "GET", body, as = "json" } = {}) {
  const init = { method };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { "Content-Type": "application/json" };
  }
  let response;
  try {
    response = await ServerConnection.makeRequest(apiUrl(path), init, settings);
  } catch (err) {
    throw new ApiError(0, "NetworkError", `the server cannot be reached: ${err.message || err}`);
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  if (as === "json" || !response.ok) {
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const e = (data && data.error) || {};
    const hint = response.status === 404 && !e.kind ? " (is fluxnb's server extension enabled? pip install 'fluxnb[lab]')" : "";
    throw new ApiError(response.status, e.kind || "HTTPError", (e.message || `${response.status} ${response.statusText}`) + hint, e.problems || []);
  }
  return as === "json" ? data : text;
}

/** "message (line 4, column 3: ...)" for an ApiError's located problems. */
export function describe(err) {
  const located = (err.problems || [])
    .slice(0, 5)
    .map((p) => (p.line ? `line ${p.line}${p.column ? `:${p.column}` : ""} ` : "") + (p.message || p.kind));
  return located.length && !String(err.message).includes(located[0]) ? `${err.message}\n${located.join("\n")}` : String(err.message);
}

// ------------------------------------------------------------------ the live stream
const EVENTS = ["run.started", "step.status", "run.finished", "run.rejected", "breaker.changed",
  "net.created", "net.firing", "firing", "trigger_error"];
const listeners = new Set();
let source = null;

/** Hear every event of GET /stream the user may read; returns the unsubscribe. */
export function subscribe(fn) {
  listeners.add(fn);
  if (!source) {
    let url = apiUrl("stream");
    if (settings.token) url += `?token=${encodeURIComponent(settings.token)}`;
    source = new EventSource(url, { withCredentials: true });
    for (const type of EVENTS) {
      source.addEventListener(type, (ev) => {
        let data;
        try {
          data = JSON.parse(ev.data);
        } catch {
          return;
        }
        for (const listener of [...listeners]) listener(data);
      });
    }
  }
  return () => {
    listeners.delete(fn);
    if (!listeners.size && source) {
      source.close();
      source = null;
    }
  };
}
