"""Case conversion between snake_case, camelCase and Title Case."""

from __future__ import annotations

import re

# Boundaries inside an identifier: lower->Upper ("fooBar") and letter/digit changes.
_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[\s_\-]+")
SMALL_WORDS = frozenset(
    {"a", "an", "and", "as", "at", "but", "by", "for", "in", "of", "on", "or", "the", "to"}
)


def split_words(text: str) -> list[str]:
    """The words of an identifier or phrase, case kept: 'parseHTTPHeader' -> [...]."""
    parts: list[str] = []
    for chunk in _SEPARATORS.split(text.strip()):
        if chunk:
            parts.extend(p for p in _BOUNDARY.split(chunk) if p)
    return parts


def snake_case(text: str) -> str:
    """'fooBar baz' -> 'foo_bar_baz'."""
    return "_".join(word.lower() for word in split_words(text))


def camel_case(text: str, upper_first: bool = False) -> str:
    """'foo_bar baz' -> 'fooBarBaz' (or 'FooBarBaz' with `upper_first`)."""
    words = [w.lower() for w in split_words(text)]
    if not words:
        return ""
    head = words[0].capitalize() if upper_first else words[0]
    return head + "".join(w.capitalize() for w in words[1:])


def title_case(text: str) -> str:
    """Capitalize every word of a phrase; whitespace between words is normalized to one space."""
    words = text.split()
    return " ".join(_capitalize(word) for word in words)


def _capitalize(word: str) -> str:
    # Keep the rest of the word as written: "iPhone" and "NASA" stay recognizable.
    return word[:1].upper() + word[1:]
