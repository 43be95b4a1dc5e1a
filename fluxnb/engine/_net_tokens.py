"""Coloured tokens with their history, firings, and the result of a net run."""

from __future__ import annotations

import time
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat
from typing import Any, overload

from .._plural import plural
from ._states import RunStatus

#: The wall clock (µs) and ``time.perf_counter_ns()`` at one instant: a token's history
#: keeps perf_counter_ns readings (monotonic, cheap) and turns them into wall time when read.
_WALL0_US, _PERF0_NS = time.time_ns() // 1000, time.perf_counter_ns()


def _dt(us: int) -> datetime:
    return datetime.fromtimestamp(us / 1e6, tz=UTC)


@dataclass(frozen=True, slots=True)
class Move:
    """One step of a token's history: ``transition`` (firing number ``firing``) put it
    in ``place`` at ``at``. A token put in by hand has transition ``None``."""

    transition: str | None
    firing: int
    place: str
    at_us: int

    @property
    def at(self) -> datetime:
        return _dt(self.at_us)


def head(q: Any, n: int) -> list[Token]:
    """The first ``n`` tokens of a place's queue (what a firing takes from it)."""
    return [q[0]] if n == 1 else [q[i] for i in range(n)]


class Token:
    """A token: its data and its history (which transitions moved it, when).

    A firing consumes tokens and produces new ones; a produced token carries on the
    history of the first token the firing consumed, so following a document through a
    review loop reads as one history. The history is a shared chain, so a firing costs
    the same however long the history already is.
    """

    __slots__ = ("_trail", "data", "id")

    def __init__(self, data: Any, id: int, trail: tuple[Any, ...] | None = None) -> None:
        self.data = data
        #: Unique within its run, in order of creation.
        self.id = id
        # the history as a shared chain of plain tuples, (transition, firing, place,
        # perf_counter_ns, previous), made into Moves only when asked: a firing builds no
        # objects for it and reads one clock
        self._trail = trail

    @property
    def history(self) -> list[Move]:
        """Oldest first."""
        out = []
        t = self._trail
        while t is not None:
            out.append(Move(t[0], t[1], t[2], _WALL0_US + (t[3] - _PERF0_NS) // 1000))
            t = t[4]
        out.reverse()
        return out

    @property
    def place(self) -> str | None:
        """Where the last move put it (None: an initial token)."""
        return None if self._trail is None else self._trail[2]

    def __repr__(self) -> str:
        path = [m.transition or "put" for m in self.history]
        via = f" via {' → '.join(path[-5:])}" if path else ""
        more = "…" if len(path) > 5 else ""
        return f"Token#{self.id}({self.data!r}{more and ' ' + more}{via})"


@dataclass(slots=True)
class Firing:
    """One firing of a transition (or one token put in by hand, ``transition='put:P'``)."""

    seq: int
    transition: str
    status: str  # succeeded | failed | skipped | cancelled | running
    attempts: int
    consumed: list[Token]
    produced: list[Token] = field(default_factory=list)
    output: Any = None
    error: str | None = None
    started_us: int = 0
    ended_us: int | None = None

    def __repr__(self) -> str:
        err = f": {self.error}" if self.error else ""
        took = ""
        if self.ended_us is not None:
            took = f" in {(self.ended_us - self.started_us) / 1000:.1f} ms"
        return (
            f"<Firing #{self.seq} {self.transition} {self.status}{took}; "
            f"{plural(len(self.consumed), 'token')} in, {len(self.produced)} out{err}>"
        )


class Runs(Sequence[int]):
    """A firing sequence kept as runs: transition ``tis[i]`` fired ``counts[i]`` times in
    a row. A stream's firings come in long runs of one step (a step fires while it has
    items), so a run of a million items keeps thousands of pairs, not millions of entries:
    its memory is bounded by the work in flight, not by the item count. It reads like the
    ``array`` of transition indices it stands for."""

    __slots__ = ("_len", "counts", "tis")

    def __init__(self) -> None:
        self.tis = array("i")
        self.counts = array("q")
        self._len = 0

    def add(self, ti: int, n: int = 1) -> None:
        """``ti`` fired ``n`` more times."""
        tis = self.tis
        if tis and tis[-1] == ti:
            self.counts[-1] += n
        else:
            tis.append(ti)
            self.counts.append(n)
        self._len += n

    append = add

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[int]:
        for ti, n in zip(self.tis, self.counts, strict=True):
            yield from repeat(ti, n)

    @overload
    def __getitem__(self, i: int) -> int: ...
    @overload
    def __getitem__(self, i: slice) -> list[int]: ...
    def __getitem__(self, i: int | slice) -> int | list[int]:
        if isinstance(i, slice):
            return list(self)[i]
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError("firing index out of range")
        for ti, n in zip(self.tis, self.counts, strict=True):
            if i < n:
                return ti
            i -= n
        raise IndexError("firing index out of range")  # pragma: no cover


#: How a net run ended (``NetResult.ending``).
ENDINGS = ("final", "dead", "max_firings", "failed", "cancelled", "closed")


class NetResult:
    """The outcome of a net run.

    Attributes:
        status: ``succeeded`` when the run reached the final marking, or a dead marking
            of a net without one; ``failed`` at a deadlock (a dead marking that is not
            final), at ``max_firings``, or when an action failed for good; ``cancelled``.
        ending: ``final`` | ``dead`` | ``max_firings`` | ``failed`` | ``cancelled`` |
            ``closed`` (an interactive run closed by hand).
        marking: tokens per place at the end.
        firings: how many firings completed.
        counts: completed firings per transition.
        outputs: the last output of every transition with an action.
        reason: why the run ended as it did, in words.
        names: display names (PNML ``<name>``) by transition id, for those that have one.
    """

    def __init__(
        self,
        *,
        run_id: str,
        net: str,
        status: RunStatus,
        ending: str,
        reason: str | None,
        marking: dict[str, int],
        tokens: dict[str, list[Token]] | None,
        sequence: Any,
        ids: tuple[str, ...],
        outputs: dict[str, Any],
        errors: dict[str, str],
        started_us: int,
        duration: float,
        store: str | None,
        namespace: str | None = None,
        tenant: str | None = None,
        names: dict[str, str] | None = None,
    ) -> None:
        self.run_id = run_id
        self.workflow = net
        self.status = status
        self.ending = ending
        self.reason = reason
        self.marking = marking
        self._tokens = tokens
        self._sequence = sequence  # transition indices in completion order (array or Runs)
        self._ids = ids
        self.outputs = outputs
        self.errors = errors
        self.started_us = started_us
        self.duration = duration
        self.store = store
        self.namespace = namespace
        self.tenant = tenant
        self.names = dict(names or {})

    @property
    def ok(self) -> bool:
        return self.status is RunStatus.SUCCEEDED

    @property
    def firings(self) -> int:
        return len(self._sequence)

    @property
    def sequence(self) -> list[str]:
        """Transition ids in the order their firings completed."""
        ids = self._ids
        return [ids[i] for i in self._sequence]

    @property
    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(self._ids, 0)
        seq = self._sequence
        if isinstance(seq, Runs):
            for ti, n in zip(seq.tis, seq.counts, strict=True):
                out[self._ids[ti]] += n
            return out
        for i in seq:
            out[self._ids[i]] += 1
        return out

    @property
    def tokens(self) -> dict[str, list[Token]]:
        """Tokens per place at the end. A black-token net run by the compiled token game
        keeps no per-token history (its tokens are interchangeable): the firing
        sequence is its history."""
        if self._tokens is None:
            n = 0
            self._tokens = {}
            for place, count in self.marking.items():
                self._tokens[place] = [Token(None, n + i) for i in range(count)]
                n += count
        return self._tokens

    def __getitem__(self, transition: str) -> Any:
        if transition in self.outputs:
            return self.outputs[transition]
        raise KeyError(f"transition '{transition}' has no recorded output in this run")

    #: A ``RecordingFailed`` when the run's rows could not all be written to its store
    #: (a full disk); None when the trace is whole.
    recording_error: Any = None

    def raise_for_status(self) -> NetResult:
        from .._exceptions import RunError

        if self.status is not RunStatus.SUCCEEDED:
            raise RunError(f"net run {self.run_id} {self.status.value}: {self.reason}")
        return self

    def summary(self) -> str:
        marked = ", ".join(f"{p}={n}" for p, n in self.marking.items() if n) or "empty"
        lines = [
            f"net run {self.run_id} · '{self.workflow}' · {self.status.value} "
            f"({self.ending}) after {plural(self.firings, 'firing')} in {self.duration:.3f}s",
            f"marking: {marked}",
        ]
        fired = self.fired()
        if fired:
            lines.append(f"fired: {fired}")
        if self.reason:
            lines.append(self.reason)
        if self.recording_error is not None:
            lines.append(f"NOT RECORDED: {self.recording_error}")
        return "\n".join(lines)

    def label(self, transition: str) -> str:
        """``transition`` with its display name, if it has one: ``n16 (reinitiate request)``."""
        name = self.names.get(transition)
        return f"{transition} ({name})" if name and name != transition else transition

    def fired(self, most: int = 12) -> str:
        """The transitions that fired, with names and counts, in declared order (the ``most``
        frequent when there are more)."""
        counts = [(t, n) for t, n in self.counts.items() if n]
        shown = counts
        if len(counts) > most:
            keep = {t for t, _ in sorted(counts, key=lambda tn: -tn[1])[:most]}
            shown = [(t, n) for t, n in counts if t in keep]
        text = ", ".join(f"{self.label(t)} x{n:,}" for t, n in shown)
        if len(shown) < len(counts):
            text += f", and {len(counts) - len(shown)} more"
        return text

    def _repr_html_(self) -> str:
        from .._html import net_result_html

        return net_result_html(self)

    def __repr__(self) -> str:
        return (
            f"<NetResult {self.run_id} '{self.workflow}' {self.status.value} ({self.ending}): "
            f"{plural(self.firings, 'firing')}; {self.duration:.3f}s>"
        )
