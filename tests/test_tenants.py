"""Sessions, roles, router.rbac, namespace isolation and the audit trail — through the
Python API, the magics and the CLI, on real DuckDB store files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import fluxnb
from fluxnb import PermissionDenied
from fluxnb._session import PERMISSIONS, Action, Role

from .conftest import FLUXNB, cli_env, shared_shell

CARD = """
rate_card:
  name: standard
  currency: USD
  effective_from: 2026-01-01
  prices:
    - unit: invocations
      price: "0.01"
"""


def wf_in(namespace: str | None = None, rbac: str = "") -> str:
    router = f"router:\n  namespace: {namespace}\n" if namespace else ""
    if rbac:
        router = (router or "router:\n") + f"  rbac:\n{rbac}"
    return f"name: job\n{router}pipeline:\n  - step: one\n  - step: two\n    depends_on: one\n"


NS = {"one": lambda: 1, "two": lambda one: one + 1}


def audit(store: str) -> list[dict]:
    with fluxnb.session(role="admin"):
        return fluxnb.sql("SELECT * FROM audit ORDER BY occurred_at", store=store).to_dict(
            "records"
        )


def test_roles_grant_what_the_docs_say() -> None:
    assert PERMISSIONS[Role.VIEWER] == {Action.READ, Action.VALIDATE}
    assert PERMISSIONS[Role.OPERATOR] == {
        Action.READ,
        Action.VALIDATE,
        Action.RUN,
        Action.REPLAY,
        Action.RESUME,
    }
    assert PERMISSIONS[Role.ADMIN] == set(Action)


def test_unconfigured_session_is_the_owner_and_environment_sets_it(monkeypatch) -> None:
    s = fluxnb.session()
    assert (s.role, s.tenant, s.namespace) == ("admin", "default", "default")
    monkeypatch.setenv("FLUXNB_ROLE", "viewer")
    monkeypatch.setenv("FLUXNB_NAMESPACE", "team-a")
    assert (fluxnb.session().role, fluxnb.session().namespace) == ("viewer", "team-a")
    monkeypatch.setenv("FLUXNB_ROLE", "root")
    with pytest.raises(fluxnb.FluxError, match="'root' is not a role"):
        fluxnb.session()


def test_names_are_validated() -> None:
    for bad in ("Team A", "-x", "x" * 70, "a/b", ""):
        with pytest.raises(fluxnb.FluxError, match="is not valid"):
            fluxnb.session(namespace=bad)
    with pytest.raises(fluxnb.ManifestError) as err:
        fluxnb.load("name: w\nrouter:\n  namespace: Bad Name\npipeline:\n  - step: a\n")
    assert err.value.path == "router.namespace"
    with pytest.raises(fluxnb.ManifestError) as err:
        fluxnb.load(
            "name: w\nrouter:\n  rbac:\n    run_roles: [operater]\npipeline:\n  - step: a\n"
        )
    assert err.value.problems[0].suggestion == "operator"
    with pytest.raises(fluxnb.FluxError, match="tenant name"):
        fluxnb.run(wf_in(), NS, store=None, tenant="ACME")


def test_a_session_narrows_but_never_widens() -> None:
    with fluxnb.session(role="operator", namespace="team-a"):
        with fluxnb.session(role="viewer") as s:
            assert s.role == "viewer" and s.namespace == "team-a"
            with pytest.raises(PermissionDenied, match="lower its role but not raise"):
                fluxnb.session(role="operator")
        assert fluxnb.session().role == "operator"  # restored on exit
        with pytest.raises(PermissionDenied, match="stays in its namespace 'team-a'"):
            fluxnb.session(namespace="team-b")
    assert fluxnb.session().role == "admin"


def test_viewer_cannot_run_and_the_denial_is_audited(store_path: str) -> None:
    with fluxnb.session(role="viewer"):
        with pytest.raises(PermissionDenied) as err:
            fluxnb.run(wf_in(), NS, store=store_path)
        with pytest.raises(PermissionError):  # the built-in kind catches it too
            fluxnb.run(wf_in(), NS, store=store_path)
    e = err.value
    assert (e.role, e.action, e.workflow) == ("viewer", "run", "job")
    assert e.allowed == ("operator", "admin")
    assert "role 'viewer' may not run workflow 'job'" in str(e)
    rows = audit(store_path)
    assert [(r["role"], r["action"], r["target"], r["outcome"]) for r in rows] == [
        ("viewer", "run", "job", "denied")
    ] * 2
    runs = fluxnb.sql("SELECT count(*) AS n FROM runs", store=store_path)
    assert runs["n"][0] == 0  # nothing ran, nothing half-written


def test_manifest_rbac_narrows_each_action(store_path: str) -> None:
    text = wf_in(rbac="    run_roles: [admin]\n    validate_roles: [admin]\n")
    with fluxnb.session(role="operator"):
        with pytest.raises(PermissionDenied, match=r"router\.rbac\.run_roles lists \['admin'\]"):
            fluxnb.run(text, NS, store=store_path)
        with pytest.raises(PermissionDenied, match="validate"):
            fluxnb.load(text)
    r = fluxnb.run(text, NS, store=store_path)  # admin may
    assert r.ok
    # replay is narrowed by replay_roles; operators may replay without it
    replayable = wf_in(rbac="    replay_roles: [admin]\n")
    rr = fluxnb.run(replayable, NS, store=store_path)
    with fluxnb.session(role="operator"):
        with pytest.raises(PermissionDenied, match="replay_roles"):
            fluxnb.replay(rr.run_id, NS, store=store_path)
        assert fluxnb.replay(r.run_id, NS, store=store_path).identical
    with fluxnb.session(role="viewer"), pytest.raises(PermissionDenied, match="may not replay"):
        fluxnb.replay(r.run_id, NS, store=store_path)


def test_resume_needs_operator_in_the_runs_namespace(store_path: str) -> None:
    calls = {"n": 0}

    def flaky(one: int) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("first time fails")
        return one + 1

    ns = {"one": lambda: 1, "two": flaky}
    with fluxnb.session(role="operator", namespace="team-a"):
        failed = fluxnb.run(wf_in(), ns, store=store_path)
        assert not failed.ok
        with fluxnb.session(role="viewer"), pytest.raises(PermissionDenied, match="resume"):
            fluxnb.resume(failed.run_id, ns, store=store_path)
    with (
        fluxnb.session(role="operator", namespace="team-b"),
        pytest.raises(fluxnb.ReplayError),  # team-b cannot even see the run
    ):
        fluxnb.resume(failed.run_id, ns, store=store_path)
    with fluxnb.session(role="operator", namespace="team-a"):
        assert fluxnb.resume(failed.run_id, ns, store=store_path).ok


def test_workflow_pinned_to_another_namespace_is_refused_to_non_admins(store_path: str) -> None:
    with fluxnb.session(role="operator", namespace="team-a"):
        with pytest.raises(PermissionDenied, match="belongs to namespace 'team-b'"):
            fluxnb.run(wf_in("team-b"), NS, store=store_path)
        ok = fluxnb.run(wf_in("team-a"), NS, store=store_path)
        plain = fluxnb.run(wf_in(), NS, store=store_path)  # no namespace: the session's
    rows = fluxnb.sql("SELECT run_id, namespace FROM runs", store=store_path)
    got = dict(zip(rows.run_id, rows.namespace, strict=True))
    assert got == {ok.run_id: "team-a", plain.run_id: "team-a"}
    assert fluxnb.run(wf_in("team-b"), NS, store=store_path).ok  # admin may


def _two_namespaces(store_path: str) -> dict[str, str]:
    """One run (with usage) in team-a and one in team-b, and invoices of both."""
    fluxnb.set_rate_card(CARD, store=store_path)
    ids = {}
    for ns_name in ("team-a", "team-b"):
        with fluxnb.session(role="operator", namespace=ns_name, tenant="acme"):
            ids[ns_name] = fluxnb.run(wf_in(), NS, store=store_path, tenant="acme").run_id
    return ids


def test_a_viewer_of_a_cannot_read_b_through_any_api(store_path: str) -> None:
    ids = _two_namespaces(store_path)
    a, b = ids["team-a"], ids["team-b"]
    with fluxnb.session(role="viewer", namespace="team-a"):
        assert set(fluxnb.sql("SELECT run_id FROM runs", store=store_path).run_id) == {a}
        assert set(fluxnb.sql("SELECT DISTINCT run_id FROM events", store=store_path).run_id) == {a}
        assert fluxnb.traces(b, store=store_path).empty
        assert set(fluxnb.traces(store=store_path).run_id) == {a}
        assert set(fluxnb.store(store_path).runs().run_id) == {a}
        used = fluxnb.usage("acme", store=store_path)
        assert set(used.namespace) == {"team-a"} and set(used.run_id) == {a}
        assert fluxnb.sql("SELECT * FROM sla_runs", store=store_path).run_id.tolist() == [a]
        steps = fluxnb.metrics.sla("steps", store=store_path)
        assert steps.executions.sum() == 2
        assert 'namespace="team-b"' not in fluxnb.metrics.prometheus_text(store=store_path)
        month = used.occurred_at[0].strftime("%Y-%m")
        inv = fluxnb.invoice("acme", month, store=store_path)
        assert inv.namespace == "team-a"
        assert {ln.quantity for ln in inv.lines if ln.unit == "invocations"} == {2}
        with pytest.raises(PermissionDenied, match="read every namespace"):
            fluxnb.invoice("acme", "2026-11", namespace="team-b", store=store_path)
        with pytest.raises(fluxnb.ReplayError, match="no run"):
            fluxnb.replay(b, NS, store=store_path)
        # not by qualifying names, system tables or files either: the query never sees them
        for sneaky in (
            "SELECT * FROM fluxnb_store.main.events",
            "SELECT * FROM duckdb_tables() WHERE table_name = 'events' AND estimated_size > 2",
            f"SELECT * FROM read_parquet('{store_path}')",
            f"ATTACH '{store_path}' AS raw (READ_ONLY); SELECT * FROM raw.main.runs",
            f"SELECT * FROM read_csv('{store_path}')",
            "SET enable_external_access = true",
            f"COPY (SELECT 1) TO '{store_path}.leak.csv'",
            "SELECT * FROM ids",  # a Python variable in some frame: no replacement scans
        ):
            try:
                out = fluxnb.sql(sneaky, store=store_path)
            except fluxnb.QueryError:
                continue
            assert b not in out.to_string()
        with pytest.raises(fluxnb.QueryError):  # and it cannot write
            fluxnb.sql("DELETE FROM runs", store=store_path)
            fluxnb.sql("SELECT 1 FROM no_such_table", store=store_path)
    with fluxnb.session(role="admin"):
        assert fluxnb.sql("SELECT count(*) AS n FROM runs", store=store_path).n[0] == 2


def test_importing_a_trace_is_running_it(store_path: str, tmp_path) -> None:
    """import_trace writes a run: a viewer may not, an operator only into its namespace."""
    with fluxnb.session(role="operator", namespace="team-b"):
        b = fluxnb.run(wf_in(), NS, store=store_path).run_id
        path = fluxnb.export_trace(b, tmp_path / "b.json", store=store_path)
    other = str(tmp_path / "other.duckdb")
    with fluxnb.session(role="viewer", namespace="team-b"), pytest.raises(PermissionDenied):
        fluxnb.import_trace(path, store=other)
    with fluxnb.session(role="operator", namespace="team-a"):
        with pytest.raises(PermissionDenied, match="namespace 'team-b'"):
            fluxnb.import_trace(path, store=other)
        # the run is in the store, in a namespace this session cannot see: still refused
        with pytest.raises(PermissionDenied):
            fluxnb.import_trace(path, store=store_path)
    with fluxnb.session(role="operator", namespace="team-b"):
        assert fluxnb.import_trace(path, store=other) == b
        with pytest.raises(fluxnb.ReplayError, match="already in the store"):
            fluxnb.import_trace(path, store=other)
    assert [r["outcome"] for r in audit(other)].count("denied") == 2


def test_privileged_actions_are_audited_and_refused_to_others(store_path: str) -> None:
    fluxnb.set_rate_card(CARD, store=store_path)
    fluxnb.create_tenant("acme", display_name="ACME Corp", store=store_path)
    fluxnb.correct_usage("acme", "invocations", -3, reason="refund", store=store_path)
    with fluxnb.session(role="operator"):
        for call in (
            lambda: fluxnb.set_rate_card(CARD, store=store_path),
            lambda: fluxnb.create_tenant("other", store=store_path),
            lambda: fluxnb.correct_usage("acme", "invocations", 1, reason="x", store=store_path),
            lambda: fluxnb.issue_invoice("acme", "2026-10", store=store_path),
        ):
            with pytest.raises(PermissionDenied):
                call()
    rows = audit(store_path)
    assert [(r["role"], r["action"], r["outcome"]) for r in rows] == [
        ("admin", "set rate cards", "allowed"),
        ("admin", "manage tenants", "allowed"),
        ("admin", "correct usage", "allowed"),
        ("operator", "set rate cards", "denied"),
        ("operator", "manage tenants", "denied"),
        ("operator", "correct usage", "denied"),
        ("operator", "issue invoices", "denied"),
    ]
    assert "refund" in rows[2]["detail"]
    t = fluxnb.tenants(store=store_path)
    assert t.tenant.tolist() == ["acme"] and t.display_name[0] == "ACME Corp"


def test_cli_applies_the_same_rules(store_path: str, tmp_path: Path) -> None:
    manifest = tmp_path / "job.yaml"
    manifest.write_text(wf_in())
    steps = tmp_path / "steps.py"
    steps.write_text("def one():\n    return 1\n\ndef two(one):\n    return one + 1\n")
    base = [*FLUXNB, "run", str(manifest), "--import", str(steps), "--store", store_path]
    env = cli_env()
    denied = subprocess.run([*base, "--role", "viewer"], capture_output=True, text=True, env=env)
    assert denied.returncode == 4, denied.stderr
    assert "role 'viewer' may not run workflow 'job'" in denied.stderr
    env_viewer = {**env, "FLUXNB_ROLE": "viewer"}
    assert subprocess.run(base, capture_output=True, env=env_viewer).returncode == 4
    ran = subprocess.run(
        [*base, "--role", "operator", "--namespace", "team-a", "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert ran.returncode == 0, ran.stderr
    # a viewer of team-b sees nothing of team-a; a viewer cannot raise itself with --role
    env_b = {**env, "FLUXNB_ROLE": "viewer", "FLUXNB_NAMESPACE": "team-b"}
    q = [*FLUXNB, "sql", "SELECT count(*) AS n FROM runs", "--store", store_path, "--json"]
    out = subprocess.run(q, capture_output=True, text=True, env=env_b)
    assert out.returncode == 0 and json.loads(out.stdout) == [{"n": 0}]
    up = subprocess.run([*q, "--role", "admin"], capture_output=True, text=True, env=env_b)
    assert up.returncode == 4 and "lower its role but not raise it" in up.stderr
    card = tmp_path / "card.yaml"
    card.write_text(CARD)
    rates = [*FLUXNB, "rates", "set", str(card), "--store", store_path]
    assert (
        subprocess.run([*rates, "--role", "operator"], capture_output=True, env=env).returncode == 4
    )
    done = subprocess.run(rates, capture_output=True, text=True, env=env)
    assert done.returncode == 0 and "*:standard:v1" in done.stdout
    assert [r["outcome"] for r in audit(store_path)] == [
        "denied",
        "denied",
        "denied",
        "denied",
        "allowed",
    ]


def test_magics_apply_the_same_rules(store_path: str) -> None:
    ip = shared_shell()
    ip.run_line_magic("load_ext", "fluxnb")
    ip.user_ns.update(NS)
    from IPython.core.error import UsageError

    ip.run_line_magic("fluxsession", "--role operator --namespace team-a")
    try:
        with pytest.raises(UsageError, match="belongs to namespace 'team-b'"):
            ip.run_cell_magic("fluxroute", f"--store {store_path} --namespace team-b", wf_in())
        r = ip.run_cell_magic("fluxroute", f"--store {store_path} --no-progress", wf_in())
        assert r.ok
        ip.run_line_magic("fluxsession", "--role viewer")
        with pytest.raises(UsageError, match="may not run"):
            ip.run_cell_magic("fluxroute", f"--store {store_path} --no-progress", wf_in())
        frame = ip.run_cell_magic("fluxsql", f"--store {store_path}", "SELECT namespace FROM runs")
        assert frame.namespace.tolist() == ["team-a"]
        with pytest.raises(UsageError, match="stays in its namespace"):
            ip.run_line_magic("fluxsession", "--namespace team-b")
    finally:
        from fluxnb import _session

        _session._acting.session = None
    assert [r["outcome"] for r in audit(store_path)] == ["denied", "denied"]
