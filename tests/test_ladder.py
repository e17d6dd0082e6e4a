"""The ladder policy as tables: (plan, task facts, history, money) in, the next step or the stop
out, with its reason. No I/O."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from cascade.config import BudgetConfig, LearnedSkipConfig, PolicyConfig, RungConfig
from cascade.core.ladder import Plan, SkipStats, Step, Stop, Tried, next_step
from cascade.core.routing import Lane, TaskFacts
from cascade.core.workflows import choose
from cascade.errors import UsageError
from cascade.workflow_config import WorkflowConfig, WorkflowLadder, WorkflowMatch

LADDER = (
    RungConfig(name="local", model="ollama_chat/q", attempts=2),
    RungConfig(name="cheap", model="gpt-4o-mini", attempts=1),
    RungConfig(name="strong", model="gpt-4o", attempts=2),
)
PLAN = Plan(LADDER)
NO_FACTS = TaskFacts()

R, V, E = "rejected", "verified", "edit_error"
P, INFRA = "provider_error", "infra_error"


def decide(
    history: list[Tried],
    plan: Plan = PLAN,
    facts: TaskFacts = NO_FACTS,
    estimates: Mapping[str, float] | None = None,
    batch: float | None = None,
) -> Step | Stop:
    return next_step(plan, facts, history, estimates, batch)


def short(result: Step | Stop) -> tuple[str, int] | str:
    if isinstance(result, Stop):
        return result.status
    return (result.rung.name, result.attempt)


# --- attempts, climbs and provider faults ------------------------------------------------


@pytest.mark.parametrize(
    ("history", "start_at", "expected"),
    [
        ([], None, ("local", 1)),
        ([], "strong", ("strong", 1)),
        ([Tried("local", R)], None, ("local", 2)),
        ([Tried("local", R), Tried("local", E, attempt=2)], None, ("cheap", 1)),
        (
            [Tried("local", R), Tried("local", R, attempt=2), Tried("cheap", R)],
            None,
            ("strong", 1),
        ),
        ([Tried("strong", R)], "strong", ("strong", 2)),
        ([Tried("strong", R), Tried("strong", R, attempt=2)], "strong", "exhausted"),
        ([Tried("local", R), Tried("local", V, attempt=2)], None, "verified"),
        # a transient fault retries the same attempt; it does not use one up
        ([Tried("local", P, action="retry", fault="server")], None, ("local", 1)),
        ([Tried("local", P, action="escalate", fault="refused")], None, ("cheap", 1)),
        ([Tried("local", P, action="stop", fault="auth")], None, "error"),
        ([Tried("cheap", P, action="escalate")], "cheap", ("strong", 1)),
        # infrastructure is never the model's fault: same attempt, gated again
        ([Tried("local", INFRA)], None, ("local", 1)),
        ([Tried("local", R), Tried("local", INFRA, attempt=2)], None, ("local", 2)),
    ],
)
def test_next_step(
    history: list[Tried], start_at: str | None, expected: tuple[str, int] | str
) -> None:
    plan = Plan(LADDER, start_at=start_at)
    assert short(decide(history, plan)) == expected


def test_reasons_say_why() -> None:
    first = decide([])
    assert isinstance(first, Step) and "cheapest" in first.reason and first.kind == "start"
    climb = decide([Tried("local", R, "gate failure: pytest failed", attempt=n) for n in (1, 2)])
    assert isinstance(climb, Step) and climb.kind == "climb"
    assert climb.reason == (
        "climb to 'cheap': 'local' 2 attempt(s) failed: gate failure: pytest failed"
    )
    assert climb.escalation == "'local' 2 attempt(s) failed: gate failure: pytest failed"
    override = decide([], Plan(LADDER, start_at="cheap"))
    assert isinstance(override, Step) and "--start-at, a human override" in override.reason
    assert override.route == "--start-at"
    assert [(a.rung, a.why) for a in override.rejected] == [
        ("local", "below 'cheap', where --start-at starts")
    ]


def test_unknown_start_rung_lists_the_ladder() -> None:
    with pytest.raises(UsageError, match="local, cheap, strong"):
        decide([], Plan(LADDER, start_at="huge"))


def test_infra_retries_are_bounded_and_then_stop_the_run() -> None:
    plan = Plan(LADDER, policy=PolicyConfig(infra_retries=2))
    history = [Tried("local", INFRA, "infrastructure fault: docker died")]
    step = decide(history, plan)
    assert isinstance(step, Step) and step.kind == "infra_retry" and step.retry == 1
    assert "not the model's" in step.reason
    history += [Tried("local", INFRA, retry=1), Tried("local", INFRA, retry=2)]
    stop = decide(history, plan)
    assert isinstance(stop, Stop) and stop.status == "error"
    assert "3 times in a row" in stop.reason


@pytest.mark.parametrize(
    ("retry_after", "streak", "expected", "wait"),
    [
        (7.0, 1, ("local", 1), 7.0),  # Retry-After within the cap: wait exactly that
        (None, 1, ("local", 1), 1.0),  # no header: backoff, doubling
        (None, 2, ("local", 1), 2.0),
        (None, 3, ("cheap", 1), 0.0),  # provider_retries=2 used up: next rung
        (120.0, 1, ("cheap", 1), 0.0),  # above the cap: climb at once, no wait
    ],
)
def test_rate_limits_wait_then_climb(
    retry_after: float | None, streak: int, expected: tuple[str, int], wait: float
) -> None:
    history = [
        Tried("local", P, "rate limited", "retry", 1, n, "rate_limit", retry_after)
        for n in range(streak)
    ]
    step = decide(history)
    assert short(step) == expected
    assert isinstance(step, Step) and step.wait_s == wait
    if retry_after == 120.0:
        assert "asks to wait 120s, more than retry_wait_cap_s 30s" in step.reason
        assert "climbs at once" in step.escalation
    if expected == ("local", 1):
        assert step.kind == "fault_retry" and step.retry == streak


def test_context_window_climbs_to_a_larger_window_only() -> None:
    ladder = (*LADDER, RungConfig(name="huge", model="gemini/gemini-2.5-pro"))
    windows = {"local": 8192, "cheap": 8192, "strong": 128000, "huge": 1048576}
    plan = Plan(ladder, windows=windows)
    fault = Tried("local", P, "too long", "escalate", fault="context_window")
    step = decide([fault], plan)
    assert short(step) == ("strong", 1)
    assert isinstance(step, Step)
    assert [(a.rung, a.why) for a in step.rejected] == [
        ("cheap", "context window 8192 tokens, not larger than 8192 tokens")
    ]
    assert "context window of 'local' (8192 tokens) exceeded" in step.escalation
    # the largest rung overflowing: nothing larger left
    top = Tried("huge", P, "too long", "escalate", fault="context_window")
    assert short(decide([top], plan)) == "exhausted"


# --- where a workflow starts a task --------------------------------------------------------

WORKFLOWS = (
    WorkflowConfig(
        name="security", match=WorkflowMatch(labels=("security",)),
        ladder=WorkflowLadder(start="strong"),
    ),
    WorkflowConfig(
        name="docs", match=WorkflowMatch(paths=("docs/**", "*.md")),
        ladder=WorkflowLadder(max="local"),
    ),
    WorkflowConfig(
        name="big", match=WorkflowMatch(min_size=4), ladder=WorkflowLadder(start="cheap")
    ),
)  # fmt: skip


def lane_for(facts: TaskFacts) -> Lane | None:
    """The lane the engine gives a task: its workflow's start and ceiling, and what matched."""
    flow, chosen = choose(WORKFLOWS, facts)
    if flow is None:
        return None
    return Lane(flow.name, flow.ladder.start, flow.ladder.max, "; ".join(chosen.matched))


@pytest.mark.parametrize(
    ("facts", "start_at", "expected", "route"),
    [
        (TaskFacts(labels=("security", "bug")), None, ("strong", 1), "workflow 'security'"),
        (TaskFacts(paths=("docs/a.md", "README.md")), None, ("local", 1), "workflow 'docs'"),
        (TaskFacts(paths=("docs/a.md", "src/x.py")), None, ("local", 1), "default"),
        (TaskFacts(size=5), None, ("cheap", 1), "workflow 'big'"),
        (TaskFacts(size=3), None, ("local", 1), "default"),
        (TaskFacts(labels=("security",)), "local", ("local", 1), "--start-at"),
    ],
    ids=["label", "every-path-docs", "one-path-outside", "big", "small", "start-at-overrides"],
)
def test_workflow_lanes_start_and_cap(
    facts: TaskFacts, start_at: str | None, expected: tuple[str, int], route: str
) -> None:
    step = decide([], Plan(LADDER, lane=lane_for(facts), start_at=start_at), facts)
    assert short(step) == expected
    assert isinstance(step, Step) and step.route == route


def test_override_says_which_workflow_it_overrode() -> None:
    facts = TaskFacts(labels=("security",))
    step = decide([], Plan(LADDER, lane=lane_for(facts), start_at="local"), facts)
    assert isinstance(step, Step)
    assert step.reason == (
        "start at 'local': --start-at, a human override "
        "(workflow 'security' would have started at 'strong')"
    )
    first = decide([], Plan(LADDER, lane=lane_for(facts)), facts)
    assert isinstance(first, Step)
    assert first.reason == "start at 'strong': workflow 'security' (label security)"


def test_docs_never_leave_the_cheap_rung() -> None:
    facts = TaskFacts(paths=("docs/guide.md",))
    plan = Plan(LADDER, lane=lane_for(facts))
    first = decide([], plan, facts)
    assert isinstance(first, Step)
    assert {a.rung for a in first.rejected} == {"cheap", "strong"}
    stop = decide([Tried("local", R), Tried("local", R, attempt=2)], plan, facts)
    assert isinstance(stop, Stop) and stop.status == "exhausted"
    assert "workflow 'docs' caps it at 'local'" in stop.reason


# --- learned skip ------------------------------------------------------------------------

SKIP_ON = PolicyConfig(learned_skip=LearnedSkipConfig(enabled=True, min_tasks=5, min_success=0.2))


@pytest.mark.parametrize(
    ("policy", "stats", "start_at", "expected"),
    [
        (SKIP_ON, {"local": SkipStats(10, 1, "label bug")}, None, ("cheap", 1)),
        (SKIP_ON, {"local": SkipStats(10, 2)}, None, ("local", 1)),  # 20% is not below
        (SKIP_ON, {"local": SkipStats(4, 0)}, None, ("local", 1)),  # too little evidence
        (PolicyConfig(), {"local": SkipStats(10, 0)}, None, ("local", 1)),  # off by default
        (SKIP_ON, {"cheap": SkipStats(10, 0)}, "cheap", ("cheap", 1)),  # the human said so
        (
            SKIP_ON,
            {"local": SkipStats(9, 0), "cheap": SkipStats(9, 0), "strong": SkipStats(9, 0)},
            None,
            ("strong", 1),  # the top rung is never skipped
        ),
    ],
)
def test_learned_skip(
    policy: PolicyConfig,
    stats: dict[str, SkipStats],
    start_at: str | None,
    expected: tuple[str, int],
) -> None:
    plan = Plan(LADDER, policy=policy, skips=stats, start_at=start_at)
    assert short(decide([], plan)) == expected


def test_learned_skip_is_logged_with_the_numbers() -> None:
    plan = Plan(LADDER, policy=SKIP_ON, skips={"local": SkipStats(10, 1, "label bug")})
    step = decide([], plan)
    assert isinstance(step, Step)
    why = "learned skip: verified 1 of the last 10 similar tasks (label bug), below min_success 20%"
    assert [(a.rung, a.why) for a in step.rejected] == [("local", why)]
    assert step.reason == f"start at 'cheap': the cheapest rung; passed over 'local' ({why})"
    # on a climb too
    climb = decide(
        [Tried("local", R), Tried("local", R, attempt=2)],
        Plan(LADDER, policy=SKIP_ON, skips={"cheap": SkipStats(6, 0)}),
    )
    assert short(climb) == ("strong", 1)


# --- budgets -----------------------------------------------------------------------------

PRICES = {"local": 0.0, "cheap": 0.01, "strong": 0.10}


@pytest.mark.parametrize(
    ("budget", "history", "batch", "expected"),
    [
        (BudgetConfig(max_cost_usd=1.0), [], None, ("local", 1)),
        # the next call could take the task over its cap: stop, do not overspend
        (
            BudgetConfig(max_cost_usd=0.15),
            [Tried("local", R), Tried("local", R, attempt=2), Tried("cheap", R, cost_usd=0.06)],
            None,
            "budget_exhausted",
        ),
        (
            BudgetConfig(max_cost_usd=0.17),
            [Tried("local", R), Tried("local", R, attempt=2), Tried("cheap", R, cost_usd=0.06)],
            None,
            ("strong", 1),
        ),
        # the batch's purse has committed most of its money elsewhere
        (BudgetConfig(batch_max_cost_usd=1.0), [Tried("local", R)], 0.95, ("local", 2)),
        (
            BudgetConfig(batch_max_cost_usd=1.0),
            [Tried("local", R), Tried("local", R, attempt=2)],
            0.995,
            "budget_exhausted",
        ),
    ],
)
def test_task_and_batch_budgets(
    budget: BudgetConfig, history: list[Tried], batch: float | None, expected: object
) -> None:
    plan = Plan(LADDER, budget=budget)
    assert short(decide(history, plan, estimates=PRICES, batch=batch)) == expected


def test_budget_stop_says_what_was_spent() -> None:
    plan = Plan(LADDER, budget=BudgetConfig(max_cost_usd=0.05))
    stop = decide([], Plan(LADDER, start_at="strong", budget=plan.budget), estimates=PRICES)
    assert isinstance(stop, Stop) and stop.status == "budget_exhausted"
    assert stop.reason == (
        "budget: the task has spent $0.0000 of its max_cost_usd $0.0500; "
        "the next call on 'strong' may cost up to $0.1000"
    )


def test_a_rung_budget_climbs_instead_of_stopping() -> None:
    ladder = (
        RungConfig(name="cheap", model="gpt-4o-mini", attempts=3, max_cost_usd=0.025),
        RungConfig(name="strong", model="gpt-4o"),
    )
    history = [Tried("cheap", R, cost_usd=0.01), Tried("cheap", R, attempt=2, cost_usd=0.01)]
    step = decide(history, Plan(ladder), estimates=PRICES)
    assert short(step) == ("strong", 1)
    assert isinstance(step, Step) and step.escalation.startswith("budget: 'cheap' has spent")
    # a rung whose one call is already over its cap is passed over at the start
    pricey = (RungConfig(name="cheap", model="m", max_cost_usd=0.001), ladder[1])
    first = decide([], Plan(pricey), estimates=PRICES)
    assert short(first) == ("strong", 1)
    assert isinstance(first, Step) and first.rejected[0].why.startswith("budget: 'cheap'")


def test_samples_multiply_the_estimate_and_a_verified_sample_ends_the_round() -> None:
    ladder = (RungConfig(name="cheap", model="m", samples=3), RungConfig(name="strong", model="n"))
    step = decide([], Plan(ladder), estimates=PRICES)
    assert isinstance(step, Step) and step.estimate == pytest.approx(0.03)
    stop = decide([], Plan(ladder, budget=BudgetConfig(max_cost_usd=0.02)), estimates=PRICES)
    assert short(stop) == "budget_exhausted"
    round_ = [Tried("cheap", R), Tried("cheap", V), Tried("cheap", "cancelled")]
    assert short(decide(round_, Plan(ladder))) == "verified"
    rejected = [Tried("cheap", R), Tried("cheap", E), Tried("cheap", R)]
    assert short(decide(rejected, Plan(ladder))) == ("strong", 1)


def test_learned_skip_leaves_unproven_tasks_out() -> None:
    # Issues without tests end unproven on the cheap rung whatever it does: they must not teach
    # the ladder to skip it.
    skip = PolicyConfig(learned_skip=LearnedSkipConfig(enabled=True, min_tasks=5))
    stats = {"local": SkipStats(tried=8, verified=1, unproven=6)}
    step = decide([], Plan(LADDER, policy=skip, skips=stats))
    assert isinstance(step, Step) and step.rung.name == "local"
    worse = {"local": SkipStats(tried=12, verified=1, unproven=6)}  # 1 of 6 judged: skipped
    step = decide([], Plan(LADDER, policy=skip, skips=worse))
    assert isinstance(step, Step) and step.rung.name == "cheap"
