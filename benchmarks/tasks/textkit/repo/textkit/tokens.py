"""Words and sentences of plain English text."""

from __future__ import annotations

import re

_WORD = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)*")
# A sentence ends at . ! or ? (possibly followed by one closing quote or
# bracket) when whitespace and then an uppercase letter, a digit or a quote follow.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))\s+(?=[\"'(\[A-Z0-9])")


def words(text: str) -> list[str]:
    """The words of `text`; an apostrophe inside a word keeps it whole ("don't")."""
    return _WORD.findall(text)


def word_count(text: str) -> int:
    return len(words(text))


def sentences(text: str) -> list[str]:
    """The sentences of `text`, stripped, in order."""
    text = " ".join(text.split())
    if not text:
        return []
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def frequencies(text: str) -> dict[str, int]:
    """How often each lowercased word occurs, most frequent first (ties alphabetically)."""
    counts: dict[str, int] = {}
    for w in words(text):
        l = w.lower()
        counts[l] = counts.get(l, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
