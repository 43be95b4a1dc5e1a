"""What metering and invoicing cost, as ratios against a baseline in the same process.

    python benchmarks/billing.py                # 2,000-step runs; 1,000,000 usage events
    python benchmarks/billing.py --events 100000

1. Metering: a 2,000-step run recorded into a store file, with fluxnb's usage metering as
   shipped, against the same run with the meter switched off (the baseline). Best of --repeat.
2. Invoicing: ``fluxnb.invoice`` over N usage events (3 units, 30 days, tiered prices),
   against the floor: one DuckDB ``SUM(quantity) GROUP BY unit`` on the same table, on a
   connection opened before the clock starts (fluxnb attaches the store file each call).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import fluxnb
from fluxnb.store import _usage

CARD = (Path(__file__).resolve().parents[1] / "examples" / "rate_card.yaml").read_text()


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def metering(folder: Path, steps: int, repeat: int) -> tuple[float, float]:
    wf = fluxnb.Workflow("many")
    for i in range(steps):
        wf.add(f"s{i}", lambda: None)
    n = iter(range(10**6))

    def once() -> None:
        wf.run(store=str(folder / f"m{next(n)}.duckdb"))

    once()
    original = _usage.UsageMeter.on_event

    def unmetered() -> None:
        _usage.UsageMeter.on_event = lambda self, row: None  # type: ignore[method-assign]
        try:
            once()
        finally:
            _usage.UsageMeter.on_event = original  # type: ignore[method-assign]

    on, off = float("inf"), float("inf")
    for _ in range(repeat):  # interleaved, so drift on a noisy machine hits both alike
        on = min(on, best(once, 1))
        off = min(off, best(unmetered, 1))
    return on, off


def meter_cost(steps: int, repeat: int) -> float:
    """Seconds per step execution of the meter's own work: turning a step's final event row
    into usage rows, and those rows into the Arrow table a segment holds."""
    from fluxnb.store._recorder import RunRecord
    from fluxnb.store._segments import arrow_table

    run = RunRecord("r", "w", "running", 0, tenant="acme", namespace="default")
    rows = [
        ("r", i, f"s{i}", 1, "succeeded", True, 0, 10, 1e-5, 0.0, None, None, None, "local", None)
        for i in range(steps)
    ]

    def once() -> None:
        m = _usage.UsageMeter(run)
        for row in rows:
            m.on_event(row)
        arrow_table("usage", m.take())

    once()
    return best(once, repeat) / steps


def invoicing(folder: Path, events: int, repeat: int) -> tuple[float, float, Decimal]:
    import duckdb

    path = str(folder / "bill.duckdb")
    fluxnb.set_rate_card(CARD, store=path)
    with fluxnb.store(path).connect() as con:  # bulk-load synthetic usage (not the thing timed)
        con.execute(
            f"""INSERT INTO usage
            SELECT 'e' || i, 'acme', 'default',
                   ['invocations', 'compute_seconds', 'llm_tokens'][1 + i % 3],
                   CAST(1 + (i % 7) * 0.25 AS DECIMAL(38, 9)),
                   TIMESTAMP '2026-10-01' + INTERVAL (i % (30 * 86400)) SECOND,
                   'auto', NULL, NULL, NULL, NULL, NULL, NULL, NULL, now()
            FROM range({events}) t(i)"""
        )
    fluxnb.store(path).load_pending()
    total = fluxnb.invoice("acme", "2026-10", store=path).total
    inv = best(lambda: fluxnb.invoice("acme", "2026-10", store=path), repeat)

    con = duckdb.connect(path, read_only=True)  # opened once, outside the clock
    try:
        query = "SELECT unit, sum(quantity) FROM usage GROUP BY unit"
        floor = best(lambda: con.execute(query).fetchall(), repeat)
    finally:
        con.close()
    return inv, floor, total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        on, off = metering(folder, args.steps, args.repeat)
        print(
            f"metering: {args.steps}-step run with a store: {on * 1000:.1f} ms metered, "
            f"{off * 1000:.1f} ms without ({on / off:.2f}x); the meter's own work: "
            f"{meter_cost(args.steps, args.repeat) * 1e6:.2f} us per step execution"
        )
        inv, floor, total = invoicing(folder, args.events, args.repeat)
        print(
            f"invoice over {args.events:,} usage events: {inv * 1000:.1f} ms; floor "
            f"(DuckDB SUM GROUP BY unit): {floor * 1000:.1f} ms ({inv / floor:.2f}x); "
            f"total {total} USD"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
