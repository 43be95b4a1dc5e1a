"""What ships: the licence (in the repository and in the wheel) and the version the CLI reports."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

from fluxnb.cli import main

from .conftest import ROOT


@pytest.mark.parametrize("argv", [["--version"], ["version"]])
def test_cli_prints_the_installed_version(argv: list[str], capsys: pytest.CaptureFixture) -> None:
    assert main(argv) == 0
    assert capsys.readouterr().out == f"fluxnb {version('fluxnb')}\n"


def test_version_command_takes_no_options() -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["version", "--role", "admin"])
    assert exit_.value.code == 2


def test_license_is_the_apache_2_text_the_metadata_names() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License\n                           Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]


def build_wheel(directory: Path) -> Path:
    """The wheel of this checkout, built into ``directory``."""
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(directory)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = directory.glob("fluxnb-*.whl")
    return wheel


def test_the_wheel_carries_the_license(tmp_path: Path) -> None:
    with zipfile.ZipFile(build_wheel(tmp_path)) as z:
        names = z.namelist()
        (license_,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        assert z.read(license_) == (ROOT / "LICENSE").read_bytes()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        headers = z.read(metadata).decode().split("\n\n", 1)[0].splitlines()
    assert "License-Expression: Apache-2.0" in headers
    assert "License-File: LICENSE" in headers
