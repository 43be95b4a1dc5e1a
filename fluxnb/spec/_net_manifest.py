"""Net manifests: ``net:`` (places and transitions) and the state-machine form, as Nets.

```yaml
name: review
net:
  places: {draft: 1, review: 0, done: 0}      # a count, or a list of token data dicts
  transitions:
    - id: submit
      inputs: [draft]                          # or {draft: 2} for arc weights
      outputs: [review]
      run: submit_doc                          # optional action
      guard: "token.words > 100"               # optional; never eval-ed
      priority: 1
      inhibitors: [done]
  final: {done: 1}
```

The Circuit Breaker state-machine form (``states``, ``transitions`` with ``id``,
``from_states``, ``to_state``, optional ``conditions``; ``initial_state``; optional ``final``
states) is a one-token net: a place per state, and a transition per (transition, source
state) — named ``id`` when there is one source state, ``id@state`` otherwise; its
``conditions`` become the guard (all must hold). Each final state is a final marking (the
token in it). Circuit Breaker's own camelCase spellings (``initialState``, ``fromStates``,
``toState``) are read as well. Such a net is driven from outside (``Net.machine``).
Validation reports every problem with line and column, like the workflow manifest's.

Why over 400 lines: both net manifest forms (``net:`` and the state-machine spellings), the
writer and the builder's entry points share one checker and the same located problems.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .._exceptions import ManifestError
from ._checker import MISSING, Checker, kind_of, opts
from ._guards import Guard, GuardSyntaxError
from ._located import Located, Path, load_located
from ._manifest import (
    _read_breaker,
    _read_retry,
    _read_router,
    load_workflow,
    no_params,
    read_source,
    workflow_from_located,
)
from ._model import Workflow
from ._net import Arc, Net, Transition, as_net
from ._params import fill_mapping, fill_text

NET_KEYS = ("places", "transitions", "final", "max_firings", "choice")
#: Keys a transition shares with a workflow agent (how its action is run).
ACTION_KEYS = (
    "retry",
    "timeout",
    "on_error",
    "default",
    "external",
    "circuit_breaker",
    "executor",
)
TRANSITION_KEYS = (
    "id",
    "inputs",
    "outputs",
    "inhibitors",
    "run",
    "guard",
    "priority",
    "description",
    *ACTION_KEYS,
)
MACHINE_KEYS = ("states", "transitions", "initial_state", "initialState", "final")
MACHINE_TRANSITION_KEYS = (
    "id",
    "from_states",
    "fromStates",
    "to_state",
    "toState",
    "conditions",
    "run",
    "priority",
    "description",
    *ACTION_KEYS,
)
CHOICES = ("priority", "random")


def is_net_manifest(data: Any) -> bool:
    return isinstance(data, dict) and ("net" in data or "states" in data)


def net_from_located(doc: Located, default_name: str | None = None) -> Net:
    """A Net from a parsed manifest with ``net:`` or the state-machine keys."""
    c = Checker(doc)
    data = doc.data
    name = data.get("name") if isinstance(data.get("name"), str) else default_name or "net"
    if "net" in data:
        c.mapping(
            data,
            (),
            ("name", "description", "params", "router", "net", "layout", "names"),
            "the manifest",
        )
        net = _read_net(c, data["net"], name)
    else:
        c.mapping(
            data,
            (),
            ("name", "description", "params", "router", "layout", *MACHINE_KEYS),
            "the manifest",
        )
        net = _read_machine(c, data, name)
    router = _read_router(c, data["router"]) if data.get("router") is not None else None
    if data.get("layout") is not None and net is not None:
        layout = c.layout(data["layout"], ("layout",))
        if layout is not MISSING:
            net = replace(net, positions={**net.positions, **layout})
    if data.get("names") is not None and net is not None:
        net = replace(net, names={**net.names, **_names(c, data["names"])})
    if c.problems:
        raise ManifestError(c.problems, doc.source)
    assert net is not None
    return net if router is None else replace(net, router=router)


def _names(c: Checker, v: Any) -> dict[str, str]:
    """``names: {id: display name}`` — what PNML ``<name>`` holds, shown instead of the id."""
    if not isinstance(v, dict):
        c.add("wrong_type", ("names",), f"names must be a mapping of id: name, found {kind_of(v)}")
        return {}
    out = {}
    for key, name in v.items():
        if isinstance(name, str) and name.strip():
            out[str(key)] = name
        else:
            c.add(
                "wrong_type",
                ("names", key),
                f"a display name is a non-empty string, found {kind_of(name)}",
                expected="a string",
                found=name,
            )
    return out


def _action(c: Checker, tm: dict, tp: Path) -> dict[str, Any]:
    """The keys that say how a transition's action runs (as Transition fields)."""
    out = opts(
        timeout=c.get(tm, "timeout", tp, c.duration),
        on_error=c.get(tm, "on_error", tp, c.on_error),
        external=c.get(tm, "external", tp, c.boolean),
        retry=_read_retry(c, tm["retry"], (*tp, "retry")) if tm.get("retry") else MISSING,
        executor=c.get(tm, "executor", tp, c.choice(("local", "dask"))),
    )
    if tm.get("circuit_breaker") is not None:
        out["circuit_breaker"] = _read_breaker(c, tm["circuit_breaker"], (*tp, "circuit_breaker"))
    if "default" in tm:
        out["default"] = tm["default"]
    return out


def _arcs(c: Checker, raw: Any, path: Path, index: dict[str, int], what: str) -> list[Arc]:
    if raw is None:
        return []
    items = {raw: 1} if isinstance(raw, str) else raw
    if isinstance(items, list):
        items = {p: 1 for p in items} if all(isinstance(p, str) for p in items) else None
    if not isinstance(items, dict):
        c.add(
            "wrong_type",
            path,
            f"{what} must be a place, a list of places or {{place: weight}}, found {kind_of(raw)}",
        )
        return []
    arcs = []
    for place, weight in items.items():
        if place not in index:
            from ._graph import suggest

            hint = suggest(str(place), list(index))
            c.add(
                "unknown_place",
                path,
                f"{what} names '{place}', which is not a place"
                + (f" (did you mean '{hint}'?)" if hint else ""),
                found=place,
                suggestion=hint,
            )
            continue
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
            c.add(
                "bad_value",
                (*path, str(place)),
                f"an arc weight must be an integer >= 1, found {kind_of(weight)}",
            )
            continue
        arcs.append(Arc(index[place], weight))
    return arcs


def _guard(c: Checker, raw: Any, path: Path) -> str | None:
    """A guard's text, checked against the guard language now (not when it first fires)."""
    if raw is None:
        return None
    text = c.string(raw, path)
    if text is MISSING:
        return None
    try:
        Guard(text)
    except GuardSyntaxError as exc:
        c.add("bad_guard", path, str(exc), found=text)
        return None
    return str(text)


def read_place(c: Checker, pid: Any, value: Any, path: Path) -> tuple[int, list | None] | None:
    """A place's initial token count and token data (None: black tokens), or None (and a
    problem) when ``value`` is neither a count >= 0 nor a list of token data."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | list)
        or (isinstance(value, int) and value < 0)
    ):
        c.add(
            "wrong_type",
            path,
            f"place '{pid}' needs a token count (>= 0) or a list of "
            f"token data, found {kind_of(value)}",
        )
        return None
    if isinstance(value, list):
        return len(value), list(value)
    return value, None


def read_transition(
    c: Checker, t: Any, tp: Path, index: dict[str, int], seen: set[str]
) -> Transition | None:
    """One ``net.transitions`` entry as a Transition (None, with problems, when it cannot be
    made); ``index`` maps place names to indices, ``seen`` holds the ids read so far."""
    tm = c.mapping(t, tp, TRANSITION_KEYS, f"net.transitions[{tp[-1]}]")
    tid = c.get(tm, "id", tp, c.string)
    if tid is MISSING:
        if isinstance(t, dict) and "id" not in t:
            c.add("missing_key", tp, "a transition needs an 'id'")
        return None
    if tid in seen:
        c.add("duplicate_id", (*tp, "id"), f"transition id '{tid}' is used twice", found=tid)
        return None
    if tid in index:  # one id space, as in PNML (and the designer's graph)
        c.add(
            "duplicate_id",
            (*tp, "id"),
            f"transition id '{tid}' is also a place's name; give the place and the "
            "transition different names",
            found=tid,
        )
        return None
    seen.add(tid)
    priority = c.get(tm, "priority", tp, c.integer(-(10**9)))
    return Transition(
        tid,
        tuple(_arcs(c, tm.get("inputs"), (*tp, "inputs"), index, "inputs")),
        tuple(_arcs(c, tm.get("outputs"), (*tp, "outputs"), index, "outputs")),
        priority=0 if priority is MISSING else priority,
        inhibitors=tuple(_arcs(c, tm.get("inhibitors"), (*tp, "inhibitors"), index, "inhibitors")),
        run=None if (r := c.get(tm, "run", tp, c.string)) is MISSING else r,
        guard=_guard(c, tm.get("guard"), (*tp, "guard")),
        **_action(c, tm, tp),
    )


def _read_net(c: Checker, raw: Any, name: str) -> Net | None:
    m = c.mapping(raw, ("net",), NET_KEYS, "net")
    places_raw = m.get("places")
    if not isinstance(places_raw, dict) or not places_raw:
        c.add("missing_key", ("net", "places"), "a net needs 'places' (place: initial tokens)")
        return None
    places, initial, tokens = [], [], {}
    for pid, value in places_raw.items():
        read = read_place(c, pid, value, ("net", "places", str(pid)))
        if read is None:
            continue
        places.append(str(pid))
        if read[1] is not None:
            tokens[len(places) - 1] = read[1]
        initial.append(read[0])
    index = {p: i for i, p in enumerate(places)}
    transitions = []
    raw_ts = m.get("transitions")
    if not isinstance(raw_ts, list) or not raw_ts:
        c.add("missing_key", ("net", "transitions"), "a net needs a list of 'transitions'")
        raw_ts = []
    seen: set[str] = set()
    for i, t in enumerate(raw_ts):
        transition = read_transition(c, t, ("net", "transitions", i), index, seen)
        if transition is not None:
            transitions.append(transition)
    final = {}
    if m.get("final") is not None:
        for arc in _arcs(c, m["final"], ("net", "final"), index, "final"):
            final[arc.place] = arc.weight
    return Net(
        name,
        tuple(places),
        tuple(initial),
        tuple(transitions),
        final,
        tokens=tokens,
        **opts(
            max_firings=c.get(m, "max_firings", ("net",), c.integer(1)),
            choice=c.get(m, "choice", ("net",), c.choice(CHOICES)),
        ),
    )


def _spelled(c: Checker, m: dict, path: Path, key: str, camel: str, check: Any) -> Any:
    """``m[key]``, or its Circuit Breaker spelling ``m[camel]``; a problem if both are given."""
    if key in m and camel in m:
        c.add(
            "duplicate_key",
            (*path, camel),
            f"'{key}' and '{camel}' are two spellings of one key: give one of them",
            key=True,
        )
        return MISSING
    return c.get(m, camel if camel in m else key, path, check)


def _state(
    c: Checker,
    state: str,
    index: dict[str, int],
    path: Path,
    what: str,
    kind: str = "unknown_state",
) -> bool:
    """Whether ``state`` is one of the states; a problem with "did you mean" if not."""
    if state in index:
        return True
    from ._graph import suggest

    hint = suggest(state, list(index))
    c.add(
        kind,
        path,
        f"{what} names '{state}', which is not one of the states ({', '.join(index)})"
        + (f" (did you mean '{hint}'?)" if hint else ""),
        found=state,
        suggestion=hint,
    )
    return False


def _read_machine(c: Checker, data: dict, name: str) -> Net | None:
    states = c.get(data, "states", (), c.strings)
    if states is MISSING:
        c.add("missing_key", ("states",), "a state machine needs 'states'")
        return None
    index = {s: i for i, s in enumerate(states)}
    key = "initialState" if "initialState" in data else "initial_state"
    initial_state = _spelled(c, data, (), "initial_state", "initialState", c.string)
    if initial_state is MISSING:
        if "initial_state" not in data and "initialState" not in data:
            c.add("missing_key", (key,), f"a state machine needs '{key}' (one of the states)")
        return None
    if not _state(c, initial_state, index, (key,), key, "bad_value"):
        return None
    finals = c.get(data, "final", (), c.strings)
    if finals is MISSING:
        finals = ()
    finals = tuple(s for s in finals if _state(c, s, index, ("final",), "final"))
    transitions = []
    raw_ts = data.get("transitions") or []
    for i, t in enumerate(raw_ts if isinstance(raw_ts, list) else []):
        tp: Path = ("transitions", i)
        tm = c.mapping(t, tp, MACHINE_TRANSITION_KEYS, f"transitions[{i}]")
        tid = c.get(tm, "id", tp, c.string)
        sources = _spelled(c, tm, tp, "from_states", "fromStates", c.strings)
        target = _spelled(c, tm, tp, "to_state", "toState", c.string)
        for key, camel, value in (
            ("from_states", "fromStates", sources),
            ("to_state", "toState", target),
        ):
            if value is MISSING and isinstance(t, dict) and key not in t and camel not in t:
                c.add("missing_key", tp, f"transition {i} needs '{key}' (or '{camel}')")
        if MISSING in (tid, sources, target):
            continue
        spelled = {"from_states": "fromStates" if "fromStates" in tm else "from_states"}
        ok = [
            _state(c, s, index, (*tp, spelled["from_states"]), f"transition '{tid}'")
            for s in sources
        ]
        ok.append(
            _state(
                c,
                target,
                index,
                (*tp, "toState" if "toState" in tm else "to_state"),
                f"transition '{tid}'",
            )
        )
        if not all(ok):
            continue
        conditions = c.get(tm, "conditions", tp, c.strings)
        guard = None
        if conditions is not MISSING:
            for k, cond in enumerate(conditions):
                _guard(c, cond, (*tp, "conditions", k))
            guard = " and ".join(f"({x})" for x in conditions)
        run = c.get(tm, "run", tp, c.string)
        priority = c.get(tm, "priority", tp, c.integer(-(10**9)))
        action = _action(c, tm, tp)
        for s in sources:
            transitions.append(
                Transition(
                    tid if len(sources) == 1 else f"{tid}@{s}",
                    (Arc(index[s]),),
                    (Arc(index[target]),),
                    guard=guard,
                    run=None if run is MISSING else run,
                    priority=0 if priority is MISSING else priority,
                    **action,
                )
            )
    initial = tuple(1 if s == initial_state else 0 for s in states)
    ends = [{index[s]: 1} for s in dict.fromkeys(finals)]
    return Net(
        name,
        tuple(states),
        initial,
        tuple(transitions),
        ends[0] if ends else {},
        also_final=tuple(ends[1:]),
        machine=True,
    )


def _pnml(manifest: Any) -> Net | None:
    """The net of a ``.pnml`` path or PNML text, else None (the XML reader loads only for
    PNML)."""
    if isinstance(manifest, os.PathLike) or (
        isinstance(manifest, str) and "\n" not in manifest and manifest.endswith(".pnml")
    ):
        if str(manifest).endswith(".pnml"):
            from ._pnml import load_pnml_file

            return load_pnml_file(manifest)
        return None
    if isinstance(manifest, str) and manifest.lstrip().startswith("<"):
        from ._pnml import read_pnml

        return read_pnml(manifest)
    return None


def load_net(
    manifest: Any, *, source: str | None = None, params: Mapping[str, Any] | None = None
) -> Net:
    """A Net from a net manifest (YAML text, a ``.yaml`` path, or a dict) or PNML;
    ``params`` fill its ``{{name}}`` placeholders (see ``load_any``)."""
    manifest = as_net(manifest)
    if isinstance(manifest, Net):
        no_params(manifest, params)
        return manifest
    pnml = _pnml(manifest)
    if pnml is not None:
        no_params(pnml, params)
        return pnml
    if isinstance(manifest, str | os.PathLike):
        text, src, stem = read_source(manifest, source)
        text = fill_text(text, params, source=src)
        net = net_from_located(load_located(text, src), stem)
        return replace(net, text=text)
    if params:
        manifest = fill_mapping(manifest, params, source)
    return net_from_located(Located(dict(manifest), source or "<dict>"))


def load_any(
    manifest: Any,
    *,
    source: str | None = None,
    params: Mapping[str, Any] | None = None,
    lookup: Mapping[str, Any] | None = None,
) -> Workflow | Net:
    """A Workflow or a Net, whichever the manifest describes (parsed once).

    ``params`` fill the manifest's ``{{name}}`` placeholders (over its ``params:``
    defaults; ``lookup`` is a fallback source between the two); see ``fill_text``.
    """
    manifest = as_net(manifest)
    if isinstance(manifest, Workflow | Net):
        no_params(manifest, params)
        return manifest
    pnml = _pnml(manifest)
    if pnml is not None:
        no_params(pnml, params)
        return pnml
    if isinstance(manifest, str | os.PathLike):
        text, src, stem = read_source(manifest, source)
        text = fill_text(text, params, lookup=lookup, source=src)
        doc = load_located(text, src)
        if is_net_manifest(doc.data):
            return replace(net_from_located(doc, stem), text=text)
        wf = workflow_from_located(doc, default_name=stem)
        wf.text = text
        return wf
    if params and isinstance(manifest, Mapping):
        manifest = fill_mapping(manifest, params, source)
    if is_net_manifest(manifest):
        return net_from_located(Located(dict(manifest), source or "<dict>"))
    return load_workflow(manifest, source=source)


def net_manifest(net: Net) -> dict[str, Any]:
    """The ``net:`` manifest of ``net`` as a dict (``load_net`` of it gives ``net`` back)."""
    net = as_net(net)  # a NetBuilder: the net built so far
    places: dict[str, Any] = {}
    for i, p in enumerate(net.places):
        places[p] = list(net.tokens[i]) if i in net.tokens else net.initial[i]

    def arcs(items: tuple[Arc, ...]) -> list[str] | dict[str, int]:
        if all(a.weight == 1 for a in items):
            return [net.places[a.place] for a in items]
        return {net.places[a.place]: a.weight for a in items}

    transitions = []
    for t in net.transitions:
        d: dict[str, Any] = {"id": t.id, "inputs": arcs(t.inputs), "outputs": arcs(t.outputs)}
        if t.inhibitors:
            d["inhibitors"] = arcs(t.inhibitors)
        for key in ("run", "guard", "timeout", "default"):
            if getattr(t, key) is not None:
                d[key] = getattr(t, key)
        if t.priority:
            d["priority"] = t.priority
        if t.external:
            d["external"] = True
        if t.on_error is not None:
            d["on_error"] = {"strategy": t.on_error.strategy, "fallback": t.on_error.fallback}
        if t.retry is not None:
            d["retry"] = _retry_dict(t.retry)
        if t.executor is not None:
            d["executor"] = t.executor
        if t.circuit_breaker is not None:
            d["circuit_breaker"] = _breaker_dict(t.circuit_breaker)
        transitions.append(d)
    body: dict[str, Any] = {"places": places, "transitions": transitions}
    if net.final:
        body["final"] = {net.places[p]: n for p, n in net.final.items()}
    if net.max_firings is not None:
        body["max_firings"] = net.max_firings
    if net.choice != "priority":
        body["choice"] = net.choice
    out: dict[str, Any] = {"name": net.name}
    router = _router_dict(net)
    if router:
        out["router"] = router
    out["net"] = body
    ids = {*net.places, *(t.id for t in net.transitions)}
    layout = {k: [x, y] for k, (x, y) in net.positions.items() if k in ids}
    if layout:
        out["layout"] = layout
    names = {k: v for k, v in net.names.items() if k in ids and v != k}
    if names:
        out["names"] = names
    return out


def _breaker_dict(b: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "failure_threshold": b.failure_threshold,
        "reset_timeout": b.reset_timeout,
    }
    if b.probe_timeout is not None:
        out["probe_timeout"] = b.probe_timeout
    return out


def _retry_dict(r: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(r).items() if v != ()}


def _router_dict(net: Net) -> dict[str, Any]:
    r = net.router
    out: dict[str, Any] = {}
    for key in ("worker_pool_size", "default_timeout", "namespace", "tenant", "executor"):
        if getattr(r, key) is not None:
            out[key] = getattr(r, key)
    if r.retry is not None:
        out["retry"] = _retry_dict(r.retry)
    if r.on_error is not None:
        out["on_error"] = {"strategy": r.on_error.strategy, "fallback": r.on_error.fallback}
    return out


def net_text(net: Net) -> str:
    """The manifest text of ``net``: the text it was read from, else its YAML."""
    if net.text is not None:
        return net.text
    import yaml

    return yaml.safe_dump(net_manifest(net), sort_keys=False, allow_unicode=True)
