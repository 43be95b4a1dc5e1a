"""Triggers: what starts a workflow from outside (a manifest's ``triggers:`` list).

Each entry has an ``id``, exactly one kind and optional policies::

    triggers:
      - id: nightly
        schedule: "30 2 * * *"          # cron (5 fields, or 6 with seconds first)
        timezone: Europe/Berlin          # default UTC; DST-correct
        catch_up: latest                 # skip | latest | all (times missed while down)
      - id: inbox
        watch: {path: data/in, glob: "*.csv", debounce: 2s}
      - id: github
        webhook: {secret_env: GITHUB_HOOK_SECRET}
      - id: after-etl
        on_run: {workflow: etl, status: succeeded}    # finished | failed | succeeded
      - id: orders
        event: order.created
        overlap: queue                   # allow | skip | queue | cancel_previous
        max_concurrency: 2
        params: {region: eu}

This module only reads and checks (spec never does I/O); the service that fires triggers
is :mod:`fluxnb.triggers`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._exceptions import ManifestError
from ._checker import MISSING, Checker, kind_of
from ._located import Located, Path, load_located

KINDS = ("schedule", "watch", "webhook", "on_run", "event")
CATCH_UP = ("skip", "latest", "all")
OVERLAP = ("allow", "skip", "queue", "cancel_previous")
RUN_STATUSES = ("finished", "failed", "succeeded")
TRIGGER_KEYS = (
    "id",
    *KINDS,
    "timezone",
    "params",
    "catch_up",
    "overlap",
    "max_concurrency",
    "backoff",
    "paused",
    "description",
)
WATCH_KEYS = ("path", "glob", "debounce")
WEBHOOK_KEYS = ("secret_env",)
ON_RUN_KEYS = ("workflow", "status")
BACKOFF_KEYS = ("after", "initial", "max")
#: A trigger id: it appears in a URL (``/fluxnb/hooks/{id}``) and in firing keys.
TRIGGER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}")
#: An event name: it appears in a URL (``/events/{name}``).
EVENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Backoff:
    """How a trigger whose runs keep failing slows down."""

    #: Back off after this many failed runs in a row.
    after: int = 3
    #: Seconds to wait after the ``after``-th failure; doubles with each further failure.
    initial: float = 60.0
    #: The longest wait, in seconds.
    max: float = 3600.0

    def delay(self, failures: int) -> float:
        """Seconds to wait after ``failures`` failed runs in a row (0: no backoff)."""
        if failures < self.after:
            return 0.0
        return float(min(self.initial * 2 ** min(failures - self.after, 60), self.max))


@dataclass(frozen=True)
class Trigger:
    """One entry of ``triggers:``: what fires (``kind`` and ``spec``) and how."""

    #: Unique across the store: it names the webhook URL and every firing key.
    id: str
    #: schedule | watch | webhook | on_run | event
    kind: str
    #: The kind's settings: ``{"cron", "timezone"}``, ``{"path", "glob", "debounce"}``,
    #: ``{"secret_env"}``, ``{"workflow", "status"}`` or ``{"name"}``.
    spec: Mapping[str, Any]
    #: The workflow it starts (filled when the trigger is registered).
    workflow: str | None = None
    #: Fixed params given to every run it starts (the firing's own facts are added).
    params: Mapping[str, Any] = field(default_factory=dict)
    #: Schedule times missed while no server ran: skip them, fire the latest, or all.
    catch_up: str = "skip"
    #: When the trigger's previous run is still going: allow, skip, queue, cancel_previous.
    overlap: str = "allow"
    #: At most this many runs of this trigger at once (None: no limit).
    max_concurrency: int | None = None
    #: How a trigger whose runs keep failing waits.
    backoff: Backoff = field(default_factory=Backoff)
    #: Registered paused (nothing fires until resumed).
    paused: bool = False
    description: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The manifest entry (what :func:`read_trigger` reads back)."""
        out: dict[str, Any] = {"id": self.id}
        if self.kind == "schedule":
            out["schedule"] = self.spec["cron"]
            if self.spec.get("timezone", "UTC") != "UTC":
                out["timezone"] = self.spec["timezone"]
        elif self.kind == "event":
            out["event"] = self.spec["name"]
        else:
            out[self.kind] = dict(self.spec)
        if self.params:
            out["params"] = dict(self.params)
        if self.catch_up != "skip":
            out["catch_up"] = self.catch_up
        if self.overlap != "allow":
            out["overlap"] = self.overlap
        if self.max_concurrency is not None:
            out["max_concurrency"] = self.max_concurrency
        if self.backoff != Backoff():
            out["backoff"] = {
                "after": self.backoff.after,
                "initial": self.backoff.initial,
                "max": self.backoff.max,
            }
        if self.paused:
            out["paused"] = True
        if self.description:
            out["description"] = self.description
        return out


def read_triggers(c: Checker, raw: Any, path: Path = ("triggers",)) -> tuple[Trigger, ...]:
    """The ``triggers:`` list of a manifest; problems go to ``c``."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        c.add("wrong_type", path, f"triggers must be a list, found {kind_of(raw)}")
        return ()
    out: list[Trigger] = []
    first: dict[str, int] = {}
    for i, item in enumerate(raw):
        t = _read_one(c, item, (*path, i))
        if t is None:
            continue
        if t.id in first:
            c.add(
                "duplicate_id",
                (*path, i, "id"),
                f"trigger id '{t.id}' is used twice (first at triggers[{first[t.id]}])",
                found=t.id,
            )
            continue
        first[t.id] = i
        out.append(t)
    return tuple(out)


def manifest_triggers(
    text: str, source: str | None = None
) -> tuple[str | None, tuple[Trigger, ...]]:
    """The ``name`` and ``triggers:`` of a manifest's text, read without filling its
    params (a trigger's firing fills them when it runs).

    Raises:
        ManifestError: a bad ``triggers:`` entry, located.
    """
    from ._params import PLACEHOLDER, _Filler

    filler = _Filler(text, list(PLACEHOLDER.finditer(text)), source)
    doc = load_located(filler.masked, source)
    data = doc.data if isinstance(doc.data, dict) else {}
    c = Checker(doc)
    triggers = read_triggers(c, data.get("triggers"))
    if c.problems:
        raise ManifestError(c.problems, source)
    name = data.get("name")
    return (name if isinstance(name, str) else None), triggers


def read_trigger(entry: Mapping[str, Any], source: str = "<trigger>") -> Trigger:
    """One trigger from a mapping (the API's and ``fluxnb.trigger``'s form).

    Raises:
        ManifestError: every problem, located by key.
    """
    doc = Located(dict(entry), source)
    c = Checker(doc)
    t = _read_one(c, doc.data, ())
    if c.problems or t is None:
        raise ManifestError(c.problems, source)
    return t


def _read_one(c: Checker, raw: Any, path: Path) -> Trigger | None:
    before = len(c.problems)
    m = c.mapping(raw, path, TRIGGER_KEYS, f"trigger {_where(path)}")
    if not m:
        if isinstance(raw, dict):
            c.add("missing_key", path, "a trigger needs an 'id' and one kind", expected="id")
        return None
    tid = c.get(m, "id", path, _pattern(c, TRIGGER_ID, "a trigger id like nightly-etl"))
    if "id" not in m:
        c.add("missing_key", path, "trigger has no 'id'", expected="id: <trigger id>")
    kinds = [k for k in KINDS if k in m]
    if len(kinds) != 1:
        c.add(
            "missing_key" if not kinds else "bad_value",
            path,
            f"a trigger has exactly one kind ({', '.join(KINDS)}); found "
            + (", ".join(kinds) if kinds else "none"),
            expected=" | ".join(KINDS),
            found=kinds,
        )
        return None
    kind = kinds[0]
    spec = _KIND_READERS[kind](c, m, path)
    if "timezone" in m and kind != "schedule":
        c.add("unknown_key", (*path, "timezone"), "timezone applies to schedule: only", key=True)
    params = m.get("params")
    if params is not None and not isinstance(params, dict):
        c.add(
            "wrong_type",
            (*path, "params"),
            f"params must be a mapping of name: value, found {kind_of(params)}",
            expected="a mapping",
        )
        params = None
    catch_up = c.get(m, "catch_up", path, c.choice(CATCH_UP))
    if catch_up is not MISSING and kind != "schedule":
        c.add("bad_value", (*path, "catch_up"), "catch_up applies to schedule: only", key=True)
    overlap = c.get(m, "overlap", path, c.choice(OVERLAP))
    conc = c.get(m, "max_concurrency", path, c.integer(1))
    backoff = _read_backoff(c, m.get("backoff"), (*path, "backoff"))
    paused = c.get(m, "paused", path, c.boolean)
    description = c.get(m, "description", path, c.string)
    if tid is MISSING or spec is None or len(c.problems) > before:
        return None
    return Trigger(
        id=tid,
        kind=kind,
        spec=spec,
        params=dict(params or {}),
        catch_up="skip" if catch_up is MISSING else catch_up,
        overlap="allow" if overlap is MISSING else overlap,
        max_concurrency=None if conc is MISSING else conc,
        backoff=backoff,
        paused=False if paused is MISSING else paused,
        description=None if description is MISSING else description,
    )


def _where(path: Path) -> str:
    return f"triggers[{path[-1]}]" if path and isinstance(path[-1], int) else "entry"


def _pattern(c: Checker, rx: re.Pattern[str], expected: str) -> Any:
    def check(v: Any, path: Path) -> Any:
        if not isinstance(v, str) or not rx.fullmatch(v):
            c.add(
                "bad_value",
                path,
                f"expected {expected} (letters, digits, '_', '-', '.'), found {kind_of(v)}",
                expected=expected,
                found=v,
            )
            return MISSING
        return v

    return check


def _read_schedule(c: Checker, m: dict, path: Path) -> dict[str, Any] | None:
    cron = c.get(m, "schedule", path, c.string)
    tz = c.get(m, "timezone", path, c.string)
    tz = "UTC" if tz is MISSING else tz
    if cron is MISSING:
        return None
    problem = cron_problem(cron)
    if problem:
        c.add("bad_value", (*path, "schedule"), problem, expected="a cron expression", found=cron)
        return None
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(tz)
    except (ValueError, LookupError, OSError):  # ZoneInfoNotFoundError is a KeyError
        c.add(
            "bad_value",
            (*path, "timezone"),
            f"unknown time zone '{tz}': use an IANA name like Europe/Berlin or UTC",
            expected="an IANA time zone",
            found=tz,
        )
        return None
    return {"cron": cron, "timezone": tz}


def cron_problem(cron: str) -> str | None:
    """Why ``cron`` is not a cron expression fluxnb can run (None: it is)."""
    try:
        from cronsim import CronSim, CronSimError
    except ImportError:  # checked again when the service starts
        return None
    from datetime import UTC, datetime

    fields = cron.split()
    if len(fields) not in (5, 6):
        return (
            f"'{cron}' has {len(fields)} fields; a schedule has 5 (minute hour day month "
            "weekday) or 6 (seconds first)"
        )
    try:
        CronSim(cron, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        return f"'{cron}' is not a valid cron expression: {exc}"
    return None


def _kind_mapping(
    c: Checker, m: dict, path: Path, kind: str, keys: tuple[str, ...], short: str | None
) -> tuple[Path, dict]:
    """The kind's settings and their path; a plain string is short for its ``short`` key."""
    raw = m[kind]
    if short is not None and isinstance(raw, str):
        raw = {short: raw}
    return (*path, kind), c.mapping(raw, (*path, kind), keys, kind)


def _read_watch(c: Checker, m: dict, path: Path) -> dict[str, Any] | None:
    p, w = _kind_mapping(c, m, path, "watch", WATCH_KEYS, "path")
    folder = c.get(w, "path", p, c.string)
    if "path" not in w:
        c.add("missing_key", p, "watch needs a 'path' (the folder to watch)", expected="path")
    glob = c.get(w, "glob", p, c.string)
    debounce = c.get(w, "debounce", p, c.duration)
    if folder is MISSING:
        return None
    return {
        "path": folder,
        "glob": "*" if glob is MISSING else glob,
        "debounce": 1.0 if debounce is MISSING else debounce,
    }


def _read_webhook(c: Checker, m: dict, path: Path) -> dict[str, Any] | None:
    p, w = _kind_mapping(c, m, path, "webhook", WEBHOOK_KEYS, None)
    env = c.get(w, "secret_env", p, _pattern(c, ENV_NAME, "an environment variable name"))
    if "secret_env" not in w:
        c.add(
            "missing_key",
            p,
            "webhook needs 'secret_env': the environment variable that holds the shared "
            "secret (the secret itself is never written in a manifest)",
            expected="secret_env",
        )
    return None if env is MISSING else {"secret_env": env}


def _read_on_run(c: Checker, m: dict, path: Path) -> dict[str, Any] | None:
    p, w = _kind_mapping(c, m, path, "on_run", ON_RUN_KEYS, "workflow")
    wf = c.get(w, "workflow", p, c.string)
    if "workflow" not in w:
        c.add("missing_key", p, "on_run needs 'workflow': whose runs to follow")
    status = c.get(w, "status", p, c.choice(RUN_STATUSES))
    if wf is MISSING:
        return None
    return {"workflow": wf, "status": "succeeded" if status is MISSING else status}


def _read_event(c: Checker, m: dict, path: Path) -> dict[str, Any] | None:
    raw = m["event"]
    if isinstance(raw, dict) and set(raw) <= {"name"}:
        raw = raw.get("name")
    name = c.get({"event": raw}, "event", path, _pattern(c, EVENT_NAME, "an event name"))
    return None if name is MISSING else {"name": name}


def _read_backoff(c: Checker, raw: Any, path: Path) -> Backoff:
    if raw is None:
        return Backoff()
    b = c.mapping(raw, path, BACKOFF_KEYS, "backoff")
    after = c.get(b, "after", path, c.integer(1))
    initial = c.get(b, "initial", path, c.duration)
    most = c.get(b, "max", path, c.duration)
    d = Backoff()
    return Backoff(
        after=d.after if after is MISSING else after,
        initial=d.initial if initial is MISSING else initial,
        max=d.max if most is MISSING else most,
    )


_KIND_READERS = {
    "schedule": _read_schedule,
    "watch": _read_watch,
    "webhook": _read_webhook,
    "on_run": _read_on_run,
    "event": _read_event,
}
