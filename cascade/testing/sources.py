"""An issue source held in memory: the issues a test builds, served through the `IssueSource`
protocol without files or a network."""

from __future__ import annotations

import builtins
from collections.abc import Sequence

from cascade.errors import IssueError
from cascade.records import Issue


class MemoryIssueSource:
    def __init__(self, issues: Sequence[Issue]) -> None:
        self._issues = {i.id: i for i in issues}

    def get(self, issue_id: str) -> Issue:
        if issue_id not in self._issues:
            raise IssueError(f"no issue {issue_id!r} in memory")
        return self._issues[issue_id]

    def list(self, query: str = "") -> builtins.list[Issue]:
        return [i for i in self._issues.values() if query.lower() in f"{i.id} {i.title}".lower()]
