"""The baseline overlaps the first model call (issue #19): the prompt is built from the named
tests' own run at the base commit, the first call is drawn while ruff, mypy and the whole suite
take their baselines, and the gate waits for them only if the answer comes first. A baseline
that cannot be taken stops the run once the answer in flight is recorded (never judged against
nothing); `[run] overlap_baseline = false` and an issue with hidden files wait as before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from cascade.config import RungConfig, SandboxConfig
from cascade.core.attempt import Spares
from cascade.core.engine import Engine
from cascade.core.events import Event
from cascade.core.gate import Gate
from cascade.errors import GateConfigError, InfraError, Refused
from cascade.proof.log import ATTEMPTS_FILE, ProofLog
from cascade.proof.verify import verify_run
from cascade.records import Completion, CompletionParams, Issue, Message, RunOutcome, Task, Verdict
from cascade.testing import ScriptedModel, git, make_repo
from cascade.wiring.registry import sandbox_opener
from evaluators.pytest_gate import PytestConfig, PytestEvaluator
from sandboxes.local_sandbox import run_process

CALC = "def add(a, b):\n    return a - b\n"
TESTS = "from calc import add\n\n\ndef test_add():\n    assert add(2, 2) == 4\n"
HIDDEN_PATH = "tests/test_hidden_add.py"
HIDDEN = "from calc import add\n\n\ndef test_add_negatives_q():\n    assert add(-1, -1) == -2\n"
RIGHT = (
    "Sum, not difference.\n\ncalc.py\n<<<<<<< SEARCH\n    return a - b\n=======\n"
    "    return a + b\n>>>>>>> REPLACE\n"
)
LADDER = (RungConfig(name="cheap", model="scripted/cheap"),)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"calc.py": CALC, "tests/test_calc.py": TESTS})


class Clocked(ScriptedModel):
    """A scripted model that says when it was first called."""

    def __init__(self) -> None:
        super().__init__("cheap", sequence=[RIGHT] * 3)
        self.called = anyio.Event()
        self.first_call = 0.0

    async def complete(self, messages: Sequence[Message], params: CompletionParams) -> Completion:
        if not self.called.is_set():
            self.first_call = time.monotonic()
            self.called.set()
        return await super().complete(messages, params)


class Slow:
    """A gate check whose baseline is slow. `until_called`: it ends only once the model has been
    called (an engine that takes every baseline before the first call never gets there), then
    fails with `fails` if given. Its verdict fails unless it was given its own baseline."""

    def __init__(
        self,
        model: Clocked,
        *,
        until_called: bool = True,
        fails: Exception | None = None,
        times: int = 99,
        name: str = "slowcheck",
    ) -> None:
        self.name, self.model, self.until_called, self.fails = name, model, until_called, fails
        self.times = times  # how many of its baselines fail (with `fails`)
        self.taken = 0
        self.done_at = 0.0
        self.failed = anyio.Event()  # set as a baseline raises `fails`

    def baseline_key(self, task: Task) -> str:
        return ""

    async def baseline(self, sandbox: Any, task: Task) -> dict[str, Any]:
        self.taken += 1
        if self.until_called:
            with anyio.fail_after(20):
                await self.model.called.wait()
        else:
            await anyio.sleep(0.3)
        if self.fails is not None and self.taken <= self.times:
            self.failed.set()
            raise self.fails
        self.done_at = time.monotonic()
        return {"mine": True}

    async def evaluate(
        self, sandbox: Any, task: Task, patch: Any, baseline: Mapping[str, Any]
    ) -> Verdict:
        ok = baseline.get("mine") is True
        return Verdict(evaluator=self.name, passed=ok, feedback="" if ok else "no baseline")


def _task(repo: Path, *, hidden: bool = False) -> Task:
    issue = Issue(
        id="CALC-1",
        title="add subtracts",
        body="`calc.add` returns the difference instead of the sum.",
        tests=("tests/test_calc.py::test_add",),
        hidden_tests=(f"{HIDDEN_PATH}::test_add_negatives_q",) if hidden else (),
        hidden_files={HIDDEN_PATH: HIDDEN} if hidden else {},
    )
    return Task(issue=issue, repo=str(repo), base_commit=git(repo, "rev-parse", "HEAD").strip())


async def _run(
    repo: Path, tmp_path: Path, model: Clocked, slow: Slow, *, hidden: bool = False, **kw: Any
) -> tuple[RunOutcome, list[dict[str, Any]], list[Event]]:
    events: list[Event] = []
    engine = Engine(
        ladder=LADDER,
        models={"cheap": model},
        gate=Gate([PytestEvaluator(PytestConfig()), slow], check_tamper=False),
        open_sandbox=sandbox_opener(SandboxConfig(), "local"),
        counter=lambda _rung: lambda text: len(text) // 4,
        on_event=events.append,
        sleep=lambda _s: anyio.sleep(0),
        **kw,
    )
    proof = ProofLog.create(tmp_path / "runs")
    outcome = await engine.run(_task(repo, hidden=hidden), proof)
    lines = (proof.run_dir / ATTEMPTS_FILE).read_text().splitlines()
    return outcome, [json.loads(line) for line in lines], events


@pytest.mark.anyio
async def test_the_first_call_is_drawn_while_the_baseline_is_taken(
    repo: Path, tmp_path: Path
) -> None:
    model = Clocked()
    slow = Slow(model)  # its baseline ends only after the model was called
    outcome, records, events = await _run(repo, tmp_path, model, slow)
    assert outcome.status == "verified", outcome.error
    assert [r["status"] for r in records] == ["verified"]
    verdicts = {v["evaluator"]: v["passed"] for v in records[0]["verdicts"]}
    assert verdicts["slowcheck"] is True  # judged against its own baseline, once it was in
    # The prompt was told how the target fails, from the named tests' own run at base.
    prompt = "\n".join(m.content for m in model.prompts[0])
    assert "tests/test_calc.py::test_add" in prompt and "assert 0 == 4" in prompt
    said = [e.message for e in events if e.kind == "baseline"]
    assert any(m.startswith("baseline taken (") for m in said), said
    assert verify_run(Path(outcome.run_dir)).ok


@pytest.mark.anyio
async def test_without_overlap_no_call_is_drawn_before_the_baseline_is_in(
    repo: Path, tmp_path: Path
) -> None:
    model = Clocked()
    slow = Slow(model, until_called=False)
    outcome, _, _ = await _run(repo, tmp_path, model, slow, overlap_baseline=False)
    assert outcome.status == "verified", outcome.error
    assert 0 < slow.done_at < model.first_call


@pytest.mark.anyio
async def test_with_hidden_files_the_prompt_waits_for_the_whole_baseline(
    repo: Path, tmp_path: Path
) -> None:
    # The named tests' run at base had the hidden files in: nothing of it reaches a prompt.
    model = Clocked()
    slow = Slow(model, until_called=False)
    outcome, _, _ = await _run(repo, tmp_path, model, slow, hidden=True)
    assert outcome.status == "verified", outcome.error
    assert 0 < slow.done_at < model.first_call
    prompt = "\n".join(m.content for m in model.prompts[0])
    assert "test_add_negatives_q" not in prompt and "assert 0 == 4" in prompt


@pytest.mark.anyio
async def test_a_baseline_that_fails_while_the_answer_is_drawn_records_it_and_stops(
    repo: Path, tmp_path: Path
) -> None:
    model = Clocked()
    slow = Slow(model, fails=InfraError("the harness fell over"))
    outcome, records, events = await _run(repo, tmp_path, model, slow)
    assert outcome.status == "error" and outcome.exit_code == 3
    assert "the harness fell over" in outcome.error and "tried 3 time(s)" in outcome.error
    assert slow.taken == 3  # retried as any harness fault is
    # The answer was paid for: it is in the proof, not gated, with its cost.
    assert [r["status"] for r in records] == ["cancelled"]
    assert "not gated: the baseline could not be taken" in records[0]["error"]
    assert records[0]["cost_usd"] == pytest.approx(model.cost_usd)
    assert any("could not be taken" in e.message for e in events if e.kind == "baseline")
    assert verify_run(Path(outcome.run_dir)).ok


@pytest.mark.anyio
async def test_a_gate_tool_that_cannot_run_as_configured_is_a_usage_error_not_retried(
    repo: Path, tmp_path: Path
) -> None:
    model = Clocked()
    slow = Slow(model, fails=GateConfigError("mypy cannot run: fix [gate.options.mypy] targets"))
    outcome, records, _ = await _run(repo, tmp_path, model, slow)
    assert outcome.status == "error" and outcome.exit_code == 2
    assert slow.taken == 1 and "[gate.options.mypy] targets" in outcome.error
    assert [r["status"] for r in records] == ["cancelled"]


@pytest.mark.anyio
async def test_a_prefetch_in_flight_is_what_take_gets() -> None:
    opened: list[int] = []

    class Box:
        async def close(self) -> None:
            pass

    async def opener(_repo: Path, _commit: str) -> Any:
        opened.append(1)
        await anyio.sleep(0.05)
        return Box()

    spares = Spares(opener, Path(), "HEAD")
    async with anyio.create_task_group() as group:
        group.start_soon(spares.prefetch)
        group.start_soon(spares.prefetch)
        await anyio.sleep(0.01)
        box = await spares.take()
    assert isinstance(box, Box) and opened == [1]  # one sandbox, not two (one of them lost)


@pytest.mark.anyio
async def test_a_cancelled_command_leaves_no_process_behind(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    argv = ["sh", "-c", f"echo $$ > {pidfile}; exec sleep 60"]
    with anyio.move_on_after(10):
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: run_process(argv, cwd=tmp_path, env=os.environ, timeout=60))
            while not pidfile.exists() or not pidfile.read_text().strip():
                await anyio.sleep(0.02)
            group.cancel_scope.cancel()  # a baseline no longer needed
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_leaving_runs_exit_handlers_flushes_output_and_keeps_the_exit_code(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "atexit"
    code = (
        "import atexit, litellm, sys\n"
        "from cascade.cli.main import leave\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'w').write('ran'))\n"
        "sys.stdout.write('partial line, unflushed')\n"
        "leave(int(sys.argv[1]) if sys.argv[1].isdigit() else sys.argv[1])\n"
    )
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    for arg, status in (("3", 3), ("0", 0), ("went wrong", 1)):
        proc = subprocess.run(
            [sys.executable, "-c", code, arg], capture_output=True, text=True, env=env, check=False
        )
        assert proc.returncode == status, proc.stderr
        assert proc.stdout == "partial line, unflushed"
        assert marker.read_text() == "ran"
        assert ("went wrong" in proc.stderr) == (status == 1)
        marker.unlink()


WRITES = (
    "from pathlib import Path\n\nfrom calc import add\n\n\n"
    "def test_add():\n    Path(__file__).with_name('generated.txt').write_text('fixed')\n"
    "    assert add(2, 2) == 4\n"
)


@pytest.mark.anyio
async def test_files_the_named_tests_write_at_base_are_the_suites_not_the_patchs(
    tmp_path: Path,
) -> None:
    # The named tests run first, for the prompt: in the base sandbox they would leave
    # tests/generated.txt behind before the baseline looked, and every patch's run, which writes
    # it too, would look like tampering. They run in a sandbox of their own.
    repo = make_repo(tmp_path / "repo", {"calc.py": CALC, "tests/test_calc.py": WRITES})
    engine = Engine(
        ladder=LADDER,
        models={"cheap": ScriptedModel("cheap", sequence=[RIGHT])},
        gate=Gate([PytestEvaluator(PytestConfig())]),
        open_sandbox=sandbox_opener(SandboxConfig(), "local"),
        counter=lambda _rung: lambda text: len(text) // 4,
    )
    outcome = await engine.run(_task(repo), ProofLog.create(tmp_path / "runs"))
    assert outcome.status == "verified", outcome.error


@pytest.mark.anyio
async def test_a_baseline_fault_retried_in_the_background_is_in_the_proof(
    repo: Path, tmp_path: Path
) -> None:
    model = Clocked()
    slow = Slow(model, fails=InfraError("the harness hiccuped"), times=1)
    outcome, records, _ = await _run(repo, tmp_path, model, slow)
    assert outcome.status == "verified", outcome.error
    assert slow.taken == 2
    notes = [n for r in records for n in (r["decision"] or {}).get("notes", ())]
    assert any("the harness hiccuped" in n for n in notes), notes


@pytest.mark.anyio
async def test_a_run_that_stops_before_judging_still_says_the_gate_could_not_run(
    repo: Path, tmp_path: Path
) -> None:
    class Refusing(Clocked):  # answers late, and only with a refusal: nothing is ever judged
        async def complete(
            self, messages: Sequence[Message], params: CompletionParams
        ) -> Completion:
            with anyio.fail_after(30):  # once the baseline has failed (an event, not a
                await slow.failed.wait()  # clock: a loaded machine takes its time)
            await anyio.sleep(0.2)
            raise Refused("the model refused", rung="cheap")

    model = Refusing()
    why = GateConfigError("mypy cannot run: fix [gate.options.mypy] targets")
    slow = Slow(model, until_called=False, fails=why)
    outcome, records, _ = await _run(repo, tmp_path, model, slow)
    assert [r["status"] for r in records] == ["provider_error"]
    assert outcome.status == "error" and outcome.exit_code == 2
    assert "[gate.options.mypy] targets" in outcome.error
