"""Budgets: a rung's price, an upper-bound estimate of the next call made before the call, the
checks the policy runs against the per-rung, per-task and per-batch caps, and the purse that
tasks of one batch share. Apart from the purse's counters, pure arithmetic."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cascade.config import BudgetConfig, RungConfig


@dataclass(frozen=True)
class Price:
    """What one token costs on a rung, and how many the model reads at most."""

    input_cost_per_token: float = 0.0
    output_cost_per_token: float = 0.0
    max_input_tokens: int | None = None  # None: unknown
    known: bool = False  # False: no price in the config or litellm's map; shown as local, $0

    @property
    def local(self) -> bool:
        """Free to call: a local model, priced 0 in the config or unknown to litellm's map."""
        return not (self.input_cost_per_token or self.output_cost_per_token)


def override_price(rung: RungConfig) -> Price:
    """The rung's own prices, without asking litellm: the default for engines built in tests."""
    known = rung.input_cost_per_token is not None or rung.output_cost_per_token is not None
    return Price(
        input_cost_per_token=rung.input_cost_per_token or 0.0,
        output_cost_per_token=rung.output_cost_per_token or 0.0,
        max_input_tokens=rung.max_input_tokens,
        known=known,
    )


def estimate_cost(price: Price, prompt_tokens: int, max_tokens: int) -> float:
    """An upper bound for one call: the prompt at the input price and the rung's `max_tokens`
    (which the provider enforces) at the output price. Spending is never under-estimated, so a
    budget is never overspent by a call that was allowed."""
    return prompt_tokens * price.input_cost_per_token + max_tokens * price.output_cost_per_token


@dataclass(frozen=True)
class Money:
    """What the policy knows of money before the next call."""

    spent_task: float = 0.0
    spent_rung: float = 0.0
    batch_committed: float | None = None  # the shared purse's spent + reserved, if any


def over_rung(rung: RungConfig, money: Money, estimate: float) -> str:
    """Why a call of `estimate` would break the rung's own cap, or ""."""
    cap = rung.max_cost_usd
    if cap is None or money.spent_rung + estimate <= cap:
        return ""
    return (
        f"budget: {rung.name!r} has spent ${money.spent_rung:.4f} of its max_cost_usd "
        f"${cap:.4f}; the next call may cost up to ${estimate:.4f}"
    )


# How a stop for the batch's cap reads (`cascade report --ladders` tells it from a task's own).
BATCH_CAP = "the batch has committed"


def over_task(budget: BudgetConfig, rung: str, money: Money, estimate: float) -> str:
    """Why a call of `estimate` on `rung` would break the task's or the batch's cap, or ""."""
    cap = budget.max_cost_usd
    if cap is not None and money.spent_task + estimate > cap:
        return (
            f"budget: the task has spent ${money.spent_task:.4f} of its max_cost_usd "
            f"${cap:.4f}; the next call on {rung!r} may cost up to ${estimate:.4f}"
        )
    batch = budget.batch_max_cost_usd
    committed = money.spent_task if money.batch_committed is None else money.batch_committed
    if batch is not None and committed + estimate > batch:
        return (
            f"budget: {BATCH_CAP} ${committed:.4f} of its batch_max_cost_usd "
            f"${batch:.4f}; the next call on {rung!r} may cost up to ${estimate:.4f}"
        )
    return ""


class Purse:
    """Money shared by the tasks of a batch. Each call reserves its estimate before it is made
    and settles with the actual cost after, so concurrent tasks cannot together overspend:
    anyio tasks switch only at awaits, and check-then-reserve has none."""

    def __init__(self, limit: float | None = None) -> None:
        self.limit = limit
        self.spent = 0.0
        self.reserved = 0.0

    @property
    def committed(self) -> float:
        return self.spent + self.reserved

    def reserve(self, amount: float) -> float:
        self.reserved += amount
        return amount

    def hold(self, amount: float) -> bool:
        """Reserve `amount` unless that takes what is committed past the limit (then nothing is
        reserved): the check and the reservation as one step, for purses that tasks share
        across processes, where another task can reserve between a read and a `reserve`."""
        if self.limit is not None and amount > 0 and self.committed + amount > self.limit:
            return False
        self.reserve(amount)
        return True

    def settle(self, reserved: float, actual: Sequence[float]) -> None:
        self.reserved = max(self.reserved - reserved, 0.0)
        self.spent += sum(actual)


def with_purse(budget: BudgetConfig, purse: Purse | None) -> BudgetConfig:
    """The budget with the purse's own limit as the batch cap (the lower of the two)."""
    if purse is None or purse.limit is None:
        return budget
    caps = [c for c in (budget.batch_max_cost_usd, purse.limit) if c is not None]
    return budget.model_copy(update={"batch_max_cost_usd": min(caps)})
