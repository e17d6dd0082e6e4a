"""Test-first, end to end: an issue that names no failing test gets a reproduction from its own
ladder, judged by the real reproduction evaluator in the local sandbox; the accepted test proves
the fix, is locked against it, and ships in the patch. Scripted answers, real pytest, real proof
(read back and verified as a user would)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cascade.config import RungConfig, SandboxConfig
from cascade.core.engine import Engine
from cascade.core.events import Event
from cascade.core.gate import Gate
from cascade.core.reproduce import ReproduceStage
from cascade.proof.log import ProofLog
from cascade.proof.run_folder import RunFolder
from cascade.proof.verify import verify_run
from cascade.records import Issue, RunOutcome, Task
from cascade.testing import ScriptedModel, git, make_repo
from cascade.wiring.registry import sandbox_opener
from evaluators.diff_scope import DiffScopeEvaluator
from evaluators.pytest_gate import PytestEvaluator
from evaluators.reproduction import ReproductionEvaluator

MONEY = (
    "def format_money(cents: int) -> str:\n"
    "    whole, frac = divmod(cents, 100)\n"
    '    return f"${whole}.{frac:02d}"\n'
)
TESTS = (
    "from money import format_money\n\n\n"
    'def test_positive():\n    assert format_money(150) == "$1.50"\n'
)
LADDER = (
    RungConfig(name="cheap", model="scripted/cheap", attempts=1),
    RungConfig(name="strong", model="scripted/strong", attempts=1),
)
REPRO_PATH = "tests/test_negative.py"


def block(path: str, search: str, replace: str) -> str:
    return f"{path}\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"


def new_test(body: str) -> str:
    return block(REPRO_PATH, "", f"from money import format_money\n\n\n{body}")


# The cheap rung's "reproduction" passes at base; the strong rung's fails for the issue's reason.
PASSES_AT_BASE = new_test('def test_negative():\n    assert format_money(0) == "$0.00"\n')
GOOD_REPRO = new_test('def test_negative():\n    assert format_money(-150) == "-$1.50"\n')
SPLIT = "    whole, frac = divmod(cents, 100)\n"
COSMETIC = block("money.py", SPLIT, "    # split into dollars and cents\n" + SPLIT)
RIGHT = block(
    "money.py",
    '    whole, frac = divmod(cents, 100)\n    return f"${whole}.{frac:02d}"\n',
    '    sign = "-" if cents < 0 else ""\n    whole, frac = divmod(abs(cents), 100)\n'
    '    return f"{sign}${whole}.{frac:02d}"\n',
)
# The fix's workspace does not hold the reproduction (it is copied in for the gate's runs), so a
# fix that wants it weaker writes the file anew: the lock refuses that whatever it says.
WEAKENS_THE_TEST = new_test('def test_negative():\n    assert format_money(-150) == "$-2.50"\n')


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"money.py": MONEY, "tests/test_money.py": TESTS})


def _task(repo: Path) -> Task:
    issue = Issue(
        id="DEMO-9",
        title="Negative amounts are formatted wrongly",
        body='`format_money(-150)` gives "$-2.50"; it should give "-$1.50".',
        labels=("bug",),
    )
    return Task(issue=issue, repo=str(repo), base_commit=git(repo, "rev-parse", "HEAD").strip())


async def _run(
    repo: Path,
    tmp_path: Path,
    fix: dict[str, ScriptedModel],
    reproduce: dict[str, ScriptedModel],
    *,
    independent: bool = False,
) -> tuple[RunOutcome, list[dict[str, object]], list[Event]]:
    events: list[Event] = []
    stage = ReproduceStage(
        ladder=LADDER,
        models=reproduce,
        gate=Gate([ReproductionEvaluator()]),
        independent=independent,
    )
    engine = Engine(
        ladder=LADDER,
        models=fix,
        gate=Gate([DiffScopeEvaluator(), PytestEvaluator()]),
        open_sandbox=sandbox_opener(SandboxConfig(), "local"),
        counter=lambda _rung: lambda text: len(text) // 4,
        on_event=events.append,
        reproduce=stage,
    )
    outcome = await engine.run(_task(repo), ProofLog.create(tmp_path / "runs"))
    records = RunFolder(Path(outcome.run_dir)).records()
    return outcome, records, events


def _scripted(**answers: list[str]) -> dict[str, ScriptedModel]:
    return {name: ScriptedModel(name, sequence=seq) for name, seq in answers.items()}


@pytest.mark.anyio
async def test_reproduce_first_then_the_fix_is_proven_by_that_test(
    repo: Path, tmp_path: Path
) -> None:
    reproduce = _scripted(cheap=[PASSES_AT_BASE], strong=[GOOD_REPRO])
    fix = _scripted(cheap=[COSMETIC], strong=[RIGHT])
    outcome, records, events = await _run(repo, tmp_path, fix, reproduce)
    shape = [(r["role"], r["rung"], r["status"]) for r in records]
    assert shape == [
        ("reproduce", "cheap", "rejected"),  # passes at base: reproduces nothing
        ("reproduce", "strong", "accepted"),
        ("fix", "cheap", "rejected"),  # the do-nothing fix: the reproduction still fails
        ("fix", "strong", "verified"),
    ]
    assert "passes at the base commit" in str(records[0]["feedback"])
    assert "test_negative" in str(records[2]["feedback"])
    assert outcome.status == "verified" and outcome.fix_model == "scripted/strong"
    (proof,) = outcome.proving
    assert (proof.test, proof.source, proof.rung, proof.model) == (
        f"{REPRO_PATH}::test_negative",
        "reproduction",
        "strong",
        "scripted/strong",
    )
    assert proof.base.startswith("failed") and proof.after == "passed"
    # The fix prompt showed the reproduction as locked; the reproduce prompt asked for a test.
    fix_prompt = fix["cheap"].prompts[0][1].content
    assert "A test that reproduces the issue" in fix_prompt and "format_money(-150)" in fix_prompt
    assert "reproduces" in reproduce["cheap"].prompts[0][0].content
    assert any("reproduce first" in e.message for e in events)
    # The pull request carries its own regression test: patch.diff is the test, then the fix.
    run_dir = Path(outcome.run_dir)
    diff = (run_dir / "patch.diff").read_text()
    assert f"+++ b/{REPRO_PATH}" in diff and "+++ b/money.py" in diff
    applied = tmp_path / "applied"
    subprocess.run(["git", "clone", "-q", str(repo), str(applied)], check=True)
    subprocess.run(["git", "-C", str(applied), "apply", str(run_dir / "patch.diff")], check=True)
    assert (applied / REPRO_PATH).is_file()
    receipt = RunFolder(run_dir).receipt()  # the Statement, out of its DSSE envelope
    assert receipt["predicate"]["reproduction"]["rung"] == "strong"
    assert receipt["predicate"]["proving"][0]["source"] == "reproduction"
    summary = (run_dir / "summary.md").read_text()
    assert "The proving test was written by `scripted/strong`" in summary
    assert verify_run(run_dir).ok


@pytest.mark.anyio
async def test_a_fix_may_not_touch_the_reproduction_test(repo: Path, tmp_path: Path) -> None:
    reproduce = _scripted(cheap=[GOOD_REPRO], strong=[])
    fix = _scripted(cheap=[COSMETIC + WEAKENS_THE_TEST], strong=[RIGHT])
    outcome, records, _ = await _run(repo, tmp_path, fix, reproduce)
    assert [r["status"] for r in records] == ["accepted", "rejected", "verified"]
    findings = [f for v in records[1]["verdicts"] for f in v["findings"]]  # type: ignore[attr-defined]
    assert [f["rule"] for f in findings] == ["locked_test"]
    assert outcome.status == "verified"


@pytest.mark.anyio
async def test_independence_passes_over_the_rung_whose_model_wrote_the_test(
    repo: Path, tmp_path: Path
) -> None:
    reproduce = _scripted(cheap=[GOOD_REPRO], strong=[])
    fix = _scripted(cheap=[RIGHT], strong=[RIGHT])
    outcome, records, _ = await _run(repo, tmp_path, fix, reproduce, independent=True)
    assert [(r["rung"], r["status"]) for r in records] == [
        ("cheap", "accepted"),
        ("strong", "verified"),
    ]
    assert not fix["cheap"].prompts
    decision = records[1]["decision"]
    assert isinstance(decision, dict)
    assert "wrote the only proving test" in json.dumps(decision["rejected"])
    assert outcome.fix_model == "scripted/strong" and outcome.proving[0].model == "scripted/cheap"


@pytest.mark.anyio
async def test_without_an_accepted_reproduction_the_best_outcome_is_unproven(
    repo: Path, tmp_path: Path
) -> None:
    reproduce = _scripted(cheap=[PASSES_AT_BASE], strong=[PASSES_AT_BASE])
    fix = _scripted(cheap=[COSMETIC], strong=[RIGHT])
    outcome, records, events = await _run(repo, tmp_path, fix, reproduce)
    assert [r["status"] for r in records] == ["rejected", "rejected", "unproven"]
    assert outcome.status == "unproven" and outcome.exit_code == 1
    assert any("no reproduction was accepted" in e.message for e in events)
    assert not (Path(outcome.run_dir) / "patch.diff").exists()
    assert verify_run(Path(outcome.run_dir)).ok
