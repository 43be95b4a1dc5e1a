"""The functions the designer's gesture tests build a workflow from: imported by
``test_designer_palette.py``, and run as a notebook cell's source by the browser tests
(``tests/browser/test_designer_gestures.py``), so both draw the same five steps."""

tries = {"n": 0}
#: The arcs the five steps get from their parameters' names, whatever order they come in.
FIVE_STEP_ARCS = {
    "fetch->clean",
    "fetch->stats",
    "clean->report",
    "stats->report",
    "report->publish",
}


def fetch():
    """Read the raw values."""
    return [3, 1, 2]


def clean(fetch):
    return sorted(fetch)


def stats(fetch, scale=1.0):
    return {"n": len(fetch) * scale}


def report(clean, stats, ctx=None):
    return f"{stats['n']} values, max {clean[-1]}"


def publish(report):
    return report.upper()


def boom(fetch):
    raise ValueError(f"bad value {fetch[0]}")


def shaky(fetch):
    """Fails every other call: a first attempt fails, its retry succeeds."""
    tries["n"] += 1
    if tries["n"] % 2:
        raise ValueError(f"odd try {tries['n']}")
    return len(fetch)
