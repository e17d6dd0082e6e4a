"""`cascade replay` when things break around the tasks (issue 16, findings 2 and 9): a baseline
that fails after its sandbox opened is retried in the same task slot, and a cause that does not go
away is named in the run's outcome and summary; Ctrl-C or SIGTERM during a replay stops every
container it started before the process exits, and a resume collects what a dead replay left."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import anyio
import pytest
from docker.errors import NotFound
from pydantic import BaseModel, ConfigDict
from typer.testing import CliRunner

from cascade.cli.main import app
from cascade.errors import InfraError
from cascade.protocols import Sandbox
from cascade.records import Patch, Task, Verdict
from cascade.replay.batch import LEDGER_FILE, RUNS_DIR
from cascade.replay.ledger import read_ledger
from cascade.replay.limits import SandboxSlot
from cascade.testing import make_repo
from cascade.testing.demo import DemoBacklog, demo_backlog
from sandboxes.docker_api import OWNER_LABEL, connect
from sandboxes.local_sandbox import LocalSandbox

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo"
FLAKY = "tests.test_replay_robust:FlakyBaselineEvaluator"
CASCADE = str(Path(sys.executable).parent / "cascade")
runner = CliRunner()


class FlakyBaselineConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    counter: str  # a file counting the baselines taken, across sandboxes
    failures: int  # the first this many baselines raise


class FlakyBaselineEvaluator:
    """A gate whose harness falls over at the base commit the first `failures` times (after the
    sandbox opened: the baseline runs in it), then judges every patch a pass."""

    name = "flaky"
    config_model = FlakyBaselineConfig

    def __init__(self, config: FlakyBaselineConfig) -> None:
        self.config = config

    async def baseline(self, sandbox: Sandbox, task: Task) -> Mapping[str, Any]:
        counter = Path(self.config.counter)
        calls = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(calls))
        if calls <= self.config.failures:
            raise InfraError(f"the flaky harness fell over at baseline (call {calls})")
        return {}

    async def evaluate(
        self, sandbox: Sandbox, task: Task, patch: Patch, baseline: Mapping[str, Any]
    ) -> Verdict:
        return Verdict(evaluator=self.name, passed=True)


def flaky_backlog(tmp_path: Path, failures: int) -> DemoBacklog:
    b = demo_backlog(
        DEMO,
        tmp_path / "b",
        copies=1,
        gate=f'["diff_scope", "pytest", "{FLAKY}"]',
        cheap_without_edits=True,
        focus_only=True,
        issues=("DEMO-1",),
    )
    options = {"counter": str(tmp_path / "baselines"), "failures": failures}
    table = "".join(f"{k} = {json.dumps(v)}\n" for k, v in options.items())
    b.config.write_text(
        b.config.read_text()
        + f'\n[gate.options."{FLAKY}"]\n{table}\n[policy]\ninfra_retries = 2\nbackoff_s = 0\n'
    )
    return b


def replay(b: DemoBacklog, out: Path, *extra: str) -> tuple[int, str]:
    args = [str(b.backlog), "--repo", str(b.repo), "--config", str(b.config), "--out", str(out)]
    result = runner.invoke(app, ["replay", *args, "--sandbox", "local", *extra])
    return result.exit_code, result.stderr


def test_a_baseline_that_fails_once_after_the_open_is_retried_and_the_task_verifies(
    tmp_path: Path,
) -> None:
    b = flaky_backlog(tmp_path, failures=1)
    out = tmp_path / "out"
    code, err = replay(b, out)
    assert code == 0, err
    assert "1/1 verified" in err and "borrower" not in err
    assert (tmp_path / "baselines").read_text() == "2"  # failed once, then taken


def test_a_baseline_that_always_fails_names_its_cause_in_the_outcome_and_summary(
    tmp_path: Path,
) -> None:
    b = flaky_backlog(tmp_path, failures=99)
    out = tmp_path / "out"
    code, err = replay(b, out)
    assert code == 3, err
    done = read_ledger(out / LEDGER_FILE).tasks["DEMO-1-c1"].done
    assert done is not None and done.outcome is not None
    assert done.outcome.status == "error"
    assert "the flaky harness fell over at baseline (call 3)" in done.outcome.error
    assert "tried 3 time(s)" in done.outcome.error
    run = out / RUNS_DIR / done.run_id
    summary = (run / "summary.md").read_text()
    assert "the flaky harness fell over at baseline" in summary, summary
    outcome = json.loads((run / "outcome.json").read_text())
    assert "the flaky harness fell over at baseline" in outcome["error"]


@pytest.mark.anyio
async def test_a_task_opening_two_sandboxes_at_once_takes_one_slot(tmp_path: Path) -> None:
    """Its base sandbox and a spare, say: both opens ask for the slot before either has it."""
    repo = make_repo(tmp_path / "repo", {"m.py": "x = 1\n"})
    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    limiter = anyio.CapacityLimiter(1)
    slot = SandboxSlot(limiter)
    open_sandbox = slot.opener(LocalSandbox.open)
    boxes: list[Sandbox] = []

    async def one() -> None:
        boxes.append(await open_sandbox(repo, commit))

    async with anyio.create_task_group() as group:
        group.start_soon(one)
        group.start_soon(one)
    assert len(boxes) == 2 and limiter.borrowed_tokens == 1
    for box in boxes:
        await box.close()
    slot.release()
    assert limiter.borrowed_tokens == 0


# --- Ctrl-C and SIGTERM with real containers -------------------------------------------------


def slow_backlog(tmp_path: Path) -> DemoBacklog:
    """Two tasks whose model takes ten minutes to answer: a replay of them sits with its
    sandboxes open (each task's base sandbox and the spare opened while the model answers)."""
    return demo_backlog(
        DEMO, tmp_path / "b", copies=1, latency_s=600, gate='["diff_scope"]',
        issues=("DEMO-1", "DEMO-2"),
    )  # fmt: skip


@contextmanager
def replay_process(b: DemoBacklog, out: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`cascade replay` on the Docker sandbox, two tasks at a time; killed, and whatever it
    owns removed, if the test leaves it running."""
    argv = [CASCADE, "replay", str(b.backlog), "--repo", str(b.repo), "--config", str(b.config),
            "--out", str(out), "--sandbox", "docker", "--concurrency", "2"]  # fmt: skip
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    with log.open("wb") as stderr:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        client = connect()
        try:
            containers, volumes = owned(client, proc.pid)
            for name in containers:
                with suppress(NotFound):
                    client.containers.get(name).remove(force=True)
            for name in volumes:
                with suppress(NotFound):
                    client.volumes.get(name).remove(force=True)
        finally:
            client.close()


def owned(client: Any, pid: int) -> tuple[list[str], list[str]]:
    """The containers and volumes the process `pid` of this host opened that still exist."""
    mine = {"label": f"{OWNER_LABEL}={socket.gethostname()}:{pid}"}
    # `sparse`: names from the listing itself; a full listing inspects each container after, and
    # one the replay removes in between would raise NotFound.
    listed = client.containers.list(all=True, filters=mine, sparse=True)
    containers = [str(c.attrs["Names"][0]).lstrip("/") for c in listed]
    return containers, [str(v.name) for v in client.volumes.list(filters=mine)]


def gone(client: Any, pid: int, *, within: float) -> bool:
    """Whether everything process `pid` opened is gone, waiting up to `within` seconds."""
    deadline = time.monotonic() + within
    while owned(client, pid) != ([], []):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def wait_for_sandboxes(client: Any, proc: subprocess.Popen[bytes], log: Path, count: int) -> None:
    """Until the replay has `count` containers up (or has died, which fails the test)."""
    deadline = time.monotonic() + 180
    while len(owned(client, proc.pid)[0]) < count:
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, "no sandbox opened: " + log.read_text()
        time.sleep(0.2)


@pytest.mark.docker
@pytest.mark.parametrize(
    ("signum", "presses"),
    [(signal.SIGINT, 1), (signal.SIGINT, 2), (signal.SIGTERM, 1)],
    ids=["Ctrl-C", "Ctrl-C twice", "SIGTERM"],
)
def test_a_signal_stops_the_replay_and_removes_every_container_it_started(
    tmp_path: Path, docker_engine: None, signum: signal.Signals, presses: int
) -> None:
    b, log = slow_backlog(tmp_path), tmp_path / "stderr.txt"
    client = connect()
    try:
        with replay_process(b, tmp_path / "out", log) as proc:
            wait_for_sandboxes(client, proc, log, 2)
            proc.send_signal(signum)
            if presses > 1:  # an impatient user, while the sandboxes are being removed
                deadline = time.monotonic() + 60
                while "stopping the tasks" not in log.read_text() and proc.poll() is None:
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.05)
                proc.send_signal(signum)
            # The model would answer in ten minutes: only the stop ends the process this soon.
            code = proc.wait(timeout=120)
            err = log.read_text()
            assert owned(client, proc.pid) == ([], []), err
            assert code == 128 + signum, err
            last = err.rstrip().splitlines()[-1]
            assert last.startswith(f"interrupted by {signum.name}: the tasks in flight were"), err
            assert "sandbox container(s) stopped and removed" in last and "except" not in last
            assert last.endswith("run the same command again to resume")
            assert "Traceback" not in err
    finally:
        client.close()


@pytest.mark.docker
def test_a_resume_first_removes_what_a_killed_replay_left(
    tmp_path: Path, docker_engine: None
) -> None:
    """SIGKILL cannot be caught: the containers stay until the same command runs again."""
    b, out, log = slow_backlog(tmp_path), tmp_path / "out", tmp_path / "stderr.txt"
    client = connect()
    try:
        with replay_process(b, out, log) as killed:
            wait_for_sandboxes(client, killed, log, 2)
            killed.send_signal(signal.SIGKILL)
            killed.wait(timeout=30)
            left = owned(client, killed.pid)
            assert left[0] and left[1]  # what the kill left running
            with replay_process(b, out, tmp_path / "resumed.txt") as resumed:
                wait_for_sandboxes(client, resumed, tmp_path / "resumed.txt", 1)
                # Collected as the resume started: by it, or (tests on two workers) by another
                # cascade run that began collecting the same orphans a moment earlier, when
                # Docker says the removal is in progress and the resume goes on without waiting.
                assert gone(client, killed.pid, within=20)
                resumed.send_signal(signal.SIGTERM)
                assert resumed.wait(timeout=120) == 128 + signal.SIGTERM
                assert owned(client, resumed.pid) == ([], [])
        tasks = read_ledger(out / LEDGER_FILE).tasks
        assert all(len(t.aborted) == 1 for t in tasks.values())  # the killed runs; kept on record
    finally:
        client.close()
