"""Long-lived net instances, on a worker process's side: each is a ``fluxnb.interactive``
net run held by the worker that created it, so a net action that blocks or crashes costs
that worker, not the server. The server sends ``net.create``, ``net.put``, ``net.fire`` and
``net.get`` jobs to that worker and gets the instance's state back as JSON."""

from __future__ import annotations

from typing import Any

from ._jsonable import jsonable

#: An instance: (its NetRun, its namespace, the registered net's name).
Instances = dict[str, tuple[Any, str, str]]


class NetJobError(Exception):
    """A net job refused: ``kind`` as the API names it (NotFound, NotEnabled, ...)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def describe(instance_id: str, run: Any, namespace: str, name: str) -> dict[str, Any]:
    """What ``GET /instances/{id}`` answers: marking, tokens, enabled transitions, history."""
    history = [
        {
            "seq": f.seq,
            "transition": f.transition,
            "status": str(f.status),
            "consumed": jsonable(f.consumed),
            "produced": jsonable(f.produced),
        }
        for f in run.firings
    ]
    return {
        "instance_id": instance_id,
        "net": name,
        "namespace": namespace,
        "status": str(run.status),
        "marking": dict(run.marking),
        "tokens": jsonable(run.tokens()),
        "enabled": list(run.enabled()),
        "history": history,
    }


def net_job(kind: str, job: dict[str, Any], instances: Instances, store: Any) -> dict[str, Any]:
    """Do one net job; ``{"state": ..., "event": ...}``. NetJobError when refused."""
    import fluxnb

    from ..engine import NotEnabled

    if kind == "net.create":
        run = fluxnb.interactive(job["manifest"], {}, store=store, tenant=job.get("tenant"))
        instances[run.run_id] = (run, job["namespace"], job["net"])
        return {"state": describe(run.run_id, run, job["namespace"], job["net"]), "event": {}}
    iid = job["instance_id"]
    if iid not in instances:
        raise NetJobError("NotFound", f"no net instance '{iid}' in this worker")
    run, namespace, name = instances[iid]
    event: dict[str, Any] = {}
    if kind == "net.put":
        place = job["place"]
        if place not in run.marking:
            raise NetJobError("NotFound", f"the net '{name}' has no place '{place}'")
        run.put(place, job.get("data"))
        event = {"place": place}
    elif kind == "net.fire":
        try:
            firing = run.fire(job["transition"], data=job.get("data"))
        except NotEnabled as exc:
            raise NetJobError("NotEnabled", str(exc)) from None
        except KeyError as exc:
            raise NetJobError("BadRequest", str(exc)) from None
        event = {"transition": job["transition"], "seq": firing.seq, "status": str(firing.status)}
    return {"state": describe(iid, run, namespace, name), "event": event}
