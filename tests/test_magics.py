"""The magics, driven through a real IPython InteractiveShell."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

import fluxnb

from .conftest import shared_shell


@pytest.fixture(scope="module")
def ip() -> Any:
    shell = shared_shell()
    shell.run_line_magic("load_ext", "fluxnb")
    return shell


@pytest.fixture
def store(tmp_path: Path, ip: Any) -> str:
    path = str(tmp_path / "nb.duckdb")
    ip.user_ns["STORE"] = path
    return path


CELL_FUNCS = """
import asyncio
def fetch():
    return [3, 1, 2]
async def score(fetch, threshold):
    await asyncio.sleep(0.01)
    return [x for x in fetch if x >= threshold]
def report(score):
    return {"n": len(score)}
"""

MANIFEST = """pipeline:
  - step: fetch
  - step: score
    depends_on: fetch
    with: {threshold: {{limit}}}
  - step: report
    depends_on: score
"""


def test_fluxroute_runs_cell_functions(ip: Any, store: str) -> None:
    ip.run_cell(CELL_FUNCS)
    ip.user_ns["limit"] = 2
    result = ip.run_cell_magic("fluxroute", f"demo -o res --store {store}", MANIFEST)
    assert result.ok and result.workflow == "demo"
    assert ip.user_ns["res"] is result
    assert result["report"] == {"n": 2}
    assert "<table>" in result._repr_html_()
    rows = fluxnb.traces(result.run_id, store=store)
    assert list(rows["step"]) == ["fetch", "score", "report"]


def test_param_wins_over_notebook_variables(ip: Any, store: str) -> None:
    ip.run_cell(CELL_FUNCS)
    ip.user_ns["limit"] = 2
    result = ip.run_cell_magic("fluxroute", f"--store {store} --param limit=3", MANIFEST)
    assert result["report"] == {"n": 1}


def test_unknown_interpolation_points_at_the_cell_line(ip: Any) -> None:
    ip.run_cell(CELL_FUNCS)
    ip.user_ns.pop("nothere", None)
    with pytest.raises(UsageError, match=r"cell line 6: \{\{nothere\}\}"):
        ip.run_cell_magic("fluxroute", "", MANIFEST.replace("{{limit}}", "{{nothere}}"))


def test_manifest_errors_are_short_and_point_at_cell_lines(ip: Any) -> None:
    ip.run_cell(CELL_FUNCS)
    bad = "pipeline:\n  - step: fetch\n  - step: score\n    depends_on: fech\n"
    with pytest.raises(UsageError) as info:
        ip.run_cell_magic("fluxroute", "--no-progress", bad)
    text = str(info.value)
    assert "cell line 5" in text and "did you mean 'fetch'" in text
    assert "    depends_on: fech" in text and "^" in text
    assert "Traceback" not in text
    with pytest.raises(UsageError, match="no callable named 'nope'"):
        ip.run_cell_magic("fluxroute", "", "pipeline:\n  - step: nope\n")


def test_validate_only(ip: Any) -> None:
    ip.run_cell(CELL_FUNCS)
    ip.user_ns["limit"] = 1
    with capture_output() as out:
        assert ip.run_cell_magic("fluxroute", "--validate", MANIFEST) is None
    assert "ok: workflow" in out.stdout and "fetch → score → report" in out.stdout


def test_a_failing_step_shows_a_banner_with_the_debug_command(ip: Any, store: str) -> None:
    ip.run_cell(
        "def fetch():\n    return 1\ndef broken(fetch):\n    raise ValueError('no column x')\n"
    )
    with capture_output() as out:
        result = ip.run_cell_magic(
            "fluxroute",
            f"--store {store}",
            "pipeline:\n  - step: fetch\n  - step: broken\n    depends_on: fetch\n",
        )
    assert result.status is fluxnb.RunStatus.FAILED
    shown = " ".join(o.data.get("text/plain", "") for o in out.outputs)
    assert "no column x" in shown and ".debug('broken', globals())" in shown
    assert "%fluxdebug" in shown and "attempt 1" in shown
    fn = ip.run_line_magic("fluxdebug", f"{result.run_id} broken --store {store}")
    assert callable(ip.user_ns["fetch"])  # the function named like the input is kept
    assert ip.user_ns["broken_inputs"] == {"fetch": 1}
    with pytest.raises(ValueError, match="no column x"):
        fn(**ip.user_ns["broken_inputs"])


def test_fluxdebug_names_the_variables_it_made_and_the_inputs_it_left_alone(
    ip: Any, store: str
) -> None:
    ip.run_cell(
        "import json\n"
        "def fetch():\n    return 1\n"
        "def make_rows():\n    return [1, 2]\n"
        "def make_json():\n    return {'k': 1}\n"
        "def merge(fetch, rows, json, limit):\n    raise ValueError('bad merge')\n"
    )
    ip.user_ns["rows"] = "a notebook value"  # data: overwritten by the input
    manifest = (
        "agents:\n  - id: rows\n    run: make_rows\n  - id: json\n    run: make_json\n"
        "pipeline:\n  - step: fetch\n  - step: rows\n  - step: json\n"
        "  - step: merge\n    depends_on: [fetch, rows, json]\n    with: {limit: 3}\n"
    )
    result = ip.run_cell_magic("fluxroute", f"--store {store} --no-progress", manifest)
    assert result.status is fluxnb.RunStatus.FAILED
    with capture_output() as out:
        fn = ip.run_line_magic("fluxdebug", f"{result.run_id} merge --store {store}")
    text = out.stdout
    assert "now variables: rows, limit" in text
    assert (
        "left alone: fetch (the name holds the function 'fetch'); it is merge_inputs['fetch']"
        in text
    )
    assert "left alone: json (the name holds the module 'json'); it is merge_inputs['json']" in text
    assert "call it again with: merge(**merge_inputs)" in text
    assert ip.user_ns["rows"] == [1, 2] and ip.user_ns["limit"] == 3
    assert callable(ip.user_ns["fetch"]) and ip.user_ns["json"].__name__ == "json"
    assert ip.user_ns["merge_inputs"] == {"fetch": 1, "rows": [1, 2], "json": {"k": 1}, "limit": 3}
    with pytest.raises(ValueError, match="bad merge"):
        fn(**ip.user_ns["merge_inputs"])


def test_fluxsql_binds_variables_and_resists_injection(ip: Any, store: str) -> None:
    ip.run_cell(CELL_FUNCS)
    ip.user_ns["limit"] = 1
    res = ip.run_cell_magic("fluxroute", f"sqlwf --store {store}", MANIFEST)
    ip.user_ns["rid"] = res.run_id
    frame = ip.run_line_magic(
        "fluxsql", f"--store {store} SELECT step FROM events WHERE run_id = $rid ORDER BY seq"
    )
    assert list(frame["step"]) == ["fetch", "score", "report"]
    ip.user_ns["evil"] = "x'; DROP TABLE runs; --"
    frame = ip.run_cell_magic(
        "fluxsql", f"-o found --store {store}", "SELECT * FROM runs WHERE workflow = $evil"
    )
    assert frame.empty and ip.user_ns["found"] is frame
    assert len(fluxnb.sql("SELECT * FROM runs", store=store)) == 1  # still there
    literal = ip.run_line_magic("fluxsql", f"--store {store} SELECT '$5 cost' AS s")
    assert literal["s"][0] == "$5 cost"
    stats = ip.run_line_magic("fluxsql", f"--store {store} SELECT * FROM step_stats ORDER BY step")
    assert list(stats["step"]) == ["fetch", "report", "score"]
    assert {"p50_s", "p95_s", "p99_s", "failures"} <= set(stats.columns)
    with pytest.raises(UsageError, match=r"\$missing"):
        ip.run_line_magic("fluxsql", f"--store {store} SELECT $missing")
    with pytest.raises(UsageError, match="SQL error"):
        ip.run_line_magic("fluxsql", f"--store {store} SELEC 1")


def test_fluxsql_binds_attribute_chains(ip: Any, store: str) -> None:
    import numpy as np

    ip.run_cell(CELL_FUNCS)
    ip.user_ns["limit"] = 1
    res = ip.run_cell_magic("fluxroute", f"attrwf -o res --store {store} --no-progress", MANIFEST)
    q = "SELECT count(*) AS n, min(run_id) AS rid FROM events WHERE run_id = $res.run_id"
    frame = ip.run_line_magic("fluxsql", f"--store {store} {q}")
    assert frame["rid"][0] == res.run_id and frame["n"][0] == 3
    # a chain stops at a dict: DuckDB reads the STRUCT's field; $res itself is never bound
    ip.user_ns["cfg"] = {"wf": "attrwf"}
    ip.user_ns["res_run_id"] = "not-this-one"  # the chain's parameter must not take its name
    both = ip.run_cell_magic(
        "fluxsql",
        f"--store {store}",
        "SELECT $res.run_id AS a, $res_run_id AS b, $cfg.wf AS c, '$res.run_id' AS d",
    )
    assert list(both.iloc[0]) == [res.run_id, "not-this-one", "attrwf", "$res.run_id"]
    ip.user_ns["n"] = np.int64(3)  # DuckDB refuses NumPy scalars: the number is bound
    assert ip.run_line_magic("fluxsql", f"--store {store} SELECT $n + 1 AS m")["m"][0] == 4
    with pytest.raises(UsageError, match=r"\$res\.nope: a RunResult has no attribute 'nope'"):
        ip.run_line_magic("fluxsql", f"--store {store} SELECT $res.nope")
    with pytest.raises(UsageError, match=r"public attributes only"):
        ip.run_line_magic("fluxsql", f"--store {store} SELECT $res.__class__")
    with pytest.raises(UsageError, match=r"\$res\.to_frame is a method"):
        ip.run_line_magic("fluxsql", f"--store {store} SELECT $res.to_frame")


def test_fluxsql_names_a_value_sql_cannot_bind(ip: Any, store: str) -> None:
    ip.run_cell(CELL_FUNCS)
    ip.user_ns["limit"] = 1
    ip.run_cell_magic("fluxroute", f"-o res --store {store} --no-progress", MANIFEST)
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("fluxsql", f"--store {store} SELECT * FROM runs WHERE run_id = $res")
    text = str(info.value)
    assert "$res in the query is a RunResult (fluxnb.engine._result.RunResult)" in text
    assert "$res.run_id" in text and "Unable to transform" not in text
    ip.user_ns["ids"] = {"a", "b"}
    with pytest.raises(UsageError, match=r"\$ids in the query is a set"):
        ip.run_line_magic("fluxsql", f"--store {store} SELECT $ids")


def test_fluxtrace_draws_the_last_run(ip: Any, store: str) -> None:
    ip.run_cell(CELL_FUNCS)
    ip.user_ns["limit"] = 1
    ip.run_cell_magic("fluxroute", f"--store {store}", MANIFEST)
    svg = ip.run_line_magic("fluxtrace", "")._repr_svg_()
    assert svg.startswith("<svg") and svg.count("</title></rect>") == 3 and "score" in svg


def test_background_returns_a_handle(ip: Any, store: str) -> None:
    ip.run_cell("import asyncio\nasync def wait():\n    await asyncio.sleep(0.2)\n    return 'w'\n")
    handle = ip.run_cell_magic(
        "fluxroute", f"bg --background -o h --store {store}", "pipeline:\n  - step: wait\n"
    )
    assert ip.user_ns["h"] is handle and not handle.done()
    assert handle.result(timeout=10)["wait"] == "w"


def test_a_background_runs_badge_changes_when_it_ends(ip: Any, store: str) -> None:
    ip.run_cell("import asyncio\nasync def nap():\n    await asyncio.sleep(0.3)\n    return 1\n")
    with capture_output() as out:
        ip.run_cell(
            f"%%fluxroute napwf --background --no-progress -o h --store {store}\n"
            "pipeline:\n  - step: nap\n"
        )
        handle = ip.user_ns["h"]
        handle.result(timeout=10)
        for _ in range(100):  # the update comes from the run's thread, right after it ends
            if any(o.update for o in out.outputs):
                break
            time.sleep(0.01)
    first, *rest = out.outputs
    assert ">running<" in first.data["text/html"] and first.transient["display_id"]
    assert len(rest) == 1 and rest[0].update
    assert rest[0].transient["display_id"] == first.transient["display_id"]
    assert ">succeeded<" in rest[0].data["text/html"] and "running" not in rest[0].data["text/html"]


def test_rerunning_a_cell_cancels_its_run_in_flight(ip: Any, store: str) -> None:
    ip.run_cell("import asyncio\nasync def wait():\n    await asyncio.sleep(30)\n")
    first = ip.run_cell_magic(
        "fluxroute", f"same --background --store {store}", "pipeline:\n  - step: wait\n"
    )
    with capture_output() as out:
        second = ip.run_cell_magic(
            "fluxroute", f"same --background --store {store}", "pipeline:\n  - step: wait\n"
        )
    assert "cancelled run" in out.stdout
    assert first.result(timeout=10).status is fluxnb.RunStatus.CANCELLED
    second.cancel()
    assert second.result(timeout=10).status is fluxnb.RunStatus.CANCELLED


def test_magic_overhead_benchmark_runs() -> None:
    import subprocess
    import sys

    from .conftest import ROOT, cli_env

    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "magic_overhead.py")],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert "ratio" in out.stdout and "%%fluxroute" in out.stdout


def test_fluxsql_store_option_takes_a_variable(ip: Any, store: str) -> None:
    ip.run_cell(CELL_FUNCS)
    ip.user_ns["limit"] = 1
    ip.run_cell_magic("fluxroute", f"--store {store}", MANIFEST)
    frame = ip.run_cell_magic("fluxsql", "--store {STORE}", "SELECT count(*) AS n FROM runs")
    assert frame["n"][0] >= 1
    with pytest.raises(UsageError, match="names no notebook variable"):
        ip.run_line_magic("fluxsql", "--store {NOPE} SELECT 1")


def test_a_sync_steps_traceback_starts_in_user_code(ip: Any, store: str) -> None:
    ip.run_cell("def boom():\n    raise KeyError('k')\n")
    res = ip.run_cell_magic(
        "fluxroute", f"--store {store} --no-progress", "pipeline:\n  - step: boom\n"
    )
    tb = res.errors["boom"].traceback
    first_frame = tb.splitlines()[1]
    assert "concurrent" not in first_frame and "asyncio" not in first_frame
    assert "KeyError" in tb


def test_result_debug_defaults_to_the_notebook_namespace(ip: Any, store: str) -> None:
    ip.run_cell("def one():\n    return 1\ndef two(one):\n    raise RuntimeError('x')\n")
    res = ip.run_cell_magic(
        "fluxroute",
        f"--store {store} --no-progress",
        "pipeline:\n  - step: one\n  - step: two\n    depends_on: one\n",
    )
    ip.user_ns.pop("two_inputs", None)
    fn = res.debug("two")
    assert ip.user_ns["two_inputs"] == {"one": 1} and fn.__name__ == "two"
    report = fluxnb.replay(res.run_id, ip.user_ns, store=store)
    assert "<pre>" in report._repr_html_()


def test_fluxsql_store_option_takes_a_notebook_variable(
    ip: Any, store: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ip.user_ns["S"] = store
    assert ip.run_line_magic("fluxsql", "--store $S SELECT 41 + 1 AS n")["n"][0] == 42
    assert ip.run_line_magic("fluxsql", "--store {S} SELECT 1 AS n")["n"][0] == 1
    assert Path(store).exists()
    with pytest.raises(UsageError, match="names no notebook variable"):
        ip.run_line_magic("fluxsql", "--store $NOT_DEFINED_ANYWHERE SELECT 1")
    with pytest.raises(UsageError, match=r"whole \$name"):
        ip.run_line_magic("fluxsql", "--store $S/x.duckdb SELECT 1")
    assert sorted(p.name for p in tmp_path.iterdir() if "$" in p.name or "{" in p.name) == []


def test_fluxroute_refuses_yaml_bombs_and_tags_quickly(ip: Any) -> None:
    import time

    from .test_hostile_inputs import laughs

    for cell, expected in ((laughs(), "aliases"), ("pipeline: !!set {a, b}\n", "!!set")):
        t0 = time.perf_counter()
        with pytest.raises(UsageError, match=expected) as info:
            ip.run_cell_magic("fluxroute", "--validate", cell)
        assert time.perf_counter() - t0 < 1.0
        assert "Traceback" not in str(info.value)
