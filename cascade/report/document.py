"""A report as a small document — sections of text, lists, tables and images — so the Markdown
and the HTML page say the same things from one source (`cascade.report.sections` builds it;
`render` and `page` write it). Every string in it is plain text: each writer escapes it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote


@dataclass(frozen=True)
class Link:
    text: str
    href: str  # relative to the report's folder, already URL-quoted (`relative_href`)


@dataclass(frozen=True)
class Mark:
    """A status that passes or fails (a run's proof, say): shown with its colour in HTML."""

    text: str
    ok: bool


Cell = str | Link | Mark | tuple[Link, ...]


@dataclass(frozen=True)
class Table:
    head: tuple[str, ...]
    rows: list[tuple[Cell, ...]]
    right: frozenset[int] = frozenset()  # columns of numbers, aligned right
    id: str = ""


@dataclass(frozen=True)
class Text:
    text: str
    strong: bool = False
    id: str = ""


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Images:
    files: tuple[Path, ...]  # PNGs in the report's folder
    skipped: tuple[str, ...] = ()  # why a chart (or every chart) is not there


@dataclass(frozen=True)
class Code:
    """Text to copy as it is (a ready config block): fenced in Markdown, <pre> in HTML."""

    text: str
    language: str = ""


Block = Text | Bullets | Table | Images | Code


@dataclass(frozen=True)
class Section:
    title: str  # "" for the lead, before the first heading
    blocks: tuple[Block, ...]
    id: str = ""


@dataclass(frozen=True)
class Document:
    title: str
    sections: list[Section] = field(default_factory=list)


def relative_href(target: str | Path, base: Path) -> str:
    """`target` as a relative link from the folder `base`, each path segment URL-quoted."""
    relative = os.path.relpath(Path(target), base)
    return "/".join(quote(part) for part in Path(relative).parts)
