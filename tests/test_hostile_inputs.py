"""Hostile input at the spec boundary: YAML bombs and tags, hostile guards, oversized or odd
files, rate-card prices and periods out of range. Each is a clear message (CLI exit 2),
refused in milliseconds and megabytes, never a traceback."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import fluxnb
from fluxnb import BillingError, ManifestError
from fluxnb.billing import read_rate_card
from fluxnb.billing._invoice import period_bounds
from fluxnb.cli import main
from fluxnb.spec import Guard, GuardError, GuardSyntaxError, read_pnml
from fluxnb.spec._files import MAX_FILE_BYTES
from fluxnb.spec._located import ALIAS_BUDGET, MAX_DEPTH, load_located
from fluxnb.spec._net_manifest import load_any, load_net

ROOT = Path(__file__).resolve().parents[1]


def laughs(levels: int = 9, width: int = 10, top: str = "pipeline") -> str:
    """A manifest whose ``top`` would expand to width**levels values (10**9 by default)."""
    lines = ["name: lol", "l0: &l0 [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels + 1):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]")
    lines.append(f"{top}: *l{levels}")
    return "\n".join(lines) + "\n"


def merge_laughs(levels: int = 40) -> str:
    """Merge keys (<<) that would double a mapping's keys at every level."""
    lines = ["m0: &m0 {k0: 1}"]
    for i in range(1, levels + 1):
        lines.append(f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}], k{i}: 1}}")
    return "\n".join(lines) + "\n"


def bounded(fn: Callable[[], Any]) -> tuple[BaseException | None, float, int]:
    """Call ``fn``: what it raised, the seconds it took and its peak of allocated bytes."""
    tracemalloc.start()
    t0 = time.perf_counter()
    raised: BaseException | None = None
    try:
        fn()
    except Exception as exc:  # the caller asserts on what it is
        raised = exc
    took = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return raised, took, peak


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


# ---------------------------------------------------------------- YAML aliases ("billion laughs")


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(fluxnb.load, id="fluxnb.load"),
        pytest.param(load_net, id="load_net"),
        pytest.param(load_any, id="load_any"),
        pytest.param(load_located, id="load_located"),
    ],
)
def test_billion_laughs_is_refused_in_milliseconds_and_kilobytes(
    entry: Callable[[str], Any],
) -> None:
    small, small_took, _ = bounded(lambda: load_located("name: x\npipeline: [{step: a}]\n"))
    assert small is None
    text = laughs()  # ~500 bytes that would be 10**9 strings
    raised, took, peak = bounded(lambda: entry(text))
    assert isinstance(raised, ManifestError)
    assert raised.kind == "yaml_alias"
    assert raised.line is not None and raised.column is not None
    assert took < 1.0, f"{took:.3f}s (a small manifest took {small_took:.4f}s)"
    assert peak < 50 * 2**20, f"peak {peak / 2**20:.1f} MiB"


def test_merge_key_laughs_and_recursive_aliases_are_refused() -> None:
    raised, took, peak = bounded(lambda: load_located(merge_laughs()))
    assert isinstance(raised, ManifestError) and raised.kind == "yaml_alias"
    assert took < 1.0 and peak < 50 * 2**20
    with pytest.raises(ManifestError) as info:
        load_located("a: &a [1, *a]\n")
    assert info.value.kind == "yaml_alias" and info.value.line == 1


def test_aliases_within_the_budget_still_work() -> None:
    text = """name: shared
agents:
  - id: a
    retry: &r {max_attempts: 3, backoff: linear}
  - id: b
    retry: *r
  - id: c
    retry: {<<: *r, initial_delay: 2s}
pipeline:
  - step: a
  - step: b
  - step: c
"""
    wf = fluxnb.load(text)
    retries = [wf.steps[x].retry for x in "abc"]
    assert [r.max_attempts if r else None for r in retries] == [3, 3, 3]
    # the budget itself: aliases adding fewer values than ALIAS_BUDGET load
    width = 100
    ok = f"a: &a [{', '.join(['1'] * width)}]\nb: [{', '.join(['*a'] * (ALIAS_BUDGET // width // 2))}]\n"
    assert len(load_located(ok).data["b"]) == ALIAS_BUDGET // width // 2


def test_aliases_cannot_nest_past_the_depth_limit() -> None:
    lines = ["a0: &a0 [1]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, MAX_DEPTH + 5)]
    with pytest.raises(ManifestError) as info:
        load_located("\n".join(lines))
    assert info.value.kind == "yaml_syntax" and "nest" in str(info.value)


def test_billion_laughs_in_the_cli_rate_cards_and_designer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bomb = tmp_path / "lol.yaml"
    bomb.write_text(laughs())
    t0 = time.perf_counter()
    code, err = cli(capsys, "validate", str(bomb))
    assert code == 2 and "lol.yaml:" in err and "aliases" in err
    code, err = cli(capsys, "rates", "set", str(bomb), "--store", str(tmp_path / "s.duckdb"))
    assert code == 2 and "aliases" in err
    assert time.perf_counter() - t0 < 5
    with pytest.raises(BillingError, match="aliases"):
        read_rate_card(laughs(top="rate_card"))

    from fluxnb.designer import Designer

    d = Designer.from_yaml("pipeline:\n  - step: a\n")
    _, took, peak = bounded(lambda: d.apply_yaml(laughs()))
    assert took < 1.0 and peak < 50 * 2**20
    assert d.to_yaml() == Designer.from_yaml("pipeline:\n  - step: a\n").to_yaml()


# ---------------------------------------------------------------- explicit YAML tags


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("!!int x", "bad_value"),
        ("!!float 110s", "bad_value"),
        ("!!timestamp 2026-13-01", "bad_value"),
        ("!!set {a, b}", "yaml_tag"),
        ("!!binary aGVsbG8=", "yaml_tag"),
        ("!!python/object/apply:os.system [echo hi]", "yaml_tag"),
        ("!!python/name:os.system", "yaml_tag"),
        ("!custom x", "yaml_tag"),
        ("!!omap [{a: 1}]", "yaml_tag"),
        ("9" * 5000, "bad_value"),  # past Python's int-from-text digit limit
    ],
)
def test_explicit_tags_are_located_messages(
    value: str, kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = f"name: tags\nrouter:\n  default_timeout: {value}\npipeline:\n  - step: a\n"
    with pytest.raises(ManifestError) as info:
        fluxnb.load(text)
    assert info.value.kind == kind
    assert (info.value.line, info.value.column) == (3, 20)
    assert info.value.path == "router.default_timeout"
    path = tmp_path / "tags.yaml"
    path.write_text(text)
    code, err = cli(capsys, "validate", str(path))
    assert code == 2 and "tags.yaml:3:20" in err


def test_plain_tags_that_fit_still_work() -> None:
    doc = load_located("a: !!str 1\nb: !!int '2'\nc: =\nd: <<\ne: !!float 1.5\n").data
    assert doc == {"a": "1", "b": 2, "c": "=", "d": "<<", "e": 1.5}


# ---------------------------------------------------------------- the guard language


@pytest.mark.parametrize(
    "text",
    ['token["__init__"]', 'token["_secret"]', 'tokens["_x"]', 'token.a["__class__"]'],
)
def test_private_subscripts_are_refused_like_attributes(text: str) -> None:
    with pytest.raises(GuardSyntaxError, match="starting with '_'"):
        Guard(text)


def test_computed_private_keys_are_refused_when_evaluated() -> None:
    class Secretive:
        _secret = "s3cr3t"

    for token in ({"_secret": 1}, Secretive()):
        with pytest.raises(GuardError, match="starting with '_'"):
            Guard('token["_" + "secret"] == 1')(token)
        with pytest.raises(GuardError, match="starting with '_'"):
            Guard('token["__cl" + "ass__"]')(token)


def net_with_guard(guard: str) -> str:
    quoted = guard.replace("\\", "\\\\").replace('"', '\\"')
    return (
        "net:\n  places: {a: 1, b: 0}\n  transitions:\n    - id: t\n      inputs: [a]\n"
        f'      outputs: [b]\n      guard: "{quoted}"\n'
    )


@pytest.mark.parametrize(
    "guard",
    [
        "(" * 5000 + "1" + ")" * 5000,
        "(" * 5000,
        "not " * 5000 + "token",
        "not " * 2000 + "token",
        "1+" * 10000 + "1",
        "1+" * 3000 + "1",
        "-" * 5000 + "1",
        "token" + ".a" * 2000,
        "[" * 3000 + "]" * 3000,
        "token\x00",
    ],
)
def test_deep_or_huge_guards_are_bad_guard_problems(guard: str) -> None:
    raised, took, _ = bounded(lambda: load_net(net_with_guard(guard)))
    assert isinstance(raised, ManifestError), raised
    assert raised.kind in ("bad_guard", "yaml_syntax")  # NUL is already bad YAML
    assert took < 1.0


@pytest.mark.parametrize(
    "guard",
    [
        '"a" * 1000000000 == ""',
        "1000000000 * [1] == []",
        '("ab" * 400000 + "cd" * 400000) == ""',
        '"%999999999d" % 1 == ""',
        '"%*d" % (999999999, 1) == ""',
        '"%.999999999f" % 1.5 == ""',
        "round(1, -1000000000) == 0",
        "token.n * token.n * token.n * token.n * token.n * token.n * token.n > 0",
        '"x" * 900000 + "x" * 900000 + "x" * 900000 + "x" * 900000 + "x" * 900000 == ""',
    ],
)
def test_guard_evaluation_has_budgets(guard: str) -> None:
    g = Guard(guard)
    raised, took, peak = bounded(lambda: g({"n": 7**60000}))
    assert isinstance(raised, GuardError), raised
    assert took < 1.0 and peak < 50 * 2**20


def test_ordinary_guards_are_unaffected_by_the_budgets() -> None:
    assert Guard('"%05.1f|%s" % (token.x, token.s) == "003.1|ok"')({"x": 3.14, "s": "ok"})
    assert Guard('len("ab" * 1000 + token.s) == 2002')({"s": "ok"})
    assert Guard("round(token.x, 2) == 3.14")({"x": 3.14159})


# ---------------------------------------------------------------- files, PNML


def test_non_regular_and_oversized_files_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t0 = time.perf_counter()
    for argv in (["validate", "/dev/zero"], ["analyze", "/dev/zero"], ["run", "/dev/zero"]):
        code, err = cli(capsys, *argv, *(["--no-store"] if argv[0] == "run" else []))
        assert code == 2 and "16 MiB" in err, (argv, err)
    assert time.perf_counter() - t0 < 5
    code, err = cli(capsys, "validate", str(tmp_path))
    assert code == 2 and "cannot read" in err
    with pytest.raises(ManifestError) as info:
        load_located("#" * (MAX_FILE_BYTES + 1))
    assert info.value.kind == "too_large"


def test_pnml_with_an_unknown_encoding_is_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = '<?xml version="1.0" encoding="nope"?>\n<pnml><net id="n"></net></pnml>\n'
    path = tmp_path / "enc.pnml"
    path.write_text(body)
    code, err = cli(capsys, "analyze", str(path))
    assert code == 2 and "nope" in err
    with pytest.raises(ManifestError) as info:
        read_pnml(path)
    assert info.value.kind == "pnml_syntax"


def test_deeply_nested_pnml_pages_are_read_without_recursion(tmp_path: Path) -> None:
    depth = 50_000
    inner = '<place id="p"><initialMarking><text>1</text></initialMarking></place>'
    body = '<pnml><net id="n">' + '<page id="x">' * depth + inner + "</page>" * depth
    net = read_pnml(body + '<transition id="t"/></net></pnml>')
    assert net.places == ("p",) and net.initial == (1,)


def test_pnml_entity_bombs_are_refused() -> None:
    lines = ['<!ENTITY e0 "lol">']
    lines += [f'<!ENTITY e{i} "{f"&e{i - 1};" * 10}">' for i in range(1, 10)]
    body = f'<?xml version="1.0"?><!DOCTYPE p [{"".join(lines)}]><pnml><net id="&e9;"/></pnml>'
    raised, took, peak = bounded(lambda: read_pnml(body))
    assert isinstance(raised, ManifestError) and raised.kind == "pnml_syntax"
    assert took < 1.0 and peak < 50 * 2**20


# ---------------------------------------------------------------- billing inputs


CARD = """rate_card:
  name: huge
  currency: USD
  effective_from: 2026-11-01
  prices:
    - unit: invocations
      tiers:
        - {up_to: 100, price: "0.5"}
        - {up_to: null, price: "PRICE"}
"""


@pytest.mark.parametrize("price", ["1e30", "100000000000000000000000000000", "-1e40"])
def test_rate_card_prices_beyond_the_store_are_refused_by_field(
    price: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(BillingError, match=r"rate_card\.prices\[0\]\.tiers\[1\]\.price") as info:
        read_rate_card(CARD.replace("PRICE", price))
    assert "too large" in str(info.value)
    path = tmp_path / "card.yaml"
    path.write_text(CARD.replace("PRICE", price))
    code, err = cli(capsys, "rates", "set", str(path), "--store", str(tmp_path / "s.duckdb"))
    assert code == 2 and "tiers[1].price" in err
    assert read_rate_card(CARD.replace("PRICE", "9" * 29)).prices[0].tiers[1].price > 0


@pytest.mark.parametrize(
    "period",
    [
        "9999-12",
        "0000-01",
        "2026-1",
        " 2026-13",
        "2026-11-01",
        "\uff12\uff10\uff12\uff16-11",
        "10000-01",
    ],
)
def test_bad_periods_are_messages(
    period: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(BillingError, match="period"):
        period_bounds(period)
    store = str(tmp_path / "s.duckdb")
    code, err = cli(capsys, "invoice", "--tenant", "t", "--period", period, "--store", store)
    assert code == 2 and "period" in err
    code, err = cli(capsys, "usage", "--period", period, "--store", store)
    assert code == 2 and "period" in err


def test_the_edges_of_the_period_range_work() -> None:
    assert period_bounds("9999-11")[2].year == 9999
    assert period_bounds("0001-01")[1].year == 1
