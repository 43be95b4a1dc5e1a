"""Every route of the control plane, in one list.

Adding routes (e.g. issue #18's triggers: ``/fluxnb/hooks/{id}``,
``/workflows/{name}/triggers/{id}``, ``/events/{name}``): write handlers that subclass
``fluxnb.server._base.FluxnbHandler`` (JSON errors, the caller's session, the store,
``await self.call(fn, ...)`` to run blocking work off the event loop as that session), then
add ``(API + r"/your/route", YourHandler)`` to the list below, and describe the route in
``scripts/openapi.py``, then run it: it writes ``fluxnb/server/openapi.json`` (tests validate
every response against it) and the routes table of docs/server.md (a test checks both).
"""

from __future__ import annotations

from typing import Any

#: Prefix of every REST route (Jupyter's base_url is put in front of it).
API = "/fluxnb/api/v1"
#: One path segment: a workflow, net, tenant name or a run / instance id. Any segment
#: matches (percent-encoded too), so that a bad one gets the API's JSON 404 from the
#: handler (``FluxnbHandler.prepare`` checks it against ``_base.SEGMENT``), not an HTML page.
NAME = r"([^/]+)"


def handlers() -> list[tuple[str, Any]]:
    """(URL pattern, handler class) for every route, as Jupyter Server takes them."""
    from . import _billing_handlers as billing
    from . import _design_handlers as designs
    from . import _handlers as h
    from . import _net_handlers as nets
    from . import _run_handlers as runs
    from . import _trigger_list as trigger_list
    from . import _triggers as triggers

    routes: list[tuple[str, Any]] = [
        (API + r"/healthz", h.HealthHandler),
        (API + r"/readyz", h.ReadyHandler),
        (API + r"/openapi.json", h.OpenAPIHandler),
        (API + r"/whoami", h.WhoAmIHandler),
        (API + r"/workflows", h.WorkflowsHandler),
        (API + rf"/workflows/{NAME}", h.WorkflowHandler),
        (API + rf"/workflows/{NAME}/validate", h.ValidateHandler),
        (API + rf"/workflows/{NAME}/runs", runs.StartRunHandler),
        (API + r"/runs", runs.RunsHandler),
        (API + rf"/runs/{NAME}", runs.RunHandler),
        (API + rf"/runs/{NAME}/events", runs.RunEventsHandler),
        (API + rf"/runs/{NAME}/cancel", runs.CancelHandler),
        (API + rf"/runs/{NAME}/replay", runs.ReplayHandler),
        (API + rf"/runs/{NAME}/resume", runs.ResumeHandler),
        (API + rf"/runs/{NAME}/timeline\.svg", runs.TimelineHandler),
        (API + rf"/nets/{NAME}/instances", nets.InstancesHandler),
        (API + rf"/instances/{NAME}", nets.InstanceHandler),
        (API + rf"/instances/{NAME}/tokens", nets.TokensHandler),
        (API + rf"/instances/{NAME}/fire", nets.FireHandler),
        (API + r"/stream", runs.StreamHandler),
        (API + r"/sql", billing.SQLHandler),
        (API + r"/tenants", billing.TenantsHandler),
        (API + r"/rate-cards", billing.RateCardsHandler),
        (API + r"/usage", billing.UsageHandler),
        (API + rf"/invoices/{NAME}/{NAME}", billing.InvoiceHandler),
        (API + r"/sla", billing.SLAHandler),
        (API + r"/metrics", billing.MetricsHandler),
        (API + rf"/workflows/{NAME}/triggers/{NAME}", triggers.TriggerHandler),
        (API + rf"/events/{NAME}", triggers.EventHandler),
        # a webhook takes no Jupyter token: its signature authenticates (see _triggers)
        (rf"/fluxnb/hooks/{NAME}", triggers.HookHandler),
        # the JupyterLab extension's editor: the designer's Python side (issue #21)
        (API + r"/designs", designs.DesignsHandler),
        (API + rf"/designs/{NAME}", designs.DesignHandler),
        (API + r"/triggers", trigger_list.TriggerListHandler),
        (API + rf"/triggers/{NAME}/(pause|resume|fire)", trigger_list.TriggerActionHandler),
    ]
    # last: anything else under the API is a JSON 404, not Jupyter's HTML page
    routes.append((API + r"/.*", h.NoRouteHandler))
    return routes
