"""Run parameters: ``{{name}}`` filled from params=, --param, params: defaults and (in the
magic) notebook variables; safe substitution; located errors. Also the "did you mean" and
"--import" hints of an unresolved callable."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError

import fluxnb
from fluxnb import ManifestError
from fluxnb.cli import main
from fluxnb.spec._located import load_located
from fluxnb.spec._params import fill_text, parse_param

from .conftest import shared_shell

MANIFEST = """params:
  n: {type: int, default: 2}
  label: {type: str, default: x}
pipeline:
  - step: make
    with: {n: {{n}}, label: {{label}}}
"""


def make(n: int, label: str) -> list[str]:
    return [label] * n


def kwargs(**kw: Any) -> dict[str, Any]:
    return kw


# ------------------------------------------------------------------ the API


def test_params_fill_the_manifest_with_typed_values_over_defaults() -> None:
    assert fluxnb.run(MANIFEST, {"make": make}, store=None)["make"] == ["x", "x"]
    result = fluxnb.run(MANIFEST, {"make": make}, store=None, params={"n": 3, "label": "hi"})
    assert result["make"] == ["hi", "hi", "hi"]


def test_arun_start_and_load_take_params() -> None:
    async def go() -> Any:
        return await fluxnb.arun(MANIFEST, {"make": make}, store=None, params={"n": 1})

    assert asyncio.run(go())["make"] == ["x"]
    handle = fluxnb.start(MANIFEST, {"make": make}, store=None, params={"label": "s"})
    assert handle.result(timeout=30)["make"] == ["s", "s"]
    wf = fluxnb.load(MANIFEST, params={"n": 5})
    assert isinstance(wf, fluxnb.Workflow) and wf.steps["make"].with_ == {"n": 5, "label": "x"}


def test_a_whole_value_keeps_its_type_and_a_spliced_one_is_typed_like_plain_text() -> None:
    text = (
        "pipeline:\n  - step: kwargs\n"
        "    with: {a: {{v}}, b: '{{v}}', c: 1{{v}}, d: {{v}}s, e: \"<{{v}}>\", f: {{lst}}}\n"
    )
    out = fluxnb.run(text, {"kwargs": kwargs}, store=None, params={"v": 5, "lst": [1, "a"]})
    assert out["kwargs"] == {"a": 5, "b": "5", "c": 15, "d": "5s", "e": "<5>", "f": [1, "a"]}


def test_an_unfilled_placeholder_is_an_error_naming_its_line() -> None:
    text = "pipeline:\n  - step: kwargs\n    with: {a: {{limit}}}\n"
    with pytest.raises(ManifestError) as info:
        fluxnb.load(text, params={"limt": 3})
    kinds = {p.kind: p for p in info.value.problems}
    assert kinds["unfilled_param"].line == 3 and kinds["unfilled_param"].column == 15
    assert kinds["unfilled_param"].found == "limit"
    assert kinds["unfilled_param"].suggestion == "limt"
    assert kinds["unknown_param"].found == "limt"  # passed but fills nothing
    assert kinds["unknown_param"].suggestion == "limit"


def test_a_placeholder_in_a_comment_is_left_alone() -> None:
    text = "pipeline:  # {{not_a_param}}\n  - step: kwargs\n"
    assert fluxnb.load(text).steps["kwargs"].with_ == {}


def test_declared_params_are_checked_with_did_you_mean() -> None:
    text = (
        "params:\n"
        "  n: {type: itn, default: 1}\n"
        "  m: {type: int, default: two}\n"
        "  k: {type: str, defualt: a}\n"
        "pipeline:\n  - step: kwargs\n"
    )
    with pytest.raises(ManifestError) as info:
        fluxnb.load(text)
    problems = info.value.problems
    bad_type = next(p for p in problems if p.found == "itn")
    assert (bad_type.kind, bad_type.suggestion, bad_type.line) == ("bad_param", "int", 2)
    bad_default = next(p for p in problems if p.path == "params.m.default")
    assert bad_default.kind == "bad_param" and bad_default.line == 3
    unknown_key = next(p for p in problems if p.kind == "unknown_key")
    assert unknown_key.suggestion == "default" and unknown_key.line == 4


def test_a_passed_param_must_be_declared_when_params_are_declared() -> None:
    with pytest.raises(ManifestError) as info:
        fluxnb.load(MANIFEST, params={"lable": "y"})
    (p,) = info.value.problems
    assert (p.kind, p.found, p.suggestion, p.line) == ("unknown_param", "lable", "label", 1)


def test_a_used_placeholder_must_be_declared_when_params_are_declared() -> None:
    text = MANIFEST.replace("label: {{label}}", "label: {{lable}}")
    with pytest.raises(ManifestError) as info:
        fluxnb.load(text)
    (p,) = info.value.problems
    assert (p.kind, p.found, p.suggestion, p.line) == ("undeclared_param", "lable", "label", 6)


def test_a_value_of_the_wrong_type_is_located_at_its_declaration() -> None:
    with pytest.raises(ManifestError) as info:
        fluxnb.load(MANIFEST, params={"n": "three"})
    (p,) = info.value.problems
    assert (p.kind, p.path, p.line, p.expected, p.found) == (
        "bad_param",
        "params.n",
        2,
        "int",
        "three",
    )


def test_a_required_param_without_value_is_an_error() -> None:
    text = (
        "params:\n  region: {type: str}\npipeline:\n  - step: kwargs\n    with: {r: {{region}}}\n"
    )
    with pytest.raises(ManifestError) as info:
        fluxnb.load(text)
    assert info.value.kind == "unfilled_param" and info.value.line == 5
    assert fluxnb.load(text, params={"region": "eu"}).steps["kwargs"].with_ == {"r": "eu"}


def test_params_of_a_dict_manifest_and_of_a_loaded_workflow() -> None:
    d = {"pipeline": [{"step": "kwargs", "with": {"a": "{{n}}", "b": "n={{n}}"}}]}
    assert fluxnb.load(d, params={"n": 2}).steps["kwargs"].with_ == {"a": 2, "b": "n=2"}
    with pytest.raises(TypeError, match="already-loaded Workflow"):
        fluxnb.run(fluxnb.load(d, params={"n": 2}), store=None, params={"n": 3})


def test_later_lines_keep_their_numbers_after_a_rewritten_multiline_scalar() -> None:
    text = (
        "pipeline:\n  - step: kwargs\n    description: |\n      a {{x}}\n\n      b\n"
        "    depends_on: nothere\n"
    )
    with pytest.raises(ManifestError) as info:
        fluxnb.load(text, params={"x": "one\ntwo: 2"})
    assert info.value.line == 7
    wf = fluxnb.load(text.replace("nothere", "[]"), params={"x": "one\ntwo: 2"})
    assert wf.steps["kwargs"].description == "a one\ntwo: 2\n\nb\n"


def test_a_net_manifest_takes_params() -> None:
    net = (
        "params:\n  n: 3\nnet:\n  places: {todo: {{n}}, done: 0}\n"
        "  transitions:\n    - {id: work, inputs: [todo], outputs: [done]}\n"
    )
    assert fluxnb.run(net, store=None).marking == {"todo": 0, "done": 3}
    assert fluxnb.run(net, store=None, params={"n": 5}).marking == {"todo": 0, "done": 5}


# ------------------------------------------------------------------ safety


INJECTIONS = [
    "a: b\nc: d",
    "x\npipeline: []",
    "{a: 1}",
    "[1, 2]",
    "&a x",
    "*a",
    "'",
    '"',
    "\\",
    "#c",
    "- a",
    "---",
    "...",
    "yes",
    "3",
    "",
    " lead\ttab ",
    "é\u2028\x85\ufeff\x00\x7f😀",
]


@pytest.mark.parametrize("value", INJECTIONS)
def test_a_text_value_stays_one_string_wherever_it_goes(value: str) -> None:
    text = (
        "name: w\npipeline:\n  - step: kwargs\n"
        "    with: {a: {{x}}, b: '{{x}}', c: \"<{{x}}>\", d: [{{x}}, pre {{x}}\n      post]}\n"
        "    description: |\n      {{x}}\n"
    )
    filled = fill_text(text, {"x": value})
    data = load_located(filled).data
    assert set(data) == {"name", "pipeline"} and len(data["pipeline"]) == 1
    step = data["pipeline"][0]
    assert set(step) == {"step", "with", "description"}
    assert step["with"] == {
        "a": value,
        "b": value,
        "c": f"<{value}>",
        "d": [value, f"pre {value} post"],
    }
    assert step["description"] == value + "\n"
    assert filled.count("\n") == text.count("\n")


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=40))
def test_any_text_value_round_trips_and_adds_no_keys(value: str) -> None:
    filled = fill_text("a: {{x}}\nb: '{{x}} it''s'\nc: 1\n", {"x": value})
    assert load_located(filled).data == {"a": value, "b": f"{value} it's", "c": 1}


@settings(max_examples=100, deadline=None)
@given(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False),
        st.lists(st.one_of(st.integers(), st.text(max_size=8)), max_size=4),
    )
)
def test_a_whole_value_keeps_its_type(value: Any) -> None:
    assert load_located(fill_text("a: {{x}}\n", {"x": value})).data == {"a": value}


def test_a_placeholder_in_an_anchor_is_one_located_problem() -> None:
    with pytest.raises(ManifestError) as info:
        fill_text("a: 1\nb: &{{x}} 2\n", {"x": "y"})
    (p,) = info.value.problems
    assert (p.kind, p.line, p.column, p.found) == ("bad_param", 2, 5, "x")


def test_an_unwritable_value_is_a_located_problem() -> None:
    with pytest.raises(ManifestError) as info:
        fill_text("a: 1\nb: {{x}}\n", {"x": object()})
    assert info.value.kind == "bad_param" and info.value.line == 2


def test_parse_param_types_values_as_yaml_scalars() -> None:
    assert parse_param("n=3") == ("n", 3)
    assert parse_param("x=abc") == ("x", "abc")
    assert parse_param("on=true") == ("on", True)
    assert parse_param("e=") == ("e", "")
    assert parse_param("r=1.5") == ("r", 1.5)
    assert parse_param("x=a: b\nc: d") == ("x", "a: b\nc: d")  # block YAML is text
    assert parse_param("l=[1, b]") == ("l", [1, "b"])
    with pytest.raises(fluxnb.FluxError, match="KEY=VALUE"):
        parse_param("novalue")


# ------------------------------------------------------------------ the CLI


STEPS = "def kwargs(**kw):\n    return kw\n"


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, json.loads(out.out) if code == 0 else None, out.err


def test_cli_param_fills_and_cannot_add_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "steps_p.py").write_text(STEPS)
    (tmp_path / "m.yaml").write_text(
        "params:\n  x: {type: str, default: d}\n  n: 1\n"
        "pipeline:\n  - step: kwargs\n    with: {label: {{x}}, n: {{n}}}\n"
    )
    base = ["run", "m.yaml", "--import", "steps_p", "--no-store", "--json"]
    code, data, _ = cli_json(capsys, *base, "--param", "x=a: b\nc: d", "--param", "n=3")
    assert code == 0, _
    assert data["outputs"]["kwargs"] == {"label": "a: b\nc: d", "n": 3}
    code, data, _ = cli_json(capsys, *base)
    assert data["outputs"]["kwargs"] == {"label": "d", "n": 1}
    code, _, err = cli_json(capsys, *base, "--param", "y=1")
    assert code == 2 and "param 'y' is not declared" in err and "Traceback" not in err
    code, _, err = cli_json(capsys, *base, "--param", "n=three")
    assert code == 2 and "m.yaml:3:3" in err
    assert main(["validate", "m.yaml", "--param", "n=2"]) == 0
    assert main(["validate", "m.yaml", "--param", "bad"]) == 2


def test_cli_unresolved_callable_points_to_import_and_what_it_searched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "steps_q.py").write_text("def kwarg(**kw):\n    return kw\n")
    (tmp_path / "m.yaml").write_text("pipeline:\n  - step: kwargs\n")
    assert main(["run", "m.yaml", "--no-store"]) == 2
    err = capsys.readouterr().err
    assert "no --import was given" in err and "--import MODULE" in err
    assert str(tmp_path) in err
    assert main(["run", "m.yaml", "--no-store", "--import", "steps_q"]) == 2
    err = capsys.readouterr().err
    assert "--import: steps_q" in err and str(tmp_path / "steps_q.py") in err
    assert "did you mean 'kwarg'" in err and "--import MODULE" in err
    assert main(["run", "m.yaml", "--no-store", "--import", "steps_nothere"]) == 2
    err = capsys.readouterr().err
    assert "no module named 'steps_nothere'" in err and str(tmp_path) in err


# ------------------------------------------------------------------ the notebook


@pytest.fixture(scope="module")
def ip() -> Any:
    shell = shared_shell()
    shell.run_line_magic("load_ext", "fluxnb")
    return shell


CELL = """params:
  label: {type: str, default: from-default}
pipeline:
  - step: kwargs
    with: {label: {{label}}}
"""


def test_magic_precedence_param_then_variable_then_default(ip: Any) -> None:
    ip.user_ns["kwargs"] = kwargs
    ip.user_ns.pop("label", None)
    run = ip.run_cell_magic
    assert run("fluxroute", "--no-progress --store :memory:", CELL)["kwargs"] == {
        "label": "from-default"
    }
    ip.user_ns["label"] = "from-variable"
    assert run("fluxroute", "--no-progress --store :memory:", CELL)["kwargs"] == {
        "label": "from-variable"
    }
    out = run("fluxroute", "--no-progress --store :memory: --param label=p", CELL)
    assert out["kwargs"] == {"label": "p"}
    ip.user_ns.pop("label")


def test_magic_unfilled_placeholder_points_at_the_cell_line(ip: Any) -> None:
    ip.user_ns["kwargs"] = kwargs
    with pytest.raises(UsageError, match=r"cell line 4: \{\{nothere\}\} is not filled"):
        ip.run_cell_magic(
            "fluxroute",
            "--no-progress",
            "pipeline:\n  - step: kwargs\n    with: {a: {{nothere}}}\n",
        )


@pytest.mark.parametrize("typo", ["opn", "qit", "exitt", "get_ipytho", "Inn", "Ou", "ih"])
def test_notebook_did_you_mean_never_offers_ipythons_own_names(ip: Any, typo: str) -> None:
    ip.run_cell("1 + 1")  # so _, _1, _i1, Out hold something
    with pytest.raises(UsageError) as info:
        ip.run_cell_magic("fluxroute", "--no-progress", f"pipeline:\n  - step: {typo}\n")
    assert f"no callable named '{typo}'" in str(info.value)
    # other tests may leave names of their own in the shared shell: only IPython's own
    # injected names must never be offered
    offered = re.findall(r"did you mean '([^']+)'", str(info.value))
    ipythons = {"open", "quit", "exit", "get_ipython", "In", "Out"}
    assert not [n for n in offered if n in ipythons or n.startswith("_")], offered


def test_notebook_did_you_mean_offers_the_notebooks_own_functions(ip: Any) -> None:
    ip.run_cell("def open(path):\n    return path\ndef fetch_rows():\n    return []\n")
    try:
        for typo, meant in (("opn", "open"), ("fetch_row", "fetch_rows")):
            with pytest.raises(UsageError, match=f"did you mean '{meant}'"):
                ip.run_cell_magic("fluxroute", "--no-progress", f"pipeline:\n  - step: {typo}\n")
    finally:
        ip.run_cell("del open")
