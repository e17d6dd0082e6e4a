"""The engine loop end to end on a real git repository: a scripted model, the local sandbox, the
real pytest gate and the real proof log. Each test reads the proof back as a user would."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from cascade.config import RungConfig, SandboxConfig
from cascade.core.engine import Engine
from cascade.core.events import Event
from cascade.core.gate import Gate
from cascade.errors import InfraError, ProviderEscalate, ProviderRetry, ProviderStop, UsageError
from cascade.proof.log import ATTEMPTS_FILE, BLOBS_DIR, ProofLog
from cascade.proof.run_folder import RunFolder
from cascade.proof.verify import verify_run
from cascade.records import Issue, RunOutcome, Task, Verdict
from cascade.replay.regate import RegateTask, regate
from cascade.testing import ScriptedModel, git, make_repo
from cascade.wiring.registry import sandbox_opener
from evaluators.pytest_gate import PytestConfig, PytestEvaluator

CALC = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"
TESTS = (
    "from calc import add, mul\n\n\ndef test_add():\n    assert add(2, 2) == 4\n\n\n"
    "def test_mul():\n    assert mul(2, 3) == 6\n"
)
HIDDEN_PATH = "tests/test_hidden_negatives.py"
HIDDEN_NAME = "test_add_handles_negatives_zq"
HIDDEN_BODY = "add(-7, -8) == -15"
HIDDEN = f"from calc import add\n\n\ndef {HIDDEN_NAME}():\n    assert {HIDDEN_BODY}\n"


def block(search: str, replace: str, path: str = "calc.py") -> str:
    body = f"<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"
    return f"Here is the fix.\n\n{path}\n{body}"


RIGHT = block("    return a - b\n", "    return a + b\n")
WRONG = block("    return a - b\n", "    return a * b\n")  # 2*2 == 4 passes; breaks negatives
BREAKS_MUL = block("    return a * b\n", "    return a + b\n")  # a regression
UNMATCHED = block("    return a - c\n", "    return a + b\n")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"calc.py": CALC, "tests/test_calc.py": TESTS})


LADDER = (
    RungConfig(name="cheap", model="scripted/cheap", attempts=2),
    RungConfig(name="strong", model="scripted/strong", attempts=1),
)


def _task(repo: Path, *, hidden: bool = False, named: bool = True) -> Task:
    issue = Issue(
        id="CALC-1",
        title="add subtracts",
        body="`calc.add` returns the difference instead of the sum.",
        tests=("tests/test_calc.py::test_add",) if named else (),
        hidden_tests=(f"{HIDDEN_PATH}::{HIDDEN_NAME}",) if hidden else (),
        hidden_files={HIDDEN_PATH: HIDDEN} if hidden else {},
    )
    return Task(issue=issue, repo=str(repo), base_commit=git(repo, "rev-parse", "HEAD").strip())


async def _run(
    repo: Path,
    tmp_path: Path,
    cheap: ScriptedModel,
    strong: ScriptedModel,
    *,
    hidden: bool = False,
    start_at: str | None = None,
    gate: Gate | None = None,
    named: bool = True,
) -> tuple[RunOutcome, list[dict[str, object]], list[Event]]:
    events: list[Event] = []
    engine = Engine(
        ladder=LADDER,
        models={"cheap": cheap, "strong": strong},
        gate=gate or Gate([PytestEvaluator(PytestConfig())]),
        open_sandbox=sandbox_opener(SandboxConfig(), "local"),
        counter=lambda _rung: lambda text: len(text) // 4,
        on_event=events.append,
        start_at=start_at,
    )
    proof = ProofLog.create(tmp_path / "runs")
    outcome = await engine.run(_task(repo, hidden=hidden, named=named), proof)
    lines = (proof.run_dir / ATTEMPTS_FILE).read_text().splitlines()
    return outcome, [json.loads(line) for line in lines], events


@pytest.mark.anyio
async def test_cheap_rejected_then_strong_verified(repo: Path, tmp_path: Path) -> None:
    cheap = ScriptedModel("cheap", sequence=[BREAKS_MUL + RIGHT, "no edits here, sorry"])
    strong = ScriptedModel("strong", sequence=[RIGHT])
    outcome, records, events = await _run(repo, tmp_path, cheap, strong)
    assert outcome.status == "verified" and outcome.exit_code == 0
    assert outcome.verified_rung == "strong"
    assert [(r["rung"], r["attempt"], r["status"]) for r in records] == [
        ("cheap", 1, "rejected"),
        ("cheap", 2, "edit_error"),
        ("strong", 1, "verified"),
    ]
    # The regression is named in the feedback and shown to the next attempt.
    assert "test_mul" in str(records[0]["feedback"])
    assert "test_mul" in cheap.prompts[1][1].content
    assert "no edits" in str(records[1]["feedback"]).lower()
    assert "climb to 'strong'" in str(records[2]["reason"])
    run_dir = Path(outcome.run_dir)
    assert (run_dir / "patch.diff").read_text().count("+    return a + b") == 1
    assert "-    return a * b" not in (run_dir / "patch.diff").read_text()  # the reset worked
    assert verify_run(run_dir).ok
    assert outcome.cost_usd == pytest.approx(3 * 0.001)
    assert [e.kind for e in events][-1] == "done"
    # The user's checkout is never touched.
    assert (repo / "calc.py").read_text() == CALC


@pytest.mark.anyio
async def test_unmatched_search_is_a_failed_attempt_and_the_ladder_goes_on(
    repo: Path, tmp_path: Path
) -> None:
    cheap = ScriptedModel("cheap", sequence=[UNMATCHED, UNMATCHED])
    strong = ScriptedModel("strong", sequence=[RIGHT])
    outcome, records, _ = await _run(repo, tmp_path, cheap, strong)
    assert [r["status"] for r in records] == ["edit_error", "edit_error", "verified"]
    feedback = str(records[0]["feedback"])
    assert "return a - b" in feedback  # names the closest lines
    assert outcome.status == "verified"


@pytest.mark.anyio
async def test_exhausted_ladder_seals_an_honest_failure(repo: Path, tmp_path: Path) -> None:
    cheap = ScriptedModel("cheap", sequence=[BREAKS_MUL, BREAKS_MUL])
    strong = ScriptedModel("strong", sequence=[BREAKS_MUL])
    outcome, records, _ = await _run(repo, tmp_path, cheap, strong)
    assert outcome.status == "exhausted" and outcome.exit_code == 1
    assert len(records) == 3 and all(r["status"] == "rejected" for r in records)
    run_dir = Path(outcome.run_dir)
    assert not (run_dir / "patch.diff").exists()
    assert "Exhausted" in (run_dir / "summary.md").read_text()
    assert verify_run(run_dir).ok


@pytest.mark.anyio
async def test_provider_faults_follow_their_action(repo: Path, tmp_path: Path) -> None:
    cheap = ScriptedModel(
        "cheap", sequence=[ProviderRetry("rate limited"), ProviderEscalate("context window")]
    )
    strong = ScriptedModel("strong", sequence=[RIGHT])
    outcome, records, _ = await _run(repo, tmp_path, cheap, strong)
    assert [(r["rung"], r["status"]) for r in records] == [
        ("cheap", "provider_error"),
        ("cheap", "provider_error"),
        ("strong", "verified"),
    ]
    assert "rate limited" in str(records[0]["error"])
    assert outcome.status == "verified"


@pytest.mark.anyio
async def test_provider_stop_ends_the_run_with_an_error(repo: Path, tmp_path: Path) -> None:
    cheap = ScriptedModel("cheap", sequence=[ProviderStop("bad key: check OPENAI_API_KEY")])
    strong = ScriptedModel("strong", sequence=[RIGHT])
    outcome, records, _ = await _run(repo, tmp_path, cheap, strong)
    assert outcome.status == "error" and outcome.exit_code == 3
    assert "OPENAI_API_KEY" in outcome.error
    assert len(records) == 1 and not strong.prompts
    assert verify_run(Path(outcome.run_dir)).ok


@pytest.mark.anyio
async def test_start_at_skips_the_cheap_rung_and_says_so(repo: Path, tmp_path: Path) -> None:
    cheap = ScriptedModel("cheap", sequence=[RIGHT])
    strong = ScriptedModel("strong", sequence=[RIGHT])
    _, records, _ = await _run(repo, tmp_path, cheap, strong, start_at="strong")
    assert [r["rung"] for r in records] == ["strong"] and not cheap.prompts
    assert "--start-at" in str(records[0]["reason"])
    with pytest.raises(UsageError, match="no such rung"):
        await _run(repo, tmp_path / "x", cheap, strong, start_at="nope")


@pytest.mark.anyio
async def test_hidden_tests_never_reach_a_prompt(repo: Path, tmp_path: Path) -> None:
    # WRONG passes the visible target (2*2 == 4) but fails the hidden test.
    cheap = ScriptedModel("cheap", sequence=[WRONG, WRONG])
    strong = ScriptedModel("strong", sequence=[RIGHT])
    outcome, records, _ = await _run(repo, tmp_path, cheap, strong, hidden=True)
    assert [r["status"] for r in records] == ["rejected", "rejected", "verified"]
    assert "hidden test" in str(records[0]["feedback"])
    run_dir = Path(outcome.run_dir)
    prompts = [(run_dir / BLOBS_DIR / str(r["prompt_sha256"])).read_text() for r in records]
    prompts += [m.content for p in cheap.prompts + strong.prompts for m in p]
    assert len(prompts) == 3 + 3 * 2  # three stored prompts, and each as the model saw it
    for text in prompts:
        for secret in (HIDDEN_NAME, HIDDEN_BODY, HIDDEN_PATH, "test_hidden_negatives"):
            assert secret not in text
    # The gate did run the hidden test, and the workspace file was removed after.
    assert outcome.status == "verified"
    assert not (repo / HIDDEN_PATH).exists()


@pytest.mark.anyio
async def test_an_edit_that_changes_nothing_is_apply_noop(repo: Path, tmp_path: Path) -> None:
    # The second block applies to the test file but changes nothing in it.
    line = "    assert add(2, 2) == 4\n"
    same = block(line, line, "tests/test_calc.py")
    cheap = ScriptedModel("cheap", sequence=[RIGHT + same])
    strong = ScriptedModel("strong", sequence=[RIGHT])
    outcome, records, _ = await _run(repo, tmp_path, cheap, strong)
    assert records[0]["status"] == "edit_error"
    assert str(records[0]["feedback"]).startswith("apply_noop: your edits to tests/test_calc.py")
    # The half-applied first block was reset before the next answer: it verifies cleanly.
    assert outcome.status == "verified"


class Broken:
    """An evaluator whose harness fails (an OOM-killed tool, a dead container)."""

    def __init__(self, name: str, fails: bool | int) -> None:
        self.name, self.fails = name, fails  # True: always; a number: that many times

    def baseline_key(self, task: Task) -> str:
        return ""

    async def baseline(self, sandbox: Any, task: Task) -> dict[str, Any]:
        return {}

    async def evaluate(
        self, sandbox: Any, task: Task, patch: Any, baseline: Mapping[str, Any]
    ) -> Verdict:
        if self.fails:
            if not isinstance(self.fails, bool):
                self.fails -= 1
            raise InfraError("mypy was killed (out of memory)")
        return Verdict(evaluator=self.name, passed=True)


@pytest.mark.anyio
async def test_an_infra_failure_inside_a_concurrent_stage_is_sealed_as_an_error(
    repo: Path, tmp_path: Path
) -> None:
    # ruff and mypy share a stage and run in a task group: the failure must still arrive as
    # an InfraError (an attempt's infra_error, then a sealed run), not as an ExceptionGroup.
    gate = Gate([Broken("ruff", fails=False), Broken("mypy", fails=True)], check_tamper=False)
    cheap = ScriptedModel("cheap", sequence=[RIGHT] * 5)
    strong = ScriptedModel("strong", sequence=[RIGHT] * 5)
    outcome, records, _ = await _run(repo, tmp_path, cheap, strong, gate=gate)
    assert records and all(r["status"] == "infra_error" for r in records)
    assert "out of memory" in str(records[0]["error"])
    assert outcome.status == "error" and outcome.exit_code == 3
    assert verify_run(Path(outcome.run_dir)).ok


COSMETIC = block("def mul(a, b):\n", "def mul(a, b):  # multiplies\n")


@pytest.mark.anyio
async def test_a_patch_nothing_proves_is_unproven_never_verified(
    repo: Path, tmp_path: Path
) -> None:
    # Issue 13's DEMO-9: nothing names a test, and no reproduce stage. A do-nothing patch passes
    # every check, but no test shows it fixes the issue: unproven, exit 1, no patch.diff; the
    # ladder stops there (no later rung could prove it either) and the patch is kept for a human.
    cheap = ScriptedModel("cheap", sequence=[COSMETIC])
    strong = ScriptedModel("strong", sequence=[RIGHT])
    outcome, records, events = await _run(repo, tmp_path, cheap, strong, named=False)
    assert [r["status"] for r in records] == ["unproven"] and not strong.prompts
    assert outcome.status == "unproven" and outcome.exit_code == 1
    assert not outcome.proving and not outcome.patch_sha256
    run_dir = Path(outcome.run_dir)
    assert not (run_dir / "patch.diff").exists()
    assert any("nothing can prove a fix" in e.message for e in events)
    assert "nothing can prove a fix" in json.dumps(records[0]["decision"])
    best = outcome.best_unverified
    assert best is not None and best.seq == 1 and best.failed == ()
    summary = (run_dir / "summary.md").read_text()
    assert "**Unproven**" in summary and "## Why it is unproven" in summary
    receipt = RunFolder(run_dir).receipt()  # the Statement, out of its DSSE envelope
    assert (
        receipt["predicate"]["status"] == "unproven"
        and receipt["subject"][0]["name"] != "patch.diff"
    )
    assert verify_run(run_dir).ok


@pytest.mark.anyio
async def test_a_verified_run_names_the_issue_test_that_proves_it(
    repo: Path, tmp_path: Path
) -> None:
    cheap = ScriptedModel("cheap", sequence=[RIGHT])
    outcome, records, _ = await _run(repo, tmp_path, cheap, ScriptedModel("strong"))
    assert outcome.status == "verified"
    (proof,) = outcome.proving
    assert (proof.test, proof.source, proof.after) == (
        "tests/test_calc.py::test_add",
        "issue",
        "passed",
    )
    assert proof.base.startswith("failed: AssertionError")
    assert records[-1]["proving"] == [proof.model_dump(mode="json")]
    run_dir = Path(outcome.run_dir)
    base = json.loads((run_dir / BLOBS_DIR / records[-1]["baseline_sha256"]).read_text())
    assert base["tests/test_calc.py::test_add"] == proof.base
    summary = (run_dir / "summary.md").read_text()
    assert "## What proves it" in summary and "`tests/test_calc.py::test_add` | issue" in summary
    assert verify_run(run_dir).ok


@pytest.mark.anyio
async def test_reexecution_judges_only_the_patches_the_gate_judged(
    repo: Path, tmp_path: Path
) -> None:
    # The first attempt's gate broke (infra_error, a patch but no verdict); the retry verified.
    gate = Gate([Broken("mypy", fails=1), PytestEvaluator(PytestConfig())], check_tamper=False)
    cheap = ScriptedModel("cheap", sequence=[RIGHT, RIGHT])
    outcome, records, _ = await _run(repo, tmp_path, cheap, ScriptedModel("strong"), gate=gate)
    assert [r["status"] for r in records] == ["infra_error", "verified"]
    assert records[0]["patch_sha256"]
    run_dir = Path(outcome.run_dir)
    task = RegateTask(_task(repo).issue, outcome, RunFolder(run_dir).attempts(), run_dir)
    fresh = Gate([PytestEvaluator(PytestConfig())])
    result = await regate([task], fresh, lambda _: sandbox_opener(SandboxConfig(), "local"), repo)
    assert [(p.seq, p.before, p.after) for p in result.patches] == [(2, "accepted", "accepted")]


@pytest.mark.anyio
async def test_each_attempt_records_what_its_verdict_depends_on(repo: Path, tmp_path: Path) -> None:
    # Issue 15: the base commit and the gate's configuration are in the chain, so re-judging a
    # run trusts no unchained file: an outcome.json whose base commit was rewritten changes
    # nothing for --reexecute.
    gate = Gate([PytestEvaluator(PytestConfig())])
    cheap = ScriptedModel("cheap", sequence=[RIGHT])
    outcome, records, _ = await _run(repo, tmp_path, cheap, ScriptedModel("strong"), gate=gate)
    base = _task(repo).base_commit
    assert [(r["base_commit"], r["gate_sha256"]) for r in records] == [(base, gate.digest)]
    assert gate.digest != Gate([PytestEvaluator(PytestConfig(timeout=5))]).digest
    forged = outcome.model_copy(update={"base_commit": "0" * 40})
    run_dir = Path(outcome.run_dir)
    task = RegateTask(_task(repo).issue, forged, RunFolder(run_dir).attempts(), run_dir)
    result = await regate([task], gate, lambda _: sandbox_opener(SandboxConfig(), "local"), repo)
    assert [(p.seq, p.after) for p in result.patches] == [(1, "accepted")]
