"""What ``import fluxnb`` loads (issue 22, target 5): the exceptions and nothing else; every
other public name loads on first touch, and still resolves, lists and types as before.

Behaviour, not time: each check runs a fresh interpreter and looks at ``sys.modules``
(benchmarks/import_time.py measures the time).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys

import fluxnb

from .conftest import ROOT, cli_env, shared_shell

#: Faces, optional parts and heavy libraries: loaded only when something touches them, so
#: never by ``import fluxnb`` nor by a workflow's first run without a store.
ON_TOUCH_ONLY = (
    "fluxnb.billing",
    "fluxnb.designer",
    "fluxnb.notebook",
    "fluxnb.cli",
    "fluxnb.server",
    "fluxnb.triggers",
    "fluxnb.llms",
    "xml.etree.ElementTree",
    "pandas",
    "duckdb",
    "pyarrow",
    "openai",
    "IPython",
    "ipywidgets",
    "anywidget",
    "jupyter_server",
)

#: What ``import fluxnb`` alone must not load either: the core and its libraries.
NOT_ON_IMPORT = (
    *ON_TOUCH_ONLY,
    "fluxnb.spec",
    "fluxnb.engine",
    "fluxnb.store",
    "fluxnb.metrics",
    "asyncio",
    "yaml",
    "decimal",
    "pydantic",
    "tornado",
)

#: What a workflow's first run (store off) must not load either: the core's rarer parts.
NOT_ON_FIRST_RUN = (
    *ON_TOUCH_ONLY,
    "fluxnb.metrics._sla",  # a run asks fluxnb.metrics._otel alone whether spans are on
    "fluxnb.metrics._prometheus",
    "fluxnb.spec._analysis",  # reachability: fluxnb.analyze
    "fluxnb.spec._pnml",
    "fluxnb.engine._compare",  # replay and diff
    "fluxnb.engine._history",  # trace files
    "fluxnb.engine._handle",  # fluxnb.start
    "fluxnb.engine._net_runner",  # interactive nets
    "fluxnb.engine._resume",
    "difflib",  # "did you mean": only a mistake pays for it
)


def _fresh(code: str) -> object:
    """What ``code`` prints as JSON on its last line, run in a new interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=120
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.splitlines()[-1])


def _loaded(code: str, names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` are in ``sys.modules`` after ``code`` ran in a new interpreter."""
    loaded = _fresh(
        f"import sys, json\n{code}\n"
        f"print(json.dumps([m for m in {list(names)!r} if m in sys.modules]))"
    )
    assert isinstance(loaded, list)
    return loaded


def test_import_fluxnb_loads_no_subpackage_and_no_heavy_library() -> None:
    assert _loaded("import fluxnb", NOT_ON_IMPORT) == []


def test_import_fluxnb_loads_only_the_exceptions_of_fluxnb() -> None:
    mods = _fresh(
        "import sys, json, fluxnb\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('fluxnb'))))"
    )
    assert isinstance(mods, list)
    assert "fluxnb._exceptions" in mods
    assert [m for m in mods if m.count(".") > 1 or m.removeprefix("fluxnb.")[:1] != "_"] == [
        "fluxnb"
    ]


def test_a_first_run_without_a_store_loads_no_face_billing_or_dataframes() -> None:
    code = (
        "import fluxnb\n"
        "wf = fluxnb.load('pipeline:\\n  - step: a\\n  - step: b\\n    depends_on: a\\n')\n"
        "assert fluxnb.run(wf, {'a': lambda: 1, 'b': lambda a: a + 1}, store=None).ok"
    )
    assert _loaded(code, NOT_ON_FIRST_RUN) == []


def test_each_lazy_module_loads_first_in_a_fresh_interpreter() -> None:
    """One name of each lazy module (of fluxnb, fluxnb.spec, fluxnb.engine, fluxnb.metrics)
    touched first, before anything else has loaded it: a module that imports its package back,
    or needs a sibling loaded before it, fails only in this order. Each probe is a fork of an
    interpreter that has run ``import fluxnb`` alone."""
    import fluxnb.engine
    import fluxnb.metrics
    import fluxnb.spec

    probes = [("fluxnb", n) for n in ("store", "billing", "metrics", "triggers", "spec", "engine")]
    seen: set[str] = set()  # a module reached through two packages is probed once
    for package in (fluxnb, fluxnb.spec, fluxnb.engine):
        for name, module in package._LAZY.items():
            if module not in seen:
                seen.add(module)
                probes.append((package.__name__, name))
    probes += [("fluxnb.metrics", "sla"), ("fluxnb.metrics", "prometheus_text")]
    code = (
        "import importlib, json, os, sys, fluxnb\n"
        "bad = []\n"
        "for probe in sys.argv[1:]:\n"
        "    package, name = probe.split(':')\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        try:\n"
        "            p = importlib.import_module(package)\n"
        "            ok = getattr(p, name) is not None and name in dir(p)\n"
        "        except BaseException:\n"
        "            ok = False\n"
        "        os._exit(0 if ok else 1)\n"
        "    if os.waitpid(pid, 0)[1]:\n"
        "        bad.append(probe)\n"
        "print(json.dumps(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *(f"{p}:{n}" for p, n in probes)],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == []
    assert len(seen) > 30  # every lazy module of the four packages was probed


def test_every_public_name_resolves_and_star_import_gives_the_same_objects() -> None:
    namespace: dict[str, object] = {}
    exec("from fluxnb import *", namespace)
    for name in fluxnb.__all__:
        assert getattr(fluxnb, name) is namespace[name], name
        assert hasattr(fluxnb, name)
    assert set(fluxnb.__all__) - {"__version__"} <= set(namespace)


def test_dir_lists_every_public_name_before_any_is_touched() -> None:
    listed = _fresh("import json, fluxnb; print(json.dumps(dir(fluxnb)))")
    assert isinstance(listed, list)
    assert set(fluxnb.__all__) <= set(listed)
    assert "Workflow" in listed and "run" in listed  # what IPython's tab completion offers


def test_an_unknown_name_is_an_attribute_error() -> None:
    assert not hasattr(fluxnb, "no_such_name")
    try:
        fluxnb.no_such_name  # noqa: B018 - the lookup is what is tested
    except AttributeError as e:
        assert e.name == "no_such_name" or "no_such_name" in str(e)
    else:
        raise AssertionError("fluxnb.no_such_name resolved")


def test_fluxnb_store_stays_callable_once_the_store_package_loads() -> None:
    """The import system sets ``fluxnb.store`` to the ``fluxnb.store`` package whenever
    that package is first imported (here by the engine, after ``import fluxnb``): it is the
    one package, callable, before and after, however it is reached."""
    found = _fresh(
        "import json, fluxnb\n"
        "before = fluxnb.store\n"
        "import fluxnb.engine, fluxnb.store\n"
        "from fluxnb import store\n"
        "import fluxnb.store as m\n"
        "print(json.dumps([callable(fluxnb.store), fluxnb.store is store is m is before, "
        "m.Store.__name__, type(m(':memory:')).__name__]))"
    )
    assert found == [True, True, "Store", "Store"]


def test_jupyter_and_ipython_entry_points_are_plain_attributes() -> None:
    """Jupyter Server finds its extension and IPython its magics by looking these up on the
    module: they are defined in fluxnb/__init__.py, not lazy."""
    found = _fresh(
        "import json, sys, fluxnb\n"
        "names = ('_jupyter_server_extension_points', 'load_ipython_extension', 'load', "
        "'analyze', '__version__')\n"
        "print(json.dumps([n in vars(fluxnb) for n in names] + ['fluxnb.server' in sys.modules]))"
    )
    assert found == [True, True, True, True, True, False]


def test_every_lazy_name_is_typed_for_type_checkers() -> None:
    """A name that ``__getattr__`` serves is invisible to mypy unless fluxnb/__init__.py
    also imports it under ``if TYPE_CHECKING:`` (or binds it itself)."""
    tree = ast.parse((ROOT / "fluxnb" / "__init__.py").read_text())
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom | ast.Import):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.Assign):
            bound |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    assert set(fluxnb.__all__) - bound == set()
    assert set(fluxnb._LAZY) <= set(fluxnb.__all__)


def test_the_import_benchmark_prints_both_targets_and_the_slowest_modules() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "import_time.py"), "--rounds", "1"],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    targets = [line for line in out.stdout.splitlines() if "<= 1.3x" in line]
    assert len(targets) == 2 and all(t.lstrip().startswith(("[ok]", "[MISS]")) for t in targets)
    assert "fluxnb._exceptions" in out.stdout  # the -X importtime table of fluxnb's imports


def test_net_build_works_when_net_is_the_first_name_touched() -> None:
    """``Net.build`` is a class attribute that the builder's module sets (the builder sits
    above ``spec._net``): loading any part of the spec loads it too."""
    found = _fresh(
        "import json, fluxnb\n"
        "net = fluxnb.Net.build('n', places={'a': 1, 'b': 0})\n"
        "print(json.dumps(type(net).__name__))"
    )
    assert found == "NetBuilder"


def test_ipython_completes_the_lazy_names() -> None:
    """Tab completion (jedi and IPython's own) offers names whose modules have not loaded."""
    from IPython.core.completer import provisionalcompleter

    ip = shared_shell()
    ip.run_cell("import fluxnb as _fluxnb_completion")
    completer = ip.Completer
    was = completer.use_jedi
    try:
        for jedi in (True, False):
            completer.use_jedi = jedi
            with provisionalcompleter():
                found = {c.text for c in completer.completions("_fluxnb_completion.Invo", 22)}
            assert {"Invoice", "InvoiceState"} <= {f.rsplit(".", 1)[-1] for f in found}, jedi
    finally:
        completer.use_jedi = was
