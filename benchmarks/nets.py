"""Generators of classic Petri nets for the analysis benchmarks and tests."""

from __future__ import annotations

from fluxnb.spec import Arc, Net, Transition


def dining_philosophers(n: int) -> Net:
    """n philosophers, each: think -> take left fork -> take right fork (eat) -> put both
    back. Deadlocks when all hold their left fork."""
    places: list[str] = []
    initial: list[int] = []

    def place(name: str, tokens: int) -> int:
        places.append(name)
        initial.append(tokens)
        return len(places) - 1

    think = [place(f"think{i}", 1) for i in range(n)]
    left = [place(f"left{i}", 0) for i in range(n)]
    eat = [place(f"eat{i}", 0) for i in range(n)]
    fork = [place(f"fork{i}", 1) for i in range(n)]
    ts = []
    for i in range(n):
        r = (i + 1) % n
        ts.append(Transition(f"take_left{i}", (Arc(think[i]), Arc(fork[i])), (Arc(left[i]),)))
        ts.append(Transition(f"take_right{i}", (Arc(left[i]), Arc(fork[r])), (Arc(eat[i]),)))
        ts.append(
            Transition(f"release{i}", (Arc(eat[i]),), (Arc(think[i]), Arc(fork[i]), Arc(fork[r])))
        )
    return Net(f"philosophers{n}", tuple(places), tuple(initial), tuple(ts))
