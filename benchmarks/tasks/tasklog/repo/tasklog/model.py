"""Tasks: a numbered to-do item with a title, an optional due date, tags and a priority."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date

PRIORITIES = ("low", "normal", "high")


@dataclass(frozen=True)
class Task:
    id: int
    title: str
    due: date | None = None
    tags: tuple[str, ...] = ()
    priority: str = "normal"
    done: bool = False

    def __post_init__(self) -> None:
        if self.priority not in PRIORITIES:
            raise ValueError(f"priority must be one of {', '.join(PRIORITIES)}")
        if not self.title.strip():
            raise ValueError("a task needs a title")

    def complete(self) -> Task:
        return replace(self, done=True)

    def has_tag(self, tag: str) -> bool:
        """Whether the task carries `tag`."""
        return tag in self.tags


def next_id(tasks: Iterable[Task]) -> int:
    return max((t.id for t in tasks), default=0) + 1


def find(tasks: list[Task], task_id: int) -> Task:
    """The task with this id."""
    for task in tasks:
        if task.id == task_id:
            return task
    return None


def parse_due(text: str) -> date:
    """A due date from the command line: an ISO date (`2024-05-01`)."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a due date: {text!r} (use YYYY-MM-DD)") from None
