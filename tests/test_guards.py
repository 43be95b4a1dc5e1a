"""The guard language: what it evaluates, and what it refuses (it is never eval-ed)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from fluxnb import ManifestError
from fluxnb.spec import Guard, GuardError, GuardSyntaxError
from fluxnb.spec._net_manifest import load_net


@pytest.mark.parametrize(
    ("text", "token", "expected"),
    [
        ("token.words > 100", {"words": 120}, True),
        ("token.words > 100", {"words": 100}, False),
        ("token['lang'] in ['en', 'de'] and not token.draft", {"lang": "de", "draft": False}, True),
        ("len(token.items) >= 2 or token.vip", {"items": [1], "vip": True}, True),
        ("1 < token.n <= 3", {"n": 3}, True),
        ("1 < token.n <= 3", {"n": 4}, False),
        ("token.price * 2 - 1 == 19", {"price": 10}, True),
        ("max(token.a, token.b) % 2 == 1", {"a": 3, "b": 1}, True),
        ("token.user.age >= 18", {"user": {"age": 30}}, True),
        ("token.tags[0] == 'x'", {"tags": ["x"]}, True),
        ("token.status != None", {"status": "ok"}, True),
        ("token.score > 0.5", SimpleNamespace(score=0.7), True),
        ("-token.d < 0", {"d": 2}, True),
    ],
)
def test_guards_evaluate(text: str, token: object, expected: bool) -> None:
    assert Guard(text)(token) is expected


def test_tokens_by_place() -> None:
    g = Guard("tokens.review.ok and tokens['draft'].words > 10")
    assert g(None, {"review": {"ok": True}, "draft": {"words": 11}}) is True


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("__import__('os').system('x')", "only calls of"),
        ("__import__('os')", "calling '__import__'"),
        ("token.__class__", "fields starting with '_'"),
        ("open('/etc/passwd')", "calling 'open'"),
        ("token.items.pop()", "only calls of"),
        ("lambda: 1", "Lambda"),
        ("[x for x in token]", "ListComp"),
        ("secret > 1", "unknown name 'secret'"),
        ("token.a if token.b else 1", "IfExp"),
        ("token.a ** 1000000", "Pow"),
        ("b'bytes'", "constants"),
        ("len(token, key=1)", "without keywords"),
    ],
)
def test_guards_refuse_everything_else(text: str, reason: str) -> None:
    with pytest.raises(GuardSyntaxError) as info:
        Guard(text)
    assert reason in info.value.reason
    assert info.value.column == 1


def test_syntax_errors_have_a_column() -> None:
    with pytest.raises(GuardSyntaxError) as info:
        Guard("token.words >")
    assert "not an expression" in str(info.value)


def test_a_missing_field_is_a_clear_runtime_error() -> None:
    with pytest.raises(GuardError, match="no field 'words'"):
        Guard("token.words > 1")({"chars": 3})
    with pytest.raises(GuardError, match="TypeError"):
        Guard("token.words > 1")({"words": "many"})


def test_net_manifests_check_guards_when_loaded() -> None:
    text = """net:
  places: {a: 1, b: 0}
  transitions:
    - id: t
      inputs: [a]
      outputs: [b]
      guard: "token.__dict__"
"""
    with pytest.raises(ManifestError) as info:
        load_net(text)
    assert info.value.kind == "bad_guard" and info.value.line == 7
    machine = "states: [a, b]\ninitial_state: a\ntransitions:\n  - {id: t, from_states: [a], to_state: b, conditions: ['import os']}\n"
    with pytest.raises(ManifestError) as info2:
        load_net(machine)
    assert info2.value.kind == "bad_guard"
