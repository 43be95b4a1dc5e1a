"""Step callables for examples/quickstart.yaml (named like the step ids)."""

import asyncio

_calls = {"fetch_orders": 0}


async def fetch_orders():
    """Pretend to call a flaky API: the first attempt fails, the retry succeeds."""
    _calls["fetch_orders"] += 1
    await asyncio.sleep(0.05)
    if _calls["fetch_orders"] == 1:
        raise ConnectionError("orders API reset the connection")
    return [
        {"order": 1, "customer": "ada", "amount": 120.0},
        {"order": 2, "customer": "bob", "amount": 40.0},
        {"order": 3, "customer": "ada", "amount": 75.5},
    ]


async def fetch_customers():
    await asyncio.sleep(0.05)
    return {"ada": "Ada Lovelace", "bob": "Bob Dylan"}


def join(fetch_orders, fetch_customers):
    return [{**o, "name": fetch_customers[o["customer"]]} for o in fetch_orders]


def score(join, threshold, ctx):
    ctx.logger.info("scoring %d orders", len(join))
    return [{**row, "big": row["amount"] >= threshold} for row in join]


def report(score):
    big = [row["name"] for row in score if row["big"]]
    return {"orders": len(score), "big_orders": big}
