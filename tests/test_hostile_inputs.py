"""Hostile input at the spec boundary: YAML bombs and tags, hostile guards, oversized or odd
files, rate-card prices and periods out of range. Each is a clear message (CLI exit 2),
refused in milliseconds and megabytes, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import fluxnb
from fluxnb import BillingError, ManifestError
from fluxnb.billing import read_rate_card
from fluxnb.billing._invoice import period_bounds
from fluxnb.billing._money import decimal
from fluxnb.cli import main
from fluxnb.spec import Guard, GuardError, GuardSyntaxError, read_pnml
from fluxnb.spec._files import MAX_FILE_BYTES
from fluxnb.spec._located import ALIAS_BUDGET, MAX_DEPTH, load_located
from fluxnb.spec._net_manifest import load_any, load_net
from fluxnb.store._usage import quantity

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
        assert code == 2 and "/dev/zero is a device, not a regular file" in err, (argv, err)
    assert time.perf_counter() - t0 < 5
    code, err = cli(capsys, "validate", str(tmp_path))
    assert code == 2 and "cannot read" in err and "is a directory" in err
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    code, err = cli(capsys, "validate", str(big))
    assert code == 2 and "16 MiB" in err
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


# ---------------------------------------------------------------- guards: sizes before building

MiB = 2**20


@pytest.mark.parametrize(
    "guard",
    [
        '"%s" % ([[0] * 100000] * 100000,) == ""',  # built 3.7 GB before it was refused
        '"%s" % ([[0] * 1000] * 1000,) == ""',  # 3 MB: built, then refused, before
        '"%r" % ([0] * 100000) == ""',
        '"%s" % token.rows == ""',
        '"%(rows)s" % token == ""',
        '"%r" % ("a" * 200000,) == ""',  # a repr may be 10 characters a character
        'token.raw % ([0] * 100000,) == ""',  # bytes formatting too
        'token.raw * 1000000000 == ""',
    ],
)
def test_percent_formatting_is_sized_before_it_is_built(guard: str) -> None:
    g = Guard(guard)
    token = {"rows": [[0] * 1000] * 1000, "raw": b"%r"}
    raised, took, peak = bounded(lambda: g(token))
    assert isinstance(raised, GuardError), raised
    assert took < 0.5 and peak < 2 * MiB, (took, peak)


def test_percent_formatting_of_plain_values_still_works() -> None:
    token = {"name": "ada", "n": 7, "x": 2.5, "ok": True, "none": None}
    assert Guard('"%s:%d:%.1f:%s:%s" % (token.name, token.n, token.x, token.ok, token.none)')(
        token
    )  # "ada:7:2.5:True:None" is truthy
    assert Guard('"%(name)s-%(n)03d" % token == "ada-007"')(token)
    assert Guard('"%r|%5s|%%" % (token.name, "b") == "\'ada\'|    b|%"')(token)
    assert Guard('"%*d" % (4, token.n) == "   7"')(token)


@pytest.mark.parametrize(
    "guard",
    [
        "[[0] * 200000] * 200000 == [[0] * 200000] * 200000",  # 15 s before
        "[0] * 200000 in [[0] * 200000] * 200000",
        "min([[0] * 200000] * 200000) == 1",
        "max([[0] * 200000] * 200000) == 1",
        "token[((0,) * 200000,) * 200000] == 1",  # hashing walks the whole tuple
        "[[[0] * 1000] * 1000] * 1000 == []",
        "[[1.5 - 1] * 1500] * 1500 == [[0.5 + 0] * 1500] * 1500"
        " and [[1.5 - 1] * 1500] * 1500 == [[0.5 + 0] * 1500] * 1500",
        "[token.a] * 100000 == [token.b] * 100000",  # token lists: their size is unknown
        "token.a * 3 == token.b * 3",
    ],
)
def test_guards_refuse_values_whose_logical_size_is_over_the_budget(guard: str) -> None:
    g = Guard(guard)
    token = {"a": [[float(j) for j in range(300)] for _ in range(300)]}
    token["b"] = [list(row) for row in token["a"]]
    raised, took, _ = bounded(lambda: g(token))
    assert isinstance(raised, GuardError), raised
    assert took < 0.2, took


WORST = [  # the costliest walks we found that the budgets still allow: each answers
    "[[1.5 - 1] * 1550] * 1550 == [[0.5 + 0] * 1550] * 1550",
    "[[1.5 - 1] * 1500] * 1500 < [[0.5 + 0] * 1500] * 1500",
    "[[1.5 - 1] * 1500] * 1500 in [[[0.5 + 0] * 1500] * 1500]",
    "[[[1.5 - 1] * 200] * 100] * 120 == [[[0.5 + 0] * 200] * 100] * 120",
    "[(1.5 - 1,) * 2] * 1000000 == [(0.5 + 0,) * 2] * 1000000",
    "max([[1.5 - 1] * 1500] * 1500) == 1",
    "token[((1.5 - 1,) * 1500,) * 1500] == 1",
    "(token.a, token.a, token.a) == (token.b, token.b, token.b)",
    '("a" * 999999 + "b") in ("a" * 1000000)',
    '("a" * 60 + "b") in ("a" * 1000000)',
    " and ".join(["[[1.5 - 1] * 300] * 300 == [[0.5 + 0] * 300] * 300"] * 60),
]


@pytest.mark.parametrize("guard", WORST)
def test_the_worst_walk_under_the_budgets_takes_under_a_second(guard: str) -> None:
    g = Guard(guard)
    token = {"a": [[float(j) for j in range(300)] for _ in range(300)]}
    token["b"] = [list(row) for row in token["a"]]
    raised, took, _ = bounded(lambda: g(token))
    assert raised is None or isinstance(raised, GuardError), raised
    assert took < 1.0, took


def test_guards_that_repeat_and_join_small_values_still_work() -> None:
    token = {"tags": ["a", "b"], "rows": [[1], [2]]}
    assert Guard("[1, 2] * 3 == [1, 2, 1, 2, 1, 2]")(token)
    assert Guard("[[1]] * 3 == [[1], [1], [1]]")(token)
    assert Guard("token.tags * 2 == ['a', 'b', 'a', 'b']")(token)
    assert Guard("token.rows + [[3]] == [[1], [2], [3]]")(token)
    assert Guard("[token.rows, token.tags] == [[[1], [2]], ['a', 'b']]")(token)
    assert Guard("len([0] * 1000000) == 1000000")(token)
    assert Guard("max([[0] * 1000] * 1000) == [0] * 1000")(token)


def test_a_missing_tuple_key_is_named_briefly() -> None:
    g = Guard("token[((1.5 - 1,) * 1500,) * 1500] == 1")
    with pytest.raises(GuardError, match="no item") as info:
        g({})
    assert len(str(info.value)) < 500


# ---------------------------------------------------------------- FIFOs and other odd files


@pytest.fixture
def fifos(tmp_path: Path) -> Path:
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    for name in ("ff.yaml", "ff.pnml", "ffr.yaml"):
        os.mkfifo(tmp_path / name)
    return tmp_path


def test_fifos_are_refused_not_waited_on(fifos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every reader used to block forever on a FIFO with no writer."""
    y, p, r = (str(fifos / n) for n in ("ff.yaml", "ff.pnml", "ffr.yaml"))
    t0 = time.perf_counter()
    for argv in (
        ["validate", y],
        ["run", y, "--no-store"],
        ["analyze", p],
        ["analyze", y],
        ["rates", "set", r, "--store", str(fifos / "s.duckdb")],
    ):
        code, err = cli(capsys, *argv)
        assert code == 2 and "is a FIFO (named pipe), not a regular file" in err, (argv, err)
        assert "no such" not in err
    for load in (fluxnb.load, read_pnml, load_net):
        with pytest.raises(ManifestError) as info:
            load(Path(y))
        assert info.value.kind == "unreadable_file"
    with pytest.raises(BillingError, match="FIFO"):
        read_rate_card(Path(r))
    assert time.perf_counter() - t0 < 5


NET = "net:\n  places: {a: 1, b: 0}\n  transitions:\n    - id: t\n      inputs: [a]\n      outputs: [b]\n"


@pytest.mark.parametrize("path", ["/dev/stdin", "/proc/self/fd/0"])
def test_standard_input_piped_in_is_still_read(tmp_path: Path, path: str) -> None:
    if not Path(path).exists():
        pytest.skip(f"no {path} here")
    for command, text in (("validate", NET), ("analyze", "<pnml><net id='n'/></pnml>")):
        done = subprocess.run(
            [sys.executable, "-m", "fluxnb", command, path],
            input=text,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr


def test_analyze_names_an_odd_yaml_path_for_what_it_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "d.yaml").mkdir()
    code, err = cli(capsys, "analyze", str(tmp_path / "d.yaml"))
    assert code == 2 and "is a directory" in err and "no such" not in err
    code, err = cli(capsys, "analyze", str(tmp_path / "missing.yaml"))
    assert code == 2 and "no such manifest file" in err


# ---------------------------------------------------------------- PNML ids and numbers

DUP = """<?xml version="1.0" encoding="UTF-8"?>
<pnml><net id="n" type="http://www.pnml.org/version-2009/grammar/ptnet"><page id="pg">
<place id="p"><initialMarking><text>1</text></initialMarking></place>
<place id="p"/>
<transition id="p"/>
<transition id="t"/>
<arc id="a" source="p" target="t"/>
<arc id="a" source="t" target="p"/>
</page></net></pnml>
"""


def test_pnml_with_duplicate_ids_is_refused_naming_the_id_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It used to be analysed as a net whose token was gone (bound 0, exit 0)."""
    path = tmp_path / "dupid.pnml"
    path.write_text(DUP)
    with pytest.raises(ManifestError) as info:
        read_pnml(path)
    found = [(p.kind, p.path, p.line) for p in info.value.problems]
    assert found == [("duplicate_id", "p", 4), ("duplicate_id", "p", 5), ("duplicate_id", "a", 8)]
    assert "taken by a place (line 3)" in info.value.problems[1].message
    code, err = cli(capsys, "analyze", str(path))
    assert code == 2 and "dupid.pnml:4" in err and "'p'" in err and "'a'" in err


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ('<place id="x"/><referencePlace id="x" ref="x"/>', "referencePlace"),
        ('<transition id="x"/><arc id="x" source="x" target="x"/>', "arc"),
    ],
)
def test_pnml_ids_are_one_space(body: str, kind: str) -> None:
    with pytest.raises(ManifestError) as info:
        read_pnml(f'<pnml><net id="n">{body}</net></pnml>')
    assert info.value.kind == "duplicate_id" and kind in info.value.problems[0].message


@pytest.mark.parametrize(
    ("marking", "says"),
    [
        ("9" * 5000, "too large: 5,000 digits, at most 4,300"),
        ("5_000", "must be a whole number"),
        ("\u0661\u0662\u0663", "must be a whole number"),  # Arabic-Indic 123
    ],
)
def test_pnml_numbers_are_plain_ascii_digits(marking: str, says: str) -> None:
    text = f'<pnml><net id="n"><place id="p"><initialMarking><text>{marking}</text></initialMarking></place></net></pnml>'
    with pytest.raises(ManifestError, match=says) as info:
        read_pnml(text)
    assert info.value.kind == "bad_value"


def test_a_net_manifest_refuses_a_transition_named_like_a_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "net:\n  places: {a: 1, t: 0}\n  transitions:\n    - id: t\n      inputs: [a]\n      outputs: [t]\n"
    with pytest.raises(ManifestError) as info:
        load_net(text)
    problem = info.value.problems[0]
    assert (problem.kind, problem.line) == ("duplicate_id", 4)
    assert "also a place" in problem.message


# ---------------------------------------------------------------- rate cards and quantities


def test_rate_card_yaml_problems_name_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "card.yaml"
    path.write_text(
        "rate_card:\n  currency: EUR\n  prices:\n    - unit: x\n      price: '1'\n   bad: [\n"
    )
    with pytest.raises(BillingError, match=r"card\.yaml:6:4"):
        read_rate_card(path)
    path.write_text(laughs(top="rate_card"))
    with pytest.raises(BillingError) as info:
        read_rate_card(path)
    assert "card.yaml:" in str(info.value) and "to one document" in str(info.value)
    assert "manifest" not in str(info.value)


@pytest.mark.parametrize("text", ["\u0661\u0662\u0663", "5_000", " 12", "1_0e3", "NaN", "\u0661.5"])
def test_quantities_and_prices_are_plain_ascii_decimals(text: str) -> None:
    """Decimal() took '١٢٣' as 123 and '5_000' as 5000: metered and billed so."""
    with pytest.raises(BillingError, match="ASCII digits"):
        quantity(text)
    if text != " 12":  # prices are stripped: ' 12' is 12
        with pytest.raises(BillingError, match="ASCII digits"):
            decimal(text, "price")
    assert quantity("250.5") == Decimal("250.5") and quantity("-1.") == Decimal(-1)
    assert decimal(" 0.25 ", "price") == Decimal("0.25")


def test_run_seed_help_says_it_seeds_random_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--choice random" in out.rsplit("--seed SEED", 1)[1].split("--executor", 1)[0]
