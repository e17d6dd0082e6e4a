"""The task file: one task per line, `[x] ID | TITLE | DUE | TAGS | PRIORITY`, where DUE is an
ISO date or `-` and TAGS is a comma-separated list."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from tasklog.model import Task

SEP = " | "


def dumps(tasks: list[Task]) -> str:
    lines = []
    for t in tasks:
        mark = "[x]" if t.done else "[ ]"
        due = t.due.isoformat() if t.due else "-"
        fields = [f"{mark} {t.id}", t.title, due, ",".join(t.tags), t.priority]
        lines.append(SEP.join(fields))
    return "".join(line + "\n" for line in lines)


def loads(text: str) -> list[Task]:
    tasks = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        try:
            tasks.append(_task(line))
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}") from None
    return tasks


def _task(line: str) -> Task:
    parts = line.split(SEP)
    if len(parts) != 5:
        raise ValueError(f"expected 5 fields, got {len(parts)}")
    head, title, due, tags, priority = (p.strip() for p in parts)
    status, number = head[:3], head[3:].strip()
    if status not in ("[ ]", "[x]"):
        raise ValueError(f"bad status {status!r}")
    return Task(
        id=int(number),
        title=title,
        due=None if due == "-" else date.fromisoformat(due),
        tags=tuple(tag for tag in tags.split(",") if tag),
        priority=priority,
        done=status == "[x]",
    )


def load(path: Path) -> list[Task]:
    """The tasks in `path`; none when the file does not exist yet."""
    if not path.exists():
        return []
    return loads(path.read_text(encoding="utf-8"))


def save(path: Path, tasks: list[Task]) -> None:
    path.write_text(dumps(tasks), encoding="utf-8")
