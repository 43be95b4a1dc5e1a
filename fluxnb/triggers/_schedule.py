"""Cron schedule times in a time zone (cronsim: DST-correct), and catch-up after downtime.

Keys are UTC instants, so the two 02:30s of a night when clocks go back are two keys, and a
02:30 that does not exist when clocks go forward fires once, at 03:00 (cronsim's rule, the
same as cron's).
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from ..spec._triggers import Trigger

#: At most this many schedule times are looked at in one pass (a per-second schedule after
#: a long outage); older missed times are dropped (the service logs how many it kept).
MAX_TIMES = 5000


def times_between(
    trigger: Trigger, after: datetime, until: datetime
) -> tuple[list[datetime], bool]:
    """Schedule times t with ``after < t <= until`` (UTC), oldest first, and whether more
    than MAX_TIMES were due (then only the newest MAX_TIMES are returned)."""
    out = _collect(trigger, after, until)
    if len(out) <= MAX_TIMES:
        return out, False
    # a long outage of a frequent schedule: look again from just before the end
    period = (out[-1] - out[0]) / (len(out) - 1)
    return _collect(trigger, max(after, until - period * 2 * MAX_TIMES), until)[-MAX_TIMES:], True


def _collect(trigger: Trigger, after: datetime, until: datetime) -> list[datetime]:
    from cronsim import CronSim

    tz = ZoneInfo(trigger.spec.get("timezone", "UTC"))
    out: list[datetime] = []
    for t in CronSim(trigger.spec["cron"], after.astimezone(tz)):
        u = t.astimezone(UTC)
        if u <= after:
            continue
        if u > until or len(out) > 4 * MAX_TIMES:
            break
        out.append(u)
    return out


def next_time(trigger: Trigger, after: datetime) -> datetime:
    from cronsim import CronSim

    tz = ZoneInfo(trigger.spec.get("timezone", "UTC"))
    for t in CronSim(trigger.spec["cron"], after.astimezone(tz)):
        u = t.astimezone(UTC)
        if u > after:
            return u
    raise AssertionError("unreachable")  # pragma: no cover


def plan(
    times: list[datetime], now: datetime, grace: float, catch_up: str
) -> list[tuple[datetime, str | None]]:
    """Each due time with None (fire it) or why it is skipped: a time older than ``grace``
    seconds was missed (the service was down or busy) and ``catch_up`` says what to do."""
    missed = [t for t in times if (now - t).total_seconds() > grace]
    on_time = [t for t in times if (now - t).total_seconds() <= grace]
    out: list[tuple[datetime, str | None]] = []
    why = f"missed while no trigger service ran (catch_up: {catch_up})"
    if catch_up == "all":
        return [(t, None) for t in times]
    keep = missed[-1] if catch_up == "latest" and missed and not on_time else None
    for t in missed:
        out.append((t, None if t == keep else why))
    out.extend((t, None) for t in on_time)
    return out
