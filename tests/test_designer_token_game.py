"""The designer's token game, driven as the toolbar drives it: Run on a net starts a game
played by hand (unless ``autoplay``); Step fires by the net's choice rule, Random by a
seeded pick, Back undoes a firing, Reset starts over, Play steps until nothing can fire.
It is the kernel's own net engine underneath: guards and token data behave as in a run.
Also: a DAG run's status changes reach the view coalesced, not one update per change."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

import fluxnb
from fluxnb.designer import Designer, DesignError

NAMED = Path(__file__).parent / "data" / "designer" / "named_review.pnml"

ROUTING = """
name: routing
net:
  places: {inbox: [{amount: 5}, {amount: 50}], small: 0, big: 0, audit: 0}
  transitions:
    - {id: route_small, inputs: [inbox], outputs: [small], guard: "token.amount < 10"}
    - {id: route_big, inputs: [inbox], outputs: [big], guard: "token.amount >= 10", priority: 1}
    - {id: audit_big, inputs: [big], outputs: [audit]}
"""


def press(d: Designer, action: str, **more: Any) -> None:
    """What a toolbar button of the token game sends."""
    d._on_message(d, {"type": "game", "action": action, **more}, [])


def marking(d: Designer) -> dict[str, int]:
    return {k: v["tokens"] for k, v in d.status.items() if "tokens" in v}


def fired(d: Designer) -> list[str]:
    return [h["transition"] for h in d.history]


def test_run_on_a_net_starts_a_game_played_by_hand_unless_autoplay() -> None:
    d = Designer.from_pnml(NAMED, store=None)
    d._on_message(d, {"type": "run"}, [])
    net = fluxnb.read_pnml(NAMED)
    assert marking(d) == dict(zip(net.places, net.initial, strict=True))  # nothing fired
    assert d.history == [] and d.enabled == ["n2"]
    d.game.close()
    auto = Designer.from_pnml(NAMED, store=None, autoplay=True)
    auto._on_message(auto, {"type": "run"}, [])
    assert auto.history  # automatic transitions fired by themselves
    assert auto.net_run.auto is True
    auto.game.close()


def test_step_fires_what_the_nets_choice_rule_picks() -> None:
    d = Designer.from_yaml(ROUTING, store=None)
    d.run()
    engine_order = fluxnb.interactive(fluxnb.load(ROUTING), store=None, auto=True)
    expected = [f.transition for f in engine_order.firings]  # the engine's own automatic run
    engine_order.close()
    while d.step() is not None:
        pass
    assert fired(d) == expected
    assert fired(d)[0] == "route_big"  # priority 1 first, its guard read from the token's data
    assert d.net_run.tokens("small")[0].data == {"amount": 5}
    assert "nothing can fire" in d.message
    d.game.close()


def test_back_undoes_a_firing_with_its_token_data_and_reset_starts_over(tmp_path: Path) -> None:
    store = str(tmp_path / "s.duckdb")
    d = Designer.from_yaml(ROUTING, store=store)
    d.run()
    start = marking(d)
    press(d, "step")
    after_one = marking(d)
    press(d, "step")
    assert fired(d) == ["route_big", "route_small"]  # same priority: the first declared
    press(d, "back")
    assert marking(d) == after_one and fired(d) == ["route_big"]
    assert [t.data for t in d.net_run.tokens("inbox")] == [{"amount": 5}]
    assert [t.data for t in d.net_run.tokens("small")] == []
    assert d.enabled == ["route_small", "audit_big"]
    press(d, "back")
    assert marking(d) == start and d.history == []
    assert [t.data for t in d.net_run.tokens("inbox")] == [{"amount": 5}, {"amount": 50}]
    press(d, "back")  # nothing left to undo: said, not raised
    assert "nothing to go back over" in d.message
    first_run = d.net_run.run_id
    press(d, "step")
    press(d, "reset")
    assert d.net_run.run_id != first_run and d.history == [] and marking(d) == start
    d.game.close()
    steps = list(fluxnb.traces(first_run, store=store)["step"])
    assert steps == ["route_big", "route_small", "back:route_small", "back:route_big", "route_big"]


def test_random_is_seeded_and_reset_replays_the_same_choices() -> None:
    def play_random(seed: int) -> list[str]:
        d = Designer.from_pnml(NAMED, store=None, seed=seed)
        d.run()
        for _ in range(12):
            d.step_random()
        out = fired(d)
        d.reset()
        for _ in range(12):
            d.step_random()
        assert fired(d) == out  # Reset: the same seed, the same choices
        d.game.close()
        return out

    runs = {seed: play_random(seed) for seed in range(6)}
    assert runs[3] == play_random(3)
    assert len({tuple(r) for r in runs.values()}) > 1  # seeds choose differently (approve/reject)


def test_play_fires_until_nothing_can_fire_and_pause_stops_it() -> None:
    d = Designer.from_yaml(ROUTING, store=None)
    d.run()
    press(d, "play", speed=50)
    deadline = time.time() + 10
    while (d.playing or len(d.history) < 3) and time.time() < deadline:
        time.sleep(0.02)
    assert fired(d) == ["route_big", "route_small", "audit_big"] and not d.playing
    d.game.close()
    loop = Designer.from_pnml(NAMED, store=None)  # reject/rework loops for ever
    loop.run()
    loop.play(speed=40, random=True)
    time.sleep(0.3)
    loop.pause()
    n = len(loop.history)
    time.sleep(0.2)
    assert n > 0 and len(loop.history) == n and not loop.playing
    loop.game.close()


def test_game_moves_before_run_and_unknown_moves_are_refused_with_a_message() -> None:
    d = Designer.from_pnml(NAMED, store=None)
    with pytest.raises(DesignError, match="press Run"):
        d.step()
    press(d, "step")
    assert "press Run" in d.message
    d.run()
    press(d, "moonwalk")
    assert "no move 'moonwalk'" in d.message
    d.game.close()


def test_a_dag_runs_status_reaches_the_view_coalesced() -> None:
    """200 quick steps: 400 status changes, sent as a few updates (each one a whole dict
    to the browser) — not one per change — and the last one is the run's end."""
    steps = [{"step": f"s{i}", **({"depends_on": f"s{i - 1}"} if i else {})} for i in range(200)]
    ns = {f"s{i}": (lambda **kw: 1) for i in range(200)}
    d = Designer.from_yaml(yaml.safe_dump({"name": "chain", "pipeline": steps}), namespace=ns)
    updates: list[dict] = []
    d.observe(lambda ch: updates.append(ch["new"]), names="status")
    assert d.run().result(timeout=60).ok
    assert all(v["state"] == "succeeded" for v in d.status.values()) and len(d.status) == 200
    assert 1 <= len(updates) < 100
    assert updates[-1] == d.status


def test_the_seed_box_reseeds_random_at_once() -> None:
    def twelve(d: Designer) -> list[str]:
        for _ in range(12):
            d.step_random()
        return fired(d)

    fresh = Designer.from_pnml(NAMED, store=None, seed=5)
    fresh.run()
    want = twelve(fresh)
    fresh.game.close()
    d = Designer.from_pnml(NAMED, store=None, seed=0)
    d.run()
    d.seed = 5  # what the seed box sends
    assert twelve(d) == want
    d.game.close()


def test_net_run_back_undoes_a_put_and_the_automatic_firings_that_followed() -> None:
    run = fluxnb.interactive(fluxnb.load(ROUTING), store=None)  # auto: routes at once
    assert [f.transition for f in run.firings] == ["route_big", "route_small", "audit_big"]
    settled = run.marking
    run.put("inbox", {"amount": 7})  # routed to small at once
    assert run.marking["small"] == settled["small"] + 1
    assert run.back() == "put:inbox"
    assert run.marking == settled and len(run.firings) == 3
    with pytest.raises(fluxnb.RunError, match="nothing to go back over"):
        run.back()  # the firings of the start were no one's move
    with pytest.raises(fluxnb.NotEnabled):
        run.fire("route_big")
    with pytest.raises(fluxnb.RunError, match="nothing to go back over"):
        run.back()  # a refused fire left nothing to undo
    run.close()


def test_play_stops_at_a_failing_action_and_says_why() -> None:
    def audit(big: Any) -> None:
        raise RuntimeError("auditor away")

    failing = ROUTING.replace("outputs: [audit]}", "outputs: [audit], run: audit}")
    d = Designer.from_yaml(failing, namespace={"audit": audit}, store=None)
    d.run()
    d.play(speed=50)
    deadline = time.time() + 10
    while d.playing and time.time() < deadline:
        time.sleep(0.02)
    assert not d.playing
    assert "stopped" in d.message and "auditor away" in d.message
    assert d.status["audit_big"]["state"] == "failed"
    d.game.close()


def test_reset_follows_the_auto_play_box() -> None:
    d = Designer.from_pnml(NAMED, store=None)
    d.run()
    assert d.history == [] and d.net_run.auto is False
    d.autoplay = True  # ticked while the game is open: the next Reset plays by itself
    d.reset()
    assert d.net_run.auto is True and d.history
    d.game.close()


def test_a_net_that_cannot_start_leaves_no_closed_game_behind() -> None:
    d = Designer.from_pnml(NAMED, store=None)
    d.run()
    d.set("n2", "run", "no_such_function")
    d._on_message(d, {"type": "run"}, [])  # Run: the action cannot be found
    assert "no_such_function" in d.message and d.game is None
    d._on_message(d, {"type": "game", "action": "step"}, [])
    assert "press Run" in d.message  # not "net run ... is closed"
