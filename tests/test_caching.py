"""Incremental runs (issue #20): a step is reused exactly when its cache key is unchanged."""

from __future__ import annotations

import itertools
import json
import linecache
import textwrap
from pathlib import Path
from typing import Any

import pytest

import fluxnb
from fluxnb import StepStatus
from fluxnb.store import _outputs

_cells = itertools.count()

CELL = """
def load():
    return list(range(10))

def clean(load):
    return [x for x in load if x % 2 == 0]

def left(clean):
    return sum(clean)

def right(clean):
    return max(clean)

def join(left, right):
    return {"left": left, "right": right}

def report(join):
    return f"{join['left']}/{join['right']}"
"""

DIAMOND = """
name: diamond
pipeline:
  - step: load
  - step: clean
    depends_on: [load]
  - step: left
    depends_on: [clean]
  - step: right
    depends_on: [clean]
  - step: join
    depends_on: [left, right]
  - step: report
    depends_on: [join]
"""


def define(source: str, ns: dict[str, Any]) -> dict[str, Any]:
    """Run ``source`` into ``ns`` the way a notebook cell runs: its text registered in
    linecache under a cell name (IPython does the same), so its functions have source."""
    name = f"<cell-{next(_cells)}>"
    text = textwrap.dedent(source)
    linecache.cache[name] = (len(text), None, text.splitlines(True), name)
    exec(compile(text, name, "exec"), ns)
    return ns


def notebook(source: str = CELL) -> dict[str, Any]:
    return define(source, {"__name__": "notebook"})


def ran(result: Any) -> set[str]:
    """The steps that were called (not reused) in a run."""
    return {s for s, r in result.steps.items() if r.status is StepStatus.SUCCEEDED}


def cached(result: Any) -> set[str]:
    return {s for s, r in result.steps.items() if r.status is StepStatus.CACHED}


def test_editing_one_function_reruns_exactly_its_downstream_cone(store_path: str) -> None:
    ns = notebook()
    first = fluxnb.run(DIAMOND, ns, store=store_path, cache=True)
    assert ran(first) == set(first.steps)
    again = fluxnb.run(DIAMOND, ns, store=store_path, cache=True)
    assert cached(again) == set(first.steps) and again.outputs == first.outputs
    define("def right(clean):\n    return min(clean)\n", ns)
    edited = fluxnb.run(DIAMOND, ns, store=store_path, cache=True)
    assert ran(edited) == {"right", "join", "report"}
    assert cached(edited) == {"load", "clean", "left"}
    assert edited["report"] == "20/0"
    assert edited.cache is not None
    assert edited.cache["right"].reason == "code changed: right()"
    assert edited.cache["join"].reason == "input changed: right"
    assert edited.cache["left"].source_run_id == first.run_id


def test_an_edit_that_keeps_the_output_reruns_only_that_step(store_path: str) -> None:
    """Keys hold the digests of inputs, not upstream code: a refactor that returns the
    same value re-runs the edited step only (the cone stops where outputs stop changing)."""
    ns = notebook()
    fluxnb.run(DIAMOND, ns, store=store_path, cache=True)
    define("def clean(load):\n    return [x for x in load if not x % 2]\n", ns)
    edited = fluxnb.run(DIAMOND, ns, store=store_path, cache=True)
    assert ran(edited) == {"clean"}


def test_comment_or_docstring_edits_rerun_nothing(store_path: str) -> None:
    ns = notebook()
    fluxnb.run(DIAMOND, ns, store=store_path, cache=True)
    define(
        '''
        def clean(load):
            """Keep the even numbers."""
            # a comment, and the line moved down
            return [x for x in load if x % 2 == 0]   # trailing comment
        ''',
        ns,
    )
    again = fluxnb.run(DIAMOND, ns, store=store_path, cache=True)
    assert ran(again) == set()


def test_changing_a_helper_reruns_the_step_that_calls_it(store_path: str) -> None:
    ns = notebook(
        CELL
        + """
def scale(x):
    return x * 2

def twice(v):
    return scale(v)

def left(clean):
    return sum(twice(x) for x in clean)
"""
    )
    fluxnb.run(DIAMOND, ns, store=store_path, cache=True)
    define("def scale(x):\n    return x * 3\n", ns)
    edited = fluxnb.run(DIAMOND, ns, store=store_path, cache=True)
    assert ran(edited) == {"left", "join", "report"}
    assert edited.cache is not None
    assert "code changed: scale() (changed, called by left())" in edited.cache["left"].reason


def test_a_param_change_reruns_the_step_and_says_from_what_to_what(store_path: str) -> None:
    ns = notebook("def load():\n    return [0.1, 0.55, 0.9]\n"
                  "def keep(load, threshold):\n    return [x for x in load if x > threshold]\n")  # fmt: skip
    manifest = """
name: params
params: {threshold: 0.5}
pipeline:
  - step: load
  - step: keep
    depends_on: [load]
    with:
      threshold: {{threshold}}
"""
    assert fluxnb.run(manifest, ns, store=store_path, cache=True)["keep"] == [0.55, 0.9]
    same = fluxnb.run(manifest, ns, store=store_path, cache=True)
    assert ran(same) == set()
    changed = fluxnb.run(manifest, ns, store=store_path, cache=True, params={"threshold": 0.6})
    assert ran(changed) == {"keep"} and changed["keep"] == [0.9]
    assert changed.cache is not None
    assert changed.cache["keep"].reason == "param threshold 0.5 → 0.6"


def test_a_changed_file_input_reruns_the_step(tmp_path: Path, store_path: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("1\n2\n")
    ns = notebook(
        f"""
def read():
    import pathlib
    return sum(int(x) for p in sorted(pathlib.Path({str(data)!r}).glob("*.csv"))
               for x in p.read_text().split())
"""
    )
    manifest = f"""
name: files
agents:
  - id: read
    cache_inputs: ["{data}/*.csv"]
pipeline:
  - step: read
"""
    assert fluxnb.run(manifest, ns, store=store_path, cache=True)["read"] == 3
    assert ran(fluxnb.run(manifest, ns, store=store_path, cache=True)) == set()
    (data / "b.csv").write_text("10\n")
    changed = fluxnb.run(manifest, ns, store=store_path, cache=True)
    assert changed["read"] == 13 and ran(changed) == {"read"}
    assert changed.cache is not None
    assert changed.cache["read"].reason == f"file changed: {data}/*.csv"


def test_refresh_runs_every_step_and_records_it_anew(store_path: str) -> None:
    calls = []
    ns = notebook()
    fluxnb.run(DIAMOND, ns, store=store_path, cache=True)
    define("def load():\n    CALLS.append(1)\n    return list(range(10))\n", ns)
    ns["CALLS"] = calls
    fluxnb.run(DIAMOND, ns, store=store_path, cache=True)  # load's code changed
    refreshed = fluxnb.run(DIAMOND, ns, store=store_path, cache="refresh")
    assert ran(refreshed) == set(refreshed.steps) and len(calls) == 2
    assert refreshed.cache is not None
    assert {d.decision for d in refreshed.cache.values()} == {"refresh"}
    assert ran(fluxnb.run(DIAMOND, ns, store=store_path, cache=True)) == set()


def test_another_namespace_never_reuses_outputs(store_path: str) -> None:
    ns = notebook()
    fluxnb.run(DIAMOND, ns, store=store_path, cache=True)
    other = DIAMOND.replace("name: diamond", "name: diamond\nrouter: {namespace: team-b}")
    theirs = fluxnb.run(other, ns, store=store_path, cache=True)
    assert ran(theirs) == set(theirs.steps)
    assert ran(fluxnb.run(other, ns, store=store_path, cache=True)) == set()


def test_a_dataframe_round_trips_through_the_large_output_store(
    store_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pd = pytest.importorskip("pandas")
    monkeypatch.setattr(_outputs, "CAP", 1000)  # anything bigger is a large output
    ns = notebook(
        """
import pandas as pd

def frame():
    return pd.DataFrame({"x": range(500), "name": [f"n{i}" for i in range(500)],
                         "when": pd.date_range("2026-01-01", periods=500, freq="h", tz="UTC")})

def total(frame):
    return int(frame["x"].sum())
"""
    )
    manifest = "name: big\npipeline:\n  - step: frame\n  - step: total\n    depends_on: [frame]\n"
    first = fluxnb.run(manifest, ns, store=store_path, cache=True)
    files = list(Path(store_path + ".outputs").glob("*.parquet"))
    assert len(files) == 1
    again = fluxnb.run(manifest, ns, store=store_path, cache=True)
    assert cached(again) == {"frame", "total"}
    pd.testing.assert_frame_equal(again["frame"], first["frame"])
    files[0].write_bytes(files[0].read_bytes() + b"\0")  # the file changed behind our back
    third = fluxnb.run(manifest, ns, store=store_path, cache=True)
    assert ran(third) == {"frame"} and third["frame"]["name"].iloc[-1] == "n499"
    assert (
        third.cache is not None and "changed since it was recorded" in third.cache["frame"].reason
    )


def test_a_large_output_that_is_not_a_frame_is_a_signed_pickle(
    store_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_outputs, "CAP", 100)
    ns = notebook("def big():\n    return {'k': tuple(range(200))}\n")
    manifest = "name: bigpickle\npipeline:\n  - step: big\n"
    fluxnb.run(manifest, ns, store=store_path, cache=True)
    (path,) = Path(store_path + ".outputs").glob("*.pickle")
    again = fluxnb.run(manifest, ns, store=store_path, cache=True)
    assert again["big"] == {"k": tuple(range(200))} and cached(again) == {"big"}
    # a file changed behind the store's back is never unpickled: the step runs again
    blob = path.read_bytes()
    path.write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    third = fluxnb.run(manifest, ns, store=store_path, cache=True)
    assert ran(third) == {"big"}
    assert third.cache is not None
    assert "cannot be reused" in third.cache["big"].reason


def test_a_pickle_the_store_did_not_sign_is_not_reused(store_path: str) -> None:
    ns = notebook("def obj():\n    return (1, 2)\n")  # a tuple: recorded as a pickle
    manifest = "name: signed\npipeline:\n  - step: obj\n"
    fluxnb.run(manifest, ns, store=store_path, cache=True)
    st = fluxnb.store(store_path)
    with st.connect() as con:  # a new signing key: the recorded pickle is not signed by it
        con.execute("UPDATE fluxnb_secrets SET value = $1 WHERE name = 'output_key'", [b"k" * 32])
    st._output_key = None
    again = fluxnb.run(manifest, ns, store=store_path, cache=True)
    assert ran(again) == {"obj"} and again["obj"] == (1, 2)


def test_cache_off_steps_always_run_and_their_unchanged_output_feeds_reuse(
    store_path: str,
) -> None:
    ns = notebook()
    manifest = DIAMOND.replace("pipeline:", "agents:\n  - id: load\n    cache: false\npipeline:")
    fluxnb.run(manifest, ns, store=store_path, cache=True)
    again = fluxnb.run(manifest, ns, store=store_path, cache=True)
    assert ran(again) == {"load"}  # the rest is reused: load's output is the same
    assert again.cache is not None and again.cache["load"].reason == "cache: off"


def test_cache_version_forces_a_rerun(store_path: str) -> None:
    ns = notebook()
    fluxnb.run(DIAMOND, ns, store=store_path, cache=True)
    bumped = DIAMOND.replace(
        "pipeline:", "agents:\n  - id: report\n    cache_version: 2\npipeline:"
    )
    again = fluxnb.run(bumped, ns, store=store_path, cache=True)
    assert ran(again) == {"report"}
    assert again.cache is not None and again.cache["report"].reason == "cache_version None → 2"


def test_caching_is_off_unless_asked_and_router_cache_turns_it_on(store_path: str) -> None:
    ns = notebook()
    fluxnb.run(DIAMOND, ns, store=store_path)
    plain = fluxnb.run(DIAMOND, ns, store=store_path)
    assert plain.cache is None and ran(plain) == set(plain.steps)
    on = DIAMOND.replace("name: diamond", "name: diamond\nrouter: {cache: true}")
    fluxnb.run(on, ns, store=store_path)
    assert ran(fluxnb.run(on, ns, store=store_path)) == set()
    assert ran(fluxnb.run(on, ns, store=store_path, cache=False)) == set(plain.steps)


def test_cache_needs_a_store() -> None:
    with pytest.raises(fluxnb.RunError) as err:
        fluxnb.run(DIAMOND, notebook(), store=None, cache=True)
    assert "needs a store" in str(err.value)


def test_decisions_show_in_explain_html_and_the_view(store_path: str) -> None:
    ns = notebook()
    fluxnb.run(DIAMOND, ns, store=store_path, cache=True)
    define("def report(join):\n    return str(join)\n", ns)
    result = fluxnb.run(DIAMOND, ns, store=store_path, cache=True)
    text = result.explain()
    assert "5 of 6 steps reused" in text and "code changed: report()" in text
    page = result._repr_html_()
    assert "why (cache)" in page and "code changed: report()" in page and "cached" in page
    view = fluxnb.store(store_path).sql(
        "SELECT step, decision, reason FROM cache_decisions WHERE run_id = $r", {"r": result.run_id}
    )
    assert dict(zip(view.step, view.decision, strict=True))["report"] == "miss"
    assert set(view.decision) == {"hit", "miss"}
    svg = fluxnb.timeline(result, store=store_path).to_svg()
    assert ">cached</text>" in svg  # its own colour in the legend
    with fluxnb.session(role="viewer", namespace="elsewhere"):  # another namespace sees none
        assert fluxnb.store(store_path).sql("SELECT * FROM cache_decisions").empty


def test_replay_and_diff_treat_cached_steps_as_their_outputs(store_path: str) -> None:
    ns = notebook()
    first = fluxnb.run(DIAMOND, ns, store=store_path, cache=True)
    second = fluxnb.run(DIAMOND, ns, store=store_path, cache=True)
    assert cached(second) == set(second.steps)
    report = fluxnb.replay(second.run_id, ns, store=store_path)
    assert report.identical  # every step re-executed: the reused outputs were right
    d = fluxnb.diff(first.run_id, second.run_id, store=store_path)
    assert d.changed == [] and set(d.steps.status_b) == {"cached"}


def test_resume_continues_after_cached_steps(store_path: str) -> None:
    ns = notebook()
    fluxnb.run(DIAMOND, ns, store=store_path, cache=True)
    define("def report(join):\n    raise ValueError('not yet')\n", ns)
    failed = fluxnb.run(DIAMOND, ns, store=store_path, cache=True)
    assert not failed.ok and cached(failed) == {"load", "clean", "left", "right", "join"}
    define("def report(join):\n    return 'fixed'\n", ns)
    resumed = fluxnb.resume(failed.run_id, ns, store=store_path)
    assert resumed.ok and resumed["report"] == "fixed"


def test_cache_prune_keeps_the_budget_and_a_pruned_output_runs_again(
    store_path: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fluxnb.cli import main

    monkeypatch.setattr(_outputs, "CAP", 100)
    ns = notebook("def big():\n    return list(range(300))\n")
    manifest = "name: prune\npipeline:\n  - step: big\n"
    fluxnb.run(manifest, ns, store=store_path, cache=True)
    assert list(Path(store_path + ".outputs").iterdir())
    assert main(["cache", "prune", "--store", store_path, "--budget", "0"]) == 0
    assert "removed 1 file" in capsys.readouterr().out
    assert main(["cache", "prune", "--store", store_path, "--budget", "lots"]) == 2
    assert "is not a size" in capsys.readouterr().err
    assert not list(Path(store_path + ".outputs").iterdir())
    again = fluxnb.run(manifest, ns, store=store_path, cache=True)
    assert ran(again) == {"big"}
    assert again.cache is not None and "pruned" in again.cache["big"].reason
    report = fluxnb.store(store_path).prune_cache(everything=True)  # from Python, all of it
    assert report.removed == 1 and report.forgotten == 2 and report.kept == 0
    assert ran(fluxnb.run(manifest, ns, store=store_path, cache=True)) == {"big"}


def test_cache_settings_in_a_manifest_are_checked_and_round_trip() -> None:
    with pytest.raises(fluxnb.ManifestError) as err:
        fluxnb.load("pipeline:\n  - step: a\nagents:\n  - id: a\n    cache: maybe\n")
    (problem,) = err.value.problems
    assert problem.line == 5 and problem.path == "agents[0].cache"
    wf = fluxnb.load(
        "name: t\nrouter: {cache: refresh}\npipeline:\n  - step: a\n"
        "agents:\n  - id: a\n    cache: false\n    cache_version: 3\n    cache_inputs: x/*.csv\n"
    )
    step = wf.steps["a"]
    assert (wf.router.cache, step.cache, step.cache_version, step.cache_inputs) == (
        "refresh",
        "off",
        "3",
        ("x/*.csv",),
    )
    back = fluxnb.load(wf.to_yaml())
    assert back.steps["a"] == step and back.router.cache == "refresh"


def test_mutual_recursion_in_helpers_is_followed_once() -> None:
    from fluxnb.engine._cache_key import code_versions

    ns = define(
        """
def even(n):
    return n == 0 or odd(n - 1)

def odd(n):
    return n != 0 and even(n - 1)

def step():
    return even(4)
""",
        {"__name__": "notebook"},
    )
    own, calls, _ = code_versions(ns["step"])
    assert set(calls) == {"even()", "odd()"} and own not in calls.values()


def test_a_store_missing_a_lower_migration_gets_it(store_path: str) -> None:
    """Migrations are numbered per feature and built in parallel: a store that has a
    higher one but not the caching one (10) gets it when opened, not skipped."""
    from fluxnb.store import Store
    from fluxnb.store._schema import MIGRATIONS

    st = Store(store_path)
    with st.connect() as con:
        con.execute("DROP VIEW cache_decisions")
        con.execute("DROP TABLE cache_entries")
        con.execute("DELETE FROM fluxnb_schema WHERE version = 10")
    assert max(m.version for m in MIGRATIONS) > 10
    with Store(store_path).connect() as con:
        versions = [v for (v,) in con.execute("SELECT version FROM fluxnb_schema").fetchall()]
        assert con.execute("SELECT count(*) FROM cache_decisions").fetchall() == [(0,)]
    assert versions.count(10) == 1


def test_fluxroute_cache_in_a_real_ipython_shell(tmp_path: Path) -> None:
    """Functions defined in IPython cells (``__main__``, source in linecache): a comment
    edit reuses everything, a real edit re-runs that step and what it feeds."""
    from .conftest import shared_shell

    ip = shared_shell()
    ip.run_line_magic("load_ext", "fluxnb")
    store = str(tmp_path / "nb.duckdb")
    manifest = "pipeline:\n  - step: nums\n  - step: total\n    depends_on: nums\n"
    ip.run_cell("def nums():\n    return [1, 2, 3]\ndef total(nums):\n    return sum(nums)\n")
    first = ip.run_cell_magic("fluxroute", f"cachedemo --cache --store {store}", manifest)
    assert first.ok and first["total"] == 6
    ip.run_cell("def nums():\n    # only a comment is new\n    return [1, 2, 3]\n")
    again = ip.run_cell_magic("fluxroute", f"cachedemo --cache --store {store}", manifest)
    assert cached(again) == {"nums", "total"}
    ip.run_cell("def nums():\n    return [1, 2, 3, 4]\n")
    edited = ip.run_cell_magic("fluxroute", f"cachedemo --cache --store {store}", manifest)
    assert ran(edited) == {"nums", "total"} and edited["total"] == 10
    assert edited.cache is not None and edited.cache["nums"].reason == "code changed: nums()"


def test_the_cache_benchmark_runs_at_small_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "cache.py"
    spec = importlib.util.spec_from_file_location("fluxnb_bench_cache", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    argv = ["--steps", "3", "--step-seconds", "0", "--noop-steps", "20", "--repeat", "1"]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    assert "1 step called" in out and "per step inside the cache" in out


def test_a_cached_run_on_dask_sends_only_the_steps_that_must_run(store_path: str) -> None:
    pytest.importorskip("distributed", reason="install fluxnb[dask] to test the Dask executor")
    ns = notebook()
    first = fluxnb.run(DIAMOND, ns, store=store_path, cache=True, executor="dask")
    assert first.ok and ran(first) == set(first.steps)
    define("def report(join):\n    return 'on dask: ' + str(join['left'])\n", ns)
    again = fluxnb.run(DIAMOND, ns, store=store_path, cache=True, executor="dask")
    assert ran(again) == {"report"} and again["report"] == "on dask: 20"
    rows = fluxnb.traces(again.run_id, store=store_path)
    where = dict(zip(rows.step, rows.executor, strict=True))
    assert where["report"] == "dask" and where["load"] is None  # reused: sent nowhere


def test_values_the_code_reads_join_the_key(store_path: str) -> None:
    """Same code, different behaviour: a scalar global a cell sets, a closure's value, a
    partial's arguments. Each change re-runs the step (never a stale reuse) and says what."""
    ns = notebook(
        """
import functools

LIMIT = 3

def make(factor):
    def scaled(load):
        return [x * factor for x in load]
    return scaled

def load():
    return [x for x in range(10) if x < LIMIT]

def power(load, exponent):
    return [x ** exponent for x in load]
"""
    )
    ns["scaled"] = ns["make"](2)
    ns["cubed"] = ns["functools"].partial(ns["power"], exponent=3)
    manifest = """
name: values
pipeline:
  - step: load
  - step: scaled
    depends_on: [load]
  - step: cubed
    depends_on: [load]
"""
    fluxnb.run(manifest, ns, store=store_path, cache=True)
    ns["LIMIT"] = 4
    r = fluxnb.run(manifest, ns, store=store_path, cache=True)
    assert ran(r) == {"load", "scaled", "cubed"} and r["load"] == [0, 1, 2, 3]
    assert r.cache is not None and r.cache["load"].reason == "global LIMIT 3 → 4"
    ns["scaled"] = ns["make"](5)
    r = fluxnb.run(manifest, ns, store=store_path, cache=True)
    assert ran(r) == {"scaled"} and r["scaled"] == [0, 5, 10, 15]
    assert r.cache is not None and r.cache["scaled"].reason.startswith("closure factor")
    ns["cubed"] = ns["functools"].partial(ns["power"], exponent=2)
    r = fluxnb.run(manifest, ns, store=store_path, cache=True)
    assert ran(r) == {"cubed"} and r["cubed"] == [0, 1, 4, 9]


def test_asking_to_cache_a_net_or_a_stream_warns_and_runs_it(store_path: str) -> None:
    net = (
        "name: ok\nnet:\n  places: {i: 1, o: 0}\n  transitions:\n"
        "    - {id: go, inputs: [i], outputs: [o]}\n  final: {o: 1}\n"
    )
    with pytest.warns(RuntimeWarning, match="a net is not cached"):
        assert fluxnb.run(net, {}, store=store_path, cache=True).ok
    wf = fluxnb.Workflow("streams")

    @wf.step
    async def numbers():  # type: ignore[no-untyped-def]
        for i in range(3):
            yield i

    wf.add("double", lambda numbers: numbers * 2)
    with pytest.warns(RuntimeWarning, match="streaming steps is not cached"):
        result = fluxnb.run(wf, store=store_path, cache=True)
    assert result.ok and result["double"] == [0, 2, 4]


BASE = "def f(x, y=2):\n    z = x * y\n    return z + 1\n"
SAME = [
    "# a comment above\ndef f(x, y=2):\n    z = x * y  # why\n    return z + 1\n",
    'def f(x, y=2):\n    """Docs."""\n    z = x * y\n    return z + 1\n',
    "def f(x, y=2):\n    '''Other\n    docs.'''\n\n\n    z = x*y\n    return (z + 1)\n",
    "\n\n\n\ndef f(x,\n      y=2):\n    z = x * y\n    return z + 1\n",
]
DIFFERENT = [
    "def f(x, y=2):\n    z = x * y\n    return z + 2\n",
    "def f(x, y=3):\n    z = x * y\n    return z + 1\n",
    "def f(x, y=2):\n    z = x + y\n    return z + 1\n",
    "def f(x, y=2):\n    z = x * y\n    print(z)\n    return z + 1\n",
    "def f(x, y=2):\n    z = x * y\n    return z + 1 if x else 0\n",
]


@pytest.mark.parametrize("source", SAME)
def test_layout_comments_and_docstrings_keep_the_code_version(source: str) -> None:
    from fluxnb.engine._cache_key import own_version

    base = own_version(notebook(BASE)["f"])[0]
    assert own_version(notebook(source)["f"])[0] == base


@pytest.mark.parametrize("source", DIFFERENT)
def test_any_change_to_what_runs_changes_the_code_version(source: str) -> None:
    from fluxnb.engine._cache_key import own_version

    base = own_version(notebook(BASE)["f"])[0]
    assert own_version(notebook(source)["f"])[0] != base


def test_without_source_the_bytecode_still_ignores_docstrings_and_lines() -> None:
    """A function whose source cannot be read (built by exec of a string, no linecache
    entry) falls back to its bytecode: docstrings and line numbers still do not count."""
    from fluxnb.engine._cache_key import own_version

    def built(text: str) -> Any:
        ns: dict[str, Any] = {}
        exec(compile(text, "<no source>", "exec"), ns)
        return ns["f"]

    base = own_version(built(BASE))[0]
    assert own_version(built(SAME[1]))[0] == base
    assert own_version(built("\n\n" + BASE))[0] == base
    assert own_version(built(DIFFERENT[0]))[0] != base


def test_fluxnb_run_cache_reuses_and_says_why(
    tmp_path: Path, store_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from fluxnb.cli import main

    (tmp_path / "steps.py").write_text(
        "def load():\n    return [1, 2, 3]\n\ndef total(load):\n    return sum(load)\n"
    )
    flow = tmp_path / "flow.yaml"
    flow.write_text("name: cli\npipeline:\n  - step: load\n  - step: total\n    depends_on: load\n")

    def run(*extra: str) -> tuple[int, str, str]:
        args = ["run", str(flow), "--import", str(tmp_path / "steps.py"), "--store", store_path]
        code = main([*args, *extra])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = run("--cache")
    assert code == 0 and "never recorded before" in out
    code, out, _ = run("--cache", "--json")
    data = json.loads(out)
    assert code == 0 and {d["decision"] for d in data["cache"].values()} == {"hit"}
    assert {s["status"] for s in data["steps"]} == {"cached"}
    code, out, err = run("--cache", "--progress")  # the live line counts cached steps apart
    assert code == 0 and "[2/2] 2 cached" in err and "2 of 2 steps reused" in out
    code, _, err = run("--cache", "--no-store")
    assert code == 2 and "needs a store" in err and "Traceback" not in err


class Scale:
    """A callable object (a module-level class: pickled by reference, as a notebook's are)."""

    def __init__(self, factor: int) -> None:
        self.factor = factor

    def __call__(self, load: list[int]) -> list[int]:
        return [x * self.factor for x in load]


def test_a_builtin_or_callable_object_as_a_step_is_cached_by_its_state(store_path: str) -> None:
    ns: dict[str, Any] = {"load": _three, "wrap": dict, "scale": Scale(2)}
    manifest = """
name: objects
pipeline:
  - step: load
  - step: wrap
  - step: scale
    depends_on: [load]
"""
    first = fluxnb.run(manifest, ns, store=store_path, cache=True)
    assert first.ok and first["wrap"] == {}  # a builtin as a step (no source, no code)
    assert ran(fluxnb.run(manifest, ns, store=store_path, cache=True)) == set()
    ns["scale"] = Scale(3)
    r = fluxnb.run(manifest, ns, store=store_path, cache=True)
    assert ran(r) == {"scale"} and r["scale"] == [9, 3, 6]
    assert r.cache is not None and r.cache["scale"].reason.startswith("callable object Scale")


def _three() -> list[int]:
    return [3, 1, 2]


def test_a_failure_while_deciding_runs_the_step_and_never_fails_the_run(
    store_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fluxnb.engine import _cache

    def unreadable(pattern: str, root: str | None = None) -> str:
        raise PermissionError(13, "Permission denied", pattern)

    monkeypatch.setattr(_cache, "files_hash", unreadable)
    ns = notebook("def read():\n    return 1\n")
    manifest = "name: faults\nagents:\n  - id: read\n    cache_inputs: [x.csv]\npipeline:\n  - step: read\n"
    result = fluxnb.run(manifest, ns, store=store_path, cache=True)
    assert result.ok and ran(result) == {"read"}
    assert result.cache is not None and result.cache["read"].decision == "off"
    assert "PermissionError" in result.cache["read"].reason
