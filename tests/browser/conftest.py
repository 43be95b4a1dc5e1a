"""One JupyterLab and one Chromium for the designer's browser tests (they are the slow part):
a notebook with a DAG designer ``d`` and a net designer ``n``, run once, shared by every test
module that asks for ``lab``. Tests leave the designs as they found them where they can."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .lab import Lab

SETUP = """
import time, fluxnb
calls = {"transform": 0}

def extract():
    time.sleep(0.3)
    return [1, 2, 3]

def transform(extract):
    calls["transform"] += 1
    time.sleep(0.3)
    if calls["transform"] == 1:
        raise RuntimeError("flaky the first time")
    return [x * 2 for x in extract]

def load(transform):
    time.sleep(0.3)
    return sum(transform)
"""

DAG = '''
d = fluxnb.Designer.from_yaml("""
name: etl
agents:
  - id: transform
    retry: {max_attempts: 2, backoff: none}
pipeline:
  - step: extract
  - step: transform
    depends_on: extract
  - step: load
    depends_on: transform
""", namespace=globals(), store=None)
d
'''

NET = '''
n = fluxnb.Designer.from_yaml("""
name: review
net:
  places: {draft: 1, review: 0, done: 0}
  transitions:
    - {id: submit, inputs: [draft], outputs: [review], external: true}
    - {id: approve, inputs: [review], outputs: [done], external: true}
""", namespace=globals(), store=None)
n
'''

# text below the designers, so the notebook is taller than the window and can scroll
AFTER = "## Notes\n\n" + "\n\n".join(f"Line {i} of notes under the designers." for i in range(40))

NOTEBOOK = "designer.ipynb"


def _cell(i: int, source: str, kind: str = "code") -> dict[str, Any]:
    cell: dict[str, Any] = {"cell_type": kind, "id": f"c{i}", "metadata": {}, "source": source}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


@pytest.fixture(scope="package", autouse=True)
def _one_playwright_driver() -> Any:
    """The browser tests share one Playwright driver, stopped when they are done (after
    ``lab``, which asks for this fixture): its loop must not outlive them, or the rest of
    the suite's ``asyncio.run`` calls fail with "cannot be called from a running loop"."""
    yield
    from .lab import stop_playwright

    stop_playwright()


@pytest.fixture(scope="package")
def lab(tmp_path_factory: pytest.TempPathFactory, _one_playwright_driver: Any) -> Any:
    root: Path = tmp_path_factory.mktemp("lab")
    cells = [_cell(i, c.strip()) for i, c in enumerate([SETUP, DAG, NET])]
    cells.append(_cell(3, AFTER, "markdown"))
    nb = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (root / NOTEBOOK).write_text(json.dumps(nb))
    with Lab(root) as running:
        running.open(NOTEBOOK)
        running.run_all()
        yield running
