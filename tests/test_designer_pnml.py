"""PNML in the designer: display names shown (the id only when a node has none) and kept on
export, other tools' coordinates scaled to the canvas, and the manifest's ``names:``."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import pytest
import yaml

import fluxnb
from fluxnb.designer import Design
from fluxnb.designer._model import READABLE, canvas_positions

from .conftest import pnml_files

NAMED = Path(__file__).parent / "data" / "designer" / "named_review.pnml"


def labels(d: Design) -> dict[str, str]:
    return {n["id"]: n["label"] for n in d.to_graph()["nodes"]}


def test_pnml_names_are_shown_and_ids_only_when_there_is_no_name() -> None:
    net = fluxnb.read_pnml(NAMED)
    d = Design.from_pnml(NAMED)
    shown = labels(d)
    for nid in [*net.places, *(t.id for t in net.transitions)]:
        assert shown[nid] == net.names.get(nid, nid)
    nameless = [p for p in net.places if p not in net.names]
    assert nameless and all(shown[p] == p for p in nameless)


def test_pnml_names_survive_export_to_pnml_and_yaml_and_an_edit() -> None:
    net = fluxnb.read_pnml(NAMED)
    d = Design.from_pnml(NAMED)
    assert fluxnb.read_pnml(d.to_pnml()).names == net.names
    assert fluxnb.load(d.to_yaml()).names == net.names  # what %%fluxroute reads of it
    assert labels(Design.from_manifest(yaml.safe_load(d.to_yaml()))) == labels(d)
    first = net.transitions[0].id
    d.set(first, "name", "begin the review")
    assert fluxnb.read_pnml(d.to_pnml()).names[first] == "begin the review"
    d.undo()
    assert labels(d)[first] == net.names[first]
    # a transition's name is display only: never an action key of the manifest
    assert all("name" not in t for t in d.manifest()["net"]["transitions"])


def test_a_bad_display_name_is_a_manifest_problem_at_its_key() -> None:
    text = "name: n\nnet:\n  places: {p: 1}\n  transitions: [{id: t, inputs: [p]}]\nnames: {t: 3}\n"
    with pytest.raises(fluxnb.ManifestError) as err:
        fluxnb.load(text)
    (problem,) = err.value.problems
    assert problem.path == "names.t" and problem.line == 5


def nearest(pos: dict[str, tuple[float, float]]) -> list[float]:
    return sorted(min(math.dist(p, q) for k2, q in pos.items() if k2 != k) for k, p in pos.items())


def test_coordinates_written_close_together_are_scaled_to_the_canvas() -> None:
    net = fluxnb.read_pnml(NAMED)
    before = net.positions
    assert nearest(before)[len(before) // 2] < READABLE[0]  # as pm4py writes them: overlapping
    d = Design.from_pnml(NAMED)
    after = {n.id: (n.x, n.y) for n in d.nodes.values()}
    typical = nearest(after)[len(after) // 2]
    assert READABLE[0] <= typical <= READABLE[1]
    # the drawing keeps its arrangement: left/right and up/down order of every pair
    for a, b in itertools.combinations(before, 2):
        for axis in (0, 1):
            assert (before[a][axis] < before[b][axis]) == (after[a][axis] < after[b][axis])


def test_coordinates_at_a_readable_scale_are_kept_and_a_designer_export_reopens_as_drawn() -> None:
    two_locks = next(f for f in pnml_files() if f.name == "gui_two_locks.pnml")
    net = fluxnb.read_pnml(two_locks)
    d = Design.from_pnml(two_locks)
    assert {n.id: (n.x, n.y) for n in d.nodes.values()} == net.positions
    scaled = Design.from_pnml(NAMED)
    reopened = Design.from_pnml(scaled.to_pnml())
    assert {n.id: (n.x, n.y) for n in reopened.nodes.values()} == {
        n.id: (n.x, n.y) for n in scaled.nodes.values()
    }


def test_a_file_whose_nodes_share_one_spot_is_laid_out() -> None:
    stacked = {f"n{i}": (11.25, 11.25) for i in range(8)} | {"m": (15.0, 12.0)}
    assert canvas_positions(stacked) == {}
    text = re.sub(r'(x|y)="[0-9]+"', r'\1="11"', NAMED.read_text())  # every node on (11, 11)
    d = Design.from_pnml(text)
    spots = {(n.x, n.y) for n in d.nodes.values()}
    assert len(spots) == len(d.nodes)  # the designer's layout: no two nodes on one spot
