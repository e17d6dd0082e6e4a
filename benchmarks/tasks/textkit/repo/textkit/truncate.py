"""Shorten text to a width, at a word boundary, with an ellipsis."""

from __future__ import annotations

ELLIPSIS = "…"


def truncate(text: str, width: int, ellipsis: str = ELLIPSIS) -> str:
    """`text` if it fits in `width` characters, else its longest word-boundary prefix that fits
    followed by `ellipsis` (the whole result is at most `width` characters).

    Whitespace before the cut is dropped. When not even the first word fits, the text is cut
    inside that word.
    """
    if width < len(ellipsis) + 1:
        raise ValueError(f"width {width} leaves no room for text besides {ellipsis!r}")
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    cut = text[:width]
    space = cut.rfind(" ")
    if space > 0:
        cut = cut[:space]
    return cut.rstrip() + ellipsis


def middle(text: str, width: int, ellipsis: str = ELLIPSIS) -> str:
    """Keep both ends and drop the middle: 'abcdefghij', 7 -> 'abc…hij'."""
    if len(text) <= width:
        return text
    room = width - len(ellipsis)
    if room < 2:
        raise ValueError(f"width {width} is too small for {ellipsis!r} and two ends")
    head = (room + 1) // 2
    tail = room - head
    return text[:head] + ellipsis + text[len(text) - tail :]
