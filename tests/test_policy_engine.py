"""The policy as the engine carries it out, on a real git repository and the local sandbox with a
scripted model: infrastructure retries that never blame the model, routing, carried feedback,
samples, the best unverified candidate, learned skip from past runs (and `cascade ladder stats`
on them), and a purse shared by a batch. The gate is a small fake evaluator so each run takes
a fraction of a second; the pytest gate has its own tests."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cascade.cli.main import app
from cascade.config import BudgetConfig, LearnedSkipConfig, PolicyConfig, RungConfig, SandboxConfig
from cascade.core.budget import Purse, override_price
from cascade.core.engine import Engine
from cascade.core.gate import Gate
from cascade.core.routing import Lane
from cascade.core.workflows import Judging, Workflow
from cascade.errors import SandboxError
from cascade.proof.log import ATTEMPTS_FILE, ProofLog
from cascade.proof.run_folder import RunFolder
from cascade.proof.verify import verify_run
from cascade.protocols import Sandbox
from cascade.records import Attempt, Issue, Patch, RunOutcome, Task, Verdict
from cascade.testing import ScriptedModel, git, make_repo
from cascade.wiring.registry import sandbox_opener
from cascade.workflow_config import WorkflowConfig, WorkflowLadder, WorkflowMatch

CALC = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"


def block(search: str, replace: str) -> str:
    return f"calc.py\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


RIGHT = block("    return a - b\n", "    return a + b\n")
WRONG = block("    return a - b\n", "    return a * b\n")
# Wrong twice over: `add` still does not add, and `mul` is broken too.
WORSE = WRONG + block("    return a * b\n", "    return a + b\n")

LADDER = (
    RungConfig(name="cheap", model="scripted/cheap", attempts=2),
    RungConfig(name="strong", model="scripted/strong", attempts=1),
)


ADD_TEST = "tests/test_calc.py::test_add"  # named by the issue; the fake gate "runs" it


class Adds:
    """Passes when `add` adds; crashes (a harness bug, not a verdict) for its first `crash`
    evaluations. Like pytest it names the outcome of the issue's test before and after, so a
    right answer is proven."""

    name = "adds"

    def __init__(self, crash: int = 0) -> None:
        self.crash = crash

    async def baseline(self, sandbox: Sandbox, task: Task) -> Mapping[str, Any]:
        return {}

    async def base_outcomes(self, sandbox: Sandbox, task: Task) -> dict[str, str]:
        return {ADD_TEST: "failed: AssertionError: assert 0 == 4"}

    async def evaluate(
        self, sandbox: Sandbox, task: Task, patch: Patch, baseline: Mapping[str, Any]
    ) -> Verdict:
        if self.crash:
            self.crash -= 1
            raise RuntimeError("the harness fell over")
        ok = "+    return a + b" in patch.diff and "-    return a - b" in patch.diff
        return Verdict(
            evaluator=self.name,
            passed=ok,
            feedback="" if ok else "add must add",
            tests={ADD_TEST: "passed" if ok else "failed: AssertionError"},
        )


class KeepsMul:
    name = "keeps_mul"

    async def baseline(self, sandbox: Sandbox, task: Task) -> Mapping[str, Any]:
        return {}

    async def evaluate(
        self, sandbox: Sandbox, task: Task, patch: Patch, baseline: Mapping[str, Any]
    ) -> Verdict:
        ok = "-    return a * b" not in patch.diff
        return Verdict(evaluator=self.name, passed=ok, feedback="" if ok else "mul broke")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"calc.py": CALC})


def task(repo: Path, labels: tuple[str, ...] = (), issue_id: str = "CALC-1") -> Task:
    issue = Issue(
        id=issue_id,
        title="add subtracts",
        body="`add` returns a - b.",
        labels=labels,
        tests=(ADD_TEST,),
    )
    return Task(issue=issue, repo=str(repo), base_commit=git(repo, "rev-parse", "HEAD").strip())


def records(outcome: RunOutcome) -> list[Attempt]:
    lines = (Path(outcome.run_dir) / ATTEMPTS_FILE).read_text().splitlines()
    skip = ("prev", "sha256")
    return [
        Attempt.model_validate({k: v for k, v in json.loads(x).items() if k not in skip})
        for x in lines
    ]


def engine(models: Mapping[str, ScriptedModel], **options: Any) -> Engine:
    waits: list[float] = options.pop("waits", [])

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    settings: dict[str, Any] = {
        "ladder": LADDER,
        "models": models,
        "gate": Gate([Adds()]),
        "open_sandbox": sandbox_opener(SandboxConfig(), "local"),
        "counter": lambda _rung: lambda text: len(text) // 4,
        "sleep": fake_sleep,
        "prices": override_price,
        **options,
    }
    return Engine(**settings)


async def run(eng: Engine, t: Task, runs: Path, start_at: str | None = None) -> RunOutcome:
    if start_at is not None:
        eng = dataclasses.replace(eng, start_at=start_at)
    return await eng.run(t, ProofLog.create(runs))


@pytest.mark.anyio
async def test_a_gate_crash_is_retried_on_the_same_answer(repo: Path, tmp_path: Path) -> None:
    cheap = ScriptedModel("cheap", sequence=[RIGHT])
    eng = engine({"cheap": cheap, "strong": ScriptedModel("strong")}, gate=Gate([Adds(crash=1)]))
    outcome = await run(eng, task(repo), tmp_path / "runs")
    assert outcome.status == "verified" and outcome.verified_rung == "cheap"
    assert len(cheap.prompts) == 1  # the model was not asked again, nor blamed
    trail = records(outcome)
    assert [(r.status, r.attempt, r.retry) for r in trail] == [
        ("infra_error", 1, 0),
        ("verified", 1, 1),
    ]
    assert "the gate could not run" in trail[0].error
    assert trail[1].decision is not None and trail[1].decision.kind == "infra_retry"
    assert trail[0].response_sha256 == trail[1].response_sha256
    assert [r.cost_usd for r in trail] == [0.001, 0.0]  # one call, charged once
    assert outcome.cost_usd == pytest.approx(0.001)


@pytest.mark.anyio
async def test_a_gate_that_keeps_crashing_stops_with_exit_3(repo: Path, tmp_path: Path) -> None:
    cheap, strong = ScriptedModel("cheap", sequence=[RIGHT]), ScriptedModel("strong")
    eng = engine(
        {"cheap": cheap, "strong": strong},
        gate=Gate([Adds(crash=10)]),
        policy=PolicyConfig(infra_retries=2),
    )
    outcome = await run(eng, task(repo), tmp_path / "runs")
    assert outcome.status == "error" and outcome.exit_code == 3
    assert [r.status for r in records(outcome)] == ["infra_error"] * 3
    assert "infrastructure failed 3 times in a row" in outcome.error
    assert not strong.prompts  # an infrastructure fault is never a reason to climb
    assert verify_run(Path(outcome.run_dir)).ok


@pytest.mark.anyio
async def test_a_sandbox_that_fails_to_start_is_retried_and_noted(
    repo: Path, tmp_path: Path
) -> None:
    real = sandbox_opener(SandboxConfig(), "local")
    opened: list[int] = []

    async def flaky(path: Path, commit: str) -> Sandbox:
        opened.append(1)
        if len(opened) == 1:
            raise SandboxError("the Docker daemon hiccuped")
        return await real(path, commit)

    waits: list[float] = []
    cheap = ScriptedModel("cheap", sequence=[RIGHT])
    eng = engine(
        {"cheap": cheap, "strong": ScriptedModel("strong")}, open_sandbox=flaky, waits=waits
    )
    outcome = await run(eng, task(repo), tmp_path / "runs")
    # the failed start, its retry (the base sandbox), one for the named tests' run at base (the
    # base one stays untouched for the baselines), and one fresh sandbox for the answer
    assert outcome.status == "verified" and len(opened) == 4 and waits == [1.0]
    first = records(outcome)[0].decision
    assert first is not None and "Docker daemon hiccuped" in first.notes[0]

    async def dead(path: Path, commit: str) -> Sandbox:
        raise SandboxError("no Docker engine")

    eng = engine({"cheap": cheap, "strong": ScriptedModel("strong")}, open_sandbox=dead)
    outcome = await run(eng, task(repo), tmp_path / "runs")
    assert outcome.status == "error" and "no Docker engine (tried 3 time(s))" in outcome.error
    assert outcome.attempts == 0


@pytest.mark.anyio
async def test_a_workflow_starts_strong_and_the_summary_says_why(
    repo: Path, tmp_path: Path
) -> None:
    cheap, strong = ScriptedModel("cheap"), ScriptedModel("strong", sequence=[RIGHT])
    config = WorkflowConfig(
        name="sec", match=WorkflowMatch(labels=("security",)),
        ladder=WorkflowLadder(start="strong"), review="human",
    )  # fmt: skip
    sec = Workflow(
        "sec", Gate([Adds()]), LADDER, BudgetConfig(), None,
        Judging(workflow="sec", review="human", reproduce="never"),
        Lane("sec", start="strong"), config,
    )  # fmt: skip
    eng = engine({"cheap": cheap, "strong": strong}, workflows=(sec,))
    outcome = await run(eng, task(repo, labels=("security",)), tmp_path / "runs")
    assert outcome.verified_rung == "strong" and not cheap.prompts
    decision = records(outcome)[0].decision
    assert decision is not None and decision.route == "workflow 'sec'"
    assert decision.labels == ("security",)
    chosen = decision.workflow
    assert chosen is not None and chosen.name == "sec"
    assert chosen.matched == ("label security",) and chosen.review == "human"
    summary = (Path(outcome.run_dir) / "summary.md").read_text()
    assert "chosen: start at 'strong': workflow 'sec' (label security)" in summary
    assert "passed over: `cheap` (below 'strong', where workflow 'sec' starts)" in summary
    plain = ScriptedModel("cheap", sequence=[RIGHT])
    eng = engine({"cheap": plain, "strong": ScriptedModel("strong")}, workflows=(sec,))
    other = await run(eng, task(repo, labels=("bug",), issue_id="CALC-2"), tmp_path / "runs")
    assert other.verified_rung == "cheap"  # not labelled security: the default workflow
    said = records(other)[0].decision
    assert said is not None and said.workflow is not None and said.workflow.name == "default"
    assert [(p.workflow, p.why) for p in said.workflow.passed_over] == [
        ("sec", "no label security")
    ]


@pytest.mark.anyio
async def test_carry_feedback_all_with_the_previous_patch(repo: Path, tmp_path: Path) -> None:
    cheap = ScriptedModel("cheap", sequence=[WRONG, "no edits at all"])
    strong = ScriptedModel("strong", sequence=[RIGHT])
    policy = PolicyConfig(carry_feedback="all", carry_patch=True)
    eng = engine({"cheap": cheap, "strong": strong}, policy=policy)
    outcome = await run(eng, task(repo), tmp_path / "runs")
    assert outcome.status == "verified"
    second = cheap.prompts[1][1].content
    assert "[adds] add must add" in second and "```diff" in second
    assert "+    return a * b" in second  # the rejected patch, shown
    third = strong.prompts[0][1].content
    assert "Earlier attempts:" in third and "attempt #1 (cheap)" in third
    quiet = ScriptedModel("c", sequence=[WRONG, RIGHT])
    none = engine({"cheap": quiet, "strong": strong}, policy=PolicyConfig(carry_feedback="none"))
    await run(none, task(repo), tmp_path / "runs")
    assert "previous attempt" not in quiet.prompts[1][1].content


@pytest.mark.anyio
async def test_nothing_verified_keeps_the_best_candidate(repo: Path, tmp_path: Path) -> None:
    cheap = ScriptedModel("cheap", sequence=[WORSE, WRONG])
    strong = ScriptedModel("strong", sequence=[WORSE])
    eng = engine({"cheap": cheap, "strong": strong}, gate=Gate([Adds(), KeepsMul()]))
    outcome = await run(eng, task(repo), tmp_path / "runs")
    assert outcome.status == "exhausted" and outcome.exit_code == 1
    best = outcome.best_unverified
    assert best is not None and (best.seq, best.rung) == (2, "cheap")
    assert (best.failed, best.passed) == (("adds",), ("keeps_mul",))
    run_dir = Path(outcome.run_dir)
    assert not (run_dir / "patch.diff").exists()  # never applied, never proposed
    assert "+    return a * b" in (run_dir / "blobs" / best.patch_sha256).read_text()
    summary = (run_dir / "summary.md").read_text()
    assert "## Best unverified candidate" in summary and f"blobs/{best.patch_sha256}" in summary
    assert "## Why it climbed" in summary
    assert "- `cheap` → `strong` (#3): 'cheap' 2 attempt(s) failed: gate failure" in summary
    assert "Stopped: the ladder is exhausted" in summary


@pytest.mark.anyio
async def test_samples_first_verified_wins_and_the_rest_are_recorded(
    repo: Path, tmp_path: Path
) -> None:
    ladder = (RungConfig(name="cheap", model="scripted/cheap", samples=3), LADDER[1])
    cheap = ScriptedModel("cheap", sequence=[WRONG, RIGHT, WORSE])
    eng = engine({"cheap": cheap, "strong": ScriptedModel("strong")}, ladder=ladder)
    outcome = await run(eng, task(repo), tmp_path / "runs")
    assert outcome.status == "verified" and len(cheap.prompts) == 3
    trail = records(outcome)
    # the winner is recorded last, once the round is decided
    assert [(r.sample, r.status) for r in trail] == [
        (1, "rejected"),
        (3, "cancelled"),
        (2, "verified"),
    ]
    assert trail[1].response_sha256 and trail[1].cost_usd == 0.001  # drawn, paid, recorded
    assert "sample 2 of this round verified first" in trail[1].error
    receipt = RunFolder(Path(outcome.run_dir)).receipt()  # the Statement, out of its envelope
    assert receipt["predicate"]["status"] == "verified"
    assert outcome.cost_usd == pytest.approx(0.003)
    assert "+    return a + b" in (Path(outcome.run_dir) / "patch.diff").read_text()
    assert "-    return a * b" not in (Path(outcome.run_dir) / "patch.diff").read_text()


@pytest.mark.anyio
async def test_an_infra_fault_mid_round_gates_the_waiting_samples_after(
    repo: Path, tmp_path: Path
) -> None:
    ladder = (RungConfig(name="cheap", model="scripted/cheap", samples=2), LADDER[1])
    cheap = ScriptedModel("cheap", sequence=[WRONG, RIGHT])
    eng = engine(
        {"cheap": cheap, "strong": ScriptedModel("strong")},
        ladder=ladder,
        gate=Gate([Adds(crash=1)]),
    )
    outcome = await run(eng, task(repo), tmp_path / "runs")
    trail = [(r.sample, r.status, r.retry) for r in records(outcome)]
    assert trail == [(1, "infra_error", 0), (1, "rejected", 1), (2, "verified", 1)]
    assert len(cheap.prompts) == 2


@pytest.mark.anyio
async def test_answers_drawn_but_never_gated_are_recorded_with_their_cost(
    repo: Path, tmp_path: Path
) -> None:
    # Every gate run breaks: the infrastructure retries run out while the round's second
    # sample waits. It was paid for, so it is recorded (cancelled) and counted.
    ladder = (RungConfig(name="cheap", model="scripted/cheap", samples=2), LADDER[1])
    cheap = ScriptedModel("cheap", sequence=[WRONG, RIGHT], cost_usd=0.25)
    eng = engine(
        {"cheap": cheap, "strong": ScriptedModel("strong")},
        ladder=ladder,
        gate=Gate([Adds(crash=99)]),
    )
    outcome = await run(eng, task(repo), tmp_path / "runs")
    trail = [(r.sample, r.status) for r in records(outcome)]
    assert trail[-1] == (2, "cancelled") and outcome.status == "error"
    assert outcome.cost_usd == 0.5


@pytest.mark.anyio
async def test_learned_skip_from_past_runs_and_ladder_stats(repo: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    for n in range(5):  # five bugs: cheap never verified one
        cheap = ScriptedModel("cheap", sequence=[WRONG, WRONG])
        eng = engine({"cheap": cheap, "strong": ScriptedModel("strong", sequence=[RIGHT])})
        assert (await run(eng, task(repo, ("bug",), f"B-{n}"), runs)).verified_rung == "strong"
    skip = PolicyConfig(learned_skip=LearnedSkipConfig(enabled=True, min_tasks=5))
    cheap, strong = ScriptedModel("cheap"), ScriptedModel("strong", sequence=[RIGHT])
    eng = engine({"cheap": cheap, "strong": strong}, policy=skip)
    outcome = await run(eng, task(repo, ("bug",), "B-9"), runs)
    assert outcome.verified_rung == "strong" and not cheap.prompts
    decision = records(outcome)[0].decision
    assert decision is not None
    assert [(a.rung, a.why) for a in decision.rejected] == [
        (
            "cheap",
            "learned skip: verified 0 of the last 5 similar tasks (label bug), "
            "below min_success 20%",
        )
    ]
    # a task with another label has no such history: cheap is tried
    other = ScriptedModel("cheap", sequence=[RIGHT])
    eng = engine({"cheap": other, "strong": ScriptedModel("strong")}, policy=skip)
    assert (await run(eng, task(repo, ("docs",), "D-1"), runs)).verified_rung == "cheap"

    (repo / "cascade.toml").write_text(
        '[[ladder]]\nname = "cheap"\nmodel = "scripted/cheap"\n'
        '[[ladder]]\nname = "strong"\nmodel = "scripted/strong"\n'
        "[policy.learned_skip]\nenabled = true\n"
    )
    shown = CliRunner().invoke(app, ["ladder", "stats", "--repo", str(repo), "--runs", str(runs)])
    assert shown.exit_code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("7 run(s) in") and "learned skip on" in lines[0]
    table = {tuple(line.split()[:2]): line.split()[2:] for line in lines[2:]}
    # tried, verified, unproven (passed every check, proven by nothing: counted apart), rate
    assert table[("cheap", "bug")] == ["5", "0", "0", "0%", "yes"]
    assert table[("strong", "bug")][:4] == ["6", "6", "0", "100%"]
    assert table[("cheap", "docs")][:4] == ["1", "1", "0", "100%"]
    assert table[("cheap", "*")][:4] == ["6", "1", "0", "17%"]


@pytest.mark.anyio
async def test_a_purse_shared_by_a_batch_stops_the_task_that_would_overspend(
    repo: Path, tmp_path: Path
) -> None:
    priced = tuple(
        r.model_copy(update={"input_cost_per_token": 1e-5, "output_cost_per_token": 2e-5})
        for r in LADDER
    )  # one call may cost up to ~$0.08: 4096 max_tokens at 2e-5
    purse = Purse(limit=0.3)  # its limit is the batch cap, with no [budget] configured
    budget = BudgetConfig(batch_max_cost_usd=5.0)  # the lower of the two holds
    first = ScriptedModel("cheap", sequence=[RIGHT], cost_usd=0.25)
    eng = engine(
        {"cheap": first, "strong": ScriptedModel("strong")},
        ladder=priced,
        purse=purse,
        budget=budget,
    )
    assert (await run(eng, task(repo), tmp_path / "runs")).status == "verified"
    assert purse.spent == pytest.approx(0.25) and purse.reserved == 0
    second = ScriptedModel("cheap", sequence=[RIGHT])
    eng = engine(
        {"cheap": second, "strong": ScriptedModel("strong")},
        ladder=priced,
        purse=purse,
        budget=budget,
    )
    outcome = await run(eng, task(repo, issue_id="CALC-2"), tmp_path / "runs")
    assert outcome.status == "budget_exhausted" and not second.prompts
    assert outcome.stop_reason.startswith(
        "budget: the batch has committed $0.2500 of its batch_max_cost_usd $0.3000"
    )
    assert "**Budget exhausted**" in (Path(outcome.run_dir) / "summary.md").read_text()


class _Elsewhere(Purse):
    """A purse shared with tasks on other machines: one of them reserves the rest of the cap
    right after this task has read what is committed, before its call is held."""

    def __init__(self, limit: float, taken: float) -> None:
        super().__init__(limit)
        self.taken, self.reads = taken, 0

    @property
    def committed(self) -> float:
        self.reads += 1
        seen = self.spent + self.reserved
        if self.reads == 1:
            self.reserve(self.taken)  # the other node's reservation lands after this read
        return seen


@pytest.mark.anyio
async def test_a_call_is_held_in_the_purse_only_if_it_still_fits(
    repo: Path, tmp_path: Path
) -> None:
    """The check and the reservation are one step (`Purse.hold`): money another task reserved
    between this task's check and its call stops it before the call, not after."""
    priced = tuple(
        r.model_copy(update={"input_cost_per_token": 1e-5, "output_cost_per_token": 2e-5})
        for r in LADDER
    )  # one call may cost up to ~$0.08
    purse = _Elsewhere(limit=0.3, taken=0.25)
    cheap = ScriptedModel("cheap", sequence=[RIGHT])
    eng = engine({"cheap": cheap, "strong": ScriptedModel("strong")}, ladder=priced, purse=purse)
    outcome = await run(eng, task(repo), tmp_path / "runs")
    assert not cheap.prompts, "the call was made although the cap had been taken"
    assert outcome.status == "budget_exhausted"
    assert outcome.stop_reason.startswith("budget: the batch has committed $0.2500")
    assert purse.reserved == pytest.approx(0.25) and purse.spent == 0  # nothing held, left over


def test_hold_reserves_only_what_fits_under_the_limit() -> None:
    purse = Purse(limit=1.0)
    assert purse.hold(0.6) and purse.reserved == pytest.approx(0.6)
    assert not purse.hold(0.5) and purse.reserved == pytest.approx(0.6)
    assert purse.hold(0.4) and purse.committed == pytest.approx(1.0)
    assert Purse().hold(5.0)  # no limit: always held
