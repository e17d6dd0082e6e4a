"""The driver's desk in a cluster batch: a Ray actor pinned to the driver's node that holds the
batch's purse (every node's task reserves and settles its model calls here, so the batch's caps
hold across nodes) and queues what the driver shows and counts as tasks go (where each task
runs, each attempt's cost). Plain Python: `cascade.replay.cluster` makes it an actor, and this
module imports no Ray."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from cascade.core.budget import Purse

DeskEvent = tuple[Literal["node", "cost"], str, str | float]  # (kind, run id, node | cost)


class Desk:
    """One batch's shared purse and event queue; one actor per batch, the driver its owner."""

    def __init__(self, limit: float | None, spent: float) -> None:
        self.purse = Purse(limit)
        self.purse.spent = spent
        self.events: list[DeskEvent] = []

    def committed(self) -> float:
        return self.purse.committed

    def reserve(self, amount: float) -> float:
        return self.purse.reserve(amount)

    def hold(self, amount: float) -> bool:
        return self.purse.hold(amount)

    def settle(self, reserved: float, actual: Sequence[float]) -> None:
        self.purse.settle(reserved, actual)

    def started(self, run_id: str, node: str) -> None:
        self.events.append(("node", run_id, node))

    def cost(self, run_id: str, amount: float) -> None:
        self.events.append(("cost", run_id, amount))

    def drain(self) -> list[DeskEvent]:
        events, self.events = self.events, []
        return events


class RemotePurse(Purse):
    """A node's view of the desk's purse: every read and change is a call to the actor, made
    when the engine asks (blocking for a round trip), so what a task sees committed includes
    every other node's reservations, and a call's estimate is held (`hold`) only if it still
    fits."""

    def __init__(self, desk: Any, limit: float | None) -> None:
        super().__init__(limit)
        self._desk = desk

    @property
    def committed(self) -> float:
        return float(_get(self._desk.committed.remote()))

    def reserve(self, amount: float) -> float:
        return float(_get(self._desk.reserve.remote(amount)))

    def hold(self, amount: float) -> bool:
        """Checked and reserved in one call to the actor, which serves one call at a time: two
        nodes cannot both take the last of the cap."""
        return bool(_get(self._desk.hold.remote(amount)))

    def settle(self, reserved: float, actual: Sequence[float]) -> None:
        _get(self._desk.settle.remote(reserved, list(actual)))


def _get(ref: Any) -> Any:
    import ray

    return ray.get(ref)
