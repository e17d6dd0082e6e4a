"""Tasks as aligned text rows for the terminal."""

from __future__ import annotations

from collections.abc import Sequence

from tasklog.model import Task

ELLIPSIS = "…"


def row(task: Task, id_width: int, title_width: int) -> str:
    mark = "[x]" if task.done else "[ ]"
    due = task.due.isoformat() if task.due else ""
    tags = " ".join(f"#{tag}" for tag in task.tags)
    title = task.title
    line = f"{mark} {task.id:>{id_width}}  {title:<{title_width}}  {due:<10}  {tags}"
    return line.rstrip()


def table(tasks: Sequence[Task], max_title: int = 40) -> str:
    """One row per task: status, id, title, due date and tags, in aligned columns. The
    title column is as wide as the longest title, but at most `max_title` characters:
    longer titles are cut and end with an ellipsis."""
    id_width = max(len(str(t.id)) for t in tasks)
    title_width = min(max(len(t.title) for t in tasks), max_title)
    return "\n".join(row(t, id_width, title_width) for t in tasks)
