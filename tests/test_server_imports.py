"""What a manifest's callables may be imported from (issue #17, findings 1 and 2 of
tests/test_server_attacks.py): ``c.FluxnbServer.allowed_modules``, checked before anything
is imported, and imports that fail in any way (SystemExit too) answered 422, never a 500
or the end of the server. And the bounded SQL of POST /sql (finding 3)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from fluxnb._exceptions import QueryError
from fluxnb.spec._resolve import ImportPolicy, allowed_imports, import_reference
from tests.server_api import Client, server_config

pytest_plugins = ["pytest_jupyter.jupyter_server"]

SETTING = "c.FluxnbServer.allowed_modules"


def _one_step(name: str, ref: str) -> str:
    return f'name: {name}\nagents:\n  - {{id: a, run: "{ref}"}}\npipeline:\n  - step: a\n'


# ---------------------------------------------------------------------- the policy itself
@pytest.mark.parametrize(
    ("ref", "why"),
    [
        ("subprocess:getoutput", "subprocess"),  # a module not listed
        ("tests.server_steps:os.system", "os"),  # reached through an allowed module
        ("tests.test_server_imports:import_reference", "fluxnb"),  # imported: not its own
        ("tests.server_steps:noop.__globals__", "__globals__"),  # dunders are refused
    ],
)
def test_a_policy_refuses_what_it_does_not_list(ref: str, why: str) -> None:
    with allowed_imports(ImportPolicy(("tests",), SETTING)), pytest.raises(LookupError) as e:
        import_reference(ref)
    assert why in str(e.value)


def test_a_refused_module_is_never_imported() -> None:
    name = "tests.server_import_exits"
    sys.modules.pop(name, None)
    policy = ImportPolicy(("tests.server_steps",), SETTING)
    with allowed_imports(policy), pytest.raises(LookupError, match=SETTING):
        import_reference(f"{name}:main")
    assert name not in sys.modules


def test_a_main_module_is_refused_even_when_every_module_is_allowed() -> None:
    everything = ImportPolicy(("*",), SETTING)
    assert everything.allows("tests.server_steps") and everything.allows("json")
    assert not everything.allows("__main__") and not everything.allows("unittest.__main__")
    assert ImportPolicy(("tests",), SETTING).allows("tests.server_steps")
    assert not ImportPolicy(("tests",), SETTING).allows("testsuite")


@pytest.mark.parametrize("module", ["tests.server_import_exits", "tests.server_import_fails"])
def test_a_module_that_fails_on_import_is_a_lookup_error(module: str) -> None:
    with pytest.raises(LookupError, match=f"importing module '{module}' failed"):
        import_reference(f"{module}:main")  # SystemExit would end this process


def test_the_default_policy_follows_roles() -> None:
    from fluxnb.server import FluxnbServer

    single = FluxnbServer()
    assert single.import_policy().allowed == ("*",)  # one user, who runs kernels anyway
    multi = FluxnbServer(roles={"ann": "admin"})
    assert multi.import_policy().allowed == ()  # nothing until the admin lists modules
    listed = FluxnbServer(roles={"ann": "admin"}, allowed_modules=["mysteps"])
    assert listed.import_policy().allowed == ("mysteps",)


# ---------------------------------------------------------------------- over HTTP
@pytest.fixture
def jp_server_config(tmp_path: Path) -> dict[str, Any]:
    config = server_config(str(tmp_path / "plane" / "fluxnb.duckdb"))
    config["FluxnbServer"].update(
        allowed_modules=["tests.server_steps", "tests.server_import_fails"],
        sql_threads=1,  # one statement at a time, one waiting, a third is refused
        sql_timeout=1.0,
    )
    return config


@pytest.fixture
def api(jp_fetch: Any) -> Client:
    return Client(jp_fetch)


async def test_a_refused_module_is_a_located_422_that_names_the_setting(api: Client) -> None:
    for method, path, token in [
        ("PUT", "workflows/x", "O"),
        ("POST", "workflows/x/validate", "V"),
    ]:
        r = await api.call(method, path, token, {"manifest": _one_step("x", "json:dumps")})
        assert r.code == 422, (method, r.body)
        problem = r.error["problems"][0]
        assert problem["kind"] == "unresolved_callable" and problem["line"] == 3
        assert SETTING in problem["message"] and "'json'" in problem["message"]


async def test_a_module_that_raises_on_import_is_a_422(api: Client) -> None:
    manifest = _one_step("x", "tests.server_import_fails:main")
    r = await api.post("workflows/x/validate", "V", {"manifest": manifest})
    assert r.code == 422, r.body
    assert "ValueError" in r.error["problems"][0]["message"]
    assert (await api.get("healthz", None)).code == 200


# ---------------------------------------------------------------------- bounded SQL
def test_sealed_sql_is_interrupted_after_its_timeout(tmp_path: Path) -> None:
    import fluxnb

    store = fluxnb.Store(str(tmp_path / "s.duckdb"))
    slow = "SELECT count(*) FROM range(1000000) a, range(100000) b WHERE a.range + b.range = -1"
    start = time.monotonic()
    with pytest.raises(QueryError) as e:
        store.sealed_sql(slow, timeout=0.3)
    assert e.value.timeout == 0.3
    assert time.monotonic() - start < 5


def test_sealed_sql_computes_no_more_rows_than_its_limit(tmp_path: Path) -> None:
    import fluxnb

    store = fluxnb.Store(str(tmp_path / "s.duckdb"))
    # a trillion rows: only a streamed, stopped query answers at all
    frame = store.sealed_sql("SELECT range AS x FROM range(1000000000000)", limit=10)
    assert list(frame["x"]) == list(range(11))
    money = store.sealed_sql("SELECT 1.25::DECIMAL(10,2) AS m", limit=10)
    assert str(money["m"][0]) == "1.25"  # Decimal as without a limit
    assert store.sealed_sql("SELECT current_setting('threads') AS t", limit=5)["t"][0] <= 2


async def test_a_design_session_imports_nothing_the_policy_refuses(api: Client) -> None:
    name = "tests.server_import_exits"
    sys.modules.pop(name, None)
    r = await api.post("designs", "V", {"text": _one_step("x", f"{name}:main")})
    assert r.code == 201, r.body
    assert SETTING in json.dumps(r.json["state"]["issues"])  # drawn with the refusal
    assert name not in sys.modules
    await api.delete(f"designs/{r.json['id']}", "V")


def test_a_process_policy_holds_in_threads_that_copied_no_context() -> None:
    import threading

    from fluxnb.spec._resolve import set_process_import_policy

    seen: list[BaseException] = []

    def resolve() -> None:  # a new thread starts from an empty context
        try:
            import_reference("subprocess:getoutput")
        except LookupError as exc:
            seen.append(exc)

    set_process_import_policy(ImportPolicy(("tests",), SETTING))
    try:
        thread = threading.Thread(target=resolve)
        thread.start()
        thread.join()
    finally:
        set_process_import_policy(None)
    assert len(seen) == 1 and SETTING in str(seen[0])


async def test_slow_sql_is_stopped_and_too_many_at_once_are_refused(api: Client) -> None:
    slow = "SELECT count(*) FROM range(1000000) a, range(100000) b WHERE a.range + b.range = -1"
    start = time.monotonic()
    answers = await asyncio.gather(*[api.post("sql", "V", {"query": slow}) for _ in range(3)])
    kinds = sorted(a.error["kind"] for a in answers)
    assert kinds == ["QueryTimeout", "QueryTimeout", "Unavailable"], kinds
    assert time.monotonic() - start < 10
    assert (await api.post("sql", "V", {"query": "SELECT 1 AS x"})).json["rows"] == [{"x": 1}]


def test_a_module_attribute_that_raises_is_a_lookup_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "fluxnb_exiting_attr.py").write_text(
        "def __getattr__(name):\n    raise SystemExit(4)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(LookupError, match="SystemExit"):
        import_reference("fluxnb_exiting_attr:main")
