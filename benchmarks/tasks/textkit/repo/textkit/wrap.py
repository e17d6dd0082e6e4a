"""Greedy word wrapping and indentation for plain text paragraphs."""

from __future__ import annotations


def wrap(text: str, width: int) -> list[str]:
    """Split `text` into lines of at most `width` characters, breaking between words.

    Runs of whitespace count as one space. A word longer than `width` is not broken: it
    stands alone on its own line. An empty or blank text has no lines.
    """
    if width < 1:
        raise ValueError(f"width must be positive, got {width}")
    lines: list[str] = []
    line = ""
    for word in text.split():
        if not line:
            line = word
        elif len(line) + 1 + len(word) < width:
            line = f"{line} {word}"
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines


def fill(text: str, width: int) -> str:
    """`wrap` joined with newlines."""
    return "\n".join(wrap(text, width))


def indent(text: str, prefix: str, first: str | None = None) -> str:
    """Prefix every non-blank line; `first` (when given) replaces the prefix on line one."""
    out: list[str] = []
    for number, line in enumerate(text.split("\n")):
        lead = first if number == 0 and first is not None else prefix
        out.append(lead + line if line.strip() else line)
    return "\n".join(out)
