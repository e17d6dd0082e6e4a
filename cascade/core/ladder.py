"""The ladder policy: a pure function of (plan, task facts, history, money) that names the next
attempt or why the run stops, with every reason and every rung it passed over. No I/O, so it is
table-tested; the engine only carries out what it says.

For each step it decides: where a task starts (routing, `--start-at`), how long it stays on a
rung (`attempts`), what a fault asks for (wait and retry, climb to a larger context window,
stop), when infrastructure is retried (never the model's fault), which rungs are skipped
(learned from history, a too-small context window, the rung's budget), and when the task's or
batch's budget ends the run before a call could overspend it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from cascade.config import BudgetConfig, PolicyConfig, RungConfig
from cascade.core.budget import Money, over_rung, over_task
from cascade.core.routing import Lane, Route, TaskFacts, route, start_index
from cascade.errors import ModelAction
from cascade.records import Alternative, Decision, DecisionKind, RunStatus

__all__ = [
    "Plan", "SkipStats", "Step", "Stop", "Tried", "decision", "next_step", "start_index"
]  # fmt: skip


@dataclass(frozen=True)
class SkipStats:
    """Learned from past runs of similar tasks: how often this rung verified."""

    tried: int
    verified: int
    similar: str = "all tasks"  # which tasks counted, e.g. "label bug"
    unproven: int = 0  # passed every check but nothing proved it: counted apart, not verified


@dataclass(frozen=True)
class Plan:
    """What the policy knows that does not change during a run."""

    ladder: tuple[RungConfig, ...]
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    lane: Lane | None = None  # where the task's workflow starts it, and its ceiling
    start_at: str | None = None
    windows: Mapping[str, int | None] = field(default_factory=dict)  # rung -> context window
    skips: Mapping[str, SkipStats] = field(default_factory=dict)  # rung -> learned stats
    spent_before: float = 0.0  # what earlier stages of the run spent (the reproduce stage)
    # `[reproduce] independent`: models that wrote the only proving test may not write the fix.
    exclude_models: frozenset[str] = frozenset()
    # Why a search rung (`repair/mutate`) cannot run on this task ("": it can).
    unsearchable: str = ""


@dataclass(frozen=True)
class Tried:
    """What the policy needs to know of one finished attempt."""

    rung: str
    status: str  # an AttemptStatus
    why: str = ""  # short: the failing evaluators, the edit error, the provider fault
    action: ModelAction | None = None  # for provider errors: what the fault asks for
    attempt: int = 1
    retry: int = 0
    fault: str = ""  # a FaultKind, for provider errors
    retry_after: float | None = None
    cost_usd: float = 0.0


@dataclass(frozen=True)
class Step:
    rung: RungConfig
    attempt: int  # 1-based within the rung
    reason: str
    kind: DecisionKind = "start"
    retry: int = 0
    wait_s: float = 0.0
    escalation: str = ""  # on a climb: why the previous rung was left
    route: str = ""
    rejected: tuple[Alternative, ...] = ()
    estimate: float = 0.0  # upper bound of what the step's calls may cost


@dataclass(frozen=True)
class Stop:
    status: RunStatus
    reason: str


def next_step(
    plan: Plan,
    facts: TaskFacts,
    history: Sequence[Tried],
    estimates: Mapping[str, float] | None = None,
    batch_committed: float | None = None,
) -> Step | Stop:
    """The next attempt, or why the run is over. `estimates` maps a rung to the upper-bound
    cost of one call with the prompt it would get now; `batch_committed` is what the batch's
    shared purse has spent or reserved (None: this task alone)."""
    way = route(plan.ladder, plan.lane, plan.start_at)
    go = _Chooser(plan, way, history, estimates or {}, batch_committed)
    if not history:
        return go.enter(way.start, "start", way.because, rejected=way.rejected)
    last = history[-1]
    round_ = _last_round(history)
    if any(t.status == "verified" for t in round_):
        return Stop("verified", f"verified on {last.rung!r}")
    if any(t.status == "accepted" for t in round_):
        return Stop("verified", f"a reproduction written on {last.rung!r} was accepted")
    unproven = next((t for t in round_ if t.status == "unproven"), None)
    if unproven is not None:  # no later rung can prove it: the proof does not depend on them
        return Stop("unproven", f"{unproven.why} (on {last.rung!r})")
    stopped = next((t for t in round_ if t.action == "stop"), None)
    if stopped is not None:
        return Stop("error", f"stopped: {stopped.why}")
    index = [r.name for r in plan.ladder].index(last.rung)
    rung = plan.ladder[index]
    if last.status == "infra_error":
        streak = _streak(history, lambda t: t.status == "infra_error")
        if streak > plan.policy.infra_retries:
            return Stop("error", f"infrastructure failed {streak} times in a row: {last.why}")
        why = (
            f"retry {rung.name!r}: infrastructure fault, not the model's: retry "
            f"{streak}/{plan.policy.infra_retries} with the same answer: {last.why}"
        )
        return Step(rung, last.attempt, why, "infra_retry", last.retry + 1, route=way.source)
    if last.status == "provider_error":
        return _after_fault(go, index, history)
    used = max(t.attempt for t in history if t.rung == rung.name)
    if used < rung.attempts:
        why = f"{used}/{rung.attempts} attempts used: {last.why}"
        return go.enter(index, "retry", why, attempt=used + 1)
    return go.climb(index, f"{rung.name!r} {used} attempt(s) failed: {last.why}")


def _after_fault(go: _Chooser, index: int, history: Sequence[Tried]) -> Step | Stop:
    last, rung, policy = history[-1], go.plan.ladder[index], go.plan.policy
    fault = last.fault or "provider fault"
    if last.action == "escalate" and last.fault == "context_window":
        window = go.plan.windows.get(rung.name)
        why = f"context window of {rung.name!r} ({_tokens(window)}) exceeded: {last.why}"
        return go.climb(index, why, larger_than=window or 0)
    if last.action != "retry":
        return go.climb(index, f"provider fault on {rung.name!r}: {last.why}")
    streak = _streak(
        history,
        lambda t: t.status == "provider_error" and (t.rung, t.attempt) == (rung.name, last.attempt),
        rounds=True,
    )
    wait, cap = last.retry_after, policy.retry_wait_cap_s
    if wait is not None and wait > cap:
        why = (
            f"{fault} on {rung.name!r}: the provider asks to wait {wait:g}s, more than "
            f"retry_wait_cap_s {cap:g}s, so the ladder climbs at once"
        )
        return go.climb(index, why)
    if streak > policy.provider_retries:
        return go.climb(index, f"{fault} on {rung.name!r} persisted through {streak} tries")
    how = "as Retry-After asks" if wait is not None else "backoff"
    if wait is None:
        wait = min(policy.backoff_s * 2 ** (streak - 1), cap)
    why = (
        f"{fault}, retry {streak}/{policy.provider_retries} of the same attempt "
        f"after {wait:g}s ({how}): {last.why}"
    )
    return go.enter(
        index, "fault_retry", why, attempt=last.attempt, retry=last.retry + 1, wait_s=wait
    )


_HEAD = {"start": "start at", "climb": "climb to", "retry": "retry", "fault_retry": "retry"}


class _Chooser:
    """Picks the rung to enter: the one asked for, or the first above it that passes the
    checks (learned skip, context window, the rung's budget); or stops for the task's or the
    batch's budget."""

    def __init__(
        self,
        plan: Plan,
        way: Route,
        history: Sequence[Tried],
        estimates: Mapping[str, float],
        batch_committed: float | None,
    ) -> None:
        self.plan, self.way, self.history = plan, way, history
        self.estimates, self.batch_committed = estimates, batch_committed

    def climb(self, index: int, escalation: str, larger_than: int = 0) -> Step | Stop:
        if index + 1 > self.way.ceiling:
            if self.way.ceiling < len(self.plan.ladder) - 1:
                top = self.plan.ladder[self.way.ceiling].name
                return Stop("exhausted", f"{escalation}; {self.way.source} caps it at {top!r}")
            return Stop("exhausted", f"the ladder is exhausted: {escalation}")
        return self.enter(index + 1, "climb", escalation, larger_than=larger_than)

    def enter(
        self,
        index: int,
        kind: DecisionKind,
        because: str,
        *,
        rejected: tuple[Alternative, ...] = (),
        attempt: int = 1,
        retry: int = 0,
        wait_s: float = 0.0,
        larger_than: int = 0,
    ) -> Step | Stop:
        passed: list[Alternative] = []
        fresh = kind in ("start", "climb")
        for at in range(index, self.way.ceiling + 1):
            rung = self.plan.ladder[at]
            why_not = self._unfit(rung, fresh, at == self.way.ceiling, larger_than)
            estimate = self.estimates.get(rung.name, 0.0) * rung.samples
            money = self._money(rung.name)
            over = why_not or over_rung(rung, money, estimate)
            if over and not fresh:  # the rung cannot afford another try: it is done
                return self.climb(at, over)
            if over:
                passed.append(Alternative(rung=rung.name, why=over))
                continue
            over = over_task(self.plan.budget, rung.name, money, estimate)
            if over:
                return Stop("budget_exhausted", over)
            why = f"{_HEAD[kind]} {rung.name!r}: {because}"
            if passed:
                why += "; passed over " + "; ".join(f"{a.rung!r} ({a.why})" for a in passed)
            escalation = because if kind == "climb" else ""
            first = at == index
            return Step(
                rung, attempt if first else 1, why, kind, retry if first else 0,
                wait_s if first else 0.0, escalation, self.way.source,
                rejected + tuple(passed), estimate,
            )  # fmt: skip
        if any(a.why.startswith("budget:") for a in passed):
            return Stop(
                "budget_exhausted",
                next(a.why for a in reversed(passed) if a.why.startswith("budget:")),
            )
        gone = "; ".join(f"{a.rung!r}: {a.why}" for a in passed)
        return Stop("exhausted", f"the ladder is exhausted: {because}; passed over {gone}")

    def _unfit(self, rung: RungConfig, fresh: bool, last_chance: bool, larger_than: int) -> str:
        if rung.is_repair and self.plan.unsearchable:
            return self.plan.unsearchable
        if rung.model in self.plan.exclude_models:
            return (
                f"its model {rung.model} wrote the only proving test, and [reproduce] "
                "independent = true asks for a fix by another model"
            )
        window = self.plan.windows.get(rung.name)
        if fresh and larger_than and window is not None and window <= larger_than:
            return f"context window {_tokens(window)}, not larger than {_tokens(larger_than)}"
        if fresh and not last_chance:
            return _learned_skip(self.plan, rung)
        return ""

    def _money(self, rung: str) -> Money:
        return Money(
            spent_task=self.plan.spent_before + sum(t.cost_usd for t in self.history),
            spent_rung=sum(t.cost_usd for t in self.history if t.rung == rung),
            batch_committed=self.batch_committed,
        )


def decision(
    step: Step, facts: TaskFacts, tokens: int, notes: Sequence[str] = (), *, local: bool = False
) -> Decision:
    """The step as the attempt record keeps it."""
    return Decision(
        kind=step.kind,
        why=step.reason,
        escalation=step.escalation,
        route=step.route,
        rejected=step.rejected,
        labels=facts.labels,
        size=facts.size,
        estimated_prompt_tokens=tokens,
        estimated_cost_usd=round(step.estimate, 8),
        wait_s=step.wait_s,
        notes=tuple(notes),
        local=local,
    )


def _learned_skip(plan: Plan, rung: RungConfig) -> str:
    cfg = plan.policy.learned_skip
    stats = plan.skips.get(rung.name)
    if not cfg.enabled or stats is None or rung.name == plan.start_at:
        return ""
    # A task that ended unproven there says nothing of the rung: nothing could prove any fix.
    judged = stats.tried - stats.unproven
    if judged < cfg.min_tasks or stats.verified >= cfg.min_success * judged:
        return ""
    return (
        f"learned skip: verified {stats.verified} of the last {judged} similar tasks "
        f"({stats.similar}), below min_success {cfg.min_success:.0%}"
    )


def _last_round(history: Sequence[Tried]) -> list[Tried]:
    """The trailing attempts of one round: same rung, attempt and retry (the samples)."""
    last = history[-1]
    key = (last.rung, last.attempt, last.retry)
    out: list[Tried] = []
    for t in reversed(history):
        if (t.rung, t.attempt, t.retry) != key:
            break
        out.append(t)
    return out


def _streak(
    history: Sequence[Tried], test: Callable[[Tried], bool], *, rounds: bool = False
) -> int:
    """How many trailing attempts (or rounds, by retry number) pass `test`."""
    seen: list[tuple[str, int, int]] = []
    for t in reversed(history):
        if not test(t):
            break
        key = (t.rung, t.attempt, t.retry)
        if not rounds or key not in seen:
            seen.append(key)
    return len(seen)


def _tokens(window: int | None) -> str:
    return "unknown" if window is None else f"{window} tokens"
