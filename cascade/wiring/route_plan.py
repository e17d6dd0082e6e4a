"""The path a task would take, said before any of it is spent (`cascade route`, `cascade replay
--plan`), in the order it is decided: its workflow (and the workflows passed over), context,
scope, gate and proof, review and delivery, then the model — start rung and ceiling — the budget
and an upper bound on the first call's cost. Nothing here calls a model, reads a cassette or
opens a sandbox; the facts are what the issue itself says (a run can raise the gate, proof and
review by what the target tests' tracebacks and each patch touch, never lower them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cascade.core.budget import estimate_cost
from cascade.core.prices import rung_price
from cascade.core.routing import TaskFacts, route
from cascade.core.workflows import Workflow, choose, issue_facts
from cascade.models.preflight import rung_problem
from cascade.records import Issue
from cascade.wiring.settings import LoadedConfig
from cascade.wiring.workflows import workflows_of
from cascade.workflow_config import DEFAULT_WORKFLOW

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
    workflow: str = DEFAULT_WORKFLOW


def plan(
    loaded: LoadedConfig,
    issue: Issue,
    tracked: set[str],
    flows: tuple[Workflow, ...] | None = None,
) -> Plan:
    flows = flows or workflows_of(loaded)
    facts = issue_facts(issue, tracked)
    _, chosen = choose(loaded.config.lanes, facts)
    flow = next(f for f in flows if f.name == chosen.name).matched(chosen)
    choice = flow.choice(chosen, facts)
    way = route(flow.ladder, flow.lane)
    first = flow.ladder[way.start]
    prompt_tokens = first.context_tokens + len(issue.title + issue.body) // CHARS_PER_TOKEN
    first_usd = estimate_cost(rung_price(first), prompt_tokens, first.max_tokens)
    reach = flow.ladder[way.start : way.ceiling + 1]  # a rung it can never reach cannot stop it
    rungs = {r.name: r for r in (*reach, *(flow.reproduce.ladder if flow.reproduce else ()))}
    problems = [p for p in (rung_problem(r) for r in rungs.values()) if p]
    ceiling = flow.ladder[way.ceiling].name
    j = flow.judging
    doc: dict[str, Any] = {
        "issue": issue.id,
        "title": issue.title,
        "workflow": {
            "name": choice.name,
            "matched": list(choice.matched),
            "passed_over": [p.model_dump(mode="json") for p in choice.passed_over],
        },
        "context_tokens": choice.context_tokens,
        "facts": {"labels": list(facts.labels), "paths": list(facts.paths), "size": facts.size},
        "gate": list(flow.gate.names),
        "proof": _proof(issue, j.reproduce, j.independent),
        "review": j.review,
        "reviewers": list(j.reviewers),
        "apply": j.apply,
        "route": {
            "start": first.name,
            "ceiling": ceiling,
            "rungs": [r.name for r in flow.ladder],
            "because": way.because,
            "passed_over": [a.model_dump(mode="json") for a in way.rejected],
        },
        "budget": flow.budget.model_dump(mode="json"),
        # What each agent rung it can reach may do in the sandbox (none: every rung answers once).
        "tools": {r.name: r.tools.model_dump(mode="json") for r in reach if r.mode == "agent"},
        "first_call_usd_at_most": round(first_usd, 6),
        "problems": problems,
        "note": "paths are those the issue names; the target tests' tracebacks and each patch's "
        "files can raise the gate, proof and review to a stricter workflow's, never lower them",
    }
    return Plan(issue.id, first.name, ceiling, way.because, facts, first_usd, doc, choice.name)


def _proof(issue: Issue, reproduce: str, independent: bool) -> dict[str, Any]:
    proof: dict[str, Any] = {
        "tests": list(issue.tests),
        "hidden_tests": len(issue.hidden_tests),
        "reproduce": reproduce,
        "independent": independent,
        "rule": "a test that fails at the base commit must pass with the patch",
    }
    if reproduce == "always" or (
        reproduce == "missing" and not issue.tests and not issue.hidden_tests
    ):
        proof["first"] = "the reproduce stage writes the proving test, then the fix"
    elif reproduce == "missing":
        proof["first"] = "the issue's tests, if one fails at the base commit; else reproduce"
    else:
        proof["first"] = "the issue's tests only (reproduce never)"
    return proof


def render(p: Plan) -> str:
    d = p.doc
    flow = d["workflow"]
    lines = [
        f"{p.issue}: {d['title']}",
        f"  workflow: {flow['name']} ({'; '.join(flow['matched']) or 'no workflow matched'})",
    ]
    lines += [f"    passed over {o['workflow']}: {o['why']}" for o in flow["passed_over"]]
    context = d["context_tokens"]
    review = d["review"] + (f" (reviewers {', '.join(d['reviewers'])})" if d["reviewers"] else "")
    independent = " (independent: not by the fixer's model)" if d["proof"]["independent"] else ""
    lines += [
        f"  context:  {f'{context} tokens' if context else 'each rung its own budget'}",
        f"  scope:    labels {', '.join(p.facts.labels) or '—'}; paths "
        f"{', '.join(p.facts.paths) or '—'} (what the issue names)",
        f"  gate:     {', '.join(d['gate'])}",
        f"  proof:    {d['proof']['first']}{independent}",
        f"  review:   {review}; delivered as {d['apply']}",
        f"  model:    start {p.start}, ceiling {p.ceiling} — {p.because}",
        f"  budget:   {_budget(d['budget'])}; first call at most ${p.first_call_usd:.4f}",
    ]
    lines += [f"  tools:    {name} (an agent) — {_tools(t)}" for name, t in d["tools"].items()]
    lines += [f"  would stop: {problem}" for problem in d["problems"]]
    return "\n".join(lines)


def _tools(t: dict[str, Any]) -> str:
    allow = t["allow"]
    what = "any command" if allow is None else "only " + ", ".join(" ".join(a) for a in allow)
    return (
        f"{t['max_steps']} steps, {t['command_timeout']:g} s a command, "
        f"{t['wall_time']:g} s in all; {what}"
    )


def _budget(budget: dict[str, Any]) -> str:
    task, batch = budget.get("max_cost_usd"), budget.get("batch_max_cost_usd")
    said = [f"${task:g} a task" if task else "no cap a task"]
    if batch:
        said.append(f"${batch:g} a batch")
    return ", ".join(said)
