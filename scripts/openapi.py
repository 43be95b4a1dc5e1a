"""Writes fluxnb/server/openapi.json, the OpenAPI 3.1 document of the control plane.

    python scripts/openapi.py          # rewrite it, and the routes table of docs/server.md
    python scripts/openapi.py --check  # exit 1 if either differs (the tests check both)

The document is data, kept here as Python so that shared shapes are written once.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "fluxnb" / "server" / "openapi.json"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(kind: str | list[str]) -> dict[str, Any]:
    kinds = [kind] if isinstance(kind, str) else kind
    return {"type": [*kinds, "null"]}


def obj(props: dict[str, Any], required: tuple[str, ...] = (), extra: bool = True) -> dict:
    out: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        out["required"] = list(required)
    if not extra:
        out["additionalProperties"] = False
    return out


def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "400": "the body is not JSON, or the manifest is invalid (located problems)",
    "403": "not authenticated, or the caller's role or namespace may not do this",
    "404": "no such thing in the namespaces the caller can read (the same whether it exists "
    "elsewhere or not)",
    "409": "conflict: the run is not in a state that allows this, the id is taken",
    "413": "the body is larger than c.FluxnbServer.max_body_bytes",
    "422": "a value in the request is invalid (the callable cannot be imported, a bad field)",
    "503": "every worker is busy, the worker holding it ended, or the store is locked",
}


def responses(ok: dict[str, Any], *codes: str) -> dict[str, Any]:
    out = dict(ok)
    for code in ("403", *codes):
        out[code] = {"$ref": f"#/components/responses/E{code}"}
    return out


NAME = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$"}


def path_param(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": NAME}  # fmt: skip


def query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}  # fmt: skip


NAMESPACE = query("namespace", "act in this one of the caller's namespaces (default: its first)")


def op(summary: str, resource: str, ok: dict[str, Any], *codes: str, **more: Any) -> dict:
    codes = tuple(dict.fromkeys((*codes, "422")))  # ?namespace= may be an invalid name
    out = {"summary": summary, "x-fluxnb-resource": resource, "parameters": [NAMESPACE],
           "responses": responses(ok, *codes)}  # fmt: skip
    if "parameters" in more:
        out["parameters"] = [*more.pop("parameters"), NAMESPACE]
    out.update(more)
    return out


def ok(code: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {code: json_body(schema, description)}


FRAME = obj(
    {"columns": {"type": "array", "items": {"type": "string"}},
     "rows": {"type": "array", "items": {"type": "object"}},
     "truncated": {"type": "boolean"}},
    ("columns", "rows"),
)  # fmt: skip

SCHEMAS: dict[str, Any] = {
    "Error": obj(
        {"error": obj(
            {"kind": {"type": "string"}, "message": {"type": "string"},
             "problems": {"type": "array", "items": ref("Problem")}},
            ("kind", "message", "problems"),
        )},
        ("error",),
    ),
    "Problem": obj(
        {"kind": {"type": "string"}, "path": {"type": "string"},
         "message": {"type": "string"}, "line": nullable("integer"),
         "column": nullable("integer"), "expected": nullable("string"),
         "found": {}, "suggestion": nullable("string")},
        ("kind", "path", "message"),
    ),
    "Workflow": obj(
        {"name": {"type": "string"}, "namespace": {"type": "string"},
         "version": {"type": "integer", "minimum": 1},
         "kind": {"enum": ["workflow", "net"]}, "manifest_hash": {"type": "string"},
         "created_at": {"type": "string"}, "created_by": nullable("string"),
         "created": {"type": "boolean"}, "manifest": {"type": "string"}},
        ("name", "namespace", "version", "kind", "manifest_hash"),
    ),
    "Step": obj(
        {"step": {"type": "string"}, "status": {"type": "string"},
         "attempts": {"type": "integer"}, "final": nullable("boolean"),
         "duration_s": nullable("number"), "error_type": nullable("string"),
         "error_message": nullable("string"),
         "output": {"description": "the output when recorded as JSON (at most 64 KiB)"}},
        ("step", "status"),
    ),
    "Run": obj(
        {"run_id": {"type": "string"}, "workflow": {"type": "string"},
         "namespace": nullable("string"), "tenant": nullable("string"),
         "status": {"enum": ["queued", "running", "succeeded", "failed", "cancelled",
                             "interrupted", "rejected"]},
         "started_at": nullable("string"), "ended_at": nullable("string"),
         "duration_s": nullable("number"), "step_count": nullable("integer"),
         "steps": {"type": "array", "items": ref("Step"),
                   "description": "GET /runs/{run_id} only"},
         "error": nullable("string"), "seed": nullable("integer"),
         "resumed": nullable("integer"), "version": nullable("integer")},
        ("run_id", "workflow", "status"),
    ),
    "Event": obj(
        {"seq": {"type": "integer"}, "step": {"type": "string"},
         "attempt": {"type": "integer"}, "status": {"type": "string"},
         "final": {"type": "boolean"}, "started_at": nullable("string"),
         "ended_at": nullable("string"), "duration_s": nullable("number"),
         "delay_s": nullable("number"), "error_type": nullable("string"),
         "error_message": nullable("string"), "executor": nullable("string"),
         "worker": nullable("string")},
        ("seq", "step", "attempt", "status"),
    ),
    "Instance": obj(
        {"instance_id": {"type": "string"}, "net": {"type": "string"},
         "namespace": {"type": "string"}, "status": {"type": "string"},
         "marking": {"type": "object", "additionalProperties": {"type": "integer"}},
         "tokens": {"type": "object"},
         "enabled": {"type": "array", "items": {"type": "string"}},
         "history": {"type": "array", "items": obj(
             {"seq": {"type": "integer"}, "transition": {"type": "string"},
              "status": {"type": "string"}}, ("seq", "transition", "status"))}},
        ("instance_id", "net", "namespace", "status", "marking", "enabled", "history"),
    ),
    "Frame": FRAME,
}  # fmt: skip

RUN_OPTIONS = obj(
    {"params": {"type": "object"}, "tenant": {"type": "string"},
     "executor": {"enum": ["local", "dask"]},
     "seed": {"type": "integer", "minimum": 0}, "run_id": NAME},
    extra=False,
)  # fmt: skip
MANIFEST = obj({"manifest": {"type": "string", "minLength": 1}}, ("manifest",))

W = "fluxnb:workflows"
R = "fluxnb:runs"
B = "fluxnb:billing"
N = "fluxnb:nets"

PATHS: dict[str, Any] = {
    "/healthz": {"get": {
        "summary": "liveness (no authentication)", "security": [],
        "responses": ok("200", obj({"ok": {"const": True}}, ("ok",)), "the server answers")}},
    "/readyz": {"get": {
        "summary": "readiness: the store opens and workers are up (no authentication)",
        "security": [],
        "responses": {
            **ok("200", ref("Ready"), "ready"),
            "503": json_body(ref("Ready"), "not ready (the body says what is missing)")}}},
    "/openapi.json": {"get": {
        "summary": "this document", "security": [],
        "responses": ok("200", {"type": "object"}, "the OpenAPI document")}},
    "/whoami": {"get": op(
        "who the caller is in fluxnb", W,
        ok("200", obj({"user": {"type": "string"}, "role": {"type": "string"},
                       "namespace": {"type": "string"}, "tenant": {"type": "string"},
                       "namespaces": nullable("array")},
                      ("user", "role", "namespace", "tenant")), "the caller's session"))},
    "/workflows": {"get": op(
        "registered workflows (latest versions) of the namespaces the caller reads", W,
        ok("200", obj({"workflows": {"type": "array", "items": ref("Workflow")}},
                      ("workflows",)), "the workflows"))},
    "/workflows/{name}": {
        "parameters": [path_param("name", "the workflow's name")],
        "get": op("a registered workflow, with its manifest", W,
                  ok("200", ref("Workflow"), "the latest (or ?version=) version"), "404", "422",
                  parameters=[query("version", "a version number", {"type": "string"})]),
        "put": op("register a manifest (operator): a new version if the text changed", W,
                  {**ok("201", ref("Workflow"), "a new version"),
                   **ok("200", ref("Workflow"), "the same text: the same version")},
                  "400", "413", "422", requestBody={"required": True, "content": {
                      "application/json": {"schema": MANIFEST}}}),
        "delete": op("remove a workflow from the registry (admin; its versions stay for "
                     "the runs that ran them)", W,
                     {"204": {"description": "removed"}}, "404"),
    },
    "/workflows/{name}/validate": {
        "parameters": [path_param("name", "the workflow's name")],
        "post": op("validate the registered manifest, or one in the body, resolving its "
                   "callables by import", W,
                   ok("200", obj({"valid": {"const": True}, "name": {"type": "string"},
                                  "kind": {"type": "string"}}, ("valid", "name", "kind")),
                      "valid"),
                   "400", "404", "413", "422",
                   requestBody={"required": False, "content": {"application/json": {
                       "schema": obj({"manifest": {"type": "string"}})}}}),
    },
    "/workflows/{name}/runs": {
        "parameters": [path_param("name", "the workflow's name")],
        "post": op("start a run (operator); it runs in a worker process", R,
                   ok("202", obj({"run_id": {"type": "string"},
                                  "status": {"const": "queued"},
                                  "workflow": {"type": "string"},
                                  "version": {"type": "integer"}},
                                 ("run_id", "status")), "queued"),
                   "400", "404", "409", "413", "422", "503",
                   requestBody={"required": False, "content": {
                       "application/json": {"schema": RUN_OPTIONS}}}),
    },
    "/runs": {"get": op(
        "runs, newest first, of the namespaces the caller reads", R,
        ok("200", obj({"runs": {"type": "array", "items": ref("Run")},
                       "limit": {"type": "integer"}, "offset": {"type": "integer"},
                       "next_offset": nullable("integer")}, ("runs", "limit", "offset")),
           "a page of runs"), "422",
        parameters=[query("workflow", "only this workflow's runs"),
                    query("status", "only runs with this status"),
                    query("tenant", "only runs billed to this tenant"),
                    query("limit", "page size (1-1000, default 50)"),
                    query("offset", "runs to skip")])},
    "/runs/{run_id}": {
        "parameters": [path_param("run_id", "the run's id")],
        "get": op("a run: status and steps", R, ok("200", ref("Run"), "the run"), "404")},
    "/runs/{run_id}/events": {
        "parameters": [path_param("run_id", "the run's id")],
        "get": op("a run's events (one per attempt) in logical order", R,
                  ok("200", obj({"run_id": {"type": "string"},
                                 "events": {"type": "array", "items": ref("Event")}},
                                ("run_id", "events")), "the events"), "404")},
    "/runs/{run_id}/cancel": {
        "parameters": [path_param("run_id", "the run's id")],
        "post": op("cancel a queued or running run (operator)", R,
                   ok("202", obj({"run_id": {"type": "string"},
                                  "status": {"enum": ["cancelled", "cancelling"]}},
                                 ("run_id", "status")), "cancelled or being cancelled"),
                   "404", "409")},
    "/runs/{run_id}/replay": {
        "parameters": [path_param("run_id", "the run's id")],
        "post": op("re-execute a recorded run in a worker and compare it with its trace "
                   "(operator)", R,
                   ok("200", obj({"run_id": {"type": "string"},
                                  "identical": {"type": "boolean"},
                                  "first_divergence": nullable("object"),
                                  "mismatches": {"type": "integer"}},
                                 ("run_id", "identical")), "the verdict"),
                   "404", "409", "422", "503")},
    "/runs/{run_id}/resume": {
        "parameters": [path_param("run_id", "the run's id")],
        "post": op("continue a failed, cancelled or interrupted run (operator)", R,
                   ok("202", obj({"run_id": {"type": "string"},
                                  "status": {"const": "resuming"}}, ("run_id", "status")),
                      "resuming in a worker"), "404", "409", "413", "503",
                   requestBody={"required": False, "content": {"application/json": {
                       "schema": obj({"force": {"type": "boolean"}})}}})},
    "/runs/{run_id}/timeline.svg": {
        "parameters": [path_param("run_id", "the run's id")],
        "get": op("the run's timeline (Gantt chart)", R,
                  {"200": {"description": "SVG", "content": {"image/svg+xml": {
                      "schema": {"type": "string"}}}}}, "404")},
    "/nets/{name}/instances": {
        "parameters": [path_param("name", "a registered net's name")],
        "post": op("start a long-lived instance of a registered net (operator)", N,
                   ok("201", ref("Instance"), "the new instance"), "404", "413", "422", "503",
                   requestBody={"required": False, "content": {"application/json": {
                       "schema": obj({"tenant": {"type": "string"}})}}})},
    "/instances/{instance_id}": {
        "parameters": [path_param("instance_id", "the instance's id (its run id)")],
        "get": op("an instance: marking, tokens, enabled transitions, history", N,
                  ok("200", ref("Instance"), "the instance"), "404", "503")},
    "/instances/{instance_id}/tokens": {
        "parameters": [path_param("instance_id", "the instance's id")],
        "post": op("put a token with data into a place (operator)", N,
                   ok("200", ref("Instance"), "the instance after it"), "404", "413", "422",
                   "503", requestBody={"required": True, "content": {"application/json": {
                       "schema": obj({"place": {"type": "string"}, "data": {}},
                                     ("place",))}}})},
    "/instances/{instance_id}/fire": {
        "parameters": [path_param("instance_id", "the instance's id")],
        "post": op("fire a transition with data (operator); 409 if it is not enabled", N,
                   ok("200", ref("Instance"), "the instance after it"), "404", "409", "413",
                   "422", "503",
                   requestBody={"required": True, "content": {"application/json": {
                       "schema": obj({"transition": {"type": "string"}, "data": {}},
                                     ("transition",))}}})},
    "/stream": {"get": op(
        "Server-Sent Events: run.started, step.status, run.finished, run.rejected, "
        "breaker.changed, net.created, net.firing (and gap) of the namespaces the caller "
        "reads; resumes after the Last-Event-ID header", R,
        {"200": {"description": "an event stream", "content": {"text/event-stream": {
            "schema": {"type": "string"}}}}}, "422",
        parameters=[query("last_event_id", "as the Last-Event-ID header"),
                    query("timeout", "end the stream after this many seconds")])},
    "/sql": {"post": op(
        "SQL on a sealed copy of the store's rows the caller may read; a statement past "
        "c.FluxnbServer.sql_timeout is stopped (422 QueryTimeout), 503 when every SQL slot "
        "is busy", "fluxnb:sql",
        ok("200", FRAME, "columns and rows"), "400", "413", "422", "503",
        requestBody={"required": True, "content": {"application/json": {"schema": obj(
            {"query": {"type": "string"}, "params": {"type": ["object", "array"]}},
            ("query",))}}})},
    "/tenants": {
        "get": op("tenants", B, ok("200", obj({"tenants": FRAME}, ("tenants",)), "tenants")),
        "post": op("add a tenant (admin)", B,
                   ok("201", obj({"tenant": {"type": "string"},
                                  "display_name": nullable("string")}, ("tenant",)),
                      "added"), "413", "422",
                   requestBody={"required": True, "content": {"application/json": {
                       "schema": obj({"tenant": {"type": "string"},
                                      "display_name": {"type": "string"}},
                                     ("tenant",))}}})},
    "/rate-cards": {
        "get": op("rate cards (one row per price tier)", B,
                  ok("200", obj({"rate_cards": FRAME}, ("rate_cards",)), "cards"),
                  parameters=[query("tenant", "that tenant's cards and the defaults")]),
        "put": op("store a new version of a rate card (admin)", B,
                  ok("201", obj({"name": {"type": "string"}, "tenant": nullable("string"),
                                 "version": {"type": "integer"},
                                 "currency": {"type": "string"}}, ("name", "version")),
                     "stored"), "413", "422",
                  requestBody={"required": True, "content": {"application/json": {
                      "schema": obj({"card": {"type": ["string", "object"]},
                                     "tenant": {"type": "string"}}, ("card",))}}})},
    "/usage": {"get": op(
        "usage events", B, ok("200", obj({"usage": FRAME}, ("usage",)), "usage"), "422",
        parameters=[query("tenant", "one tenant's"), query("period", "a month: 2026-11")])},
    "/invoices/{tenant}/{period}": {
        "parameters": [path_param("tenant", "the tenant"),
                       path_param("period", "a month: 2026-11")],
        "get": op("an invoice: the issued one, else a draft computed now", B,
                  {"200": {"description": "the invoice", "content": {
                      "application/json": {"schema": {"type": "object"}},
                      "text/csv": {"schema": {"type": "string"}},
                      "text/html": {"schema": {"type": "string"}}}}}, "422",
                  parameters=[query("format", "json (default), csv or html",
                                    {"enum": ["json", "csv", "html"]})])},
    "/sla": {"get": op(
        "latency percentiles, error and retry rates", R,
        ok("200", obj({"kind": {"type": "string"}, **FRAME["properties"]},
                      ("kind", "columns", "rows")), "the view"), "422",
        parameters=[query("kind", "steps (default), agents or runs",
                          {"enum": ["steps", "agents", "runs"]}),
                    query("workflow", "one workflow's")])},
    "/metrics": {"get": op(
        "Prometheus text", R, {"200": {"description": "metrics", "content": {
            "text/plain": {"schema": {"type": "string"}}}}})},
}  # fmt: skip

#: Issue #18: triggers (docs/triggers.md). A trigger's body is its manifest entry without id.
TRIGGER = obj(
    {"id": {"type": "string"}, "workflow": {"type": "string"},
     "namespace": nullable("string"),
     "kind": {"enum": ["schedule", "watch", "webhook", "on_run", "event"]},
     "paused": {"type": "boolean"}, "failures": {"type": "integer"},
     "backoff_until": nullable("string"), "last_error": nullable("string"),
     "created": {"type": "boolean"}},
    ("id", "workflow", "kind", "paused", "failures"),
)  # fmt: skip
TRIGGER_BODY = obj(
    {"schedule": {"type": "string"}, "timezone": {"type": "string"},
     "watch": {"type": ["string", "object"]}, "webhook": {"type": "object"},
     "on_run": {"type": ["string", "object"]}, "event": {"type": "string"},
     "params": {"type": "object"}, "catch_up": {"enum": ["skip", "latest", "all"]},
     "overlap": {"enum": ["allow", "skip", "queue", "cancel_previous"]},
     "max_concurrency": {"type": "integer"}, "backoff": {"type": "object"},
     "paused": {"type": "boolean"}, "description": {"type": "string"}},
)  # fmt: skip
FIRED = obj(
    {"outcome": {"type": "string"}, "key": {"type": "string"}, "run_id": nullable("string"),
     "skipped_because": {"type": "string"}},
    ("outcome", "key"),
)  # fmt: skip
PATHS.update({
    "/workflows/{name}/triggers/{trigger_id}": {
        "parameters": [path_param("name", "the workflow's name"),
                       path_param("trigger_id", "the trigger's id (unique in the store)")],
        "put": op("register or change a trigger of a registered workflow (operator)", W,
                  {**ok("200", TRIGGER, "changed"), **ok("201", TRIGGER, "registered")},
                  "400", "404", "409", "413", "422",
                  requestBody={"required": True, "content": {"application/json": {
                      "schema": TRIGGER_BODY}}}),
        "get": op("a trigger and its state (paused, failures in a row, backoff)", W,
                  ok("200", TRIGGER, "the trigger"), "404"),
        "delete": op("remove a trigger (operator)", W,
                     {"204": {"description": "removed"}}, "404")},
    "/events/{name}": {
        "parameters": [path_param("name", "the event's name")],
        "post": op("post a named event on the bus: every event trigger of that name fires "
                   "once (operator); the body, any JSON, is its data", R,
                   ok("202", obj({"event_id": {"type": "string"}, "name": {"type": "string"}},
                                 ("event_id", "name")), "posted"), "400", "413", "422",
                   requestBody={"required": False, "content": {"application/json": {
                       "schema": {}}}})},
    "/hooks/{trigger_id}": {
        "servers": [{"url": "/fluxnb"}],
        "parameters": [path_param("trigger_id", "the webhook trigger's id")],
        "post": {
            "summary": "at /fluxnb/hooks/{trigger_id}, outside /fluxnb/api/v1: a webhook "
                       "delivery: no Jupyter token, X-Fluxnb-Signature (sha256=<hex "
                       "HMAC-SHA256 of the raw body>) authenticates it; X-Fluxnb-Delivery is "
                       "its idempotency key (a repeated delivery starts no second run)",
            "security": [],
            "parameters": [
                {"name": "X-Fluxnb-Signature", "in": "header", "required": True,
                 "schema": {"type": "string"}},
                {"name": "X-Fluxnb-Delivery", "in": "header", "required": True,
                 "schema": {"type": "string",
                            "pattern": "^[A-Za-z0-9][A-Za-z0-9._:@+=/~-]{0,199}$"}}],
            "requestBody": {"required": False, "content": {"*/*": {"schema": {}}}},
            "responses": {
                **ok("202", FIRED, "fired (or skipped: overlap: skip)"),
                **ok("200", FIRED, "a repeated delivery: no second run"),
                "400": json_body(ref("Error"), "no X-Fluxnb-Delivery, or one that is not "
                                 "1-200 plain characters (refused before anything is written)"),
                "401": json_body(ref("Error"), "the signature is missing or wrong, or the "
                                 "secret is not set: one answer for all (recorded, the first "
                                 "10 a minute per trigger; all counted)"),
                "404": {"$ref": "#/components/responses/E404"},
                "413": {"$ref": "#/components/responses/E413"},
                "503": {**json_body(ref("Error"), "the trigger is paused or backing off: "
                                    "nothing is claimed, deliver again after Retry-After"),
                        "headers": {"Retry-After": {"description": "seconds to wait",
                                                    "schema": {"type": "integer"}}}}}}},
})  # fmt: skip

#: Issue #21: design sessions, the designer's Python side for JupyterLab's editor (docs/lab.md).
DESIGN = obj(
    {"id": {"type": "string"}, "fields": {"type": "object"},
     "state": obj({"graph": {"type": "object"}, "issues": {"type": "object"},
                   "enabled": {"type": "array"}, "selected": {"type": "string"},
                   "yaml_text": {"type": "string"}, "message": {"type": "string"},
                   "can_undo": {"type": "boolean"}, "can_redo": {"type": "boolean"},
                   "schema": {"type": "object"}, "details": {"type": "array"}}),
     "text": nullable("string"),
     "messages": {"type": "array", "items": {"type": "object"}}},
    ("state", "text", "messages"),
)  # fmt: skip
PATHS.update({
    "/designs": {"post": op(
        "open a design session: what the designer's view draws of a YAML or PNML text "
        "(empty: a new design), callables looked up by import", W,
        ok("201", DESIGN, "the session's id, the view's state and the file's text"),
        "400", "413", "422", "503",
        requestBody={"required": False, "content": {"application/json": {"schema": obj(
            {"text": {"type": "string"}, "format": {"enum": ["yaml", "pnml"]},
             "name": {"type": "string"}})}}})},
    "/designs/{design_id}": {
        "parameters": [path_param("design_id", "a design session's id (POST /designs)")],
        "post": op("a message of the designer's view (add, connect, move, delete, rename, "
                   "set, undo, redo, layout, copy, paste, yaml, select)", W,
                   ok("200", DESIGN, "the view's state and the file's text after it"),
                   "400", "404", "413", "422",
                   requestBody={"required": False, "content": {"application/json": {
                       "schema": obj({"type": {"type": "string"}})}}}),
        "delete": op("close the design session", W, {"204": {"description": "closed"}},
                     "404")},
    "/triggers": {"get": op(
        "every trigger the caller may read: its entry, paused, failures, next_fire (a "
        "schedule's next time), last_outcome, last_fired_at, last_run_id", W,
        ok("200", obj({"triggers": {"type": "array", "items": obj(
            {"id": {"type": "string"}, "workflow": {"type": "string"},
             "namespace": nullable("string"), "kind": {"type": "string"},
             "paused": {"type": "boolean"}, "failures": {"type": "integer"},
             "last_error": nullable("string"), "next_fire": nullable("string"),
             "last_outcome": nullable("string"), "last_fired_at": nullable("string"),
             "last_run_id": nullable("string")},
            ("id", "workflow", "kind", "paused"))}}, ("triggers",)), "the triggers"))},
    **{f"/triggers/{{trigger_id}}/{verb}": {
        "parameters": [path_param("trigger_id", "the trigger's id")],
        "post": op(what, W, ok("200", obj({"id": {"type": "string"},
                                           "paused": {"type": "boolean"},
                                           "key": {"type": "string"}},
                                          ("id", "paused")), "the trigger as it is now"),
                   "404")}
       for verb, what in (
           ("pause", "pause a trigger (operator)"),
           ("resume", "resume a trigger (operator): it starts afresh, the paused time is "
                      "not caught up"),
           ("fire", "fire a trigger now, by hand (operator): queued, started by the trigger "
                    "service as soon as the trigger has room; key is the firing's"))},
})  # fmt: skip


def document() -> dict[str, Any]:
    schemas = {
        **SCHEMAS,
        "Ready": obj(
            {"ready": {"type": "boolean"}, "workers": {"type": "integer"},
             "store": {"type": "boolean"}, "store_error": {"type": "string"}},
            ("ready", "workers", "store"),
        ),
    }  # fmt: skip
    for path, ops in PATHS.items():  # a path segment that is not a name: 404 (prepare)
        for method, o in ops.items():
            if "{" in path and method in ("get", "put", "post", "delete"):
                o["responses"].setdefault("404", {"$ref": "#/components/responses/E404"})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "fluxnb control plane",
            "version": "1",
            "description": "fluxnb's REST API as a Jupyter Server extension (docs/server.md). "
            "Jupyter authenticates (Authorization: token ...); c.FluxnbServer.roles maps the "
            "user to a fluxnb role and namespaces. Errors are {error: {kind, message, "
            "problems}}.",
        },
        "servers": [{"url": "/fluxnb/api/v1"}],
        "security": [{"jupyterToken": []}],
        "paths": PATHS,
        "components": {
            "schemas": schemas,
            "responses": {
                f"E{code}": json_body(ref("Error"), text) for code, text in ERRORS.items()
            },
            "securitySchemes": {
                "jupyterToken": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "token <Jupyter token>",
                }
            },
        },
    }


def text() -> str:
    return json.dumps(document(), indent=1, sort_keys=False) + "\n"


DOC = OUT.parents[2] / "docs" / "server.md"
BEGIN, END = "<!-- routes: written by scripts/openapi.py -->", "<!-- /routes -->"


def routes_table() -> str:
    """The table of every route in docs/server.md, from the document."""
    rows = ["| route | resource | what it does |", "|---|---|---|"]
    for path, ops in document()["paths"].items():
        for method, o in ops.items():
            if method in ("get", "put", "post", "delete"):
                summary = o["summary"].replace("|", "\\|")
                rows.append(f"| `{method.upper()} {path}` | {o.get('x-fluxnb-resource', '—')} "
                            f"| {summary} |")  # fmt: skip
    return "\n".join(rows)


def doc_text() -> str:
    """docs/server.md with its routes table as the document says."""
    page = DOC.read_text()
    head, _, rest = page.partition(BEGIN)
    _, _, tail = rest.partition(END)
    return f"{head}{BEGIN}\n{routes_table()}\n{END}{tail}"


if __name__ == "__main__":
    if "--check" in sys.argv:
        if OUT.read_text() != text() or DOC.read_text() != doc_text():
            sys.exit(f"{OUT} or {DOC} is out of date: run python scripts/openapi.py")
    else:
        OUT.write_text(text())
        DOC.write_text(doc_text())
