"""Counts in words: ``plural(1, "firing")`` is ``"1 firing"``, ``plural(2, "firing")``
``"2 firings"``. Every summary and repr that shows a count says it through this."""

from __future__ import annotations

#: Words whose plural is not the word plus "s".
_IRREGULAR = {"mismatch": "mismatches", "process": "processes", "this": "these"}


def plural(n: int, word: str, many: str | None = None) -> str:
    """``n`` and ``word``, in the plural unless ``n`` is 1 (``many`` overrides the plural)."""
    if n == 1:
        return f"{n} {word}"
    return f"{n} {many or _IRREGULAR.get(word, word + 's')}"
