"""``fluxnb serve`` as a program, driven by ``fluxnb.remote`` and the CLI's ``--remote``:
the same verbs as the local API, the same result types, the CLI's exit codes."""

from __future__ import annotations

import json
import subprocess
import time
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import FLUXNB, cli_env
from tests.server_api import SUMS, served_fixture  # noqa: F401 (the served fixture)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**cli_env(), "FLUXNB_TOKEN": "T"}
    return subprocess.run([*FLUXNB, *args], capture_output=True, text=True, env=env, timeout=60)


def test_remote_client_returns_the_local_types(served: str) -> None:
    import fluxnb

    plane = fluxnb.remote(served, token="T")
    assert plane.register("sums", SUMS)["version"] == 1
    result = plane.run("sums", timeout=30)
    assert isinstance(result, fluxnb.RunResult) and result.ok
    assert result.outputs == {"numbers": [1, 2, 3], "total": 6}
    assert result.steps["total"].status is fluxnb.StepStatus.SUCCEEDED
    runs = plane.runs()
    assert list(runs["run_id"]) == [result.run_id]
    frame = plane.sql("SELECT status FROM runs WHERE run_id = $r", {"r": result.run_id})
    assert frame.to_dict("records") == [{"status": "succeeded"}]
    inv = plane.invoice("default", result.started_at.strftime("%Y-%m"))
    assert isinstance(inv, fluxnb.Invoice) and isinstance(inv.total, Decimal)
    with pytest.raises(fluxnb.QueryError):
        plane.sql("SELECT * FROM read_csv('/etc/hostname')")
    with pytest.raises(fluxnb.ManifestError) as bad:
        plane.register("sums", SUMS.replace("depends_on", "depend"))
    assert bad.value.problems[0].kind == "unknown_key"
    denied = fluxnb.remote(served, token="wrong")
    with pytest.raises(fluxnb.FluxError) as no:
        denied.runs()
    assert no.value.status == 403  # type: ignore[attr-defined]


def test_cli_remote_run_runs_sql_invoice(served: str, tmp_path: Path) -> None:
    manifest = tmp_path / "sums.yaml"
    manifest.write_text(SUMS)
    run = _cli("run", str(manifest), "--remote", served)
    assert run.returncode == 0, run.stderr
    assert "succeeded" in run.stdout
    runs = _cli("runs", "--remote", served, "--json")
    assert runs.returncode == 0 and json.loads(runs.stdout)
    sql = _cli("sql", "SELECT count(*) AS n FROM runs", "--remote", served, "--json")
    assert sql.returncode == 0 and json.loads(sql.stdout)[0]["n"] >= 1
    month = time.strftime("%Y-%m", time.gmtime())
    inv = _cli("invoice", "--tenant", "default", "--period", month, "--remote", served, "--json")
    assert inv.returncode == 0 and json.loads(inv.stdout)["tenant"] == "default"
    bad_sql = _cli("sql", "SELEC", "--remote", served)
    assert bad_sql.returncode == 2 and bad_sql.stderr.startswith("fluxnb: error:")
    assert "Traceback" not in bad_sql.stderr
    denied = subprocess.run(
        [*FLUXNB, "runs", "--remote", served, "--token", "wrong"],
        capture_output=True, text=True, env=cli_env(), timeout=60,
    )  # fmt: skip
    assert denied.returncode == 4 and "not authenticated" in denied.stderr
    nowhere = _cli("runs", "--remote", "http://127.0.0.1:9")
    assert nowhere.returncode == 2 and "cannot reach" in nowhere.stderr


def test_serve_refuses_a_bad_port_with_exit_2() -> None:
    r = subprocess.run(
        [*FLUXNB, "serve", "--port", "70000"], capture_output=True, text=True,
        env=cli_env(), timeout=60,
    )  # fmt: skip
    assert r.returncode == 2 and "--port" in r.stderr and "Traceback" not in r.stderr
