"""Per cluster node (`cascade replay --executor ray`): how many tasks each node ran, verified and
ended in an error, what they cost and how long the node was busy with them. A batch replayed
locally names no node, and its report has no such table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from cascade.report.data import TaskResult

# A task whose done line names no node in a batch where others do: a run recovered from its
# sealed folder, or a part of the batch replayed locally. The ledger does not say which.
NO_NODE = "(not recorded)"


def node_rows(tasks: Sequence[TaskResult]) -> list[dict[str, Any]]:
    """One row a node, sorted by name; [] when no task names a node."""
    if not any(t.node for t in tasks):
        return []
    groups: dict[str, list[TaskResult]] = {}
    for task in tasks:
        groups.setdefault(task.node or NO_NODE, []).append(task)
    return [
        {
            "node": name,
            "tasks": len(members),
            "verified": sum(1 for t in members if t.outcome.status == "verified"),
            "errors": sum(1 for t in members if t.outcome.status == "error"),
            # fsum: the same in any task order, so a merged batch matches its whole
            "cost_usd": round(math.fsum(t.outcome.cost_usd for t in members), 8),
            "busy_s": round(math.fsum(t.outcome.duration_s for t in members), 3),
        }
        for name, members in sorted(groups.items())
    ]
