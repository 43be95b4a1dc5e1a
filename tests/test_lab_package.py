"""The JupyterLab extension as the wheel ships it: prebuilt, where JupyterLab looks for it
(share/jupyter/labextensions/fluxnb-lab), once, with the files its package.json names."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from .test_packaging import build_wheel

SHARED = "fluxnb-0.1.0.data/data/share/jupyter/labextensions/fluxnb-lab/"


def test_the_wheel_ships_the_prebuilt_extension_once(tmp_path: Path) -> None:
    with zipfile.ZipFile(build_wheel(tmp_path)) as z:
        names = set(z.namelist())
        package = json.loads(z.read(SHARED + "package.json"))
        install = json.loads(z.read(SHARED + "install.json"))
    assert package["name"] == "fluxnb-lab"
    load = package["jupyterlab"]["_build"]["load"]  # the entry JupyterLab loads
    assert SHARED + load in names
    assert install["packageName"] == "fluxnb"  # `jupyter labextension list`: (python, fluxnb)
    assert not [n for n in names if n.startswith("fluxnb/labextension/")]  # not twice
