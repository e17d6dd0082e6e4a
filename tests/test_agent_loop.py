"""The agent loop itself (issue 22), on the local sandbox for speed (a run refuses agent rungs on
it; the loop does not care which sandbox it is given): a malformed turn is answered, not run; the
wall-time limit ends the loop before the next call; a provider fault ends it with what was spent
kept; the meter is asked before every call and settles each; the workspace's changes, not its
git history, are what is carried."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from cascade.config import BudgetConfig, RungConfig
from cascade.core.agent import AgentJob, Trajectory, run_agent
from cascade.core.agent_rung import RungMeter, agent_attempt
from cascade.core.budget import Price, Purse
from cascade.errors import EditError, ProviderEscalate, TransientFault, make_fault
from cascade.records import Completion, CompletionParams, Issue, Message, Patch, Reproduction, Task
from cascade.testing import ScriptedModel, git, make_repo
from cascade.testing.models import Answer
from cascade.workflow_config import ToolPolicy
from cascade.workspace.carry import put_changes, take_changes
from cascade.workspace.tree import snapshot
from sandboxes.local_sandbox import LocalSandbox

pytestmark = pytest.mark.anyio


def sh(command: str) -> str:
    return f"Next.\n```bash\n{command}\n```"


class Meter:
    """Allows `calls` calls, and records what it was asked and paid."""

    def __init__(self, calls: int = 100) -> None:
        self.calls, self.asked = calls, 0
        self.paid_usd: list[float] = []

    def allow(self, messages: Sequence[Message]) -> str:
        self.asked += 1
        return "" if self.asked <= self.calls else "budget: no more"

    def paid(self, cost_usd: float) -> None:
        self.paid_usd.append(cost_usd)


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    path = make_repo(tmp_path / "repo", {"calc.py": "x = 1\n", "notes.txt": "keep\n"})
    yield path, git(path, "rev-parse", "HEAD").strip()


async def loop(
    repo: tuple[Path, str], answers: Sequence[Answer], meter: Meter, **tools: Any
) -> tuple[Trajectory, ScriptedModel, LocalSandbox]:
    box = await LocalSandbox.open(*repo)
    model = ScriptedModel("agent", sequence=answers)
    job = AgentJob(
        model, [Message(role="user", content="fix it")], CompletionParams(task_id="T"),
        ToolPolicy(**tools), box, meter,
    )  # fmt: skip
    return await run_agent(job), model, box


async def test_a_malformed_turn_is_answered_and_counts_as_a_step(repo: tuple[Path, str]) -> None:
    done, model, box = await loop(repo, ["I'd edit calc.py.", sh("echo ok"), sh("submit")], Meter())
    await box.close()
    turns = done.turns
    assert [t.exit_code for t in turns] == [None, 0, None]
    assert "exactly one command" in turns[0].output
    assert "exactly one command" in model.prompts[1][-1].content
    assert done.ended == "submitted" and done.steps == 3


async def test_the_wall_time_ends_the_loop_before_the_next_call(repo: tuple[Path, str]) -> None:
    done, model, box = await loop(repo, [sh("sleep 3"), sh("echo late")], Meter(), wall_time=1)
    await box.close()
    assert len(model.calls) == 1  # the second call was never made
    assert done.ended == "wall_time"
    assert done.turns[0].timed_out  # cut at what was left of the wall time


async def test_a_provider_fault_ends_the_loop_keeping_what_was_spent(
    repo: tuple[Path, str],
) -> None:
    meter = Meter()
    answers: list[Answer] = [sh("echo one"), ProviderEscalate("down", rung="agent")]
    done, _, box = await loop(repo, answers, meter)
    await box.close()
    assert done.ended == "provider_error" and done.fault is not None
    assert done.cost_usd == pytest.approx(0.001) and done.steps == 1
    assert meter.paid_usd == [0.001, 0.0]  # each hold settled, the failed call's at nothing


async def test_the_meter_is_asked_before_every_call(repo: tuple[Path, str]) -> None:
    meter = Meter(calls=2)
    done, model, box = await loop(repo, [sh("echo a")] * 5, meter)
    await box.close()
    assert len(model.calls) == 2 and meter.asked == 3
    assert done.ended == "budget" and "budget: no more" in done.why


def test_the_rung_meter_holds_each_call_in_the_batch_purse_and_stops_at_its_cap() -> None:
    rung = RungConfig(name="agent", model="x", mode="agent", max_tokens=1000)
    purse = Purse(limit=0.005)
    meter = RungMeter(
        rung, Price(0.000001, 0.000002, known=True), BudgetConfig(batch_max_cost_usd=0.005),
        purse, spent_task=0.0, spent_rung=0.0, count=len,
    )  # fmt: skip
    prompt = [Message(role="user", content="x" * 496)]  # 500 tokens: $0.0005 + $0.002 out
    assert meter.allow(prompt) == ""
    assert purse.reserved == pytest.approx(0.0025)
    meter.paid(0.002)
    assert purse.reserved == 0.0 and purse.spent == pytest.approx(0.002)
    assert meter.allow(prompt) == ""  # 0.002 + 0.0025 <= 0.005
    meter.paid(0.002)
    assert meter.allow(prompt).startswith("budget:")  # 0.004 + 0.0025 > 0.005
    assert purse.reserved == 0.0


async def carry(repo: tuple[Path, str], command: str) -> tuple[LocalSandbox, LocalSandbox, Patch]:
    """Run `command` in one sandbox, carry its changes into a fresh one: both, and the patch."""
    agent = await LocalSandbox.open(*repo)
    before = await snapshot(agent)
    result = await agent.exec(["bash", "-c", command], timeout=60)
    assert result.exit_code == 0, result.stderr
    fresh = await LocalSandbox.open(*repo)
    return agent, fresh, await put_changes(fresh, await take_changes(agent, before))


async def test_what_is_carried_is_the_files_not_the_agents_git(repo: tuple[Path, str]) -> None:
    # The agent commits its change, so `git diff` in its sandbox says nothing, and plants a
    # clean filter that would rewrite files: neither reaches the patch.
    command = (
        "echo 'x = 2' > calc.py && rm notes.txt && echo new > added.txt && "
        "git -c user.name=a -c user.email=a@a commit -qam done && git add -A && "
        "git -c user.name=a -c user.email=a@a commit -qm more && "
        "printf '[filter \"x\"]\\n clean = sed s/2/9/\\n' >> .git/config && "
        "echo '*.py filter=x' > .git/info/attributes"
    )
    agent, fresh, patch = await carry(repo, command)
    await agent.close()
    await fresh.close()
    assert patch.files == ("added.txt", "calc.py", "notes.txt")
    assert "+x = 2" in patch.diff and "+x = 9" not in patch.diff


# What a text round trip of the diff lost (the first design sent the patch as a fenced diff):
# each of these now arrives byte for byte, mode included.
FIDELITY = {
    "crlf": "printf 'a\\r\\nb\\r\\n' > win.txt && git add win.txt && "
    "git -c user.name=a -c user.email=a@a commit -qm w && printf 'a\\r\\nc\\r\\n' > win.txt",
    "unicode name": "echo hi > 'café menu.py'",
    "empty file": "mkdir -p pkg && touch pkg/__init__.py",
    # Random bytes with a NUL among them: git (and the carry) tell binary from text by a NUL in
    # the first 8,000 bytes, and 300 random bytes hold none about a third of the time.
    "binary": "{ head -c 150 /dev/urandom; printf '\\000'; head -c 150 /dev/urandom; } > blob.bin",
    "executable": "printf '#!/bin/sh\\necho hi\\n' > run.sh && chmod +x run.sh",
    "folder becomes a file": "mkdir -p d && echo 1 > d/x && git add d && "
    "git -c user.name=a -c user.email=a@a commit -qm d && rm -r d && echo file > d",
    "edit-format lookalikes": "printf '<<<<<<< SEARCH\\n=======\\n>>>>>>> REPLACE\\n"
    "--- a/x\\n+++ b/y\\n```\\n' >> notes.txt",
}


@pytest.mark.parametrize("command", FIDELITY.values(), ids=FIDELITY.keys())
async def test_the_changes_arrive_byte_for_byte(repo: tuple[Path, str], command: str) -> None:
    agent, fresh, patch = await carry(repo, command)
    try:
        assert patch.files
        for path in patch.files:
            assert await fresh.read_file(path) == await agent.read_file(path), path
            there = (agent.workdir / path).exists()
            if there and not (agent.workdir / path).is_dir():
                mode = (agent.workdir / path).stat().st_mode & 0o111
                assert (fresh.workdir / path).stat().st_mode & 0o111 == mode, path
    finally:
        await agent.close()
        await fresh.close()


REFUSED = {
    # tested as one thing, stored as another: the patch is text
    "latin-1 text": ("printf 'caf\\xe9\\n' > latin.txt", "is not UTF-8 text"),
    # what git never adds: on the judge's disk for the tests, missing from the patch
    "an ignored file": (
        "printf '*.so\\n' > .gitignore && git add .gitignore && "
        "git -c user.name=a -c user.email=a@a commit -qm i && echo x > mod.so && echo y > ok.py",
        "git does not track these",
    ),
    "git's own folder spelt otherwise": ("mkdir -p .GIT && echo x > .GIT/c", "`.git/`"),
    "a trailing dot": ("mkdir -p d/.git. && echo x > d/.git./c", "`.git/`"),
}


@pytest.mark.parametrize(("command", "says"), REFUSED.values(), ids=REFUSED.keys())
async def test_changes_that_cannot_ship_as_tested_are_the_answers_fault(
    repo: tuple[Path, str], command: str, says: str
) -> None:
    agent = await LocalSandbox.open(*repo)
    fresh = await LocalSandbox.open(*repo)
    try:
        before = await snapshot(agent)
        result = await agent.exec(["bash", "-c", command], timeout=60)
        assert result.exit_code == 0, result.stderr
        with pytest.raises(EditError, match=re.escape(says)):
            await put_changes(fresh, await take_changes(agent, before))
    finally:
        await agent.close()
        await fresh.close()


async def test_a_call_cut_short_by_the_wall_time_ends_the_loop_not_as_a_fault(
    repo: tuple[Path, str],
) -> None:
    # The last call's timeout is what is left of the wall time; its timeout is ours, not the
    # provider's, so what the turns did is still carried (no fault: no retry throws it away).
    class Slow(ScriptedModel):
        async def complete(
            self, messages: Sequence[Message], params: CompletionParams
        ) -> Completion:
            if params.timeout < 100:
                raise make_fault(TransientFault, "no answer in time", fault="timeout")
            return await super().complete(messages, params)

    box = await LocalSandbox.open(*repo)
    model = Slow("agent", sequence=[sh("echo 'x = 2' > calc.py")] * 3)
    params = CompletionParams(task_id="T", timeout=120)
    job = AgentJob(model, [Message(role="user", content="fix")], params, ToolPolicy(wall_time=5),
                   box, Meter())  # fmt: skip
    done = await run_agent(job)
    await box.close()
    assert done.ended == "wall_time" and done.fault is None


async def test_an_agent_works_beside_the_runs_reproduction_test(tmp_path: Path) -> None:
    # The prompt names the accepted reproduction test: it is in the agent's workspace, and it is
    # not the agent's change (the patch ships it anyway, locked).
    path = make_repo(tmp_path / "repo", {"calc.py": "x = 1\n"})
    test = "def test_x():\n    from calc import x\n    assert x == 2\n"
    issue = Issue(id="T", title="x")
    repro = Reproduction(
        files={"tests/test_repro.py": test}, diff="", tests=("tests/test_repro.py::test_x",)
    )
    task = Task(issue=issue, repo=str(path), base_commit=git(path, "rev-parse", "HEAD").strip(),
                reproduction=repro)  # fmt: skip
    turns = [sh("cat tests/test_repro.py"), sh("echo 'x = 2' > calc.py"), sh("submit")]
    model = ScriptedModel("agent", sequence=turns)
    rung = RungConfig(name="agent", model="x", mode="agent")

    async def take() -> LocalSandbox:
        return await LocalSandbox.open(path, task.base_commit)

    got = await agent_attempt(
        model, rung, [Message(role="user", content="fix")], CompletionParams(task_id="T"),
        task=task, take=take, meter=Meter(), put_blob=lambda text: "sha",
    )  # fmt: skip
    assert "assert x == 2" in got.trajectory.turns[0].output
    assert got.work is not None and set(got.work.carried.files) == {"calc.py"}
