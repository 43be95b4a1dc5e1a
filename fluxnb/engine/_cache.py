"""Incremental runs: which steps a recorded output stands in for, decided as each starts.

When the DAG game is about to start a step's first attempt it asks :meth:`StepCache.lookup`.
The step's cache key (``_cache_key``) is made then, when the digests of its inputs (the
outputs of the steps upstream, as recorded) are known. A key equal to that of a recorded
successful attempt of the same workflow in the same namespace is a **hit**: the recorded
output is loaded (signed pickles only) and the step is not called; its row says
``cached``. Anything else runs as usual and is recorded with its key for next time.

Every decision has a reason in words (``code changed: clean()``, ``input changed: load``,
``param threshold 0.5 → 0.6``), kept in ``cache_entries`` (the ``cache_decisions`` view),
on the result (``result.cache``, ``result.explain()``) and in its HTML.

Modes (docs/caching.md): a step's own ``cache: off`` always wins (non-deterministic steps);
an explicit ``run(cache=...)`` (``%%fluxroute --cache``, ``fluxnb run --cache``) decides for
every other step; else a step's own ``cache:``, else ``router.cache``, else off.

Nets and streaming steps are not cached (a transition fires many times on different
tokens); only DAG steps are.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from operator import attrgetter
from pathlib import Path
from typing import Any

from .._exceptions import ReplayError, RunError, StoreError
from ..spec import Workflow
from ..store._cache import Index, fetch, now_us, write_entries, write_large
from ..store._outputs import encode
from ..store._recorder import EVENT_COLUMNS, Recorder
from ..store._store_recorder import StoreRecorder
from ._cache_key import (
    Fingerprint,
    Unfingerprintable,
    code_versions,
    files_hash,
    label,
    reasons,
    shown,
)
from ._plan import Plan
from ._result import CacheDecision

_N = len(EVENT_COLUMNS)
MODES = ("use", "refresh", "off")


def run_mode(cache: bool | str | None) -> str | None:
    """``run(cache=...)`` as a mode: True is ``use``, False is ``off``, None: not given."""
    if cache is None:
        return None
    if cache is True or cache is False:
        return "use" if cache else "off"
    if cache not in MODES:
        raise RunError(f"cache must be True, False, 'use', 'refresh' or 'off', not {cache!r}")
    return str(cache)


def uncached(what: str, cache: bool | str | None) -> None:
    """Warn when ``cache=`` asks for caching a run that is never cached (``what``)."""
    if run_mode(cache) in ("use", "refresh"):
        warnings.warn(
            f"cache={cache!r} has no effect: {what} is not cached (a transition fires many "
            "times on different tokens); its steps run as usual (docs/caching.md, Limits)",
            RuntimeWarning,
            stacklevel=3,
        )


def step_modes(wf: Workflow, plan: Plan, given: str | None) -> list[str]:
    """Each step's cache mode (see the module's docstring)."""
    if given is None and wf.router.cache in (None, "off"):
        # most runs: nothing asks for caching; seen in C, not a Python loop per step
        owns = list(map(_CACHE, wf._steps.values()))
        if owns.count(None) + owns.count("off") == len(owns):
            return ["off"] * len(plan.ids)
    out = []
    steps = wf.steps  # a fresh mapping each time it is read
    for sid in plan.ids:
        own = steps[sid].cache
        if own == "off":
            out.append("off")
        elif given is not None:
            out.append(given if given != "use" else own or "use")
        else:
            out.append(own or wf.router.cache or "off")
    return out


_CACHE = attrgetter("cache")


class _Entry:
    """One step's decision while the run goes (a ``cache_entries`` row at the end)."""

    __slots__ = ("attempt", "decision", "fp", "key", "large", "reason", "seq", "source")

    def __init__(self, seq: int, attempt: int, decision: str, reason: str) -> None:
        self.seq, self.attempt, self.decision, self.reason = seq, attempt, decision, reason
        self.key: str | None = None
        self.fp: Fingerprint | None = None
        self.source: str | None = None
        self.large: tuple[str | None, str | None] = (None, None)


class StepCache:
    """One run's cache: its index of recorded keys, and each step's decision."""

    def __init__(
        self,
        wf: Workflow,
        plan: Plan,
        store: Any,
        run_id: str,
        namespace: str,
        modes: list[str],
        digests: Mapping[str, str] | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.plan = plan
        self.ids = plan.ids
        self.modes = modes
        steps = wf.steps  # a fresh mapping each time it is read
        self.steps = [steps[sid] for sid in plan.ids]
        self.deps = [tuple(dict.fromkeys(s.depends_on)) for s in self.steps]
        source = wf.source or ""
        self.root = str(Path(source).parent) if Path(source).is_file() else None
        #: Digest of each step's output in this run (None: none that can be fingerprinted).
        self.digests: dict[str, str | None] = dict(digests or {})
        self.entries: dict[str, _Entry] = {}
        #: A hit's recorded output columns, until its row is recorded with them.
        self.reused: dict[str, tuple] = {}
        self._versions: dict[int, tuple[str, dict[str, str], dict[str, str]]] = {}
        self.index = Index(store, wf.name, namespace)

    # ------------------------------------------------------------------ deciding
    def lookup(self, ti: int, kwargs: Mapping[str, Any]) -> tuple[Any] | None:
        """``(recorded output,)`` when step ``ti`` need not run; None: run it. Whatever
        goes wrong in deciding (a file that cannot be read, ...) runs the step: caching
        never fails a run."""
        try:
            return self._lookup(ti)
        except Exception as exc:
            why = f"its cache key could not be made: {type(exc).__name__}: {exc}"
            self.entries[self.ids[ti]] = _Entry(ti + 1, 1, "off", why)
            return None

    def _lookup(self, ti: int) -> tuple[Any] | None:
        sid = self.ids[ti]
        mode = self.modes[ti]
        if mode == "off":
            why = "cache: off" if self.steps[ti].cache == "off" else "caching is off"
            self.entries[sid] = _Entry(ti + 1, 1, "off", why)
            return None
        fp, why = self._fingerprint(ti)
        if fp is None:
            self.entries[sid] = _Entry(ti + 1, 1, "off", why)
            return None
        key = fp.key()
        src = self.index.sources.get(key)
        if mode == "refresh":
            entry = _Entry(ti + 1, 1, "refresh", "cache: refresh")
        elif src is None:
            old = Fingerprint.from_json(self.index.last.get(sid))
            entry = _Entry(ti + 1, 1, "miss", "; ".join(reasons(fp, old)))
        else:
            try:
                value, stored = fetch(self.store, src, self.index)
            except Exception as exc:  # untrusted, pruned, unreadable: the step just runs
                what = str(exc) if isinstance(exc, ReplayError) else repr(exc)
                entry = _Entry(ti + 1, 1, "miss", f"its recorded output cannot be reused: {what}")
            else:
                entry = _Entry(ti + 1, 1, "hit", f"unchanged since run {src.origin}")
                entry.source = src.origin
                entry.large = (src.large_output, src.large_sha)
                entry.key, entry.fp = key, fp
                self.entries[sid] = entry
                self.reused[sid] = stored
                return (value,)
        entry.key, entry.fp = key, fp
        self.entries[sid] = entry
        return None

    def _fingerprint(self, ti: int) -> tuple[Fingerprint | None, str]:
        step, binding = self.steps[ti], self.plan.bindings[ti]
        if binding is None:
            return None, "no callable"
        fn = binding.fn
        versions = self._versions.get(id(fn))
        if versions is None:
            try:
                versions = self._versions[id(fn)] = code_versions(fn)
            except Unfingerprintable as exc:
                return None, str(exc)
        inputs = {}
        for dep in self.deps[ti]:
            digest = self.digests.get(dep)
            if digest is None:
                return None, f"input {dep} has no output that can be fingerprinted"
            inputs[dep] = digest
        params, reprs = {}, {}
        for name, value in self.plan.static[ti].items():
            fmt, _, _, digest, _ = encode(value)
            if fmt == "unpicklable" or digest is None:
                return None, f"param {name} cannot be fingerprinted (it does not pickle)"
            params[name], reprs[name] = digest, shown(value)
        files = {g: files_hash(g, self.root) for g in step.cache_inputs}
        manifest = {
            "ref": step.reference,
            "passed": sorted(binding.passed),
            "ctx": binding.wants_ctx,
        }
        fp = Fingerprint(
            code=versions[0],
            fn=label(fn),
            calls=versions[1],
            state=versions[2],
            version=step.cache_version,
            params=params,
            shown=reprs,
            inputs=inputs,
            files=files,
            manifest=manifest,
        )
        return fp, ""

    # ------------------------------------------------------------------ outputs
    def stored_for(self, row: tuple) -> tuple | None:
        """A hit's row records its source's output columns as they are: the same digest
        (a value rebuilt from Parquet may pickle differently), and nothing re-encoded."""
        return self.reused.pop(row[2], None) if row[4] == "cached" else None

    def on_output(self, row: tuple, stored: tuple) -> None:
        """The store recorder encoded an attempt's output: note its digest (downstream
        keys use it); keep a large output of a step that ran in the large-output store."""
        if not row[5]:
            return
        sid = row[2]
        fmt, digest = stored[0], stored[3]
        ok = row[4] in ("succeeded", "cached") and fmt not in (None, "unpicklable")
        self.digests[sid] = digest if ok else None
        entry = self.entries.get(sid)
        if entry is None or not ok or entry.decision not in ("miss", "refresh"):
            return
        entry.attempt = row[3]
        if fmt == "too_large" and digest is not None:
            kept = write_large(self.store, row[_N], digest)
            if kept is not None:
                entry.large = kept

    # ------------------------------------------------------------------ the end
    def finish(self) -> dict[str, CacheDecision]:
        """Record this run's decisions in the store; each step's CacheDecision."""
        at = now_us()
        rows = []
        out = {}
        for sid in self.plan.declared:
            e = self.entries.get(sid)
            if e is None:
                continue
            fp = None if e.fp is None else e.fp.to_json()
            rows.append(
                (self.run_id, e.seq, sid, e.attempt, e.key, e.decision, e.reason, fp,
                 e.source, e.large[0], e.large[1], at)
            )  # fmt: skip
            out[sid] = CacheDecision(sid, e.decision, e.reason, e.key, e.source)
        write_entries(self.store, rows)
        return out


def attach(
    scheduler: Any,
    wf: Workflow,
    plan: Plan,
    recorder: Recorder,
    namespace: str | None,
    cache: bool | str | None,
    digests: Mapping[str, str] | None = None,
) -> StepCache | None:
    """Give ``scheduler`` a StepCache when any step is cached (None otherwise).

    Raises:
        RunError: ``cache`` asks for caching but the run has no store to look in.
    """
    given = run_mode(cache)
    modes = step_modes(wf, plan, given)
    if modes.count("off") == len(modes):
        return None
    target = _store_recorder(recorder)
    if target is None:
        if given is None:
            return None  # a manifest's router.cache with store=None: nothing to look in
        raise RunError(
            "cache= needs a store to find recorded outputs in; pass store= a path, "
            "':memory:' or a Store (not None, not a recorder of your own)"
        )
    try:
        sc = StepCache(
            wf, plan, target.store, scheduler.opts.run_id, namespace or "default", modes, digests
        )
    except (StoreError, OSError) as exc:  # a store that cannot be read now: run uncached
        warnings.warn(
            f"fluxnb could not read the cache keys of {target.store.path}: {exc}; this run "
            "is not cached",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    target.cache = sc
    scheduler.cache = sc
    return sc


def _store_recorder(recorder: Any) -> Any:
    """The StoreRecorder inside ``recorder`` (through wrappers), or None."""
    for _ in range(5):
        if recorder is None:
            return None
        if isinstance(recorder, StoreRecorder):
            return recorder
        recorder = getattr(recorder, "inner", getattr(recorder, "_inner", None))
    return None
