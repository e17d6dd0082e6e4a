"""Provider faults end to end: the engine climbing a ladder of real `LitellmModel` rungs whose
provider is an OpenAI-compatible server on loopback that injects faults (429 with Retry-After,
500, a hang, a stall, a drip, 401, 404, a context-length error, an empty or unreadable body, a
body far over the size cap). Every call goes through
litellm's real HTTP path; the tests count the HTTP requests, the waits (a fake sleep), and read
the outcome and the proof records back."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from cascade.config import BudgetConfig, PolicyConfig, RungConfig, SandboxConfig
from cascade.core.budget import Purse
from cascade.core.engine import Engine
from cascade.core.gate import Gate
from cascade.models import LitellmModel, Recorder
from cascade.models.litellm_model import DEADLINE_GRACE_S
from cascade.proof.log import ATTEMPTS_FILE, ProofLog
from cascade.protocols import Model, Sandbox
from cascade.records import (
    Attempt,
    Completion,
    CompletionParams,
    Issue,
    Message,
    Patch,
    RunOutcome,
    Task,
    Verdict,
)
from cascade.testing import git, make_repo
from cascade.wiring.registry import sandbox_opener
from tests.loopback import (
    DRIP,
    DRIP_BODY,
    HANG,
    STALL,
    FakeOpenAI,
    Reply,
    chat_body,
    error_body,
)

CALC = "def add(a, b):\n    return a - b\n"
RIGHT = "calc.py\n<<<<<<< SEARCH\n    return a - b\n=======\n    return a + b\n>>>>>>> REPLACE\n"
WRONG = "calc.py\n<<<<<<< SEARCH\n    return a - b\n=======\n    return a * b\n>>>>>>> REPLACE\n"
OK = (200, chat_body(RIGHT), {})
NOPE = (200, chat_body(WRONG), {})


ADD_TEST = "tests/test_calc.py::test_add"  # named by the issue; the fake gate "runs" it


class AddsEvaluator:
    """A gate that passes when the patch makes `add` add: enough to tell a right answer from a
    wrong one without running a test suite (the pytest gate has its own tests). Like pytest it
    names the outcome of the issue's test, before and after, so a right answer is proven."""

    name = "adds"

    async def baseline(self, sandbox: Sandbox, task: Task) -> Mapping[str, Any]:
        return {}

    async def base_outcomes(self, sandbox: Sandbox, task: Task) -> dict[str, str]:
        return {ADD_TEST: "failed: AssertionError: assert 0 == 4"}

    async def evaluate(
        self, sandbox: Sandbox, task: Task, patch: Patch, baseline: Mapping[str, Any]
    ) -> Verdict:
        ok = "+    return a + b" in patch.diff
        return Verdict(
            evaluator=self.name,
            passed=ok,
            feedback="" if ok else "add must add",
            tests={ADD_TEST: "passed" if ok else "failed: AssertionError"},
        )


class Timed:
    """Times each call of the model it wraps (the engine sees a plain `Model`)."""

    def __init__(self, model: Model, durations: list[float]) -> None:
        self.model = model
        self.durations = durations

    async def complete(self, messages: Sequence[Message], params: CompletionParams) -> Completion:
        started = time.monotonic()
        try:
            return await self.model.complete(messages, params)
        finally:
            self.durations.append(time.monotonic() - started)


class Run:
    def __init__(self, outcome: RunOutcome, waits: list[float]) -> None:
        self.outcome = outcome
        self.waits = waits
        lines = (Path(outcome.run_dir) / ATTEMPTS_FILE).read_text().splitlines()
        self.records = [
            Attempt.model_validate(
                {k: v for k, v in json.loads(x).items() if k not in ("prev", "sha256")}
            )
            for x in lines
        ]

    @property
    def trail(self) -> list[tuple[str, str, str | None]]:
        return [(r.rung, r.status, r.fault) for r in self.records]


def rung(fake: FakeOpenAI, name: str, **extra: Any) -> RungConfig:
    settings: dict[str, Any] = {"timeout": 5.0, **extra}
    return RungConfig(name=name, model=f"openai/fake-{name}", api_base=fake.base, **settings)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"calc.py": CALC})


async def climb(
    repo: Path,
    *rungs: RungConfig,
    policy: PolicyConfig | None = None,
    budget: BudgetConfig | None = None,
    purse: Purse | None = None,
    recorder: Recorder | None = None,
    durations: list[float] | None = None,
) -> Run:
    waits: list[float] = []
    timed = durations if durations is not None else []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    engine = Engine(
        ladder=rungs,
        models={r.name: Timed(LitellmModel(r, recorder=recorder), timed) for r in rungs},
        gate=Gate([AddsEvaluator()]),
        open_sandbox=sandbox_opener(SandboxConfig(), "local"),
        counter=lambda _rung: lambda text: len(text) // 4,
        sleep=fake_sleep,
        policy=policy or PolicyConfig(),
        budget=budget or BudgetConfig(),
        purse=purse,
    )
    issue = Issue(
        id="CALC-1", title="add subtracts", body="`add` returns a - b.", tests=(ADD_TEST,)
    )
    task = Task(issue=issue, repo=str(repo), base_commit=git(repo, "rev-parse", "HEAD").strip())
    outcome = await engine.run(task, ProofLog.create(repo.parent / "runs"))
    return Run(outcome, waits)


@pytest.mark.anyio
async def test_429_waits_as_asked_and_retries_the_same_attempt(
    repo: Path, fake_openai: FakeOpenAI
) -> None:
    limited = error_body("Rate limit reached", "rate_limit_exceeded", "requests")
    fake_openai.script += [(429, limited, {"Retry-After": "3"}), OK]
    run = await climb(repo, rung(fake_openai, "cheap"), rung(fake_openai, "strong"))
    assert run.outcome.status == "verified" and run.outcome.verified_rung == "cheap"
    assert fake_openai.calls("fake-cheap") == 2 and fake_openai.calls("fake-strong") == 0
    assert run.waits == [3.0]
    assert run.trail == [("cheap", "provider_error", "rate_limit"), ("cheap", "verified", None)]
    retry = run.records[1]
    assert (retry.attempt, retry.retry) == (1, 1)
    assert retry.decision is not None and retry.decision.kind == "fault_retry"
    assert retry.decision.wait_s == 3.0 and "as Retry-After asks" in retry.decision.why


@pytest.mark.anyio
async def test_429_above_the_cap_climbs_at_once_and_says_so(
    repo: Path, fake_openai: FakeOpenAI
) -> None:
    limited = error_body("Rate limit reached", "rate_limit_exceeded", "requests")
    fake_openai.script += [(429, limited, {"Retry-After": "120"}), OK]
    run = await climb(repo, rung(fake_openai, "cheap"), rung(fake_openai, "strong"))
    assert run.outcome.verified_rung == "strong"
    assert (fake_openai.calls("fake-cheap"), fake_openai.calls("fake-strong")) == (1, 1)
    assert run.waits == []
    climbed = run.records[1].decision
    assert climbed is not None and climbed.kind == "climb"
    assert "asks to wait 120s, more than retry_wait_cap_s 30s" in climbed.escalation
    assert "Retry-After 120s" in run.records[0].error
    summary = (Path(run.outcome.run_dir) / "summary.md").read_text()
    assert "climbs at once" in summary


@pytest.mark.anyio
async def test_500s_are_retried_with_backoff_then_the_next_rung(
    repo: Path, fake_openai: FakeOpenAI
) -> None:
    boom = (500, error_body("boom", kind="server_error"), {})
    fake_openai.script += [boom, boom, boom, OK]
    run = await climb(repo, rung(fake_openai, "cheap"), rung(fake_openai, "strong"))
    assert (fake_openai.calls("fake-cheap"), fake_openai.calls("fake-strong")) == (3, 1)
    assert run.waits == [1.0, 2.0]  # backoff_s doubling; provider_retries = 2
    assert [r.status for r in run.records] == ["provider_error"] * 3 + ["verified"]
    assert {r.fault for r in run.records[:3]} == {"server"}
    assert [r.attempt for r in run.records] == [1, 1, 1, 1]  # no model attempt was used up
    assert "persisted through 3 tries" in (run.records[3].decision or Any).escalation


@pytest.mark.anyio
async def test_a_hang_times_out_and_a_stall_too(repo: Path, fake_openai: FakeOpenAI) -> None:
    fake_openai.script += [HANG, STALL, OK]
    policy = PolicyConfig(provider_retries=1)
    cheap = rung(fake_openai, "cheap", timeout=0.5)
    run = await climb(repo, cheap, rung(fake_openai, "strong"), policy=policy)
    assert (fake_openai.calls("fake-cheap"), fake_openai.calls("fake-strong")) == (2, 1)
    assert run.trail[:2] == [("cheap", "provider_error", "timeout")] * 2
    assert run.waits == [1.0]
    assert run.outcome.verified_rung == "strong"


@pytest.mark.anyio
async def test_a_refused_connection_is_transient_then_climbs(
    repo: Path, fake_openai: FakeOpenAI
) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    fake_openai.script += [OK]
    dead = RungConfig(name="local", model="openai/fake-local", api_base=closed, timeout=5)
    run = await climb(repo, dead, rung(fake_openai, "strong"))
    assert run.trail == [("local", "provider_error", "connection")] * 3 + [
        ("strong", "verified", None)
    ]
    assert run.waits == [1.0, 2.0]
    assert fake_openai.calls("fake-strong") == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "body", "fault", "names"),
    [
        (
            401,
            error_body("Incorrect API key provided", "invalid_api_key"),
            "auth",
            "OPENAI_API_KEY",
        ),
        (
            404,
            error_body("The model does not exist", "model_not_found"),
            "not_found",
            "'openai/fake-cheap'",
        ),
        (
            400,
            error_body("Unrecognized request argument supplied: foo"),
            "bad_request",
            "'openai/fake-cheap'",
        ),
    ],
)
async def test_configuration_faults_stop_the_run_with_exit_3(
    repo: Path, fake_openai: FakeOpenAI, status: int, body: dict[str, Any], fault: str, names: str
) -> None:
    fake_openai.script += [(status, body, {}), OK]
    run = await climb(repo, rung(fake_openai, "cheap"), rung(fake_openai, "strong"))
    assert run.outcome.status == "error" and run.outcome.exit_code == 3
    assert len(fake_openai.requests) == 1  # no retry, no climb
    assert run.trail == [("cheap", "provider_error", fault)]
    assert "rung 'cheap'" in run.outcome.error and names in run.outcome.error
    assert run.waits == []


@pytest.mark.anyio
async def test_context_window_skips_to_a_larger_window_without_retrying(
    repo: Path, fake_openai: FakeOpenAI
) -> None:
    too_long = error_body(
        "This model's maximum context length is 8192 tokens. However, your messages resulted "
        "in 9000 tokens.",
        "context_length_exceeded",
    )
    fake_openai.script += [(400, too_long, {}), OK]
    run = await climb(
        repo,
        rung(fake_openai, "cheap", max_input_tokens=8192, attempts=3),
        rung(fake_openai, "mid", max_input_tokens=8192),
        rung(fake_openai, "strong", max_input_tokens=128000),
    )
    calls = [fake_openai.calls(f"fake-{n}") for n in ("cheap", "mid", "strong")]
    assert calls == [1, 0, 1]
    assert run.trail == [
        ("cheap", "provider_error", "context_window"),
        ("strong", "verified", None),
    ]
    decision = run.records[1].decision
    assert decision is not None
    assert [(a.rung, a.why) for a in decision.rejected] == [
        ("mid", "context window 8192 tokens, not larger than 8192 tokens")
    ]
    assert run.waits == []


@pytest.mark.anyio
@pytest.mark.parametrize("mode", [DRIP, DRIP_BODY])
async def test_a_dripping_server_is_cut_off_at_the_calls_deadline(
    repo: Path, fake_openai: FakeOpenAI, mode: Reply
) -> None:
    # Every read arrives well within the 2 s timeout, the answer never does: only a deadline
    # around the whole call ends it. The outer guard fails the test instead of waiting minutes.
    fake_openai.script += [mode, OK]
    cheap = rung(fake_openai, "cheap", timeout=2.0)
    durations: list[float] = []
    with anyio.fail_after(30):
        run = await climb(repo, cheap, rung(fake_openai, "strong"), durations=durations)
    assert 2.0 <= durations[0] < 2.0 + DEADLINE_GRACE_S + 0.5  # timeout + grace, and slack
    assert run.trail == [("cheap", "provider_error", "timeout"), ("cheap", "verified", None)]
    assert "deadline" in run.records[0].error
    assert run.waits == [1.0]  # retried per policy, like litellm's own Timeout
    assert fake_openai.calls("fake-cheap") == 2 and fake_openai.calls("fake-strong") == 0
    # The abandoned call hung up on the server rather than leaving the connection open.
    assert await anyio.to_thread.run_sync(fake_openai.dropped.wait, 5)


UNREADABLE = [
    b"",
    b"not json at all",
    chat_body(None),
    chat_body(""),
    {**chat_body("unused"), "choices": []},
]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body", UNREADABLE, ids=["empty", "not json", "content null", "content empty", "no choices"]
)
async def test_an_empty_or_unparsable_answer_is_a_provider_fault_retried_on_the_rung(
    repo: Path, fake_openai: FakeOpenAI, body: bytes | dict[str, Any]
) -> None:
    # Formerly recorded as the model's format failure ("no edits"): the provider failed to
    # answer, so it is a transient fault, retried without using up a model attempt.
    fake_openai.script += [(200, body, {}), OK]
    run = await climb(repo, rung(fake_openai, "cheap", attempts=2), rung(fake_openai, "strong"))
    assert run.trail == [("cheap", "provider_error", "server"), ("cheap", "verified", None)]
    assert [r.attempt for r in run.records] == [1, 1]  # no model attempt was used up
    assert run.records[0].feedback == "" and "no edits" not in run.records[0].error
    assert fake_openai.calls("fake-cheap") == 2 and run.waits == [1.0]


@pytest.mark.anyio
async def test_unreadable_answers_that_persist_climb_the_ladder(
    repo: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script += [(200, b"", {}), (200, chat_body(None), {}), (200, b"{", {}), OK]
    run = await climb(repo, rung(fake_openai, "cheap", attempts=2), rung(fake_openai, "strong"))
    assert run.trail == [("cheap", "provider_error", "server")] * 3 + [("strong", "verified", None)]
    assert (fake_openai.calls("fake-cheap"), fake_openai.calls("fake-strong")) == (3, 1)
    assert run.waits == [1.0, 2.0]


@pytest.mark.anyio
async def test_prose_without_an_edit_block_stays_the_models_format_failure(
    repo: Path, fake_openai: FakeOpenAI
) -> None:
    prose = (200, chat_body("Change `a - b` to `a + b` in calc.py and it will add."), {})
    fake_openai.script += [prose, OK]
    run = await climb(repo, rung(fake_openai, "cheap", attempts=2), rung(fake_openai, "strong"))
    assert run.trail == [("cheap", "edit_error", None), ("cheap", "verified", None)]
    assert [r.attempt for r in run.records] == [1, 2]  # it used up a model attempt
    assert "no edits" in run.records[0].feedback and run.waits == []


ANSWER_CAP = 1_000_000  # RungConfig.max_answer_chars's default


@pytest.mark.anyio
async def test_an_answer_over_the_size_cap_climbs_and_is_never_stored(
    repo: Path, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    huge = RIGHT + "\n" + "x" * 20_000_000  # a good edit, and 20 MB after it
    long_name = {**chat_body(RIGHT), "model": "m" * 5_000}  # a good answer, a long name
    fake_openai.script += [(200, chat_body(huge), {}), (200, long_name, {})]
    record = tmp_path / "record.jsonl"
    run = await climb(
        repo, rung(fake_openai, "cheap"), rung(fake_openai, "strong"), recorder=Recorder(record)
    )
    assert run.trail == [("cheap", "provider_error", "refused"), ("strong", "verified", None)]
    assert (fake_openai.calls("fake-cheap"), fake_openai.calls("fake-strong")) == (1, 1)
    assert "max_answer_chars" in run.records[0].error and run.waits == []
    assert run.records[1].model == "openai/fake-strong"  # the answer's own name was too long
    stored = [p for p in Path(run.outcome.run_dir).rglob("*") if p.is_file()]
    assert stored and max(p.stat().st_size for p in stored) < ANSWER_CAP
    assert len(record.read_text().splitlines()) == 1  # strong's answer only
    assert record.stat().st_size < ANSWER_CAP
    assert RungConfig(name="x", model="openai/x").max_answer_chars == ANSWER_CAP


@pytest.mark.anyio
async def test_a_budget_stops_before_the_call_that_could_overspend(
    repo: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script += [NOPE, OK]
    priced = {"input_cost_per_token": 1e-6, "output_cost_per_token": 1e-5, "max_tokens": 1000}
    cheap = rung(fake_openai, "cheap", **priced)
    strong = rung(fake_openai, "strong", input_cost_per_token=1e-5, output_cost_per_token=1e-4)
    run = await climb(repo, cheap, strong, budget=BudgetConfig(max_cost_usd=0.05))
    assert run.outcome.status == "budget_exhausted" and run.outcome.exit_code == 1
    assert (fake_openai.calls("fake-cheap"), fake_openai.calls("fake-strong")) == (1, 0)
    assert run.outcome.stop_reason.startswith("budget: the task has spent $0.0000")
    assert "the next call on 'strong' may cost up to $0.4" in run.outcome.stop_reason
    first = run.records[0]
    assert first.decision is not None and first.decision.estimated_cost_usd > first.cost_usd > 0
    best = run.outcome.best_unverified
    assert best is not None and (best.seq, best.failed) == (1, ("adds",))
    summary = (Path(run.outcome.run_dir) / "summary.md").read_text()
    assert "**Budget exhausted**" in summary and "## Best unverified candidate" in summary


@pytest.mark.anyio
async def test_samples_are_drawn_concurrently_and_all_recorded(
    repo: Path, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script += [NOPE, OK, NOPE]
    purse = Purse(limit=1.0)
    cheap = rung(fake_openai, "cheap", samples=3, input_cost_per_token=1e-6)
    run = await climb(repo, cheap, rung(fake_openai, "strong"), purse=purse)
    assert fake_openai.calls("fake-cheap") == 3 and fake_openai.calls("fake-strong") == 0
    assert run.outcome.status == "verified"
    assert sorted(r.sample for r in run.records) == [1, 2, 3]
    statuses = [r.status for r in run.records]
    assert statuses.count("verified") == 1 and statuses[-1] == "verified"
    assert set(statuses) <= {"rejected", "verified", "cancelled"}
    assert purse.reserved == 0 and purse.spent == pytest.approx(run.outcome.cost_usd)
