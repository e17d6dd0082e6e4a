"""Workflows: the path a task takes — what it is shown, what judges its patch, what must prove
it, who approves it, what it may spend, how it is delivered — chosen from what the task is
before any model is. Pure functions, table-tested: which workflow a task's facts match (the
first, in config order), why the others were passed over, and which stricter workflows the paths
learned later (the target tests' tracebacks, a patch's files) raise the judging to. Policy is
raised by what a task or patch turns out to touch, never lowered."""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import TypeVar

from cascade.config import BudgetConfig, RungConfig
from cascade.core.gate import Gate, base_name, settings_text
from cascade.core.reproduce import ReproduceStage
from cascade.core.routing import Lane, TaskFacts
from cascade.protocols import Evaluator
from cascade.records import Issue, PassedOver, WorkflowChoice
from cascade.workflow_config import (
    DEFAULT_WORKFLOW,
    Apply,
    Reproduce,
    Review,
    WorkflowConfig,
    WorkflowMatch,
)

_T = TypeVar("_T", bound=str)
_PATHISH = re.compile(r"[\w./-]+\.\w+")

REVIEW_ORDER: tuple[Review, ...] = ("none", "model", "human")
APPLY_ORDER: tuple[Apply, ...] = ("auto", "draft_pr", "comment")
REPRODUCE_ORDER: tuple[Reproduce, ...] = ("never", "missing", "always")


def issue_facts(issue: Issue, tracked: Iterable[str]) -> TaskFacts:
    """What is known of a task before any sandbox: its labels, the repository files its text and
    its tests name, and its scope's globs; its size is the count of files named."""
    known = set(tracked)
    text = "\n".join([issue.title, issue.body, *issue.tests])
    named: list[str] = []
    for match in _PATHISH.finditer(text):
        path = match.group(0).removeprefix("./")
        if path in known and path not in named:
            named.append(path)
    paths = tuple(named) + tuple(p for p in issue.scope.allow if p not in named)
    return TaskFacts(labels=issue.labels, paths=paths, size=len(named))


def conditions(match: WorkflowMatch, facts: TaskFacts) -> tuple[list[str], list[str]]:
    """The conditions of `match` that hold for `facts`, and those that do not, in words."""
    held: list[str] = []
    failed: list[str] = []
    if match.labels:
        common = sorted(set(match.labels) & set(facts.labels))
        said = f"label {', '.join(common or match.labels)}"
        (held if common else failed).append(said if common else f"no label {said[6:]}")
    if match.paths:
        outside = [p for p in facts.paths if not inside(p, match.paths)]
        ok = bool(facts.paths) and not outside
        where = ", ".join(match.paths)
        if ok:
            held.append(f"every path inside {where}")
        else:
            failed.append(f"{outside[0]} is outside {where}" if outside else "no paths known")
    if match.touches:
        hit = [p for p in facts.paths if inside(p, match.touches)]
        where = ", ".join(match.touches)
        (held if hit else failed).append(
            f"touches {where} ({', '.join(hit[:3])})" if hit else f"touches nothing in {where}"
        )
    if match.sized:
        low, high = match.min_size, match.max_size
        ok = (low is None or facts.size >= low) and (high is None or facts.size <= high)
        bounds = f"{low if low is not None else 0}..{high if high is not None else '∞'}"
        (held if ok else failed).append(f"size {facts.size} {'in' if ok else 'not in'} {bounds}")
    return held, failed


def holds(match: WorkflowMatch, facts: TaskFacts) -> tuple[bool, list[str], list[str]]:
    held, failed = conditions(match, facts)
    ok = bool(held) and (match.mode == "any" or not failed)
    return ok, held, failed


def choose(
    lanes: Sequence[WorkflowConfig], facts: TaskFacts
) -> tuple[WorkflowConfig | None, WorkflowChoice]:
    """The first workflow whose `match` holds (None: the default), with what held and why each
    workflow before it was passed over."""
    passed: list[PassedOver] = []
    for flow in lanes:
        ok, held, failed = holds(flow.match, facts)
        if ok:
            choice = WorkflowChoice(name=flow.name, matched=tuple(held), passed_over=tuple(passed))
            return flow, choice
        passed.append(PassedOver(workflow=flow.name, why="; ".join(failed) or "no condition held"))
    return None, WorkflowChoice(name=DEFAULT_WORKFLOW, matched=(), passed_over=tuple(passed))


def raisers(
    lanes: Sequence[WorkflowConfig], current: str, paths: Sequence[str]
) -> list[tuple[WorkflowConfig, str]]:
    """The workflows, other than `current`, whose path conditions (`touches`, `paths`) hold for
    `paths` — paths learned after the choice: each, with what it matched."""
    found: list[tuple[WorkflowConfig, str]] = []
    if not paths:
        return found
    for flow in lanes:
        match = flow.match
        if flow.name == current or not (match.touches or match.paths):
            continue
        if match.touches:
            hit = [p for p in paths if inside(p, match.touches)]
            if hit:
                found.append((flow, f"{', '.join(hit[:3])} inside {', '.join(match.touches)}"))
                continue
        if match.paths and all(inside(p, match.paths) for p in paths):
            found.append((flow, f"every path inside {', '.join(match.paths)}"))
    return found


@dataclass(frozen=True)
class Judging:
    """What a patch is held to after verdicts pass: the review it needs, how it may be
    delivered, and the proof the workflow asks for. Joined upward only (`join`)."""

    workflow: str = DEFAULT_WORKFLOW
    review: Review = "none"
    apply: Apply = "draft_pr"
    reviewers: tuple[str, ...] = ()
    reproduce: Reproduce = "missing"
    independent: bool = False
    review_rung: str = ""  # review = "model": whose model reviews
    raised_by: tuple[str, ...] = ()  # stricter workflows joined in, by name
    why: tuple[str, ...] = field(default=())  # for each, what of the task or patch matched

    def join(self, other: Judging, why: str) -> Judging:
        """The stricter of the two, dimension by dimension: never less than `self`."""
        return Judging(
            workflow=self.workflow,
            review=_most(REVIEW_ORDER, self.review, other.review),
            apply=_most(APPLY_ORDER, self.apply, other.apply),
            reviewers=tuple(dict.fromkeys((*self.reviewers, *other.reviewers))),
            reproduce=_most(REPRODUCE_ORDER, self.reproduce, other.reproduce),
            independent=self.independent or other.independent,
            review_rung=(
                other.review_rung
                if REVIEW_ORDER.index(other.review) > REVIEW_ORDER.index(self.review)
                else self.review_rung or other.review_rung
            ),
            raised_by=(*self.raised_by, other.workflow),
            why=(*self.why, f"workflow {other.workflow!r}: {why}"),
        )


def _most(order: Sequence[_T], a: _T, b: _T) -> _T:
    return a if order.index(a) >= order.index(b) else b


def inside(path: str, globs: Sequence[str]) -> bool:
    # fnmatch's `*` crosses `/`, so `docs/**` and `docs/*` both cover a whole tree.
    return any(fnmatchcase(path, g) for g in globs)


@dataclass(frozen=True)
class Workflow:
    """One workflow, built: the parts a task of it runs with (`cascade.wiring.assemble` builds
    them from config; the default workflow is today's `[gate]`, `[reproduce]`, `[budget]`)."""

    name: str
    gate: Gate
    ladder: tuple[RungConfig, ...]  # a lane's `rungs` only, each with the workflow's context
    budget: BudgetConfig
    reproduce: ReproduceStage | None
    judging: Judging
    lane: Lane | None = None
    config: WorkflowConfig | None = None  # None: the default workflow

    def matched(self, chosen: WorkflowChoice) -> Workflow:
        """This workflow with its lane saying what of the task chose it."""
        if self.lane is None:
            return self
        return dataclasses.replace(
            self, lane=dataclasses.replace(self.lane, because="; ".join(chosen.matched))
        )

    def choice(self, chosen: WorkflowChoice, facts: TaskFacts) -> WorkflowChoice:
        """The decision record: `chosen` with the path this workflow sets, in decision order."""
        j = self.judging
        proof = f"reproduce {j.reproduce}" + (", independent" if j.independent else "")
        start = self.lane.start if self.lane and self.lane.start else self.ladder[0].name
        top = self.lane.ceiling if self.lane and self.lane.ceiling else self.ladder[-1].name
        ladder = f"start {start}, ceiling {top}"
        if self.config is not None and self.config.ladder.rungs:
            ladder += f"; only rungs {', '.join(r.name for r in self.ladder)}"
        return chosen.model_copy(
            update={
                "context_tokens": self.config.context_tokens if self.config else None,
                "paths": facts.paths,
                "gate": tuple(self.gate.names),
                "proof": proof,
                "review": j.review,
                "ladder": ladder,
                "budget_usd": self.budget.max_cost_usd,
                "apply": j.apply,
                "reviewers": j.reviewers,
            }
        )


def default_workflow(
    gate: Gate,
    ladder: tuple[RungConfig, ...],
    budget: BudgetConfig,
    stage: ReproduceStage | None,
    *,
    reproduce: Reproduce | None = None,
    independent: bool | None = None,
) -> Workflow:
    """The workflow of a task no `[[workflows]]` entry matches: the run's own gate, whole
    ladder, budget and reproduce stage (`reproduce`, `independent`: what `[reproduce]` says,
    for a plan made without building the stage)."""
    when = reproduce or (stage.when if stage else "never")
    alone = independent if independent is not None else bool(stage and stage.independent)
    judging = Judging(reproduce=when, independent=alone)
    return Workflow(DEFAULT_WORKFLOW, gate, ladder, budget, stage, judging)


def joined_gate(current: Gate, stricter: Sequence[tuple[str, Gate]]) -> Gate:
    """Every evaluator of `current` and of the stricter workflows' gates (`(workflow, gate)`).
    An evaluator both run with other options runs twice — once as each configures it, the
    stricter workflow's as `name[workflow]` — so neither's check is lost: options cannot be
    ordered in general, so a join never picks one. The baseline cache is shared."""
    chosen: dict[str, Evaluator] = {e.name: e for e in current.evaluators}
    settings = {e.name: settings_text(e) for e in current.evaluators}
    for workflow, gate in stricter:
        for own in gate.evaluators:
            same = [n for n in chosen if base_name(n) == own.name]
            if any(settings[n] == settings_text(own) for n in same):
                continue
            added = _renamed(own, f"{own.name}[{workflow}]") if same else own
            chosen.setdefault(added.name, added)
            settings.setdefault(added.name, settings_text(added))
    return Gate(list(chosen.values()), check_tamper=current.check_tamper, shared=current)


def _renamed(evaluator: Evaluator, name: str) -> Evaluator:
    """A copy of `evaluator` that reports (and is baselined) as `name`."""
    twin = copy.copy(evaluator)
    twin.name = name
    return twin
