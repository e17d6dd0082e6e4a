"""A privacy lane raised by what a task turns out to touch: a default-routed task whose target
tests' tracebacks reach a lane's paths (say `secrets/**`, only the self-hosted rung) keeps only
the rungs the lane allows — fix and reproduce ladders alike — before any model is called; a
lane that shares no rung with the task's workflow stops the run as a configuration error."""

from __future__ import annotations

import pytest

from cascade.config import BudgetConfig, GateConfig, RungConfig
from cascade.core.gate import Gate
from cascade.core.policy import PolicyRaiser
from cascade.core.reproduce import ReproduceStage
from cascade.core.routing import Lane
from cascade.core.workflows import Judging, Workflow
from cascade.errors import ConfigError
from cascade.wiring.registry import build_gate
from cascade.workflow_config import WorkflowConfig, WorkflowLadder, WorkflowMatch

LADDER = tuple(RungConfig(name=n, model=f"scripted/{n}") for n in ("local", "cheap", "strong"))
GATE = build_gate(GateConfig(evaluators=("diff_scope",)))
SECRETS = WorkflowConfig(
    name="secrets",
    match=WorkflowMatch(touches=("secrets/**",)),
    ladder=WorkflowLadder(rungs=("local",)),
)


def _flow(
    config: WorkflowConfig | None, ladder: tuple[RungConfig, ...], lane: Lane | None
) -> Workflow:
    name = config.name if config else "default"
    stage = ReproduceStage(ladder, {}, Gate([]), "missing")
    return Workflow(name, GATE, ladder, BudgetConfig(), stage, Judging(name), lane, config)


LANE = _flow(SECRETS, LADDER[:1], None)
DEFAULT = _flow(None, LADDER, Lane("default", start="cheap", ceiling="strong"))


def test_tracebacks_into_a_lane_keep_only_its_rungs_for_both_stages() -> None:
    raiser = PolicyRaiser((LANE,), DEFAULT)
    note = raiser.raise_run(("tests/test_vault.py", "secrets/vault.py"), "the tracebacks touch")
    assert "workflow 'secrets'" in note and "secrets/vault.py" in note
    flow = raiser.raised_flow(DEFAULT)
    assert [r.name for r in flow.ladder] == ["local"]
    assert flow.reproduce is not None and [r.name for r in flow.reproduce.ladder] == ["local"]
    # The default workflow's start and ceiling are not in the lane: the lane's own rung starts.
    assert flow.lane is not None and (flow.lane.start, flow.lane.ceiling) == (None, None)
    assert flow.judging.raised_by == ("secrets",)


def test_tracebacks_elsewhere_leave_the_ladder_whole() -> None:
    raiser = PolicyRaiser((LANE,), DEFAULT)
    assert raiser.raise_run(("src/app.py",), "the tracebacks touch") == ""
    assert [r.name for r in raiser.raised_flow(DEFAULT).ladder] == ["local", "cheap", "strong"]


def test_a_lane_sharing_no_rung_with_the_task_workflow_is_a_config_error() -> None:
    hosted = _flow(
        WorkflowConfig(name="hosted", match=WorkflowMatch(labels=("x",))), LADDER[1:], None
    )
    raiser = PolicyRaiser((LANE, hosted), hosted)
    raiser.raise_run(("secrets/key.py",), "the tracebacks touch")
    with pytest.raises(ConfigError, match=r"workflow 'secrets'.*none of which workflow 'hosted'"):
        raiser.raised_flow(hosted)


FULL = build_gate(GateConfig(evaluators=("diff_scope", "ruff", "pytest")))
DOCS = WorkflowConfig(name="docs", match=WorkflowMatch(paths=("docs/**", "*.md")))


def test_a_docs_lane_patch_that_strays_outside_docs_is_held_to_the_default_gate_too() -> None:
    # Chosen because every path the issue named was documentation; the patch edits code.
    docs = Workflow("docs", GATE, LADDER, BudgetConfig(), None, Judging("docs"), None, DOCS)
    default = Workflow("default", FULL, LADDER, BudgetConfig(), None, Judging(), None, None)
    raiser = PolicyRaiser((docs,), docs, default=default)
    gate, judged = raiser.for_patch(("README.md", "src/app.py"), docs.gate)
    assert gate.names == ["diff_scope", "ruff", "pytest"]
    assert judged.raised_by == ("default",)
    assert "src/app.py outside docs/**, *.md" in judged.why[0]
    # A patch inside the lane keeps the lane's gate.
    kept, same = raiser.for_patch(("docs/a.md", "README.md"), docs.gate)
    assert kept is docs.gate and same is docs.judging


def test_a_second_run_of_an_evaluator_runs_alone_after_its_stage() -> None:
    strict = build_gate(
        GateConfig(evaluators=("pytest",), options={"pytest": {"rerun_failures": False}})
    )
    sec = WorkflowConfig(name="sec", match=WorkflowMatch(touches=("src/auth/**",)))
    flow = Workflow("sec", strict, LADDER, BudgetConfig(), None, Judging("sec"), None, sec)
    default = Workflow("default", FULL, LADDER, BudgetConfig(), None, Judging(), None, None)
    gate, _ = PolicyRaiser((flow,), default).for_patch(("src/auth/a.py",), FULL)
    # The two pytest runs never share the sandbox's swapped-in files at once.
    assert [[e.name for e in stage] for stage in gate.stages()] == [
        ["diff_scope"],
        ["ruff"],
        ["pytest"],
        ["pytest[sec]"],
    ]
