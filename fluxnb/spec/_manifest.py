"""The manifest: YAML text, a file or a dict → a validated ``Workflow``, and back.

fluxnb's manifest is a superset of FluxRoute's (``router``, ``agents``, ``pipeline``).
Every problem is reported with the source, line and column, what was expected and what
was found; all problems of a document are collected before raising.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path as FsPath
from typing import Any

from .._exceptions import ManifestError
from ._activation import parse_activation
from ._checker import MISSING, Checker, kind_of, opts
from ._files import read_file_text
from ._graph import suggest
from ._llm_spec import attach_llm_steps
from ._located import Located, Path, format_path, load_located
from ._model import Step, Workflow
from ._options import (
    BACKOFFS,
    CircuitBreakerSettings,
    RbacSettings,
    RetryPolicy,
    RouterSettings,
)
from ._params import fill_mapping, fill_text
from ._triggers import read_triggers

TOP_KEYS = (
    "name",
    "description",
    "params",
    "router",
    "agents",
    "pipeline",
    "layout",
    "triggers",
)
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
    "cache",
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
    "cache",
    "cache_version",
    "cache_inputs",
)

RETRY_KEYS = ("max_attempts", "backoff", "initial_delay", "max_delay", "retry_on", "no_retry_on")
BREAKER_KEYS = ("failure_threshold", "reset_timeout", "probe_timeout")
STEP_KEYS = ("step", "depends_on", "with", "description", "activation", "capacity", "keep")

# an LLM call as a step's body, its providers and budget (spec/_llm_spec.py, docs/llm.md)
STEP_KEYS = (*STEP_KEYS, "llm")  # type: ignore[assignment]  # one more key than above
TOP_KEYS = (*TOP_KEYS, "providers", "budget")  # type: ignore[assignment]


def _read_router(c: Checker, raw: Any) -> RouterSettings:
    path: Path = ("router",)
    m = c.mapping(raw, path, ROUTER_KEYS, "router")
    rbac = RbacSettings()
    if m.get("rbac") is not None:
        r = c.mapping(m["rbac"], (*path, "rbac"), RBAC_KEYS, "router.rbac")
        rbac = RbacSettings(**opts(**{k: c.get(r, k, (*path, "rbac"), c.roles) for k in RBAC_KEYS}))
    return RouterSettings(
        **opts(
            retry=_read_retry(c, m["retry"], (*path, "retry")) if m.get("retry") else MISSING,
            on_error=c.get(m, "on_error", path, c.on_error),
            executor=c.get(m, "executor", path, c.executor_ref),
            worker_pool_size=c.get(m, "worker_pool_size", path, c.integer(1)),
            channel_buffer=c.get(m, "channel_buffer", path, c.integer(0)),
            default_timeout=c.get(m, "default_timeout", path, c.duration),
            namespace=c.get(m, "namespace", path, c.scope_name),
            tenant=c.get(m, "tenant", path, c.scope_name),
            cache=c.get(m, "cache", path, c.cache_mode),
        ),
        rbac=rbac,
    )


def _read_retry(c: Checker, raw: Any, rp: Path) -> RetryPolicy:
    r = c.mapping(raw, rp, RETRY_KEYS, "retry")
    return RetryPolicy(
        **opts(
            max_attempts=c.get(r, "max_attempts", rp, c.integer(1)),
            backoff=c.get(r, "backoff", rp, c.choice(BACKOFFS)),
            initial_delay=c.get(r, "initial_delay", rp, c.duration),
            max_delay=c.get(r, "max_delay", rp, c.duration),
            retry_on=c.get(r, "retry_on", rp, c.strings),
            no_retry_on=c.get(r, "no_retry_on", rp, c.strings),
        )
    )


def _read_agent(c: Checker, raw: Any, path: Path) -> dict[str, Any]:
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
    out["cache"] = c.get(m, "cache", path, c.cache_mode)
    out["cache_version"] = c.get(m, "cache_version", path, c.version)
    out["cache_inputs"] = c.get(m, "cache_inputs", path, c.strings)
    if "default" in m:
        out["default"] = m["default"]
    if m.get("retry") is not None:
        out["retry"] = _read_retry(c, m["retry"], (*path, "retry"))
    if m.get("circuit_breaker") is not None:
        out["circuit_breaker"] = _read_breaker(c, m["circuit_breaker"], (*path, "circuit_breaker"))
    return {k: v for k, v in out.items() if v is not MISSING}


def _read_breaker(c: Checker, raw: Any, bp: Path) -> CircuitBreakerSettings:
    """A ``circuit_breaker:`` mapping (an agent's, or a net transition's)."""
    b = c.mapping(raw, bp, BREAKER_KEYS, "circuit_breaker")
    return CircuitBreakerSettings(
        **opts(
            failure_threshold=c.get(b, "failure_threshold", bp, c.integer(1)),
            reset_timeout=c.get(b, "reset_timeout", bp, c.duration),
            probe_timeout=c.get(b, "probe_timeout", bp, c.duration),
        )
    )


def _read_steps(c: Checker, raw: Any) -> list[dict[str, Any]]:
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
            f"pipeline must be a list of steps (- step: ...), found {kind_of(raw)}",
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
        if sid is MISSING:
            continue
        deps = c.get(m, "depends_on", path, c.strings)
        with_ = m.get("with")
        if with_ is not None and not isinstance(with_, dict):
            c.add(
                "wrong_type",
                (*path, "with"),
                f"'with' must be a mapping of keyword arguments, found {kind_of(with_)}",
                expected="a mapping",
                found=with_,
            )
            with_ = None
        step: dict[str, Any] = {
            "id": sid,
            "depends_on": () if deps is MISSING else deps,
            "with_": dict(with_ or {}),
            "description": None if (d := c.get(m, "description", path, c.string)) is MISSING else d,
            "_index": i,
        }
        if m.get("activation") is not None:
            try:
                act = parse_activation(m["activation"])
            except ValueError as exc:
                c.add("bad_value", (*path, "activation"), str(exc), found=m["activation"])
            else:
                if not act.default:
                    step["activation"] = act
        if (cap := c.get(m, "capacity", path, c.integer(1))) is not MISSING:
            step["capacity"] = cap
        if (keep := c.get(m, "keep", path, c.choice(("all", "last")))) is not MISSING:
            step["keep"] = keep
        steps.append(step)
    return steps


def workflow_from_located(doc: Located, default_name: str | None = None) -> Workflow:
    """Validate a parsed document and build the Workflow; raise ManifestError if invalid."""
    c = Checker(doc)
    data = doc.data
    if data is None:
        c.add("empty_pipeline", (), "the manifest is empty; it needs at least a 'pipeline'")
        raise ManifestError(c.problems, doc.source)
    if "net" in (data if isinstance(data, dict) else {}):
        c.add(
            "unsupported",
            ("net",),
            "this is a Petri-net manifest ('net:'), not a workflow: run it with "
            "fluxnb.run(...) or fluxnb.interactive(...), analyse it with fluxnb.analyze(...)",
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
        c.add("wrong_type", ("agents",), f"agents must be a list, found {kind_of(raw_agents)}")
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
        name if name is not MISSING else (default_name or "workflow"),
        router=router,
        description=None if description is MISSING else description,
    )
    wf.source = doc.source
    wf._located = doc
    wf.layout = _read_layout(c, top)
    wf.triggers = tuple(replace(t, workflow=wf.name) for t in read_triggers(c, top.get("triggers")))
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
    attach_llm_steps(c, top, wf)
    if c.problems:
        raise ManifestError(c.problems, doc.source)
    wf.validate()
    return wf


def _read_layout(c: Checker, top: dict) -> dict[str, tuple[float, float]]:
    if top.get("layout") is None:
        return {}
    layout = c.layout(top["layout"], ("layout",))
    return {} if layout is MISSING else dict(layout)


def load_workflow(
    manifest: Any,
    namespace: Mapping[str, Any] | None = None,
    *,
    source: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> Workflow:
    """A Workflow from YAML text, a path to a ``.yaml`` file, a dict, or a Workflow.

    With ``namespace``, every step's callable is also looked up and checked now
    (``ResolutionError`` otherwise), so mistakes show before anything runs. ``params``
    fill the manifest's ``{{name}}`` placeholders (docs/manifest.md, "Parameters").

    Raises:
        ManifestError: with the source, line and column of every problem found.
    """
    wf = _load(manifest, source, params)
    if namespace is not None:
        wf.validate(resolve=True, namespace=namespace)
    return wf


def read_source(
    manifest: str | os.PathLike[str], source: str | None
) -> tuple[str, str, str | None]:
    """``(text, source, default name)`` of YAML text or a path to a manifest file."""
    if isinstance(manifest, os.PathLike) or (
        "\n" not in manifest and (manifest.endswith((".yaml", ".yml")) or os.path.isfile(manifest))
    ):
        path = FsPath(manifest)
        return read_file_text(path, "manifest"), str(path), path.stem
    return manifest, source or "<manifest>", None


def no_params(loaded: Any, params: Mapping[str, Any] | None) -> None:
    """``params=`` with an already-built Workflow or Net: nothing to fill, so say so."""
    if params:
        raise TypeError(
            f"params= fills {{{{name}}}} in a manifest's text, but this is an already-loaded "
            f"{type(loaded).__name__}; pass the manifest text, file or dict instead"
        )


def _load(manifest: Any, source: str | None, params: Mapping[str, Any] | None = None) -> Workflow:
    if isinstance(manifest, Workflow):
        no_params(manifest, params)
        return manifest
    if isinstance(manifest, str | os.PathLike):
        text, src, stem = read_source(manifest, source)
        text = fill_text(text, params, source=src)
        wf = workflow_from_located(load_located(text, src), default_name=stem)
        wf.text = text
        return wf
    if isinstance(manifest, Mapping):
        if params:
            manifest = fill_mapping(manifest, params, source)
        return workflow_from_located(Located(dict(manifest), source or "<dict>"))
    raise TypeError(
        "a manifest is YAML text, a path to a .yaml file, a dict or a Workflow; "
        f"got {type(manifest).__name__}"
    )
