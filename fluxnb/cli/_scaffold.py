"""``fluxnb scaffold NAME [--net] [--agents N]``: a runnable starter project in ./NAME/.

It writes the manifest (``NAME.yaml``: a DAG, or a Petri net with ``--net``), the step
functions (``NAME_steps.py``), a tutorial notebook (``NAME.ipynb``) and a pytest file
(``test_NAME.py``), then prints the command that runs it. Nothing is written when NAME is
not a usable name or ./NAME/ exists with something in it (exit 2).
"""

from __future__ import annotations

import argparse
import json
import keyword
import re
from pathlib import Path
from typing import Any

from .._exceptions import FluxError

EXIT_OK = 0


def add_scaffold_command(sub: Any) -> None:
    sc = sub.add_parser(
        "scaffold",
        help="write a runnable starter project in ./NAME/ (manifest, steps, notebook, test)",
    )
    sc.add_argument("name", metavar="NAME", help="the project's name (letters, digits and _)")
    sc.add_argument("--net", action="store_true", help="a Petri-net manifest instead of a DAG")
    sc.add_argument(
        "--agents",
        type=int,
        default=3,
        metavar="N",
        help="how many steps (transitions with --net) the starter has (default 3)",
    )


def check_name(name: str) -> None:
    """NAME must be importable as ``NAME_steps`` and usable as a file and folder name."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and not keyword.iskeyword(name):
        return
    fixed = re.sub(r"\W+", "_", name).strip("_") or "my_flow"
    if fixed[0].isdigit() or keyword.iskeyword(fixed):
        fixed = f"flow_{fixed}"
    raise FluxError(
        f"scaffold: '{name}' cannot name a project: NAME becomes the Python module "
        f"NAME_steps, so use letters, digits and _ and do not start with a digit "
        f"(e.g. fluxnb scaffold {fixed})"
    )


def cmd_scaffold(args: argparse.Namespace) -> int:
    name: str = args.name
    check_name(name)
    if not 1 <= args.agents <= 50:
        raise FluxError(f"scaffold: --agents takes 1 to 50 steps, not {args.agents}")
    folder = Path(name)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        what = "a file" if not folder.is_dir() else "a folder with files in it"
        raise FluxError(
            f"scaffold: ./{name} already exists and is {what}; nothing was written. "
            "Pick another NAME, or run it in another folder"
        )
    files = project_files(name, args.agents, net=args.net)
    folder.mkdir(exist_ok=True)
    for filename, text in files.items():
        (folder / filename).write_text(text, encoding="utf-8")
    kind = f"Petri net with {args.agents} transitions" if args.net else f"{args.agents}-step DAG"
    print(f"created {name}/ ({kind}): {', '.join(files)}")
    print(f"next: cd {name} && fluxnb run {name}.yaml --import {name}_steps")
    print(f"then: pytest (in {name}/), or open {name}.ipynb in JupyterLab")
    return EXIT_OK


def project_files(name: str, agents: int, *, net: bool = False) -> dict[str, str]:
    """The starter's files by name: manifest, steps module, notebook, test."""
    if net:
        manifest, steps, test = _net_files(name, agents)
    else:
        manifest, steps, test = _dag_files(name, agents)
    return {
        f"{name}.yaml": manifest,
        f"{name}_steps.py": steps,
        f"{name}.ipynb": _notebook(name, net),
        f"test_{name}.py": test,
    }


# ---------------------------------------------------------------------- a DAG


def _dag_ids(agents: int) -> list[str]:
    if agents == 1:
        return ["load"]
    return ["load", *(f"work_{i}" for i in range(1, agents - 1)), "report"]


def _dag_files(name: str, agents: int) -> tuple[str, str, str]:
    ids = _dag_ids(agents)
    works = [s for s in ids if s.startswith("work_")]
    deps = works or ["load"]  # what 'report' depends on
    lines = [
        f"# {name}: a fluxnb workflow (docs/manifest.md). Run it with:",
        f"#   fluxnb run {name}.yaml --import {name}_steps --param size=10",
        f"name: {name}",
        "description: A starter workflow made by fluxnb scaffold.",
        "params:",
        "  size: 5              # how many numbers 'load' makes; --param size=N changes it",
        "pipeline:",
        "  - step: load",
        "    with: {size: {{size}}}",
    ]
    for w in works:
        lines += [f"  - step: {w}", "    depends_on: load"]
    if "report" in ids:
        lines += ["  - step: report", f"    depends_on: [{', '.join(deps)}]"]
    lines += [
        "agents:",
        "  - id: load",
        "    timeout: 30s",
        "    retry: {max_attempts: 3, backoff: exponential, initial_delay: 100ms}",
        "",
    ]
    funcs = [
        f'"""The step functions of {name}.yaml: a step calls the function of its id, with the',
        'outputs of the steps it depends on as keyword arguments."""',
        "",
        "",
        "def load(size: int) -> list[int]:",
        '    """The input: the numbers 1..size."""',
        "    return list(range(1, size + 1))",
    ]
    for i, w in enumerate(works, start=1):
        funcs += [
            "",
            "",
            f"def {w}(load: list[int]) -> int:",
            f'    """A branch: the numbers times {i + 1}, summed (branches run concurrently)."""',
            f"    return sum(x * {i + 1} for x in load)",
        ]
    if "report" in ids:
        params = ", ".join(f"{d}: {'int' if d in works else 'list[int]'}" for d in deps)
        body = (
            "{" + ", ".join(f'"{w}": {w}' for w in works) + "}" if works else '{"total": sum(load)}'
        )
        funcs += [
            "",
            "",
            f"def report({params}) -> dict[str, int]:",
            '    """What the run returns: one number per branch."""',
            f"    return {body}",
        ]
    last = ids[-1]
    test = f'''"""{name}'s workflow runs end to end (pytest, in this folder)."""

from pathlib import Path

import {name}_steps
import fluxnb

MANIFEST = Path(__file__).with_name("{name}.yaml")


def test_the_workflow_runs() -> None:
    result = fluxnb.run(MANIFEST, vars({name}_steps), store=None)
    assert result.ok, result.summary()
    assert result["load"] == [1, 2, 3, 4, 5]
    assert result["{last}"] is not None


def test_size_is_a_parameter() -> None:
    result = fluxnb.run(MANIFEST, vars({name}_steps), store=None, params={{"size": 2}})
    assert result.ok, result.summary()
    assert result["load"] == [1, 2]
'''
    return "\n".join(lines), "\n".join(funcs) + "\n", test


# ---------------------------------------------------------------------- a Petri net


def _net_files(name: str, agents: int) -> tuple[str, str, str]:
    ids = [f"stage_{i}" for i in range(1, agents + 1)]
    places = ["inbox", *(f"after_{t}" for t in ids[:-1]), "done"]
    lines = [
        f"# {name}: a Petri net (docs/petri.md): each token in 'inbox' passes every stage.",
        f"#   fluxnb run {name}.yaml --import {name}_steps --param items=10",
        f"name: {name}",
        "description: A starter net made by fluxnb scaffold.",
        "params:",
        "  items: 3             # tokens in 'inbox' at the start; --param items=N changes it",
        "net:",
        "  places: {"
        + ", ".join(f"{p}: {'{{items}}' if p == 'inbox' else 0}" for p in places)
        + "}",
        "  transitions:",
    ]
    for i, t in enumerate(ids):
        lines.append(
            f"    - {{id: {t}, inputs: [{places[i]}], outputs: [{places[i + 1]}], run: {t}}}"
        )
    lines += ["  final: {done: {{items}}}", ""]
    funcs = [
        f'"""The transition actions of {name}.yaml: an action gets the consumed token\'s data',
        'as `token` and returns the data of the token it produces."""',
        "",
        "from typing import Any",
    ]
    for t in ids:
        funcs += [
            "",
            "",
            f"def {t}(token: Any) -> dict[str, list[str]]:",
            f'    """Record that the token passed {t}."""',
            '    seen = token["seen"] if isinstance(token, dict) else []',
            f'    return {{"seen": [*seen, "{t}"]}}',
        ]
    test = f'''"""{name}'s net runs to its final marking (pytest, in this folder)."""

from pathlib import Path

import {name}_steps
import fluxnb

MANIFEST = Path(__file__).with_name("{name}.yaml")


def test_every_token_reaches_done() -> None:
    result = fluxnb.run(MANIFEST, vars({name}_steps), store=None)
    assert result.ok and result.ending == "final", result.summary()
    assert result.marking["done"] == 3
    stages = [f"stage_{{i}}" for i in range(1, {agents + 1})]
    assert all(t.data["seen"] == stages for t in result.tokens["done"])


def test_items_is_a_parameter() -> None:
    result = fluxnb.run(MANIFEST, vars({name}_steps), store=None, params={{"items": 5}})
    assert result.ok, result.summary()
    assert result.marking["done"] == 5
'''
    return "\n".join(lines), "\n".join(funcs) + "\n", test


# ---------------------------------------------------------------------- the notebook


def _notebook(name: str, net: bool) -> str:
    param = "items" if net else "size"
    what = "Petri net" if net else "workflow"
    look = (
        'result.marking, result.tokens["done"][0].data'
        if net
        else 'result["report"] if "report" in result.outputs else result.outputs'
    )
    cells = [
        _md(
            f"# {name}\n\n"
            f"A starter {what} made by `fluxnb scaffold`. Three files hold it:\n\n"
            f"- `{name}.yaml`, the manifest: what runs, in which order, with what retries;\n"
            f"- `{name}_steps.py`, the Python functions it calls, by name;\n"
            f"- `test_{name}.py`, a test you can run with `pytest`."
        ),
        _md("Import fluxnb and the step functions; the run finds them in `globals()`."),
        _code(f"import fluxnb\nfrom {name}_steps import *  # noqa: F403 (the step functions)"),
        _md(
            "Run it. `store=None` records nothing; leave it out to keep the trace in "
            "`.fluxnb/fluxnb.duckdb` and query it with `fluxnb.sql(...)`."
        ),
        _code(f'result = fluxnb.run("{name}.yaml", globals(), store=None)\nresult'),
        _code(look),
        _md(
            f"`{{{{{param}}}}}` in the manifest is a parameter with a default under `params:`. "
            "Pass another value with `params=` (on the command line: "
            f"`--param {param}=10`)."
        ),
        _code(
            f'bigger = fluxnb.run("{name}.yaml", globals(), store=None, params={{"{param}": 10}})\n'
            "bigger.summary()"
        ),
    ]
    for i, cell in enumerate(cells, start=1):
        cell["id"] = f"cell-{i}"
    nb = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(nb, indent=1) + "\n"


def _md(text: str) -> dict[str, Any]:
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def _code(text: str) -> dict[str, Any]:
    return {
        "cell_type": "code",
        "execution_count": None,
        "metadata": {},
        "outputs": [],
        "source": text,
    }


SCAFFOLD_COMMANDS = {"scaffold": cmd_scaffold}
