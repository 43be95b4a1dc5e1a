"""Petri-net analysis and PNML, on nets whose answers are derived by hand, on generated
nets checked against an independent brute-force enumeration, and on real PNML files."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fluxnb
from fluxnb import ManifestError
from fluxnb.spec import Arc, Net, StateBudgetExceeded, Transition, read_pnml, write_pnml

from .conftest import DATA, ROOT, SHARED_PNML, cli_env, pnml_files

sys.path.insert(0, str(ROOT / "benchmarks"))
from nets import dining_philosophers


def net(
    places: dict[str, int],
    transitions: list[tuple],
    final: dict[str, int] | None = None,
    name: str = "n",
) -> Net:
    """transitions: (id, {place: weight} in, {place: weight} out[, {place: w} inhibitors])."""
    ids = list(places)
    ix = {p: i for i, p in enumerate(ids)}
    ts = []
    for spec in transitions:
        tid, ins, outs = spec[:3]
        inh = spec[3] if len(spec) > 3 else {}
        ts.append(
            Transition(
                tid,
                tuple(Arc(ix[p], w) for p, w in ins.items()),
                tuple(Arc(ix[p], w) for p, w in outs.items()),
                inhibitors=tuple(Arc(ix[p], w) for p, w in inh.items()),
            )
        )
    return Net(
        name,
        tuple(ids),
        tuple(places.values()),
        tuple(ts),
        {ix[p]: n for p, n in (final or {}).items()},
    )


MUTEX = net(
    {"idle1": 1, "crit1": 0, "idle2": 1, "crit2": 0, "lock": 1},
    [
        ("enter1", {"idle1": 1, "lock": 1}, {"crit1": 1}),
        ("leave1", {"crit1": 1}, {"idle1": 1, "lock": 1}),
        ("enter2", {"idle2": 1, "lock": 1}, {"crit2": 1}),
        ("leave2", {"crit2": 1}, {"idle2": 1, "lock": 1}),
    ],
)


def test_mutex_by_hand() -> None:
    a = fluxnb.analyze(MUTEX)
    # markings: both idle; 1 critical; 2 critical -> 3, never both critical;
    # arcs: enter 2 in + 1 out, leave 1 in + 2 out, for each of the two processes
    assert a.to_json() == {
        "places": 5,
        "transitions": 4,
        "arcs": 12,
        "bounded": True,
        "bound": 1,
        "reachable_markings": 3,
        "deadlock": False,
        "dead_transitions": [],
        "live": True,
        "workflow_net": False,
        "sound": None,
    }


def test_producer_consumer_with_a_bounded_buffer() -> None:
    n = net(
        {"ready": 1, "buffer": 0, "slots": 2},
        [
            ("produce", {"ready": 1, "slots": 1}, {"ready": 1, "buffer": 1}),
            ("consume", {"buffer": 1}, {"slots": 1}),
        ],
    )
    a = fluxnb.analyze(n)
    assert (a.bounded, a.bound, a.reachable_markings, a.live, a.deadlock) == (
        True,
        2,
        3,
        True,
        False,
    )


def test_unbounded_producer_ends_and_says_where() -> None:
    n = net({"p": 1, "out": 0}, [("make", {"p": 1}, {"p": 1, "out": 1})])
    a = fluxnb.analyze(n)
    j = a.to_json()
    assert j["bounded"] is False and j["bound"] is None and j["reachable_markings"] is None
    assert j["live"] is None and j["deadlock"] is None
    assert any("out" in note for note in j["notes"])


def test_dining_philosophers_deadlock_with_a_shortest_witness() -> None:
    a = fluxnb.analyze(dining_philosophers(3))
    assert a.deadlock is True and a.live is False and a.bound == 1
    assert sorted(a.witness or []) == ["take_left0", "take_left1", "take_left2"]
    assert a.reachable_markings == brute_force_count(dining_philosophers(3))


def test_philosophers_without_deadlock_are_live() -> None:
    # a butler (n-1 seats) removes the deadlock
    base = dining_philosophers(3)
    seats = len(base.places)
    places = (*base.places, "seats")
    ts = []
    for t in base.transitions:
        if t.id.startswith("take_left"):
            ts.append(Transition(t.id, (*t.inputs, Arc(seats)), t.outputs))
        elif t.id.startswith("release"):
            ts.append(Transition(t.id, t.inputs, (*t.outputs, Arc(seats))))
        else:
            ts.append(t)
    butler = Net("butler", places, (*base.initial, 2), tuple(ts))
    a = fluxnb.analyze(butler)
    assert a.deadlock is False and a.live is True


def test_weighted_arcs() -> None:
    n = net({"a": 4, "b": 0}, [("pair", {"a": 2}, {"b": 1})])
    a = fluxnb.analyze(n)
    # 4,0 -> 2,1 -> 0,2 then dead
    assert (a.reachable_markings, a.bound, a.deadlock, a.witness) == (3, 4, True, ["pair", "pair"])


def test_inhibitor_arcs() -> None:
    n = net(
        {"work": 2, "done": 0, "alarm": 0},
        [("step", {"work": 1}, {"done": 1}, {"alarm": 1}), ("raise", {"done": 2}, {"alarm": 1})],
    )
    a = fluxnb.analyze(n)
    # (2,0,0) (1,1,0) (0,2,0) (0,0,1): 'step' is inhibited once alarm is set; the net is a
    # workflow net (work -> alarm), so its one dead marking, the sink marked, is its end
    assert a.reachable_markings == 4 and a.deadlock is False
    declared = fluxnb.analyze(dataclasses.replace(n, final={2: 2}))
    assert declared.deadlock is True and declared.witness == ["step", "step", "raise"]


SOUND_WF = net(
    {"i": 1, "p1": 0, "p2": 0, "o": 0},
    [("a", {"i": 1}, {"p1": 1, "p2": 1}), ("b", {"p1": 1}, {"o": 1}), ("c", {"p2": 1}, {})],
)


def test_workflow_nets_sound_and_unsound() -> None:
    # an AND-split whose branch 'c' swallows its token: o gets one token, but... c leaves p2
    # empty, b puts one token in o: proper completion holds only after both ran
    fixed = net(
        {"i": 1, "p1": 0, "p2": 0, "q": 0, "o": 0},
        [
            ("split", {"i": 1}, {"p1": 1, "p2": 1}),
            ("b", {"p1": 1}, {"q": 1}),
            ("c", {"p2": 1, "q": 1}, {"o": 1}),
        ],
    )
    a = fluxnb.analyze(fixed)
    assert a.workflow_net and a.sound is True
    leaky = net(
        {"i": 1, "p1": 0, "p2": 0, "o": 0},
        [
            ("split", {"i": 1}, {"p1": 1, "p2": 1}),
            ("b", {"p1": 1}, {"o": 1}),
            ("c", {"p2": 1}, {"o": 1}),
        ],
    )
    b = fluxnb.analyze(leaky)
    assert b.workflow_net and b.sound is False  # two tokens reach o
    assert any("sink" in n for n in b.notes)
    assert fluxnb.analyze(MUTEX).sound is None


def test_state_budget_is_a_clear_error() -> None:
    with pytest.raises(StateBudgetExceeded) as info:
        fluxnb.analyze(dining_philosophers(8), max_states=100)
    assert info.value.limit == 100 and "state budget" in str(info.value)


def test_an_unbounded_net_is_told_from_a_big_one_when_the_budget_runs_out() -> None:
    """The bit search of a safe net checks growth only when its budget runs out: a partial
    graph in which a marking strictly covers an ancestor is unbounded (the general search
    takes over), a big bounded one is a budget error."""
    from fluxnb.spec import _analysis

    switches = {f"a{i}": 1 for i in range(10)} | {f"b{i}": 0 for i in range(10)}
    flips = [(f"flip{i}", {f"a{i}": 1}, {f"b{i}": 1}) for i in range(10)]
    grows = net({"p": 1, "q": 0} | switches, [("grow", {"p": 1}, {"p": 1, "q": 1}), *flips])
    spec = _analysis._safe_transitions(grows)
    assert spec is not None
    with pytest.raises(ValueError, match="grow without limit"):  # 11 children, budget 5
        _analysis._explore_safe(spec, 1 | (2**10 - 1) << 2, 5, len(grows.places))
    a = fluxnb.analyze(grows)
    assert a.bounded is False and a.reachable_markings is None and "q" in a.notes[0]
    flat = net({"p": 1, "q": 0} | switches, flips)  # as many markings, none growing
    with pytest.raises(StateBudgetExceeded):
        fluxnb.analyze(flat, max_states=5)
    assert fluxnb.analyze(flat).reachable_markings == 2**10


def test_what_is_derived_from_a_net_is_kept_once_and_leaves_with_it() -> None:
    import gc

    from fluxnb.spec import _analysis

    nets = [dining_philosophers(3) for _ in range(50)]
    answers = {fluxnb.analyze(n).reachable_markings for n in nets}
    assert len(answers) == 1  # fifty equal nets, one answer
    kept = {id(n) for n in nets}
    assert kept <= set(_analysis._DERIVED)
    assert _analysis._safe_transitions(nets[0]) is _analysis._safe_transitions(nets[0])
    del nets
    gc.collect()
    assert not kept & set(_analysis._DERIVED)


def test_progress_hears_the_count_of_a_long_exploration(monkeypatch) -> None:
    """A callable is told the markings found as a big search goes; on a terminal the count
    is one line on stderr rewritten in place, ending with the total; a pipe gets nothing."""
    import io

    from fluxnb import _progress_line

    heard: list[int] = []
    a = fluxnb.analyze(dining_philosophers(13), progress=heard.append)
    assert heard and heard == sorted(heard) and heard[-1] == a.reachable_markings == 94_642

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    for stream, drawn in ((Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr(sys, "stderr", stream)
        monkeypatch.setattr(_progress_line.ProgressLine.__init__, "__defaults__", (0.0, 0.0))
        fluxnb.analyze(dining_philosophers(13))
        text = stream.getvalue()
        if drawn:
            assert text.startswith("\ranalysing: ") and "markings so far" in text
            assert text.endswith(" s\n") and "analysing: 94,642 markings in" in text
        else:
            assert text == ""
    assert fluxnb.analyze(dining_philosophers(5), progress=False).reachable_markings == 82
    with pytest.raises(TypeError, match="progress= takes"):
        fluxnb.analyze(dining_philosophers(5), progress="yes")


def brute_force_count(n: Net, cap: int = 4) -> int:
    """Reachable markings by plain DFS on dict markings (a second, independent method)."""
    start = dict(enumerate(n.initial))
    seen = {tuple(sorted(start.items()))}
    todo = [start]
    while todo:
        m = todo.pop()
        for t in n.transitions:
            if all(m[a.place] >= a.weight for a in t.inputs) and all(
                m[a.place] < a.weight for a in t.inhibitors
            ):
                new = dict(m)
                for a in t.inputs:
                    new[a.place] -= a.weight
                for a in t.outputs:
                    new[a.place] += a.weight
                key = tuple(sorted(new.items()))
                if key not in seen:
                    seen.add(key)
                    todo.append(new)
    return len(seen)


@st.composite
def small_safe_nets(draw: st.DrawFn) -> Net:
    n_p = draw(st.integers(2, 5))
    places = {f"p{i}": draw(st.integers(0, 1)) for i in range(n_p)}
    trans = []
    for j in range(draw(st.integers(1, 5))):
        ins = {f"p{i}": 1 for i in draw(st.sets(st.integers(0, n_p - 1), min_size=1, max_size=2))}
        outs = {f"p{i}": 1 for i in draw(st.sets(st.integers(0, n_p - 1), max_size=2))}
        trans.append((f"t{j}", ins, outs))
    return net(places, trans)


@settings(max_examples=80, deadline=None)
@given(small_safe_nets())
def test_the_token_game_never_leaves_the_analysed_state_space(n: Net) -> None:
    a = fluxnb.analyze(n, max_states=20_000)
    if not a.bounded:
        return
    from fluxnb.spec._analysis import explore

    g = explore(n)
    reachable = {g.marking(v) for v in range(len(g.markings))}
    assert a.reachable_markings == brute_force_count(n) == len(reachable)
    # random walks of the token game stay inside the analysed markings
    firings = n.transitions
    for seed in range(5):
        m = list(n.initial)
        rng = __import__("random").Random(seed)
        for _ in range(30):
            enabled = [t for t in firings if all(m[x.place] >= x.weight for x in t.inputs)]
            if not enabled:
                break
            t = rng.choice(enabled)
            for x in t.inputs:
                m[x.place] -= x.weight
            for x in t.outputs:
                m[x.place] += x.weight
            assert tuple(m) in reachable


def test_pnml_round_trip_and_ids_not_names() -> None:
    text = write_pnml(MUTEX)
    back = read_pnml(text)
    assert back.places == MUTEX.places and back.transitions == MUTEX.transitions
    renamed = text.replace('id="lock"', 'id="L"').replace('"lock"', '"L"')
    assert "L" in read_pnml(renamed).places


def test_pnml_pages_and_references_are_flattened() -> None:
    text = """<pnml><net id="n"><page id="a">
      <place id="p"><initialMarking><text>1</text></initialMarking></place>
      <transition id="t"/>
      <page id="b"><referencePlace id="rp" ref="p"/><referenceTransition id="rt" ref="t"/>
        <place id="q"/><arc id="x" source="rp" target="rt"/><arc id="y" source="rt" target="q"/>
      </page></page></net></pnml>"""
    n = read_pnml(text)
    assert n.places == ("p", "q") and [t.id for t in n.transitions] == ["t"]
    assert fluxnb.analyze(n).reachable_markings == 2


def test_bad_pnml_is_a_clear_error() -> None:
    with pytest.raises(ManifestError, match="cannot read PNML"):
        read_pnml("<pnml><net")
    with pytest.raises(ManifestError, match="arc x"):
        read_pnml(
            '<pnml><net id="n"><page id="a"><place id="p"/><place id="q"/>'
            '<arc id="x" source="p" target="q"/></page></net></pnml>'
        )


def test_cli_analyze_json_keys_exactly(tmp_path: Path) -> None:
    path = tmp_path / "phil.pnml"
    path.write_text(write_pnml(dining_philosophers(3)))
    out = subprocess.run(
        [sys.executable, "-m", "fluxnb", "analyze", str(path), "--json", "--witness"],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert list(data)[:11] == [
        "places",
        "transitions",
        "arcs",
        "bounded",
        "bound",
        "reachable_markings",
        "deadlock",
        "dead_transitions",
        "live",
        "workflow_net",
        "sound",
    ]
    assert data["deadlock"] is True and len(data["witness"]) == 3
    bad = subprocess.run(
        [sys.executable, "-m", "fluxnb", "analyze", str(tmp_path / "no.pnml")],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
    )
    assert bad.returncode == 2 and "no such PNML file" in bad.stderr


# (markings, edges, bound, deadlock, dead transitions, sound or None: not checked)
FACTS = {
    # tests/data/pnml, the project's own nets (README there), answers derived by hand:
    # register; pick || (invoice or the invisible skip); ship: markings [source], [p1 p2],
    # [p3 p2], [p1 p4], [p3 p4], [sink]; edges 1 + 3 + 2 + 1 + 1; sound
    "prom_order_to_cash.pnml": (6, 8, 1, False, [], True),
    # request; approve, or escalate then decide (guards ignored): 4 markings, 4 edges
    "data_guards.pnml": (4, 4, 1, False, [], True),
    # either process may take its first lock (2 edges from each of the first 3 markings);
    # both first locks taken, or one process done: 3 dead markings, no final marking
    "gui_two_locks.pnml": (6, 6, 1, True, [], None),
    # a chain of 7 markings (report waits for an empty queue and server: without the
    # inhibitor arcs it could fire twice more); 2 jobs queued at first
    "inhibitor_queue.pnml": (7, 6, 2, True, [], None),
    # from ../shared/data/pnml/SOURCES.md, computed there by three other tools (the MCC
    # model is in tests/data/pnml; the GPL samples only in the optional shared corpus)
    "pm4py_running-example.pnml": (9, 13, 1, False, [], True),
    "pm4py_roadtraffic.pnml": (2042, 18386, 1, False, [], True),
    "pm4py_data_petri_net.pnml": (32, 86, 1, False, [], True),
    "pm4py_a32.pnml": (471, 1579, 1, False, [], True),
    "mcc_Angiogenesis-PT-01.pnml": (
        110,
        288,
        1,
        True,
        [
            "k25",
            "k26",
            "k27",
            "k3",
            "k4",
            "k46",
            "k47",
            "k48",
            "k5",
            "k58",
            "k59",
            "k6",
            "k60",
            "k7",
        ],
        None,
    ),
    "tapaal_deadlock-test001.pnml": (6, 6, 1, True, [], False),
}


@pytest.mark.parametrize("name", sorted(FACTS))
def test_pnml_files_of_other_tools_give_the_known_answers(name: str) -> None:
    path = DATA / "pnml" / name
    if not path.is_file():
        path = SHARED_PNML / name
        if not path.is_file():
            pytest.skip(f"{name} is in the optional corpus ../shared/data/pnml, not here")
    n = read_pnml(path)
    a = fluxnb.analyze(n)
    markings, edges, bound, deadlock, dead, sound = FACTS[name]
    if markings <= 500:  # a second opinion on the count, independent of fluxnb's search
        assert brute_force_count(n) == markings
    assert (a.reachable_markings, a.edges, a.bound, a.deadlock) == (
        markings,
        edges,
        bound,
        deadlock,
    )
    assert sorted(a.dead_transitions) == sorted(dead)
    if sound is not None:
        assert a.sound is sound


def test_every_pnml_test_net_imports_and_round_trips() -> None:
    for path in pnml_files():
        n = read_pnml(path)
        back = read_pnml(write_pnml(n))
        assert (back.places, back.initial, back.transitions, back.final) == (
            n.places,
            n.initial,
            n.transitions,
            n.final,
        ), path.name
        assert back.names == n.names and back.positions == n.positions
    inhib = read_pnml(DATA / "pnml" / "inhibitor_queue.pnml")
    assert sum(len(t.inhibitors) for t in inhib.transitions) == 2


REVIEW = """name: review
net:
  places:
    draft: [{words: 120}]
    review: 0
    done: 0
  transitions:
    - id: submit
      inputs: [draft]
      outputs: [review]
      guard: "token.words > 100"
      priority: 1
    - id: revise
      inputs: [review]
      outputs: [draft]
      inhibitors: [done]
    - id: approve
      inputs: {review: 1}
      outputs: [done]
  final: {done: 1}
"""


def test_net_manifest_is_read_and_analysed() -> None:
    from fluxnb.spec._net_manifest import load_net

    n = load_net(REVIEW)
    assert n.places == ("draft", "review", "done") and n.initial == (1, 0, 0)
    assert n.tokens == {0: [{"words": 120}]}
    submit = n.transitions[0]
    assert (submit.guard, submit.priority) == ("token.words > 100", 1)
    assert len(n.transitions[1].inhibitors) == 1
    a = fluxnb.analyze(REVIEW)  # YAML text straight in
    assert (a.reachable_markings, a.deadlock, a.bound) == (3, False, 1)  # done is final


def test_state_machine_form_is_a_one_token_net(tmp_path: Path) -> None:
    text = """states: [open, closed, archived]
initial_state: open
transitions:
  - id: close
    from_states: [open]
    to_state: closed
  - id: archive
    from_states: [open, closed]
    to_state: archived
    conditions: ["token.age > 30"]
"""
    path = tmp_path / "ticket.yaml"
    path.write_text(text)
    from fluxnb.spec._net_manifest import load_net

    n = load_net(path)
    assert [t.id for t in n.transitions] == ["close", "archive@open", "archive@closed"]
    assert n.transitions[1].guard == "(token.age > 30)"
    out = subprocess.run(
        [sys.executable, "-m", "fluxnb", "analyze", str(path), "--json"],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=60,
    )
    data = json.loads(out.stdout)
    assert data["reachable_markings"] == 3 and data["bound"] == 1


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (
            REVIEW.replace("outputs: [review]\n      guard", "outputs: [reveiw]\n      guard"),
            "unknown_place",
        ),
        (REVIEW.replace("inputs: {review: 1}", "inputs: {review: 0}"), "bad_value"),
        (REVIEW.replace("id: revise", "id: submit"), "duplicate_id"),
        ("net:\n  transitions: []\n", "missing_key"),
        (REVIEW.replace("    review: 0\n", "    review: -1\n"), "wrong_type"),
        ("states: [a]\ninitial_state: z\ntransitions: []\n", "bad_value"),
        (
            "states: [a, b]\ninitial_state: a\ntransitions:\n  - {id: t, from_states: [a], "
            "to_state: c}\n",
            "unknown_state",
        ),
    ],
)
def test_bad_net_manifests(text: str, kind: str) -> None:
    from fluxnb.spec._net_manifest import load_net

    with pytest.raises(ManifestError) as info:
        load_net(text)
    assert info.value.kind == kind, str(info.value)
    assert info.value.line is not None


def test_fluxnb_load_gives_a_net_for_a_net_manifest() -> None:
    n = fluxnb.load(REVIEW)
    assert isinstance(n, Net) and n.text == REVIEW and n.places == ("draft", "review", "done")


@settings(max_examples=60, deadline=None)
@given(small_safe_nets(), st.integers(0, 6), st.booleans())
def test_plain_and_generated_searches_give_the_same_graph(
    n: Net, switch: int, inhibit: bool
) -> None:
    """The safe-net search expands its first nodes with a loop and the rest with generated
    code: wherever it switches, the graph (markings, order, edges) and the answers are those
    of the loop alone. Inhibitor arcs and nets that turn out unsafe or unbounded included."""
    import dataclasses

    from fluxnb.spec import _analysis

    if inhibit:  # the first transition must not see tokens in the last place
        t0 = dataclasses.replace(n.transitions[0], inhibitors=(Arc(len(n.places) - 1),))
        n = dataclasses.replace(n, transitions=(t0, *n.transitions[1:]))
    plain = _analysis.explore(n)
    answers = fluxnb.analyze(n).to_json(witness=True)
    original = _analysis._COMPILE_AFTER
    _analysis._COMPILE_AFTER = switch
    try:
        mixed = _analysis.explore(n)
        assert fluxnb.analyze(n).to_json(witness=True) == answers
    finally:
        _analysis._COMPILE_AFTER = original
    assert mixed.markings == plain.markings
    assert list(mixed.edge_t) == list(plain.edge_t)
    assert list(mixed.edge_dst) == list(plain.edge_dst)
    assert list(mixed.offsets) == list(plain.offsets)
    assert list(mixed.parent) == list(plain.parent)
