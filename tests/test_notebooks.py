"""The tutorials run from any folder: no paths into the repository around them (nbmake runs
them in CI from notebooks/, where a ``../examples`` path happens to work)."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from .conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# a string literal that climbs out of the notebook's folder: "../x", '..\\x', ".."
CLIMBS = re.compile(r"""(?<![\w.])["'](\.\.)(["'/\\])""")


def test_the_readme_names_every_tutorial() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(NOTEBOOKS) >= 7  # the tutorials are found (the glob did not come back empty)
    assert [p.stem for p in NOTEBOOKS if f"`{p.stem}`" not in readme] == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_tutorial_reads_a_path_outside_its_folder(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            hits = [line for line in cell.source.splitlines() if CLIMBS.search(line)]
            assert not hits, f"{path.name}, cell {i}: {hits}"


def test_the_climbing_path_check_sees_what_it_should() -> None:
    assert CLIMBS.search('manifest = "../examples/quickstart.yaml"')
    assert CLIMBS.search("Path('..')")
    assert not CLIMBS.search('fluxnb.run("a.yaml")  # see ../docs')
    assert not CLIMBS.search('x = "a/../b"')


def test_the_quickstart_runs_in_an_unrelated_folder(tmp_path: Path) -> None:
    """The tutorial that used ``../examples`` runs with its working folder elsewhere."""
    nb = nbformat.read(ROOT / "notebooks" / "01-quickstart.ipynb", as_version=4)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    printed = "".join(out.get("text", "") for cell in nb.cells for out in cell.get("outputs", []))
    assert "$ fluxnb validate quickstart.yaml --import quickstart_steps.py   (exit 0)" in printed
    assert (
        "$ fluxnb run quickstart.yaml --import quickstart_steps.py --no-store   (exit 0)" in printed
    )
    assert "workflow 'quickstart' · succeeded" in printed
