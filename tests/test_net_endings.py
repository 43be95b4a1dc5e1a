"""How nets end: a workflow net's or a state machine's normal end is not a deadlock, state
machines wait to be driven, and a run that loops for ever says so, by transition name."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

import fluxnb
from fluxnb import ManifestError
from fluxnb.engine._net_choices import same_choices
from fluxnb.spec import Arc, Net, Transition, write_pnml

from .conftest import FLUXNB, cli_env


def claims() -> Net:
    """A claim handling process with a free choice and a loop (the shape of PM4Py's running
    example, written here): register; examine (casually or thoroughly) || check the
    ticket; decide; then reinitiate (back to the split) or close (invisible), then pay or
    reject. A workflow net from 'start' to 'end' with no final marking declared."""
    places = ("start", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "end")
    ix = {p: i for i, p in enumerate(places)}

    def t(tid: str, ins: tuple[str, ...], outs: tuple[str, ...]) -> Transition:
        return Transition(tid, tuple(Arc(ix[p]) for p in ins), tuple(Arc(ix[p]) for p in outs))

    ts = (
        t("t1", ("start",), ("c1",)),
        t("t2", ("c1",), ("c2", "c3")),
        t("t3", ("c2",), ("c4",)),
        t("t4", ("c2",), ("c4",)),
        t("t5", ("c3",), ("c5",)),
        t("t6", ("c4", "c5"), ("c6",)),
        t("t7", ("c6",), ("c1",)),
        t("t8", ("c6",), ("c7",)),
        t("t9", ("c7",), ("end",)),
        t("t10", ("c7",), ("end",)),
    )
    names = {
        "t1": "register request",
        "t2": "split",
        "t3": "examine casually",
        "t4": "examine thoroughly",
        "t5": "check ticket",
        "t6": "decide",
        "t7": "reinitiate request",
        "t8": "t8",  # a name equal to its id is not repeated
        "t9": "pay compensation",
        "t10": "reject request",
    }
    return Net("claims", places, (1, 0, 0, 0, 0, 0, 0, 0, 0), ts, names=names)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FLUXNB, *args], capture_output=True, text=True, env=cli_env(), timeout=60
    )


# ---------------------------------------------------------------- deadlock and final markings
def test_a_sound_workflow_net_without_a_final_marking_has_no_deadlock(tmp_path: Path) -> None:
    a = fluxnb.analyze(claims(), progress=False)
    assert a.workflow_net and a.sound is True
    assert a.deadlock is False and a.witness is None
    assert any("sink place 'end'" in n and "normal end" in n for n in a.notes)
    path = tmp_path / "claims.pnml"
    path.write_text(write_pnml(claims()))
    out = cli("analyze", str(path), "--json")
    data = json.loads(out.stdout)
    assert out.returncode == 0 and data["deadlock"] is False and data["sound"] is True
    assert any("normal end" in n for n in data["notes"])
    assert data["transition_names"]["t7"] == "reinitiate request"
    assert "t8" not in data["transition_names"]


def test_notes_say_which_dead_markings_were_counted_and_why() -> None:
    ix = {"a": 0, "b": 1, "c": 2}
    two_ends = Net(  # not a workflow net (two sinks): no default final marking
        "two",
        tuple(ix),
        (1, 0, 0),
        (
            Transition("left", (Arc(0),), (Arc(1),)),
            Transition("right", (Arc(0),), (Arc(2),)),
        ),
    )
    a = fluxnb.analyze(two_ends, progress=False)
    assert not a.workflow_net and a.deadlock is True
    (note,) = [n for n in a.notes if n.startswith("deadlock:")]
    assert "2 dead markings counted" in note and "declares no final marking" in note
    b = fluxnb.analyze(replace(two_ends, final={1: 1}), progress=False)
    assert b.deadlock is True and b.witness == ["right"]
    (note,) = [n for n in b.notes if n.startswith("deadlock:")]
    assert "1 dead marking counted (first: c=1)" in note and "1 such reached" in note


# ---------------------------------------------------------------- state machines
MACHINE = """
name: approval
states: [draft, review, approved, rejected]
initial_state: draft
final: [approved, rejected]
transitions:
  - {id: submit, from_states: [draft], to_state: review}
  - {id: approve, from_states: [review], to_state: approved}
  - {id: reject, from_states: [review], to_state: rejected}
  - {id: revise, from_states: [review], to_state: draft}
"""

CAMEL = """
name: approval
states: [draft, review, approved, rejected]
initialState: draft
final: [approved, rejected]
transitions:
  - {id: submit, fromStates: [draft], toState: review}
  - {id: approve, fromStates: [review], toState: approved}
  - {id: reject, fromStates: [review], toState: rejected}
  - {id: revise, fromStates: [review], toState: draft}
"""


def test_final_states_of_a_state_machine_are_normal_ends() -> None:
    a = fluxnb.analyze(MACHINE, progress=False)
    assert a.deadlock is False and a.reachable_markings == 4
    stuck = MACHINE.replace("final: [approved, rejected]", "final: [approved]")
    b = fluxnb.analyze(stuck, progress=False)
    assert b.deadlock is True and b.witness == ["submit", "reject"]
    run = fluxnb.interactive(MACHINE, store=None)
    run.fire("submit")
    run.fire("reject")
    assert run.status == "final"
    result = run.close()
    assert result.ok and result.ending == "final"
    # an automatic run ends at either final state (the compiled game and the general one)
    for net in (fluxnb.load(MACHINE), replace(fluxnb.load(MACHINE), choice="random")):
        r = fluxnb.run(net, store=None, seed=3)
        assert r.ok and r.ending == "final", r.reason
        assert r.marking["approved"] + r.marking["rejected"] == 1


def test_a_state_machine_waits_to_be_driven_unless_asked() -> None:
    run = fluxnb.interactive(MACHINE, store=None)
    assert run.marking["draft"] == 1 and run.firings == []  # nothing fired by itself
    assert run.enabled() == ["submit"]
    run.fire("submit")
    assert run.marking["review"] == 1 and len(run.firings) == 1
    run.close()
    auto = fluxnb.interactive(MACHINE, store=None, auto=True)
    assert auto.status == "final" and len(auto.firings) == 2
    auto.close()
    net = fluxnb.interactive(
        "name: n\nnet: {places: {a: 1, b: 0}, transitions: [{id: t, inputs: [a], outputs: [b]}]}",
        store=None,
    )
    assert net.marking == {"a": 0, "b": 1}  # a net still fires by itself
    net.close()


def test_circuit_breaker_spellings_load_unchanged() -> None:
    snake, camel = fluxnb.load(MACHINE), fluxnb.load(CAMEL)
    assert (camel.places, camel.initial, camel.transitions, camel.final, camel.also_final) == (
        snake.places,
        snake.initial,
        snake.transitions,
        snake.final,
        snake.also_final,
    )
    assert camel.machine and snake.machine


@pytest.mark.parametrize(
    ("change", "kind", "hint"),
    [
        (
            ("initialState: draft", "initialState: draft\ninitial_state: draft"),
            "duplicate_key",
            None,
        ),
        (("initialState", "initalState"), "unknown_key", "initialState"),
        (("toState: approved}", "toState: aproved}"), "unknown_state", "approved"),
        (
            ("final: [approved, rejected]", "final: [approved, rejectd]"),
            "unknown_state",
            "rejected",
        ),
        (("fromStates: [draft]", "fromState: [draft]"), "unknown_key", "fromStates"),
    ],
)
def test_circuit_breaker_spellings_are_validated(
    change: tuple[str, str], kind: str, hint: str | None
) -> None:
    with pytest.raises(ManifestError) as info:
        fluxnb.load(CAMEL.replace(*change))
    problems = [p for p in info.value.problems if p.kind == kind]
    assert problems, info.value.problems
    assert problems[0].suggestion == hint
    assert problems[0].line is not None


# ---------------------------------------------------------------- loops, choices, names
def test_a_run_that_loops_for_ever_says_every_choice_went_the_same_way(tmp_path: Path) -> None:
    r = fluxnb.run(claims(), store=None, max_firings=50)
    assert r.ending == "max_firings" and r.counts["t7"] > 0 and r.counts["t8"] == 0
    assert "every choice went the same way" in r.reason
    assert "t7 (reinitiate request) over t8," in r.reason
    assert "--choice random" in r.reason
    assert "t7 (reinitiate request) x" in r.summary()
    # from the sequence alone: a choice that went both ways is not claimed
    net = claims()
    ids = [t.id for t in net.transitions]
    end = [0, 1, 0, 0, 0, 0, 0, 0, 0]  # back at c1 after two rounds

    def said(*seq: str) -> str | None:
        return same_choices(net, end, [ids.index(t) for t in seq])

    both = said("t1", "t2", "t3", "t5", "t6", "t7", "t2", "t4", "t5", "t6", "t7")
    assert both is None
    once = said("t1", "t2", "t3", "t5", "t6", "t7", "t2", "t3", "t5", "t6", "t7")
    assert once is not None and "t3 (examine casually) over t4 (examine thoroughly), 2" in once
    assert said("t2", "t3") is None  # cannot be replayed back from this end marking
    path = tmp_path / "claims.pnml"
    path.write_text(write_pnml(claims()))
    out = cli("run", str(path), "--no-store", "--max-firings", "50")
    assert out.returncode == 1
    assert "every choice went the same way" in out.stdout
    assert "t1 (register request) x1" in out.stdout
    data = json.loads(cli("run", str(path), "--no-store", "--max-firings", "50", "--json").stdout)
    assert data["transition_names"]["t10"] == "reject request"


def test_cli_run_choice_random_is_seeded(tmp_path: Path) -> None:
    path = tmp_path / "claims.pnml"
    path.write_text(write_pnml(claims()))

    def run(seed: int) -> dict:
        out = cli(
            "run", str(path), "--no-store", "--json", "--choice", "random", "--seed", str(seed)
        )
        assert out.returncode in (0, 1), out.stderr
        return json.loads(out.stdout)

    first = run(1)
    assert first == {**run(1), "run_id": first["run_id"], "duration_s": first["duration_s"]}
    ends = [run(s) for s in range(4)]
    assert all(e["ending"] == "final" or e["ending"] == "dead" for e in ends)
    assert all(e["marking"]["end"] == 1 for e in ends)  # random choice leaves the loop
    assert len({json.dumps(e["counts"], sort_keys=True) for e in ends}) > 1
    bad = cli("run", str(path), "--no-store", "--choice", "coin")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_analyze_shows_transition_names_next_to_ids(tmp_path: Path) -> None:
    n = claims()
    never = Transition("t11", (Arc(4), Arc(7)), (Arc(6),))  # c4 and c7 are never both marked
    n = replace(n, transitions=(*n.transitions, never), names={**n.names, "t11": "audit"})
    path = tmp_path / "claims.pnml"
    path.write_text(write_pnml(n))
    out = cli("analyze", str(path))
    assert out.returncode == 0
    assert "t11 (audit)" in out.stdout.split("dead_transitions", 1)[1].splitlines()[0]
    assert any("t11 (audit)" in line for line in out.stdout.splitlines() if "not sound" in line)
