"""The model layer against real litellm: its own mock_response, a replay cassette served as a
custom provider, and a loopback HTTP server speaking the OpenAI API. No network."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

# Before litellm is first imported: its price map is read from the bundled copy, not fetched.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from cascade.config import RungConfig
from cascade.core.samples import draw
from cascade.errors import ConfigError, ProviderEscalate, ProviderRetry, ProviderStop
from cascade.models import LitellmModel, Recorder, as_replay, build_model
from cascade.models.cassette import Cassette
from cascade.models.faults import LITELLM_ACTIONS, retry_after, to_model_error
from cascade.protocols import Model
from cascade.records import CompletionParams, Message
from tests.loopback import FakeOpenAI, chat_body

MESSAGES = [Message(role="system", content="You fix code."), Message(role="user", content="Fix")]


def params(task: str = "ISSUE-7", attempt: int = 1, timeout: float = 10.0) -> CompletionParams:
    return CompletionParams(task_id=task, attempt=attempt, max_tokens=64, timeout=timeout)


def write_cassette(path: Path, *entries: dict[str, Any]) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in entries), encoding="utf-8")
    return path


ENTRY = {
    "task": "ISSUE-7",
    "model": "replay/cheap",
    "attempt": 1,
    "content": "path.py\n<<<<<<< SEARCH\n=======\nx = 1\n>>>>>>> REPLACE\n",
    "usage": {"prompt_tokens": 900, "completion_tokens": 250},
}


# --- exception table ---------------------------------------------------------------------


def litellm_exception_classes() -> dict[str, type[BaseException]]:
    """Every exception class litellm exposes, by name (its top level and `litellm.exceptions`)."""
    import litellm
    import litellm.exceptions

    found: dict[str, type[BaseException]] = {}
    for namespace in (litellm, litellm.exceptions):
        for name, obj in vars(namespace).items():
            if not (inspect.isclass(obj) and issubclass(obj, Exception)):
                continue
            # litellm's namespace also leaks other packages' classes (zoneinfo's
            # ZoneInfoNotFoundError, pydantic's ValidationError): only litellm's own count.
            if obj.__module__.split(".")[0] == "litellm":
                found[name] = obj
    return found


def test_every_litellm_exception_is_classified() -> None:
    """Like Aider's check: when litellm adds an exception, decide what the ladder does with it."""
    classes = litellm_exception_classes()
    must = {
        name
        for name, cls in classes.items()
        if name.endswith("Error") or name == "Timeout" or cls.__module__ == "litellm.exceptions"
    }
    unclassified = sorted(must - set(LITELLM_ACTIONS))
    assert not unclassified, f"decide retry/escalate/stop for: {unclassified}"
    stale = sorted(set(LITELLM_ACTIONS) - set(classes))
    assert not stale, f"no longer in litellm: {stale}"


def test_most_specific_class_wins() -> None:
    from litellm import exceptions as litellm

    rung = RungConfig(name="cheap", model="gpt-4o-mini")
    window = litellm.ContextWindowExceededError(message="too long", model="m", llm_provider="x")
    bad = litellm.BadRequestError(message="bad param", model="m", llm_provider="x")
    assert isinstance(to_model_error(window, rung), ProviderEscalate)
    assert isinstance(to_model_error(bad, rung), ProviderStop)
    missing_key = litellm.InternalServerError(
        message="OpenAIException - Missing credentials. Set OPENAI_API_KEY",
        model="m",
        llm_provider="openai",
    )
    stop = to_model_error(missing_key, rung)
    assert isinstance(stop, ProviderStop)
    assert "OPENAI_API_KEY" in str(stop)
    assert isinstance(to_model_error(ValueError("surprise"), rung), ProviderStop)


def test_retry_after_reads_seconds_ms_and_dates() -> None:
    class Fault(Exception):
        def __init__(self, headers: dict[str, str]) -> None:
            self.litellm_response_headers = headers

    assert retry_after(Fault({"Retry-After": "7"})) == 7
    assert retry_after(Fault({"retry-after-ms": "1500"})) == 1.5
    assert retry_after(Fault({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
    assert retry_after(Fault({})) is None


# --- mock_response: litellm's own fake ---------------------------------------------------


@pytest.mark.anyio
async def test_mock_response_usage_and_price_map_cost() -> None:
    model = LitellmModel(
        RungConfig(name="cheap", model="gpt-4o-mini"), litellm_kwargs={"mock_response": "hi"}
    )
    assert isinstance(model, Model)
    done = await model.complete(MESSAGES, params())
    assert done.text == "hi"
    assert done.model == "gpt-4o-mini"
    assert done.usage.prompt_tokens > 0
    assert done.usage.completion_tokens > 0
    assert done.cost_usd > 0
    assert done.latency_s >= 0


@pytest.mark.anyio
async def test_override_prices_are_exact_and_unknown_prices_are_zero() -> None:
    priced = RungConfig(
        name="cheap", model="gpt-4o-mini", input_cost_per_token=1e-3, output_cost_per_token=2e-3
    )
    done = await LitellmModel(priced, litellm_kwargs={"mock_response": "hi"}).complete(
        MESSAGES, params()
    )
    assert done.cost_usd == done.usage.prompt_tokens * 1e-3 + done.usage.completion_tokens * 2e-3
    unknown = RungConfig(name="local", model="openai/no-such-price-xyz")
    done = await LitellmModel(unknown, litellm_kwargs={"mock_response": "hi"}).complete(
        MESSAGES, params()
    )
    assert done.cost_usd == 0.0


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("mock", "error"),
    [
        ("litellm.RateLimitError", ProviderRetry),
        ("litellm.InternalServerError", ProviderRetry),
        ("litellm.ContextWindowExceededError", ProviderEscalate),
    ],
)
async def test_mock_errors_map_to_ladder_actions(mock: str, error: type[Exception]) -> None:
    rung = RungConfig(name="cheap", model="gpt-4o-mini")
    model = LitellmModel(rung, litellm_kwargs={"mock_response": mock})
    with pytest.raises(error) as caught:
        await model.complete(MESSAGES, params())
    assert "'cheap'" in str(caught.value)
    assert caught.value.__cause__ is not None  # chained to litellm's exception


@pytest.mark.anyio
async def test_timeout_is_a_retry() -> None:
    model = LitellmModel(
        RungConfig(name="cheap", model="gpt-4o-mini"), litellm_kwargs={"mock_timeout": True}
    )
    with pytest.raises(ProviderRetry, match="cheap"):
        await model.complete(MESSAGES, params(timeout=0.1))


def test_litellm_kwargs_cannot_override_the_rung() -> None:
    with pytest.raises(ConfigError, match="num_retries"):
        LitellmModel(RungConfig(name="c", model="gpt-4o-mini"), litellm_kwargs={"num_retries": 3})


# --- replay cassettes --------------------------------------------------------------------


@pytest.mark.anyio
async def test_cassette_is_served_through_litellm_with_exact_cost(tmp_path: Path) -> None:
    write_cassette(tmp_path / "run.jsonl", ENTRY)
    rung = RungConfig(
        name="cheap",
        model="replay/cheap",
        cassette="run.jsonl",
        input_cost_per_token=1e-6,
        output_cost_per_token=3e-6,
    )
    model = build_model(rung, config_dir=tmp_path)
    done = await model.complete(MESSAGES, params())
    assert done.text == ENTRY["content"]
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (900, 250)
    assert done.cost_usd == 900 * 1e-6 + 250 * 3e-6
    assert done.model == "replay/cheap"

    # The same call straight through litellm: its own cost accounting sees the same price.
    import litellm

    from cascade.models import replay

    cassette = Cassette.load(tmp_path / "run.jsonl")
    response = await litellm.acompletion(
        model="replay/cheap",
        messages=[{"role": "user", "content": "Fix"}],
        timeout=10,
        num_retries=0,
        metadata=replay.request_metadata(cassette, rung, "ISSUE-7", 1),
    )
    assert response._hidden_params["response_cost"] == pytest.approx(900 * 1e-6 + 250 * 3e-6)


@pytest.mark.anyio
async def test_cassette_miss_escalates(tmp_path: Path) -> None:
    write_cassette(tmp_path / "run.jsonl", ENTRY)
    rung = RungConfig(name="cheap", model="replay/cheap", cassette="run.jsonl")
    model = build_model(rung, config_dir=tmp_path)
    with pytest.raises(ProviderEscalate) as caught:
        await model.complete(MESSAGES, params(attempt=2))
    message = str(caught.value)
    assert message.startswith("rung 'cheap': cassette ")
    assert "has no answer for task 'ISSUE-7', model 'replay/cheap', attempt 2" in message
    assert caught.value.rung == "cheap"


@pytest.mark.anyio
async def test_the_reproduce_stage_is_served_its_own_answers(tmp_path: Path) -> None:
    # A reproduce call and a fix call of the same task, rung and attempt are different keys:
    # each gets its own line, and a reproduce call never gets the fix's answer.
    test_answer = {
        **ENTRY,
        "content": "tests/test_x.py\n<<<<<<< SEARCH\n=======\n>>>>>>> REPLACE\n",
    }
    write_cassette(tmp_path / "run.jsonl", ENTRY, {**test_answer, "role": "reproduce"})
    rung = RungConfig(name="cheap", model="replay/cheap", cassette="run.jsonl")
    model = build_model(rung, config_dir=tmp_path)
    fix = await model.complete(MESSAGES, params())
    test = await model.complete(MESSAGES, params().model_copy(update={"role": "reproduce"}))
    assert (fix.text, test.text) == (ENTRY["content"], test_answer["content"])
    write_cassette(tmp_path / "fix-only.jsonl", ENTRY)
    only = build_model(rung.model_copy(update={"cassette": "fix-only.jsonl"}), config_dir=tmp_path)
    with pytest.raises(ProviderEscalate, match=r"attempt 1 \(reproduce\)"):
        await only.complete(MESSAGES, params().model_copy(update={"role": "reproduce"}))


def test_a_recorded_reproduce_answer_keeps_its_role(tmp_path: Path) -> None:
    from cascade.models.recording import Recorder
    from cascade.records import Completion

    recorder = Recorder(tmp_path / "rec.jsonl")
    rung = RungConfig(name="cheap", model="gpt-4o-mini")
    done = Completion(text="a test", model="gpt-4o-mini")
    recorder.record(rung, params().model_copy(update={"role": "reproduce"}), done)
    recorder.record(rung, params(), done)
    lines = [json.loads(x) for x in (tmp_path / "rec.jsonl").read_text().splitlines()]
    assert [x.get("role") for x in lines] == ["reproduce", None]  # a fix line stays role-less
    assert Cassette.load(tmp_path / "rec.jsonl").find(
        "ISSUE-7", "replay/cheap", 1, role="reproduce"
    )


def test_malformed_cassette_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ENTRY) + "\n{not json\n", encoding="utf-8")
    rung = RungConfig(name="cheap", model="replay/cheap", cassette="bad.jsonl")
    with pytest.raises(ConfigError, match=r"bad\.jsonl, line 2"):
        build_model(rung, config_dir=tmp_path)
    write_cassette(path, {**ENTRY, "attempt": "first"})
    with pytest.raises(ConfigError, match=r"line 1: attempt"):
        build_model(rung, config_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"missing\.jsonl"):
        build_model(rung.model_copy(update={"cassette": "missing.jsonl"}), config_dir=tmp_path)


@pytest.mark.anyio
async def test_recorded_answers_replay(tmp_path: Path) -> None:
    record = tmp_path / "rec.jsonl"
    rung = RungConfig(name="cheap", model="gpt-4o-mini", input_cost_per_token=1e-6)
    live = LitellmModel(
        rung, recorder=Recorder(record), litellm_kwargs={"mock_response": "recorded answer"}
    )
    first = await live.complete(MESSAGES, params(attempt=1))
    await live.complete(MESSAGES, params(task="ISSUE-8", attempt=1))
    lines = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
    assert [(x["task"], x["model"], x["attempt"]) for x in lines] == [
        ("ISSUE-7", "replay/cheap", 1),
        ("ISSUE-8", "replay/cheap", 1),
    ]

    replayed_rung = as_replay(rung, "rec.jsonl")
    replayed = build_model(replayed_rung, config_dir=tmp_path, recorder=Recorder(record))
    again = await replayed.complete(MESSAGES, params(attempt=1))
    assert again.text == first.text == "recorded answer"
    assert again.usage == first.usage
    assert len(record.read_text(encoding="utf-8").splitlines()) == 2  # replays are not recorded


@pytest.mark.anyio
async def test_each_sample_is_recorded_and_replayed_as_itself(tmp_path: Path) -> None:
    record = tmp_path / "rec.jsonl"
    rung = RungConfig(name="cheap", model="gpt-4o-mini", samples=3)
    answers = iter(["answer one", "answer two", "answer three"])

    class Live:  # a real LitellmModel per call, each with its own mocked answer
        name = "cheap"

        async def complete(self, messages: Any, p: CompletionParams) -> Any:
            mock = {"mock_response": next(answers)}
            return await LitellmModel(
                rung, recorder=Recorder(record), litellm_kwargs=mock
            ).complete(messages, p)

    live = await draw(Live(), MESSAGES, params(attempt=1), 3)
    lines = [json.loads(line) for line in record.read_text(encoding="utf-8").splitlines()]
    assert sorted(x.get("sample", 1) for x in lines) == [1, 2, 3]
    assert "sample" not in next(x for x in lines if x["content"] == live[0].text)

    replayed = build_model(as_replay(rung, "rec.jsonl"), config_dir=tmp_path)
    again = await draw(replayed, MESSAGES, params(attempt=1), 3)
    assert [a.text for a in again] == [a.text for a in live]  # sample n gets sample n's answer
    more = await draw(replayed, MESSAGES, params(attempt=1), 4)
    assert more[3].text == live[0].text  # more samples than recorded: the first answer


# --- a loopback server speaking the OpenAI API -------------------------------------------


def loopback_model(fake: FakeOpenAI) -> LitellmModel:
    return LitellmModel(RungConfig(name="local", model="openai/fake-model", api_base=fake.base))


@pytest.mark.anyio
async def test_loopback_success(fake_openai: FakeOpenAI) -> None:
    fake_openai.script.append((200, chat_body("hello from the server"), {}))
    done = await loopback_model(fake_openai).complete(MESSAGES, params())
    assert done.text == "hello from the server"
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (11, 3)
    assert done.model == "fake-model-0613"
    assert done.cost_usd == 0.0  # no known price for a local model
    [request] = fake_openai.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["model"] == "fake-model"
    assert request["max_tokens"] == 64
    assert [m["role"] for m in request["messages"]] == ["system", "user"]


@pytest.mark.anyio
async def test_loopback_empty_answer_is_a_transient_fault(fake_openai: FakeOpenAI) -> None:
    fake_openai.script.append((200, chat_body(None), {}))
    with pytest.raises(ProviderRetry) as caught:
        await loopback_model(fake_openai).complete(MESSAGES, params())
    assert caught.value.fault == "server" and caught.value.rung == "local"


@pytest.mark.anyio
async def test_loopback_401_stops_and_names_the_key(fake_openai: FakeOpenAI) -> None:
    error = {
        "message": "Incorrect API key provided: sk-test.",
        "type": "invalid_request_error",
        "code": "invalid_api_key",
    }
    fake_openai.script.append((401, {"error": error}, {}))
    with pytest.raises(ProviderStop) as caught:
        await loopback_model(fake_openai).complete(MESSAGES, params())
    assert caught.value.rung == "local"
    assert "rung 'local'" in str(caught.value)
    assert "OPENAI_API_KEY" in str(caught.value)
    assert len(fake_openai.requests) == 1


@pytest.mark.anyio
async def test_loopback_429_retries_after_the_servers_delay(fake_openai: FakeOpenAI) -> None:
    error = {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}
    fake_openai.script.append((429, {"error": error}, {"Retry-After": "7"}))
    with pytest.raises(ProviderRetry) as caught:
        await loopback_model(fake_openai).complete(MESSAGES, params())
    assert caught.value.retry_after == 7
    assert len(fake_openai.requests) == 1  # no hidden retries inside litellm or openai


@pytest.mark.anyio
async def test_loopback_500_is_one_request_and_a_retry(fake_openai: FakeOpenAI) -> None:
    fake_openai.script.append((500, {"error": {"message": "boom"}}, {}))
    with pytest.raises(ProviderRetry):
        await loopback_model(fake_openai).complete(MESSAGES, params())
    assert len(fake_openai.requests) == 1


# --- nothing happens at import -----------------------------------------------------------


def test_import_does_not_import_litellm() -> None:
    code = "import sys, cascade.models; assert 'litellm' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])
