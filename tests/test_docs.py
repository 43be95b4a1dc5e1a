"""The docs name what the code does (drift found in review: statuses a table left out)."""

from __future__ import annotations

from fluxnb import RunStatus, StepStatus

from .conftest import ROOT


def test_store_tables_list_every_status_the_store_can_hold() -> None:
    rows = [
        line
        for line in (ROOT / "docs" / "store.md").read_text().splitlines()
        if line.startswith("| status |")
    ]
    runs_row, events_row = rows[0], rows[1]
    assert all(f"`{s.value}`" in runs_row for s in RunStatus)
    outcomes = [s for s in StepStatus if s.terminal]
    assert all(f"`{s.value}`" in events_row for s in outcomes), events_row
