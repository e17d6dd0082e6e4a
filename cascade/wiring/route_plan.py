"""The path a task would take, said before any of it is spent (`cascade route`, `cascade replay
--plan`): its start rung and ceiling from the routing rules, the gate that would judge it, what
must prove a patch, the budget, and an upper bound on the first call's cost. Nothing here calls
a model, reads a cassette or opens a sandbox; the facts are what the issue itself says (the run
adds the files of the target tests' tracebacks at the base commit)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cascade.core.budget import estimate_cost
from cascade.core.prices import rung_price
from cascade.core.routing import TaskFacts, route
from cascade.models.preflight import rung_problem
from cascade.records import Issue
from cascade.wiring.settings import LoadedConfig
from cascade.workspace.checkout import git

_PATHISH = re.compile(r"[\w./-]+\.\w+")
CHARS_PER_TOKEN = 4  # a rough, generous ratio: the estimate is an upper bound anyway


@dataclass(frozen=True)
class Plan:
    issue: str
    start: str
    ceiling: str
    because: str
    facts: TaskFacts
    first_call_usd: float
    doc: dict[str, Any]


def tracked_files(repo: Path) -> list[str]:
    """The files of HEAD, as git lists them (no sandbox); none outside a repository."""
    return [p for p in git(repo, "ls-files", "-z", check=False).split("\0") if p]


def issue_facts(issue: Issue, tracked: set[str]) -> TaskFacts:
    """Labels, and the repository files the issue names (its text and its tests' files) plus
    its scope's globs: what routing can know before the baseline."""
    text = "\n".join([issue.title, issue.body, *issue.tests])
    named: list[str] = []
    for match in _PATHISH.finditer(text):
        path = match.group(0).removeprefix("./")
        if path in tracked and path not in named:
            named.append(path)
    paths = tuple(named) + tuple(p for p in issue.scope.allow if p not in named)
    return TaskFacts(labels=issue.labels, paths=paths, size=len(named))


def plan(loaded: LoadedConfig, issue: Issue, tracked: set[str]) -> Plan:
    cfg = loaded.config
    facts = issue_facts(issue, tracked)
    chosen = route(cfg.ladder, cfg.routing.rules, facts)
    first = cfg.ladder[chosen.start]
    prompt_tokens = first.context_tokens + len(issue.title + issue.body) // CHARS_PER_TOKEN
    first_usd = estimate_cost(rung_price(first), prompt_tokens, first.max_tokens)
    proof: dict[str, Any] = {
        "tests": list(issue.tests),
        "hidden_tests": len(issue.hidden_tests),
        "reproduce": cfg.reproduce.when,
        "independent": cfg.reproduce.independent,
        "rule": "a test that fails at the base commit must pass with the patch",
    }
    if cfg.reproduce.when == "always" or (
        cfg.reproduce.when == "missing" and not issue.tests and not issue.hidden_tests
    ):
        proof["first"] = "the reproduce stage writes the proving test, then the fix"
    elif cfg.reproduce.when == "missing":
        proof["first"] = "the issue's tests, if one fails at the base commit; else reproduce"
    else:
        proof["first"] = "the issue's tests only (reproduce never)"
    problems = [p for p in (rung_problem(r) for r in cfg.ladder) if p]
    ceiling = cfg.ladder[chosen.ceiling].name
    doc: dict[str, Any] = {
        "issue": issue.id,
        "title": issue.title,
        "facts": {"labels": list(facts.labels), "paths": list(facts.paths), "size": facts.size},
        "route": {
            "start": first.name,
            "ceiling": ceiling,
            "because": chosen.because,
            "passed_over": [a.model_dump(mode="json") for a in chosen.rejected],
        },
        "gate": list(cfg.gate.evaluators),
        "proof": proof,
        "budget": cfg.budget.model_dump(mode="json"),
        "first_call_usd_at_most": round(first_usd, 6),
        "problems": problems,
        "note": "paths are those the issue names; the run adds its target tests' tracebacks",
    }
    return Plan(issue.id, first.name, ceiling, chosen.because, facts, first_usd, doc)


def render(p: Plan) -> str:
    d = p.doc
    lines = [
        f"{p.issue}: {d['title']}",
        f"  facts:  labels {', '.join(p.facts.labels) or '—'}; paths "
        f"{', '.join(p.facts.paths) or '—'} (what the issue names; the run adds tracebacks)",
        f"  route:  start {p.start}, ceiling {p.ceiling} — {p.because}",
        f"  gate:   {', '.join(d['gate'])}",
        f"  proof:  {d['proof']['first']}",
        f"  budget: {_budget(d['budget'])}; first call at most ${p.first_call_usd:.4f}",
    ]
    lines += [f"  would stop: {problem}" for problem in d["problems"]]
    return "\n".join(lines)


def _budget(budget: dict[str, Any]) -> str:
    task, batch = budget.get("max_cost_usd"), budget.get("batch_max_cost_usd")
    said = [f"${task:g} a task" if task else "no cap a task"]
    if batch:
        said.append(f"${batch:g} a batch")
    return ", ".join(said)
