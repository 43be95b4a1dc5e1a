"""Is the process that runs a run still there? And marking the runs whose process is gone.

A run's row says ``running`` from its start until its process writes how it ended. A process
killed with ``kill -9``, a restarted kernel or a crashed machine writes nothing, so the row
would say ``running`` for ever. Any read of the store therefore first looks at the runs that
say ``running`` on this machine: a run whose process has ended (or whose pid now belongs to
a process started after the run) gets a row with status ``interrupted``. Runs of other
machines are left as they are: their processes cannot be seen from here.
"""

from __future__ import annotations

import os
import socket
from dataclasses import astuple
from typing import Any

INTERRUPTED = "interrupted"
#: A pid's process that started up to this long after the run is still taken for its
#: process: /proc's start times rest on a boot time in whole seconds, and the wall clock may
#: have been stepped since the run started (a pid is reused only after the kernel has gone
#: through all others, so a minute loses nothing).
_START_SLACK_US = 60_000_000


def process_alive(host: str | None, pid: int | None, started_us: int | None = None) -> bool:
    """Whether the process ``pid`` may be running, here, a run started at ``started_us``
    (epoch µs). False for another host or no pid (nothing here runs it), a pid that is gone,
    or one a process younger than the run has taken (Linux, from /proc)."""
    if host != socket.gethostname() or not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    except (OverflowError, ValueError):
        return False
    if started_us is not None:
        born = _process_start_us(int(pid))
        if born is not None and born > started_us + _START_SLACK_US:
            return False  # the pid was reused by a process younger than the run
    return True


def _process_start_us(pid: int) -> int | None:
    """When process ``pid`` started (epoch µs), from /proc; None where there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
        with open("/proc/stat", "rb") as fh:
            boot = next(int(line.split()[1]) for line in fh if line.startswith(b"btime "))
    except (OSError, StopIteration, ValueError):
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()  # after "pid (comm) "
    ticks = int(fields[19])  # field 22 of the whole line: starttime, in clock ticks
    return int((boot + ticks / os.sysconf("SC_CLK_TCK")) * 1_000_000)


def interrupted_rows(con: Any) -> list[tuple]:
    """``runs`` rows (segment column order) marking this machine's runs whose process has
    ended as ``interrupted``, read on ``con`` (a connection on the store)."""
    from ._recorder import RunRecord

    cur = con.execute(
        """SELECT run_id, workflow, epoch_us(started_at) AS started_at, namespace, tenant,
                  steps, manifest, manifest_hash, host, pid, seed, resumed,
                  epoch_us(resumed_at) AS resumed_at, ran_before_s
           FROM runs WHERE status = 'running' AND host = $host""",
        {"host": socket.gethostname()},
    )
    names = [d[0] for d in cur.description]
    gone = [
        run
        for run in (dict(zip(names, values, strict=True)) for values in cur.fetchall())
        # a resumed run's process started when it resumed, long after the run first did
        if not process_alive(run["host"], run["pid"], run["resumed_at"] or run["started_at"])
    ]
    if not gone:
        return []
    last = dict(
        con.execute(
            "SELECT run_id, epoch_us(max(ended_at)) FROM events "
            "WHERE run_id IN (SELECT unnest($ids)) GROUP BY run_id",
            {"ids": [run["run_id"] for run in gone]},
        ).fetchall()
    )
    rows = []
    for run in gone:
        run["steps"] = run["steps"] or 0
        run["resumed"] = run["resumed"] or 0
        record = RunRecord(
            **run,
            status=INTERRUPTED,
            ended_at=max(  # last heard of
                last.get(run["run_id"]) or 0, run["resumed_at"] or run["started_at"]
            ),
            error=f"process {run['pid']} on {run['host']} ended without finishing the run "
            "(killed, a restarted kernel or a crash); `fluxnb resume` continues it",
        )
        rows.append(astuple(record))
    return rows
