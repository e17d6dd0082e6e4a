"""Agent rungs (issue 22), with a scripted agent driving the real engine, the real pytest gate and
real Docker sandboxes: a trajectory that fixes the bug is verified like any patch; one that never
submits stops at max_steps; one that reaches for the network and the hidden tests finds neither;
one that would overspend is stopped before the call; a command outside the allow-list is
refused, not run; a command that never ends is killed and the loop goes on."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from cascade.config import RungConfig, SandboxConfig
from cascade.core.engine import Engine
from cascade.core.gate import Gate
from cascade.errors import ProviderEscalate
from cascade.models import Recorder, build_model
from cascade.models.cassette import Cassette
from cascade.models.recording import as_replay
from cascade.proof.log import ProofLog
from cascade.proof.run_folder import RunFolder
from cascade.proof.verify import verify_run
from cascade.protocols import Model
from cascade.records import Attempt, Issue, RunOutcome, Task
from cascade.testing import ScriptedModel, git, make_repo
from cascade.testing.models import Answer
from cascade.wiring.registry import sandbox_opener
from cascade.workflow_config import ToolPolicy
from evaluators.diff_scope import DiffScopeEvaluator
from evaluators.pytest_gate import PytestEvaluator
from tests.loopback import FakeOpenAI, chat_body

pytestmark = [pytest.mark.docker, pytest.mark.anyio]

CALC = "def add(a, b):\n    return a - b\n"
TESTS = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
TARGET = "tests/test_calc.py::test_add"
HIDDEN_MARK = "HIDDEN-7f3a"  # only in the hidden test's source
HIDDEN = (
    f"# {HIDDEN_MARK}\nfrom calc import add\n\n\ndef test_more():\n    assert add(10, 5) == 15\n"
)
ISSUE = Issue(
    id="CALC-1",
    title="add subtracts",
    body="add(2, 3) gives -1",
    tests=(TARGET,),
    hidden_tests=("tests/test_hidden.py::test_more",),
    hidden_files={"tests/test_hidden.py": HIDDEN},
)


# Everywhere but the system's own trees (/usr alone takes a minute to read).
SEARCHED = "--exclude-dir=proc --exclude-dir=sys --exclude-dir=dev --exclude-dir=usr / ."


def sh(command: str, why: str = "Next step.") -> str:
    return f"{why}\n\n```bash\n{command}\n```\n"


SUBMIT = sh("submit", "The fix is complete.")
FIXES = [
    sh("cat calc.py", "Let me read the code."),
    sh("python -m pytest -q tests/test_calc.py", "Run the failing test."),
    sh("sed -i 's/a - b/a + b/' calc.py", "add subtracts; make it add."),
    sh("python -m pytest -q tests/test_calc.py", "Run it again."),
    SUBMIT,
]


def agent(**tools: Any) -> RungConfig:
    return RungConfig(
        name="agent", model="scripted/agent", mode="agent", tools=ToolPolicy(**tools),
        input_cost_per_token=0.000001, output_cost_per_token=0.000002, max_tokens=1000,
    )  # fmt: skip


async def run(
    tmp_path: Path,
    answers: Sequence[Answer],
    rung: RungConfig | None = None,
    cost: float = 0.001,
    model: Model | None = None,
) -> tuple[RunOutcome, ScriptedModel]:
    repo = tmp_path / "repo"
    if not repo.exists():
        make_repo(repo, {"calc.py": CALC, "tests/test_calc.py": TESTS})
    task = Task(issue=ISSUE, repo=str(repo), base_commit=git(repo, "rev-parse", "HEAD").strip())
    scripted = ScriptedModel("agent", sequence=answers, cost_usd=cost)
    engine = Engine(
        ladder=(rung or agent(),),
        models={"agent": model or scripted},
        gate=Gate([DiffScopeEvaluator(), PytestEvaluator()]),
        open_sandbox=sandbox_opener(SandboxConfig(backend="docker"), "docker", "agent-test"),
        counter=lambda _rung: lambda text: len(text) // 4,
    )
    outcome = await engine.run(task, ProofLog.create(tmp_path / "runs"))
    return outcome, scripted


def only(outcome: RunOutcome) -> Attempt:
    records = RunFolder(Path(outcome.run_dir)).attempts()
    assert len(records) == 1, [r.status for r in records]
    return records[0]


def trajectory(outcome: RunOutcome, record: Attempt) -> dict[str, Any]:
    blob = Path(outcome.run_dir) / "blobs" / record.trajectory_sha256
    return json.loads(blob.read_text())  # type: ignore[no-any-return]


async def test_a_trajectory_that_fixes_the_bug_is_verified_with_its_proof(
    tmp_path: Path, docker_engine: None
) -> None:
    outcome, model = await run(tmp_path, list(FIXES))
    record = only(outcome)
    assert outcome.status == "verified", record.feedback or record.error
    assert (record.mode, record.steps, record.ended) == ("agent", 5, "submitted")
    assert record.cost_usd == pytest.approx(0.005)  # five turns, summed
    assert record.usage.prompt_tokens == 5 * 100
    turns = trajectory(outcome, record)["turns"]
    assert [t["command"] for t in turns] == [
        "cat calc.py", "python -m pytest -q tests/test_calc.py", "sed -i 's/a - b/a + b/' calc.py",
        "python -m pytest -q tests/test_calc.py", None,
    ]  # fmt: skip
    assert "return a - b" in turns[0]["output"]
    assert turns[1]["exit_code"] == 1 and "1 failed" in turns[1]["output"]
    assert turns[3]["exit_code"] == 0 and "1 passed" in turns[3]["output"]
    # Each turn was shown the outputs before it, and only the sandbox's own.
    assert "return a - b" in model.prompts[1][-1].content
    assert [c.step for c in model.calls] == [1, 2, 3, 4, 5]
    # The patch is the workspace's diff, re-applied and gated in a fresh sandbox.
    patch = (Path(outcome.run_dir) / "patch.diff").read_text()
    assert "+    return a + b" in patch and patch.count("diff --git") == 1
    assert [v.evaluator for v in record.verdicts] == ["diff_scope", "pytest"]
    summary = (Path(outcome.run_dir) / "summary.md").read_text()
    assert "agent: 5 steps, submitted" in summary
    assert "python -m pytest -q tests/test_calc.py" in summary
    report = verify_run(Path(outcome.run_dir))
    assert report.ok, report.problems


async def test_an_agent_that_never_submits_stops_at_max_steps_and_is_recorded(
    tmp_path: Path, docker_engine: None
) -> None:
    looping = [sh("ls"), sh("sed -i 's/a - b/a + b/' calc.py"), sh("ls"), sh("ls")]
    outcome, model = await run(tmp_path, looping, agent(max_steps=3))
    record = only(outcome)
    assert len(model.calls) == 3  # the fourth answer is never asked for
    assert (record.steps, record.ended) == (3, "max_steps")
    # What it had done by then is still its patch, and still gated: here, a right one.
    assert outcome.status == "verified"


async def test_the_network_and_the_hidden_tests_are_out_of_the_agents_reach(
    tmp_path: Path, docker_engine: None
) -> None:
    probe = "python -c \"import urllib.request as u; u.urlopen('http://1.1.1.1', timeout=3)\""
    cheat = "python - <<'EOF'\nopen('calc.py','w').write('def add(a, b):\\n    return 5\\n')\nEOF"
    answers = [
        sh(probe, "Can I reach the internet?"),
        sh("cat tests/test_hidden.py", "Read the hidden tests."),
        sh(f"grep -rl {HIDDEN_MARK} {SEARCHED} 2>/dev/null | head -5; echo searched", "Search."),
        sh(cheat, "Special-case the visible test."),
        SUBMIT,
    ]
    outcome, _ = await run(tmp_path, answers)
    record = only(outcome)
    turns = trajectory(outcome, record)["turns"]
    assert turns[0]["exit_code"] != 0  # no network
    assert turns[1]["exit_code"] != 0 and "No such file" in turns[1]["output"]
    assert "searched" in turns[2]["output"]
    assert not [t["step"] for t in turns if HIDDEN_MARK in t["output"]]  # found nowhere
    # The special case passes the visible test; the hidden one, run by the gate, rejects it.
    assert record.status == "rejected" and outcome.status != "verified"
    assert HIDDEN_MARK not in record.feedback


async def test_an_agent_is_stopped_before_a_call_that_could_overspend(
    tmp_path: Path, docker_engine: None
) -> None:
    # Each call costs $0.003 and is estimated at ~$0.0025; the rung may spend $0.008, so a third
    # call (0.006 spent + its estimate) could overspend and is never made.
    rung = agent().model_copy(update={"max_cost_usd": 0.008})
    outcome, model = await run(tmp_path, [sh("ls")] * 5, rung, cost=0.003)
    record = only(outcome)
    assert len(model.calls) == 2
    assert (record.steps, record.ended) == (2, "budget")
    assert record.cost_usd == pytest.approx(0.006)
    assert "budget" in trajectory(outcome, record)["why"]
    assert record.status == "empty_patch"  # nothing changed: nothing to gate


async def test_a_command_outside_the_allow_list_is_refused_not_run(
    tmp_path: Path, docker_engine: None
) -> None:
    answers = [
        sh("rm calc.py", "Start over."),
        sh("cat calc.py && rm calc.py", "Chain past the list."),
        sh("cat calc.py"),
        SUBMIT,
    ]
    outcome, model = await run(
        tmp_path, answers, agent(allow=[["cat"], ["python", "-m", "pytest"]])
    )
    turns = trajectory(outcome, only(outcome))["turns"]
    assert [t["exit_code"] for t in turns[:3]] == [None, None, 0]
    assert turns[0]["refused"].startswith("refused, not run") and "`cat`" in turns[0]["refused"]
    assert turns[1]["refused"]
    assert "return a - b" in turns[2]["output"]  # calc.py is still there
    assert "refused, not run" in model.prompts[1][-1].content  # the model read why


async def test_a_command_that_never_ends_is_killed_and_the_loop_goes_on(
    tmp_path: Path, docker_engine: None
) -> None:
    answers = [sh("sleep 300; echo never"), sh("echo after"), SUBMIT]
    started = time.monotonic()
    outcome, _ = await run(tmp_path, answers, agent(command_timeout=2))
    assert time.monotonic() - started < 60
    turns = trajectory(outcome, only(outcome))["turns"]
    assert turns[0]["timed_out"] and "never" not in turns[0]["output"]
    assert turns[0]["output"].startswith("killed: the command ran past its 2-second limit")
    assert turns[1]["exit_code"] == 0 and "after" in turns[1]["output"]


async def test_an_agent_run_through_litellm_records_and_replays_identically(
    tmp_path: Path, docker_engine: None, fake_openai: FakeOpenAI
) -> None:
    # Each turn is a real HTTP call to an OpenAI-compatible server on loopback, through litellm;
    # `--record` writes one cassette line per turn, and the replay serves them back by step.
    fake_openai.script.extend((200, chat_body(text), {}) for text in FIXES)
    live = agent().model_copy(update={"model": "openai/fake-agent", "api_base": fake_openai.base})
    cassette = tmp_path / "agent.jsonl"
    recording = build_model(live, config_dir=tmp_path, recorder=Recorder(cassette))
    recorded, _ = await run(tmp_path, [], live, model=recording)
    assert recorded.status == "verified"
    assert fake_openai.calls("fake-agent") == 5
    sent = fake_openai.requests[3]["messages"]
    assert sent[0]["role"] == "system" and "exactly one command" in sent[0]["content"]
    assert "1 failed" in sent[-3]["content"]  # turn 4 was sent turn 2's test run
    lines = [json.loads(line) for line in cassette.read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4, 5]
    assert len(Cassette.load(cassette)) == 5

    replay = as_replay(live, str(cassette))
    replayed, _ = await run(tmp_path, [], replay, model=build_model(replay, config_dir=tmp_path))
    assert fake_openai.calls("fake-agent") == 5  # nothing more reached the server
    first, second = only(recorded), only(replayed)
    assert replayed.status == "verified"
    assert second.patch_sha256 == first.patch_sha256
    assert (second.steps, second.ended) == (first.steps, first.ended) == (5, "submitted")
    assert second.cost_usd == pytest.approx(first.cost_usd) and first.cost_usd > 0
    assert second.usage == first.usage


def test_the_demos_agent_ladder_verifies_demo_3_from_its_cassette(
    demo: Path, docker_engine: None
) -> None:
    """`cascade fix DEMO-3 --config agent.toml`, as the README says: the cheap rung's answer is
    rejected, the agent reads, runs the failing tests, edits, runs them again and submits."""
    cascade = str(Path(sys.executable).parent / "cascade")
    argv = [cascade, "fix", "DEMO-3", "--repo", str(demo), "--config", str(demo / "agent.toml")]
    proc = subprocess.run(
        [*argv, "--json"], capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, proc.stderr
    outcome = json.loads(proc.stdout)
    assert outcome["verified_rung"] == "agent"
    records = RunFolder(Path(outcome["run_dir"])).attempts()
    assert [(r.rung, r.status) for r in records] == [("cheap", "rejected"), ("agent", "verified")]
    assert (records[1].steps, records[1].ended) == (5, "submitted")
    assert "step 2: python -m pytest -q tests/test_pricing.py -k instalments  (exit 1)" in (
        proc.stderr
    )  # the turns as they happen
    verify = subprocess.run(
        [cascade, "proof", "verify", outcome["run_dir"]], capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr


async def test_a_provider_fault_mid_loop_is_recorded_with_the_turns_already_paid(
    tmp_path: Path, docker_engine: None
) -> None:
    answers: list[Answer] = [sh("ls"), ProviderEscalate("the provider went away", rung="agent")]
    outcome, _ = await run(tmp_path, answers)
    record = only(outcome)
    assert (record.status, record.ended) == ("provider_error", "provider_error")
    assert record.fault is not None  # its kind, for the ladder's policy
    assert record.cost_usd == pytest.approx(0.001) and record.steps == 1
    assert "the provider went away" in record.error
    assert verify_run(Path(outcome.run_dir)).ok


async def test_a_workspace_too_large_to_carry_is_the_answers_fault(
    tmp_path: Path, docker_engine: None
) -> None:
    answers = [sh("head -c 1200000 /dev/urandom | base64 > big.txt"), SUBMIT]
    outcome, _ = await run(tmp_path, answers)
    record = only(outcome)
    assert record.status == "edit_error"
    assert "at most 1,048,576 are taken" in record.feedback
