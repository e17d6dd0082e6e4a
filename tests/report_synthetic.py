"""A synthetic replay batch for the report's scaling tests: the data objects `cascade.report.data`
would read from a batch folder, for any number of tasks (replaying 1,000 real tasks would take an
hour), with a three-rung ladder, many labels and an always-strongest shadow. Seeded: the same
arguments give the same batch."""

from __future__ import annotations

import random

from cascade.records import Attempt, RunOutcome, Usage, Verdict
from cascade.report.data import ReportData, TaskResult

LADDER = ("local", "cheap", "strong")
MODELS = {"local": "ollama_chat/qwen2.5-coder", "cheap": "openai/gpt-4o-mini", "strong": "gpt-4o"}
PRICE = {"local": (0.0, 0.0), "cheap": (1.5e-7, 6e-7), "strong": (2.5e-6, 1e-5)}
# The chance that a rung's answer verifies; the shadow's strong rung alone does a little better
# (it never saw a cheaper rung's failed attempt), as a real one might.
SOLVES = {"local": 0.25, "cheap": 0.35, "strong": 0.6}


def _attempt(
    task: str, run: str, seq: int, rung: str, verified: bool, rng: random.Random
) -> Attempt:
    usage = Usage(prompt_tokens=rng.randint(1500, 9000), completion_tokens=rng.randint(100, 900))
    price_in, price_out = PRICE[rung]
    return Attempt(
        run_id=run, task_id=task, seq=seq, rung=rung, model=MODELS[rung], attempt=1,
        status="verified" if verified else "rejected", usage=usage,
        cost_usd=usage.prompt_tokens * price_in + usage.completion_tokens * price_out,
        duration_s=rng.uniform(2, 40),
        verdicts=(
            Verdict(evaluator="diff_scope", passed=True),
            Verdict(evaluator="pytest", passed=verified),
        ),
    )  # fmt: skip


def _task(
    task: str,
    ladder: tuple[str, ...],
    labels: tuple[str, ...],
    rng: random.Random,
    bonus: float = 0.0,
) -> TaskResult:
    run = f"{task}.r1"
    attempts: list[Attempt] = []
    for rung in ladder:
        verified = rng.random() < SOLVES[rung] + bonus
        attempts.append(_attempt(task, run, len(attempts) + 1, rung, verified, rng))
        if verified:
            break
    last = attempts[-1]
    outcome = RunOutcome(
        run_id=run, task_id=task, status="verified" if last.status == "verified" else "exhausted",
        run_dir="", base_commit="0" * 40, attempts=len(attempts),
        cost_usd=sum(a.cost_usd for a in attempts), duration_s=sum(a.duration_s for a in attempts),
        verified_rung=last.rung if last.status == "verified" else "",
    )  # fmt: skip
    return TaskResult(task, outcome, tuple(attempts), labels, source="synthetic", title=task)


def synthetic_batch(
    n: int = 1000,
    *,
    labels: int = 30,
    seed: int = 17,
    ladder: tuple[str, ...] = LADDER,
    shadow: bool = True,
) -> ReportData:
    """`n` finished tasks; each has one or two of `labels` labels (label-0 the most common)."""
    rng = random.Random(seed)
    names = [f"label-{i}" for i in range(labels)]
    weights = [1 / (i + 1) for i in range(labels)]
    data = ReportData(
        sources=[f"synthetic-{n}"], ladder=ladder, gate=("diff_scope", "pytest"),
        base_commits={"0" * 40}, models={r: MODELS[r] for r in ladder},
    )  # fmt: skip
    ids = [f"SYN-{i:04d}" for i in range(1, n + 1)]
    for task in ids:
        picked = tuple(sorted(set(rng.choices(names, weights, k=rng.randint(1, 2)))))
        data.tasks.append(_task(task, ladder, picked, rng))
        data.seen.add(task)
    data.planned = set(ids)
    if shadow:
        strongest = ReportData(sources=["synthetic-shadow"], ladder=(ladder[-1],))
        strongest.tasks = [_task(t.task_id, (ladder[-1],), t.labels, rng, 0.1) for t in data.tasks]
        data.shadows[f"strongest-{ladder[-1]}"] = strongest
    return data
