"""Fuzzing the input boundary: whatever text arrives as a manifest, a guard or PNML, the CLI
answers 0 or 2 (never a traceback, never another code) within a time budget, and the Python
API raises only fluxnb's ManifestError family (guards: GuardSyntaxError / GuardError).

Bounded for CI: a few seconds a test (400 examples each, a per-case time budget below);
``FLUXNB_FUZZ_EXAMPLES=20000 pytest tests/test_fuzz.py`` fuzzes longer by hand.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fluxnb
from fluxnb import ManifestError
from fluxnb.cli import main
from fluxnb.spec import Guard, GuardError, GuardSyntaxError, read_pnml
from fluxnb.spec._net_manifest import load_any

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = [
    p.read_text()
    for p in [
        *sorted((DATA / "fluxroute").glob("*.yaml")),
        *sorted((ROOT / "examples").glob("*.yaml")),
    ]
]
PNMLS = [
    (DATA / "pnml" / name).read_text()
    for name in ("data_guards.pnml", "inhibitor_queue.pnml", "prom_order_to_cash.pnml")
]
#: Seconds one case may take, end to end (a CLI call in-process on a shared CI machine).
BUDGET = 3.0

FUZZ = settings(
    max_examples=int(os.environ.get("FLUXNB_FUZZ_EXAMPLES", "400")),
    deadline=None,  # the explicit BUDGET below, so a slow first call is not a flaky error
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def cli(folder: Path, name: str, text: str, *argv: str) -> tuple[int, str]:
    """``fluxnb ARGV[0] FILE ARGV[1:]`` in-process on ``text``: (exit code, stderr)."""
    path = folder / name
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    out, err = io.StringIO(), io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([argv[0], str(path), *argv[1:]])
    took = time.perf_counter() - t0
    assert code in (0, 2), (code, err.getvalue()[-2000:])
    assert "Traceback" not in err.getvalue()
    assert took < BUDGET, f"{took:.2f}s for {text[:200]!r}"
    return code, err.getvalue()


def api(fn: Any, *args: Any, allowed: tuple[type[BaseException], ...] = (ManifestError,)) -> None:
    t0 = time.perf_counter()
    with contextlib.suppress(allowed):
        fn(*args)
    took = time.perf_counter() - t0
    assert took < BUDGET, f"{took:.2f}s for {args!r:.200}"


# ---------------------------------------------------------------- manifests

KEYS = st.sampled_from(
    [
        "name", "pipeline", "step", "depends_on", "with", "agents", "id", "run", "retry",
        "max_attempts", "backoff", "timeout", "router", "default_timeout", "on_error",
        "circuit_breaker", "net", "places", "transitions", "inputs", "outputs", "guard",
        "final", "tokens", "layout", "params", "executor", "namespace", "<<", "x",
    ]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["10s", "1ms", "-1s", "exponential", "stop", "a", "b", "token.x > 1", "{{p}}"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(KEYS, st.text(max_size=5)), inner, max_size=5),
    ),
    max_leaves=30,
)
#: Pieces of YAML syntax that tend to break parsers (anchors, tags, flow, block scalars).
NOISE = st.sampled_from(
    [
        "&a ", "*a", "<<: *a", "!!int ", "!!set ", "!!python/object:os.system ", "!x ", "{", "}",
        "[", "]", ",", ": ", "- ", "? ", "|", ">-", "#", "'", '"', "\\", "\t", "\n", "  ", "---\n",
        "...\n", "%YAML 1.1\n", "\x00", "\ufeff", "\u2028", "9" * 5000, "=", "~", ".nan", "0x1f",
    ]
)  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn, seeds: list[str]) -> str:
    """A seed text with a few random edits: deletions, insertions of noise, duplications."""
    text = draw(st.sampled_from(seeds))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["delete", "insert", "duplicate", "swap"]))
        if edit == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 40)) :]
        elif edit == "insert":
            text = text[:at] + draw(st.one_of(NOISE, st.text(max_size=8))) + text[at:]
        elif edit == "duplicate":
            end = min(len(text), at + draw(st.integers(1, 200)))
            text = text[:end] + text[at:end] + text[end:]
        else:
            other = draw(st.integers(0, len(text)))
            a, b = sorted((at, other))
            text = text[:a] + text[b:] + text[a:b]
    return text


@FUZZ
@given(doc=VALUES)
def test_random_yaml_structures(folder: Path, doc: Any) -> None:
    text = yaml.safe_dump(doc, allow_unicode=True)
    cli(folder, "random.yaml", text, "validate")
    api(load_any, text)


@FUZZ
@given(text=mutated(MANIFESTS))
def test_mutated_manifests(folder: Path, text: str) -> None:
    cli(folder, "mutated.yaml", text, "validate")
    api(fluxnb.load, text)
    api(load_any, text)


@FUZZ
@given(parts=st.lists(st.one_of(NOISE, st.text(max_size=10)), max_size=30))
def test_yaml_noise(folder: Path, parts: list[str]) -> None:
    text = "".join(parts)
    cli(folder, "noise.yaml", text, "validate")
    api(load_any, text)


# ---------------------------------------------------------------- guards

GUARD_PIECES = st.sampled_from(
    [
        "token", "tokens", ".", "[", "]", "(", ")", "'_x'", "'a'", "\"%s\"", "\"%999d\"", "1",
        "10**9", "1000000", "-", "+", "*", "/", "//", "%", " and ", " or ", "not ", " in ",
        "==", "<", ",", "len", "min", "max", "round", "abs", "__class__", "_secret", "lambda",
        " if ", " else ", "[1]", "\"ab\"", "None", "True", "x", " ",
    ]
)  # fmt: skip
TOKENS = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=5),
    st.dictionaries(st.sampled_from(["a", "x", "_x", "n"]), SCALARS, max_size=3),
    st.lists(st.integers(), max_size=3),
)


@FUZZ
@given(pieces=st.lists(GUARD_PIECES, max_size=25), token=TOKENS)
def test_guard_expressions(folder: Path, pieces: list[str], token: Any) -> None:
    text = "".join(pieces)
    t0 = time.perf_counter()
    try:
        guard = Guard(text)
    except GuardSyntaxError:
        guard = None
    if guard is not None:
        with contextlib.suppress(GuardError):
            assert isinstance(guard(token, {"a": token}), bool)
    assert time.perf_counter() - t0 < BUDGET
    quoted = text.replace("\\", "\\\\").replace('"', '\\"')
    net = (
        "net:\n  places: {a: 1, b: 0}\n  transitions:\n    - id: t\n      inputs: [a]\n"
        f'      outputs: [b]\n      guard: "{quoted}"\n'
    )
    cli(folder, "guard.yaml", net, "validate")


# ---------------------------------------------------------------- PNML

XML_NOISE = st.sampled_from(
    [
        "<", ">", "</page>", "<page id=\"p\">", "&lol;", "<!DOCTYPE p [<!ENTITY e \"x\">]>", "&e;",
        "<?xml version=\"1.0\" encoding=\"nope\"?>", "<?xml version=\"1.0\" encoding=\"UTF-16\"?>",
        "\"", "id=", "source=\"x\"", "<text>-1</text>", "<text>99999999999999999999</text>",
        "<text>x</text>", "\x00", "<arc id=\"z\" source=\"z\" target=\"z\"/>",
        "<referencePlace id=\"r\" ref=\"r\"/>", "type=\"inhibitor\"",
    ]
)  # fmt: skip


@st.composite
def mutated_pnml(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(PNMLS))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:at] + draw(st.one_of(XML_NOISE, st.text(max_size=5))) + text[at:]
        else:
            text = text[:at] + text[at + draw(st.integers(1, 60)) :]
    return text


@FUZZ
@given(text=mutated_pnml())
def test_mutated_pnml(folder: Path, text: str) -> None:
    cli(folder, "net.pnml", text, "analyze", "--max-states", "2000")
    if text.lstrip().startswith("<"):
        api(read_pnml, text)
