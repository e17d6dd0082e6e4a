"""Workflows as tables: which one a task's facts match (the first, in config order) and why the
others were passed over; the raise-only rule (a patch's paths can make its judging stricter,
never looser); `[[routing.rules]]` read as workflows; and a malformed workflow refused with its
name and key, through the installed entry point."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cascade.config import BudgetConfig, CascadeConfig, GateConfig, RungConfig
from cascade.core.gate import Gate
from cascade.core.policy import PolicyRaiser
from cascade.core.routing import TaskFacts
from cascade.core.workflows import (
    APPLY_ORDER,
    REPRODUCE_ORDER,
    REVIEW_ORDER,
    Judging,
    Workflow,
    choose,
    issue_facts,
    raisers,
)
from cascade.records import Issue, Scope
from cascade.wiring.registry import build_gate
from cascade.workflow_config import WorkflowConfig, WorkflowLadder, WorkflowMatch
from evaluators.coverage_gate import CoverageEvaluator

SEC = WorkflowConfig(
    name="security", match=WorkflowMatch(labels=("security",), touches=("src/auth/**",))
)
DOCS = WorkflowConfig(name="docs", match=WorkflowMatch(paths=("docs/**", "*.md")))
EASY = WorkflowConfig(name="easy", match=WorkflowMatch(labels=("easy",), max_size=1, mode="all"))
BIG = WorkflowConfig(name="big", match=WorkflowMatch(min_size=3))
FLOWS = (SEC, DOCS, EASY, BIG)
TWO_RUNGS = [{"name": "cheap", "model": "a/b"}, {"name": "strong", "model": "a/c"}]


# --- matching ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "workflow", "matched"),
    [
        (TaskFacts(labels=("bug", "security")), "security", ("label security",)),
        (
            TaskFacts(paths=("src/auth/login.py", "src/x.py")),
            "security",
            ("touches src/auth/** (src/auth/login.py)",),
        ),
        (TaskFacts(labels=("security",), paths=("docs/a.md",)), "security", ("label security",)),
        (TaskFacts(paths=("docs/a.md", "README.md")), "docs", ("every path inside docs/**, *.md",)),
        (TaskFacts(paths=("docs/a.md", "src/x.py")), "default", ()),
        (TaskFacts(labels=("docs",)), "default", ()),
        (TaskFacts(labels=("easy",), size=1), "easy", ("label easy", "size 1 in 0..1")),
        (TaskFacts(labels=("easy",), size=2), "default", ()),
        (TaskFacts(size=1), "default", ()),
        (TaskFacts(size=3), "big", ("size 3 in 3..∞",)),
        (TaskFacts(), "default", ()),
    ],
    ids=[
        "label-any",
        "touches-any-path",
        "first-match-wins",
        "every-path-inside",
        "a-path-outside",
        "no-paths-known",
        "all-conditions-hold",
        "all-mode-one-fails",
        "all-mode-no-label",
        "min-size",
        "nothing-known",
    ],
)
def test_the_first_matching_workflow_wins(
    facts: TaskFacts, workflow: str, matched: tuple[str, ...]
) -> None:
    flow, chosen = choose(FLOWS, facts)
    assert chosen.name == workflow and chosen.matched == matched
    assert (flow.name if flow else "default") == workflow


def test_config_order_decides_between_two_that_hold() -> None:
    facts = TaskFacts(labels=("security",), paths=("docs/a.md",))
    flow, chosen = choose((DOCS, SEC), facts)
    assert flow is DOCS and chosen.matched == ("every path inside docs/**, *.md",)
    assert chosen.passed_over == ()


@pytest.mark.parametrize(
    ("mode", "matches"), [("any", True), ("all", False)], ids=["any-one-holds", "all-needs-both"]
)
def test_mode_any_or_all(mode: Any, matches: bool) -> None:
    flow = WorkflowConfig(
        name="auth", match=WorkflowMatch(labels=("security",), touches=("src/auth/**",), mode=mode)
    )
    chosen, _ = choose((flow,), TaskFacts(labels=("bug",), paths=("src/auth/login.py",)))
    assert (chosen is flow) is matches


def test_passed_over_names_each_earlier_workflow_and_its_failing_condition() -> None:
    flow, chosen = choose(FLOWS, TaskFacts(labels=("bug",), paths=("src/x.py",), size=3))
    assert flow is BIG
    assert [(p.workflow, p.why) for p in chosen.passed_over] == [
        ("security", "no label security; touches nothing in src/auth/**"),
        ("docs", "src/x.py is outside docs/**, *.md"),
        ("easy", "no label easy; size 3 not in 0..1"),
    ]
    none, default = choose(FLOWS, TaskFacts(size=2))
    assert none is None and default.name == "default" and default.matched == ()
    assert [p.workflow for p in default.passed_over] == ["security", "docs", "easy", "big"]
    assert default.passed_over[1].why == "no paths known"


def test_issue_facts_are_the_tracked_files_the_issue_names_and_its_scope() -> None:
    issue = Issue(
        id="X-1",
        title="login fails in src/auth/login.py",
        body="See ./docs/guide.md, src/gone.py and `invoicekit.money`; again src/auth/login.py.",
        labels=("bug",),
        tests=("tests/test_login.py::test_refuses_a_bad_password",),
        scope=Scope(allow=("src/**", "docs/guide.md")),
    )
    tracked = ["src/auth/login.py", "docs/guide.md", "tests/test_login.py", "src/other.py"]
    facts = issue_facts(issue, tracked)
    assert facts.labels == ("bug",) and facts.size == 3
    assert facts.paths == ("src/auth/login.py", "docs/guide.md", "tests/test_login.py", "src/**")
    assert issue_facts(issue, []).paths == ("src/**", "docs/guide.md")


# --- the raise-only rule -------------------------------------------------------------------

STRICTNESS = list(itertools.product(REVIEW_ORDER, APPLY_ORDER, REPRODUCE_ORDER, (False, True)))


def judging(name: str, dims: tuple[Any, ...], reviewers: tuple[str, ...] = ()) -> Judging:
    review, apply, reproduce, independent = dims
    return Judging(name, review, apply, reviewers, reproduce, independent)


@pytest.mark.parametrize("mine", STRICTNESS, ids=["-".join(map(str, d)) for d in STRICTNESS])
def test_join_never_lowers_any_dimension(mine: tuple[Any, ...]) -> None:
    own = judging("docs", mine, ("me",))
    for theirs in STRICTNESS:
        joined = own.join(judging("security", theirs, ("team", "me")), "the patch touches x")
        for order, dim in ((REVIEW_ORDER, 0), (APPLY_ORDER, 1), (REPRODUCE_ORDER, 2)):
            said = (joined.review, joined.apply, joined.reproduce)[dim]
            assert order.index(said) == max(order.index(mine[dim]), order.index(theirs[dim]))
        assert joined.independent == (mine[3] or theirs[3])
        assert joined.reviewers == ("me", "team") and joined.workflow == "docs"
        assert joined.raised_by == ("security",)
        assert joined.why == ("workflow 'security': the patch touches x",)


@pytest.mark.parametrize(
    ("paths", "current", "raised"),
    [
        (("src/auth/session.py",), "docs", ["security"]),
        (("docs/a.md", "src/auth/session.py"), "docs", ["security"]),
        (("docs/a.md",), "default", ["docs"]),
        (("docs/a.md", "src/x.py"), "default", []),
        (("src/auth/session.py",), "security", []),
        ((), "default", []),
    ],
    ids=["touches", "touches-among-others", "every-path", "not-every-path", "not-its-own", "none"],
)
def test_raisers_count_path_conditions_only(
    paths: tuple[str, ...], current: str, raised: list[str]
) -> None:
    # EASY and BIG (labels, size) and a label-only workflow never raise: a patch has neither.
    labelled = WorkflowConfig(name="labelled", match=WorkflowMatch(labels=("security",)))
    found = raisers((*FLOWS, labelled), current, paths)
    assert [flow.name for flow, _ in found] == raised


SEC_GATE = GateConfig(
    evaluators=("diff_scope", "ruff", "mypy", "pytest", "coverage"),
    options={"coverage": {"min_diff_coverage": 0.9}},
)
DEFAULT_GATE = GateConfig(
    evaluators=("diff_scope", "pytest", "coverage"),
    options={"coverage": {"min_diff_coverage": 0.2}},
)
LADDER = (RungConfig(name="cheap", model="scripted/cheap"),)


def built(config: WorkflowConfig | None, gate: GateConfig, judged: Judging) -> Workflow:
    name = config.name if config else "default"
    return Workflow(name, build_gate(gate), LADDER, BudgetConfig(), None, judged, None, config)


SECURITY = built(
    SEC, SEC_GATE, Judging("security", "human", "draft_pr", ("org/sec",), "always", True)
)
DOCS_FLOW = built(DOCS, GateConfig(evaluators=("diff_scope",)), Judging("docs", reproduce="never"))
DEFAULT = built(None, DEFAULT_GATE, Judging())
# As strict as the default in every way (its gate configured the same): it raises nothing.
TWIN = built(
    WorkflowConfig(name="twin", match=WorkflowMatch(touches=("src/**",))), DEFAULT_GATE,
    Judging("twin"),
)  # fmt: skip


def coverage_of(raiser: PolicyRaiser, paths: tuple[str, ...], flow: Workflow) -> float:
    gate, _ = raiser.for_patch(paths, flow.gate)
    coverage = next(e for e in gate.evaluators if isinstance(e, CoverageEvaluator))
    return coverage.config.min_diff_coverage


def test_a_docs_task_whose_patch_touches_security_is_judged_by_the_security_gate() -> None:
    raiser = PolicyRaiser((SECURITY, DOCS_FLOW), DOCS_FLOW)
    gate, judged = raiser.for_patch(("docs/guide.md", "src/auth/session.py"), DOCS_FLOW.gate)
    assert gate.names == ["diff_scope", "ruff", "mypy", "pytest", "coverage"]
    assert gate.digest == SECURITY.gate.digest  # its evaluators, with its options
    assert (judged.workflow, judged.review, judged.reviewers) == ("docs", "human", ("org/sec",))
    assert (judged.reproduce, judged.independent, judged.apply) == ("always", True, "draft_pr")
    assert judged.raised_by == ("security",)
    assert judged.why == (
        "workflow 'security': the patch touches src/auth/session.py inside src/auth/**",
    )
    stays, same = raiser.for_patch(("docs/guide.md", "README.md"), DOCS_FLOW.gate)
    assert stays is DOCS_FLOW.gate and same is DOCS_FLOW.judging


def test_a_workflow_no_stricter_in_any_way_changes_nothing() -> None:
    raiser = PolicyRaiser((TWIN, DOCS_FLOW), DEFAULT)
    gate, judged = raiser.for_patch(("src/x.py",), DEFAULT.gate)
    assert gate is DEFAULT.gate and judged is DEFAULT.judging
    # docs asks less than security: its patch inside docs/ keeps security's gate and options
    under = PolicyRaiser((SECURITY, DOCS_FLOW), SECURITY)
    gate, judged = under.for_patch(("docs/a.md",), SECURITY.gate)
    assert gate is SECURITY.gate and judged is SECURITY.judging


def minimums(gate: Gate) -> dict[str, float]:
    return {
        e.name: e.config.min_diff_coverage
        for e in gate.evaluators
        if isinstance(e, CoverageEvaluator)
    }


def test_an_evaluator_both_run_with_other_options_runs_twice_and_is_never_loosened() -> None:
    raiser = PolicyRaiser((SECURITY, TWIN), DEFAULT)
    gate, judged = raiser.for_patch(("src/auth/a.py",), DEFAULT.gate)
    # Options cannot be ordered in general: both configurations judge the patch.
    assert minimums(gate) == {"coverage": 0.2, "coverage[security]": 0.9}
    assert gate.names.index("coverage[security]") > gate.names.index("pytest")  # its stage
    assert coverage_of(raiser, ("src/x.py",), DEFAULT) == 0.2
    _, judged = raiser.for_patch(("src/auth/a.py", "src/x.py"), DEFAULT.gate)
    assert judged.raised_by == ("security",)  # twin, matched too, added nothing
    # A workflow asking less in another way runs its looser options beside, never instead.
    loose = built(
        DOCS, GateConfig(evaluators=("diff_scope", "coverage"), options=DEFAULT_GATE.options),
        Judging("docs"),
    )  # fmt: skip
    gate, _ = PolicyRaiser((SECURITY, loose), SECURITY).for_patch(("a.md",), SECURITY.gate)
    assert minimums(gate) == {"coverage": 0.9, "coverage[docs]": 0.2}


def test_the_tracebacks_raise_the_whole_run_once() -> None:
    raiser = PolicyRaiser((SECURITY, DOCS_FLOW), DOCS_FLOW)
    note = raiser.raise_run(("src/auth/session.py",), "the target tests' tracebacks touch")
    assert note == (
        "policy raised: workflow 'security': the target tests' tracebacks touch "
        "src/auth/session.py inside src/auth/**"
    )
    assert raiser.judging.review == "human" and raiser.gate.digest == SECURITY.gate.digest
    gate, judged = raiser.for_patch(("src/auth/session.py",), raiser.gate)
    assert gate is raiser.gate and judged.raised_by == ("security",)


# --- [[routing.rules]], read as workflows ----------------------------------------------------


def test_routing_rules_are_read_as_workflows_after_the_workflows() -> None:
    cfg = CascadeConfig.model_validate(
        {
            "ladder": TWO_RUNGS,
            "workflows": [{"name": "docs", "match": {"paths": ["docs/**"]}}],
            "routing": {
                "rules": [
                    {"name": "sec", "labels": ["security"], "touches": ["src/auth/**"],
                     "start_at": "strong"},
                    {"min_size": 5, "max_rung": "cheap"},
                ]
            },
        }
    )  # fmt: skip
    assert [f.name for f in cfg.lanes] == ["docs", "sec", "routing rule 2"]
    sec = cfg.lanes[1]
    assert sec.match == WorkflowMatch(labels=("security",), touches=("src/auth/**",), mode="all")
    assert sec.ladder == WorkflowLadder(start="strong")
    assert cfg.lanes[2].ladder == WorkflowLadder(max="cheap")
    assert sec.gate.evaluators is None and sec.review == "none"  # it moves only the ladder
    # every condition must hold, as rules always asked
    assert choose(cfg.lanes, TaskFacts(labels=("security",)))[0] is None
    both = TaskFacts(labels=("security",), paths=("src/auth/a.py",))
    assert choose(cfg.lanes, both)[0] == sec


# --- malformed workflows exit 2, naming the workflow and the key ---------------------------


@pytest.mark.parametrize(
    ("ladder", "said"),
    [
        ({"rungs": ["huge"]}, "ladder.rungs names 'huge'"),
        ({"rungs": ["cheap"], "start": "strong"}, "ladder.start is 'strong', not one of its rungs"),
        ({"start": "strong", "max": "cheap"}, "ladder.start 'strong' is above ladder.max 'cheap'"),
        ({"rungs": ["cheap"], "review_rung": "strong"}, "review_rung is 'strong', not one of"),
    ],
    ids=["unknown-rung", "start-outside-lane", "start-above-max", "reviewer-outside-lane"],
)
def test_a_lane_names_only_its_rungs(ladder: dict[str, Any], said: str) -> None:
    review = (
        {"review_rung": ladder.pop("review_rung"), "review": "model"}
        if "review_rung" in ladder
        else {}
    )
    flow = {"name": "private", "match": {"touches": ["secrets/**"]}, "ladder": ladder, **review}
    with pytest.raises(ValueError, match="workflow 'private'") as caught:
        CascadeConfig.model_validate({"ladder": TWO_RUNGS, "workflows": [flow]})
    assert said in str(caught.value)


CASCADE = str(Path(sys.executable).parent / "cascade")


@pytest.mark.parametrize(
    ("entry", "said"),
    [
        ('gate = { evaluatorz = ["ruff"] }', ("unknown key", "gate.evaluatorz")),
        ('ladder = { start = "huge" }', ("ladder.start", "'huge'")),
        ('gate = { evaluators = ["covrage"] }', ("gate.evaluators", "'covrage'")),
        (
            'gate = { evaluators = ["coverage"], options = { coverage = { min_diff_coverage = 7 }'
            " } }",
            ("gate.options.coverage", "min_diff_coverage"),
        ),
        ("", ("`name` must be unique",)),
        ("match = {}", ("`match`", "needs a condition")),
        ("gate = { evaluators = [] }", ("gate.evaluators", "nothing would judge a patch")),
        ('gate = { evaluators = ["ruff", "ruff"] }', ("gate.evaluators", "ruff more than once")),
        ('review_rung = "strong"', ("review_rung is set, but review is 'none'",)),
        ('reviewers = ["a/b/c"]', ("reviewers", "'a/b/c'")),
        ("match = { min_size = 3, max_size = 1 }", ("`match`", "min_size 3 is above max_size 1")),
    ],
    ids=[
        "unknown-key", "unknown-rung", "unknown-evaluator", "bad-option", "duplicate",
        "no-match", "no-evaluators", "evaluator-twice", "review-rung-without-model-review",
        "bad-reviewer", "sizes-crossed",
    ],
)  # fmt: skip
def test_a_malformed_workflow_exits_2_naming_it_and_the_key(
    demo: Path, tmp_path: Path, entry: str, said: tuple[str, ...]
) -> None:
    match = "" if entry.startswith("match") else 'match = { labels = ["bad"] }\n'
    bad = f'\n[[workflows]]\nname = "shaky"\n{match}{entry}\n'
    if not entry:  # the same name twice
        bad = bad * 2
    with (demo / "cascade.toml").open("a") as config:
        config.write(bad)
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    out = subprocess.run(
        [CASCADE, "route", "DEMO-1", "--repo", str(demo)], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 2, out.stdout + out.stderr
    assert "workflow 'shaky'" in out.stderr and all(s in out.stderr for s in said), out.stderr
    assert "Traceback" not in out.stderr and not out.stdout
    shown = subprocess.run(
        [CASCADE, "config", "show", "--repo", str(demo)], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert shown.returncode == 2 and "workflow 'shaky'" in shown.stderr, shown.stderr
