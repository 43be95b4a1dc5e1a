"""``fluxnb scaffold``: the starter it writes runs with the command it prints, and its own
tests pass."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from fluxnb.cli import main

from .conftest import cli_env


def scaffold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    monkeypatch.chdir(tmp_path)
    code = main(["scaffold", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def run_printed_command(
    out: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """The 'next: cd NAME && fluxnb ...' line, run in-process."""
    (line,) = [x for x in out.splitlines() if x.startswith("next: ")]
    cd, _, command = line.removeprefix("next: ").partition(" && ")
    folder = tmp_path / shlex.split(cd)[1]
    monkeypatch.chdir(folder)
    argv = shlex.split(command)
    assert argv[0] == "fluxnb"
    code = main(argv[1:])
    return code, capsys.readouterr().out


def pytest_in(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
        capture_output=True,
        text=True,
        cwd=folder,
        env=cli_env(),
        timeout=120,
    )


@pytest.mark.parametrize(
    ("name", "args", "files"),
    [
        ("orders", [], 3),
        ("orders_net", ["--net"], 3),
        ("five_steps", ["--agents", "5"], 5),
    ],
)
def test_the_starter_runs_with_the_printed_command_and_its_tests_pass(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
    args: list[str],
    files: int,
) -> None:
    code, out, err = scaffold(tmp_path, monkeypatch, capsys, name, *args)
    assert code == 0, err
    folder = tmp_path / name
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{name}.yaml", f"{name}_steps.py", f"{name}.ipynb", f"test_{name}.py"]
    )
    nbformat.validate(nbformat.read(folder / f"{name}.ipynb", as_version=4))
    code, run_out = run_printed_command(out, tmp_path, monkeypatch, capsys)
    assert code == 0, run_out
    if "--net" in args:
        assert "succeeded (final)" in run_out and f"stage_{files} x3" in run_out
    else:
        assert run_out.count("succeeded") == files + 1  # the run's line and one per step
    tests = pytest_in(folder)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout


def test_agents_sets_the_number_of_steps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import fluxnb

    for n in (1, 2, 4):
        assert scaffold(tmp_path, monkeypatch, capsys, f"dag{n}", "--agents", str(n))[0] == 0
        wf = fluxnb.load(tmp_path / f"dag{n}" / f"dag{n}.yaml")
        assert isinstance(wf, fluxnb.Workflow) and len(wf) == n
        assert (
            scaffold(tmp_path, monkeypatch, capsys, f"net{n}", "--net", "--agents", str(n))[0] == 0
        )
        net = fluxnb.load(tmp_path / f"net{n}" / f"net{n}.yaml")
        assert isinstance(net, fluxnb.Net) and len(net.transitions) == n


def test_an_existing_folder_with_files_is_refused_and_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    code, _, err = scaffold(tmp_path, monkeypatch, capsys, "taken")
    assert code == 2 and "already exists" in err and "Traceback" not in err
    assert [p.name for p in (tmp_path / "taken").iterdir()] == ["keep.txt"]
    (tmp_path / "afile").write_text("x")
    assert scaffold(tmp_path, monkeypatch, capsys, "afile")[0] == 2
    (tmp_path / "empty").mkdir()  # an empty folder is fine
    assert scaffold(tmp_path, monkeypatch, capsys, "empty")[0] == 0


@pytest.mark.parametrize("bad", ["my-flow", "2fast", "class", "a b", "", "x/y", "é!"])
def test_a_name_python_cannot_import_is_refused_with_a_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], bad: str
) -> None:
    code, _, err = scaffold(tmp_path, monkeypatch, capsys, bad)
    assert code == 2 and "cannot name a project" in err and "fluxnb scaffold " in err
    suggested = err.rsplit("fluxnb scaffold ", 1)[1].rstrip(")\n")
    assert suggested.isidentifier()
    assert list(tmp_path.iterdir()) == []


def test_agents_out_of_range_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert scaffold(tmp_path, monkeypatch, capsys, "flow", "--agents", "0")[0] == 2
    assert not (tmp_path / "flow").exists()


def test_the_notebook_uses_params(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    scaffold(tmp_path, monkeypatch, capsys, "nbcheck")
    nb = json.loads((tmp_path / "nbcheck" / "nbcheck.ipynb").read_text())
    code = "\n".join(c["source"] for c in nb["cells"] if c["cell_type"] == "code")
    assert "params=" in code and "from nbcheck_steps import" in code
