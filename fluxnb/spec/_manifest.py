"""The manifest: YAML text, a file or a dict → a validated ``Workflow``, and back.

fluxnb's manifest is a superset of FluxRoute's (``router``, ``agents``, ``pipeline``).
Every problem is reported with the source, line and column, what was expected and what
was found; all problems of a document are collected before raising.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path as FsPath
from typing import Any

from .._exceptions import ManifestError, Problem
from ._durations import DURATION_HELP, format_duration, parse_duration
from ._graph import suggest
from ._located import Located, Path, format_path, load_located
from ._model import STEP_ID, Step, Workflow
from ._options import (
    BACKOFFS,
    STRATEGIES,
    CircuitBreakerSettings,
    OnError,
    RbacSettings,
    RetryPolicy,
    RouterSettings,
)

TOP_KEYS = ("name", "description", "router", "agents", "pipeline")
ROUTER_KEYS = (
    "worker_pool_size",
    "channel_buffer",
    "default_timeout",
    "namespace",
    "tenant",
    "rbac",
    "retry",
    "on_error",
    "executor",
)
RBAC_KEYS = ("run_roles", "validate_roles", "replay_roles", "admin_roles")
AGENT_KEYS = (
    "id",
    "run",
    "retry",
    "circuit_breaker",
    "timeout",
    "on_error",
    "default",
    "executor",
    "description",
)
ON_ERROR_KEYS = ("strategy", "fallback")
EXECUTOR_URL = re.compile(r"dask://[A-Za-z0-9_.\-\[\]:]+:\d+")
RETRY_KEYS = ("max_attempts", "backoff", "initial_delay", "max_delay", "retry_on", "no_retry_on")
BREAKER_KEYS = ("failure_threshold", "reset_timeout", "probe_timeout")
STEP_KEYS = ("step", "depends_on", "with", "description")

_MISSING = object()


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"the string '{value}'" if len(value) < 60 else "a long string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class _Checker:
    """Collects problems while reading a located document."""

    def __init__(self, doc: Located) -> None:
        self.doc = doc
        self.problems: list[Problem] = []

    def add(self, kind: str, path: Path, message: str, *, key: bool = False, **facts: Any) -> None:
        line, col = self.doc.at(path, key=key)
        self.problems.append(Problem(kind, format_path(path), message, line, col, **facts))

    def mapping(self, value: Any, path: Path, allowed: tuple[str, ...], what: str) -> dict:
        if not isinstance(value, dict):
            self.add(
                "wrong_type",
                path,
                f"{what} must be a mapping (key: value lines), found {_kind(value)}",
                expected="a mapping",
                found=value,
            )
            return {}
        for key in value:
            if key not in allowed:
                hint = suggest(str(key), list(allowed))
                self.add(
                    "unknown_key",
                    (*path, str(key)),
                    f"unknown key '{key}' in {what}"
                    + (f" (did you mean '{hint}'?)" if hint else "")
                    + f"; allowed keys: {', '.join(allowed)}",
                    key=True,
                    expected=", ".join(allowed),
                    found=key,
                    suggestion=hint,
                )
        return value

    def get(self, m: dict, key: str, path: Path, check: Callable[[Any, Path], Any]) -> Any:
        if key not in m or m[key] is None:
            return _MISSING
        return check(m[key], (*path, key))

    def integer(self, minimum: int) -> Callable[[Any, Path], Any]:
        def check(v: Any, path: Path) -> Any:
            if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
                self.add(
                    "wrong_type" if not isinstance(v, int) or isinstance(v, bool) else "bad_value",
                    path,
                    f"expected an integer >= {minimum}, found {_kind(v)}",
                    expected=f"integer >= {minimum}",
                    found=v,
                )
                return _MISSING
            return v

        return check

    def duration(self, v: Any, path: Path) -> Any:
        try:
            return parse_duration(v)
        except ValueError as exc:
            self.add("bad_duration", path, str(exc), expected=DURATION_HELP, found=v)
            return _MISSING

    def string(self, v: Any, path: Path) -> Any:
        if not isinstance(v, str) or not v.strip():
            self.add(
                "wrong_type",
                path,
                f"expected a non-empty string, found {_kind(v)}",
                expected="a string",
                found=v,
            )
            return _MISSING
        return v

    def step_id(self, v: Any, path: Path) -> Any:
        if isinstance(v, str) and not STEP_ID.fullmatch(v):
            self.add(
                "bad_value",
                path,
                f"'{v}' is not a valid step id: use letters, digits, '_' and '-', "
                "starting with a letter or '_'",
                expected="an id like fetch_orders",
                found=v,
            )
            return _MISSING
        return self.string(v, path)

    def executor_ref(self, v: Any, path: Path) -> Any:
        """``local``, ``dask``, or ``dask://HOST:PORT``."""
        if isinstance(v, str) and (v in ("local", "dask") or EXECUTOR_URL.fullmatch(v)):
            return v
        self.add(
            "bad_value",
            path,
            f"expected local, dask or dask://HOST:PORT, found {_kind(v)}",
            expected="local | dask | dask://HOST:PORT",
            found=v,
        )
        return _MISSING

    def on_error(self, v: Any, path: Path) -> Any:
        """``stop`` | ``continue`` | ``skip`` | ``retry``, or ``{strategy:, fallback:}``."""
        if isinstance(v, dict):
            m = self.mapping(v, path, ON_ERROR_KEYS, "on_error")
            strategy = self.get(m, "strategy", path, self.choice(STRATEGIES))
            fallback = self.get(m, "fallback", path, self.choice(("stop", "continue", "skip")))
            if strategy is _MISSING:
                if "strategy" not in m:
                    self.add("missing_key", path, "on_error needs a 'strategy'")
                return _MISSING
            return OnError(strategy, "stop" if fallback is _MISSING else fallback)
        strategy = self.choice(STRATEGIES)(v, path)
        return _MISSING if strategy is _MISSING else OnError(strategy)

    def strings(self, v: Any, path: Path) -> Any:
        """One string or a list of strings → tuple."""
        items = [v] if isinstance(v, str) else v
        if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
            self.add(
                "wrong_type",
                path,
                f"expected a string or a list of strings, found {_kind(v)}",
                expected="a string or a list of strings",
                found=v,
            )
            return _MISSING
        return tuple(items)

    def choice(self, choices: tuple[str, ...]) -> Callable[[Any, Path], Any]:
        def check(v: Any, path: Path) -> Any:
            if v not in choices:
                hint = suggest(str(v), list(choices)) if isinstance(v, str) else None
                self.add(
                    "bad_value",
                    path,
                    f"expected one of {', '.join(choices)}, found {_kind(v)}"
                    + (f" (did you mean '{hint}'?)" if hint else ""),
                    expected=" | ".join(choices),
                    found=v,
                    suggestion=hint,
                )
                return _MISSING
            return v

        return check


def _opts(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not _MISSING}


def _read_router(c: _Checker, raw: Any) -> RouterSettings:
    path: Path = ("router",)
    m = c.mapping(raw, path, ROUTER_KEYS, "router")
    rbac = RbacSettings()
    if m.get("rbac") is not None:
        r = c.mapping(m["rbac"], (*path, "rbac"), RBAC_KEYS, "router.rbac")
        rbac = RbacSettings(
            **_opts(**{k: c.get(r, k, (*path, "rbac"), c.strings) for k in RBAC_KEYS})
        )
    return RouterSettings(
        **_opts(
            retry=_read_retry(c, m["retry"], (*path, "retry")) if m.get("retry") else _MISSING,
            on_error=c.get(m, "on_error", path, c.on_error),
            executor=c.get(m, "executor", path, c.executor_ref),
            worker_pool_size=c.get(m, "worker_pool_size", path, c.integer(1)),
            channel_buffer=c.get(m, "channel_buffer", path, c.integer(0)),
            default_timeout=c.get(m, "default_timeout", path, c.duration),
            namespace=c.get(m, "namespace", path, c.string),
            tenant=c.get(m, "tenant", path, c.string),
        ),
        rbac=rbac,
    )


def _read_retry(c: _Checker, raw: Any, rp: Path) -> RetryPolicy:
    r = c.mapping(raw, rp, RETRY_KEYS, "retry")
    return RetryPolicy(
        **_opts(
            max_attempts=c.get(r, "max_attempts", rp, c.integer(1)),
            backoff=c.get(r, "backoff", rp, c.choice(BACKOFFS)),
            initial_delay=c.get(r, "initial_delay", rp, c.duration),
            max_delay=c.get(r, "max_delay", rp, c.duration),
            retry_on=c.get(r, "retry_on", rp, c.strings),
            no_retry_on=c.get(r, "no_retry_on", rp, c.strings),
        )
    )


def _read_agent(c: _Checker, raw: Any, path: Path) -> dict[str, Any]:
    m = c.mapping(raw, path, AGENT_KEYS, f"agent {format_path(path)}")
    out: dict[str, Any] = {}
    if "id" not in m:
        if isinstance(raw, dict):
            c.add("missing_key", path, "agent has no 'id'", expected="id: <step id>")
    else:
        out["id"] = c.get(m, "id", path, c.step_id)
    out["run"] = c.get(m, "run", path, c.string)
    out["timeout"] = c.get(m, "timeout", path, c.duration)
    out["description"] = c.get(m, "description", path, c.string)
    out["on_error"] = c.get(m, "on_error", path, c.on_error)
    out["executor"] = c.get(m, "executor", path, c.choice(("local", "dask")))
    if "default" in m:
        out["default"] = m["default"]
    if m.get("retry") is not None:
        out["retry"] = _read_retry(c, m["retry"], (*path, "retry"))
    if m.get("circuit_breaker") is not None:
        bp = (*path, "circuit_breaker")
        b = c.mapping(m["circuit_breaker"], bp, BREAKER_KEYS, "circuit_breaker")
        out["circuit_breaker"] = CircuitBreakerSettings(
            **_opts(
                failure_threshold=c.get(b, "failure_threshold", bp, c.integer(1)),
                reset_timeout=c.get(b, "reset_timeout", bp, c.duration),
                probe_timeout=c.get(b, "probe_timeout", bp, c.duration),
            )
        )
    return {k: v for k, v in out.items() if v is not _MISSING}


def _read_steps(c: _Checker, raw: Any) -> list[dict[str, Any]]:
    if raw is None or raw == []:
        c.add(
            "empty_pipeline",
            ("pipeline",),
            "the pipeline is empty; list at least one step (- step: my_function)",
        )
        return []
    if not isinstance(raw, list):
        c.add(
            "wrong_type",
            ("pipeline",),
            f"pipeline must be a list of steps (- step: ...), found {_kind(raw)}",
            expected="a list",
            found=raw,
        )
        return []
    steps = []
    for i, item in enumerate(raw):
        path: Path = ("pipeline", i)
        m = c.mapping(item, path, STEP_KEYS, f"pipeline[{i}]")
        if isinstance(item, dict) and "step" not in item:
            c.add("missing_key", path, "pipeline entry has no 'step' (its id)", expected="step")
            continue
        sid = c.get(m, "step", path, c.step_id)
        if sid is _MISSING:
            continue
        deps = c.get(m, "depends_on", path, c.strings)
        with_ = m.get("with")
        if with_ is not None and not isinstance(with_, dict):
            c.add(
                "wrong_type",
                (*path, "with"),
                f"'with' must be a mapping of keyword arguments, found {_kind(with_)}",
                expected="a mapping",
                found=with_,
            )
            with_ = None
        steps.append(
            {
                "id": sid,
                "depends_on": () if deps is _MISSING else deps,
                "with_": dict(with_ or {}),
                "description": None
                if (d := c.get(m, "description", path, c.string)) is _MISSING
                else d,
                "_index": i,
            }
        )
    return steps


def workflow_from_located(doc: Located, default_name: str | None = None) -> Workflow:
    """Validate a parsed document and build the Workflow; raise ManifestError if invalid."""
    c = _Checker(doc)
    data = doc.data
    if data is None:
        c.add("empty_pipeline", (), "the manifest is empty; it needs at least a 'pipeline'")
        raise ManifestError(c.problems, doc.source)
    if "net" in (data if isinstance(data, dict) else {}):
        c.add(
            "unsupported",
            ("net",),
            "Petri-net manifests ('net:') are not supported by this version yet; "
            "write the workflow as a 'pipeline'",
            key=True,
        )
    top = c.mapping(data, (), (*TOP_KEYS, "net"), "the manifest")
    if isinstance(data, dict) and "pipeline" not in data:
        c.add("missing_key", (), "the manifest has no 'pipeline' (the list of steps)")
    name = c.get(top, "name", (), c.string)
    description = c.get(top, "description", (), c.string)
    router = _read_router(c, top["router"]) if top.get("router") is not None else RouterSettings()
    agents: dict[str, dict[str, Any]] = {}
    agent_index: dict[str, int] = {}
    raw_agents = top.get("agents")
    if raw_agents is not None and not isinstance(raw_agents, list):
        c.add("wrong_type", ("agents",), f"agents must be a list, found {_kind(raw_agents)}")
        raw_agents = []
    for i, raw in enumerate(raw_agents or []):
        a = _read_agent(c, raw, ("agents", i))
        aid = a.get("id")
        if aid is None:
            continue
        if aid in agents:
            c.add(
                "duplicate_id",
                ("agents", i, "id"),
                f"agent id '{aid}' is declared twice (first as agents[{agent_index[aid]}])",
                found=aid,
            )
            continue
        agents[aid] = a
        agent_index[aid] = i
    steps = _read_steps(c, top.get("pipeline")) if "pipeline" in top else []
    wf = Workflow(
        name if name is not _MISSING else (default_name or "workflow"),
        router=router,
        description=None if description is _MISSING else description,
    )
    wf.source = doc.source
    wf._located = doc
    first_at: dict[str, int] = {}
    for s in steps:
        sid, i = s.pop("id"), s.pop("_index")
        if sid in first_at:
            c.add(
                "duplicate_id",
                ("pipeline", i, "step"),
                f"step id '{sid}' is used twice (first at pipeline[{first_at[sid]}])",
                found=sid,
            )
            continue
        first_at[sid] = i
        agent = {k: v for k, v in agents.get(sid, {}).items() if k != "id"}
        wf._steps[sid] = Step(id=sid, **s, **agent)
    for aid, i in agent_index.items():
        if aid not in first_at and steps:
            hint = suggest(aid, list(first_at))
            c.add(
                "unused_agent",
                ("agents", i, "id"),
                f"agent '{aid}' configures no pipeline step"
                + (f" (did you mean '{hint}'?)" if hint else ""),
                found=aid,
                suggestion=hint,
            )
    if c.problems:
        raise ManifestError(c.problems, doc.source)
    wf.validate()
    return wf


def load_workflow(
    manifest: Any,
    namespace: Mapping[str, Any] | None = None,
    *,
    source: str | None = None,
) -> Workflow:
    """A Workflow from YAML text, a path to a ``.yaml`` file, a dict, or a Workflow.

    With ``namespace``, every step's callable is also looked up and checked now
    (``ResolutionError`` otherwise), so mistakes show before anything runs.

    Raises:
        ManifestError: with the source, line and column of every problem found.
    """
    wf = _load(manifest, source)
    if namespace is not None:
        wf.validate(resolve=True, namespace=namespace)
    return wf


def _load(manifest: Any, source: str | None) -> Workflow:
    if isinstance(manifest, Workflow):
        return manifest
    if isinstance(manifest, os.PathLike) or (
        isinstance(manifest, str)
        and "\n" not in manifest
        and (manifest.endswith((".yaml", ".yml")) or os.path.isfile(manifest))
    ):
        path = FsPath(manifest)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ManifestError(
                [Problem("missing_file", "", f"no such manifest file: {path}")], str(path)
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ManifestError(
                [Problem("unreadable_file", "", f"cannot read the manifest: {exc}")], str(path)
            ) from None
        wf = workflow_from_located(load_located(text, str(path)), default_name=path.stem)
        wf.text = text
        return wf
    if isinstance(manifest, str):
        wf = workflow_from_located(load_located(manifest, source or "<manifest>"))
        wf.text = manifest
        return wf
    if isinstance(manifest, Mapping):
        return workflow_from_located(Located(dict(manifest), source or "<dict>"))
    raise TypeError(
        "a manifest is YAML text, a path to a .yaml file, a dict or a Workflow; "
        f"got {type(manifest).__name__}"
    )


# ---------------------------------------------------------------------- writing
def _retry_dict(r: RetryPolicy) -> dict[str, Any]:
    d: dict[str, Any] = {"max_attempts": r.max_attempts, "backoff": r.backoff}
    base = RetryPolicy()
    if r.initial_delay != base.initial_delay:
        d["initial_delay"] = format_duration(r.initial_delay)
    if r.max_delay != base.max_delay:
        d["max_delay"] = format_duration(r.max_delay)
    if r.retry_on:
        d["retry_on"] = list(r.retry_on)
    if r.no_retry_on:
        d["no_retry_on"] = list(r.no_retry_on)
    return d


def _agent_dict(step: Step) -> dict[str, Any]:
    """A step's non-default settings, as its agent entry (without the id)."""
    agent: dict[str, Any] = {}
    if step.run:
        agent["run"] = step.run
    elif step.fn is not None and getattr(step.fn, "__name__", step.id) != step.id:
        agent["run"] = _importable(step.fn) or step.fn.__name__
    if step.timeout is not None:
        agent["timeout"] = format_duration(step.timeout)
    if step.retry is not None:
        agent["retry"] = _retry_dict(step.retry)
    if step.circuit_breaker is not None:
        b = step.circuit_breaker
        cb: dict[str, Any] = {
            "failure_threshold": b.failure_threshold,
            "reset_timeout": format_duration(b.reset_timeout),
        }
        if b.probe_timeout is not None:
            cb["probe_timeout"] = format_duration(b.probe_timeout)
        agent["circuit_breaker"] = cb
    if step.on_error is not None:
        agent["on_error"] = _on_error_value(step.on_error)
    if step.default is not None:
        agent["default"] = step.default
    if step.executor is not None:
        agent["executor"] = step.executor
    if step.description:
        agent["description"] = step.description
    return agent


def _on_error_value(o: OnError) -> Any:
    if o.fallback == "stop":
        return o.strategy
    return {"strategy": o.strategy, "fallback": o.fallback}


def workflow_to_dict(wf: Workflow) -> dict[str, Any]:
    out: dict[str, Any] = {"name": wf.name}
    if wf.description:
        out["description"] = wf.description
    r = wf.router
    router: dict[str, Any] = {}
    for key in ("worker_pool_size", "channel_buffer", "namespace", "tenant"):
        if getattr(r, key) is not None:
            router[key] = getattr(r, key)
    if r.default_timeout is not None:
        router["default_timeout"] = format_duration(r.default_timeout)
    rbac = {k: list(getattr(r.rbac, k)) for k in RBAC_KEYS if getattr(r.rbac, k)}
    if rbac:
        router["rbac"] = rbac
    if r.retry is not None:
        router["retry"] = _retry_dict(r.retry)
    if r.on_error is not None:
        router["on_error"] = _on_error_value(r.on_error)
    if r.executor is not None:
        router["executor"] = r.executor
    if router:
        out["router"] = router
    agents = []
    pipeline = []
    for step in wf._steps.values():
        agent = _agent_dict(step)
        if agent:
            agents.append({"id": step.id, **agent})
        entry: dict[str, Any] = {"step": step.id}
        if step.depends_on:
            entry["depends_on"] = list(step.depends_on)
        if step.with_:
            entry["with"] = dict(step.with_)
        pipeline.append(entry)
    if agents:
        out["agents"] = agents
    out["pipeline"] = pipeline
    return out


def _importable(fn: Callable[..., Any]) -> str | None:
    """``module:qualname`` when ``fn`` can be imported back by that name."""
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname or "<" in qualname or module in ("__main__", "builtins"):
        return None
    return f"{module}:{qualname}"
