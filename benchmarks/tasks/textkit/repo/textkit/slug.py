"""URL slugs from arbitrary text: ASCII, lowercase, words joined by a separator."""

from __future__ import annotations

import re
import unicodedata

_NON_WORD = re.compile(r"[^a-z0-9]+")


def ascii_fold(text: str) -> str:
    """Strip accents and drop what has no ASCII form: 'Crème brûlée' -> 'Creme brulee'."""
    normalized = unicodedata.normalize("NFKD", text)
    return normalized.encode("ascii", "ignore").decode("ascii")


def slugify(text: str, sep: str = "-", max_length: int | None = None) -> str:
    """Lowercase ASCII words of `text` joined by `sep`.

    With `max_length`, the slug is at most that long, cut at a word boundary; a first word
    longer than `max_length` is cut itself.
    """
    if not sep:
        raise ValueError("sep must not be empty")
    if max_length is not None and max_length < 1:
        raise ValueError(f"max_length must be positive, got {max_length}")
    words = _NON_WORD.split(ascii_fold(text).lower())
    slug = sep.join(w for w in words if w)
    if max_length is not None and len(slug) > max_length:
        slug = slug[:max_length]
    return slug


def unique_slug(text: str, taken: set[str], sep: str = "-") -> str:
    """A slug of `text` not in `taken`: `title`, then `title-2`, `title-3`, ..."""
    base = slugify(text, sep=sep) or "item"
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}{sep}{n}"
    return candidate
