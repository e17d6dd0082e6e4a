"""`cascade init` as a user meets it: with and without provider keys in the environment, with a
loopback "Ollama" answering `GET /api/tags` and with nothing listening. The written file must
load as a valid configuration, its ladder cheap to strong."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from cascade.cli.main import app
from cascade.core.prices import rung_price
from cascade.wiring.settings import load_config
from cascade.wiring.starter import hosted_rungs, local_rung, ollama_models, render
from tests.loopback import FakeOpenAI

runner = CliRunner()
KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "DEEPSEEK_API_KEY")
KEYS += ("MISTRAL_API_KEY",)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def closed_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_keys_and_a_local_ollama_make_a_ladder_cheap_to_strong(
    tmp_path: Path, clean_env: pytest.MonkeyPatch, fake_openai: FakeOpenAI
) -> None:
    clean_env.setenv("OPENAI_API_KEY", "sk-test")
    clean_env.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    fake_openai.gets["/api/tags"] = {
        "models": [{"name": "llama3.2:3b"}, {"name": "qwen2.5-coder:7b"}]
    }
    result = runner.invoke(app, ["init", "--repo", str(tmp_path), "--ollama-url", fake_openai.root])
    assert result.exit_code == 0, result.stderr
    assert "local → " in result.stderr
    loaded = load_config(tmp_path)
    ladder = loaded.config.ladder
    assert ladder[0].model == "ollama_chat/qwen2.5-coder:7b"
    assert ladder[0].api_base == fake_openai.root
    assert ladder[0].input_cost_per_token == 0.0  # local: shown as costing nothing
    hosted = [r.model for r in ladder[1:]]
    assert hosted == [
        "openai/gpt-4.1-mini",
        "anthropic/claude-haiku-4-5",
        "openai/gpt-4.1",
        "anthropic/claude-sonnet-4-5",
    ]
    prices = [rung_price(r) for r in ladder[1:]]
    totals = [p.input_cost_per_token + p.output_cost_per_token for p in prices]
    assert totals == sorted(totals) and all(p.known for p in prices)
    text = (tmp_path / "cascade.toml").read_text()
    assert "OPENAI_API_KEY is set" in text and "per million tokens" in text
    assert "also there: llama3.2:3b" in text
    assert loaded.config.gate.evaluators == ("diff_scope", "pytest")
    # an existing file is kept unless --force
    again = runner.invoke(app, ["init", "--repo", str(tmp_path), "--ollama-url", closed_url()])
    assert again.exit_code == 2 and "--force" in again.stderr


def test_nothing_available_writes_the_default_ladder_and_says_why(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    result = runner.invoke(app, ["init", "--repo", str(tmp_path), "--ollama-url", closed_url()])
    assert result.exit_code == 0, result.stderr
    text = (tmp_path / "cascade.toml").read_text()
    assert "No local Ollama answered and no provider API key is set" in text
    ladder = load_config(tmp_path).config.ladder
    assert [r.model for r in ladder] == ["openai/gpt-4o-mini", "openai/gpt-4o"]
    # The same models as the built-in default: a repo without any config runs this ladder too.
    (tmp_path / "cascade.toml").unlink()
    assert load_config(tmp_path).config.ladder == ladder


def test_init_will_not_shadow_a_tool_cascade_table(
    tmp_path: Path, clean_env: pytest.MonkeyPatch
) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[project]\nname = 'x'\n\n[tool.cascade.run]\nfeedback_chars = 500\n")
    args = ["init", "--repo", str(tmp_path), "--ollama-url", closed_url()]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2
    assert "already configures cascade ([tool.cascade])" in refused.stderr
    assert not (tmp_path / "cascade.toml").exists()
    assert runner.invoke(app, [*args, "--force"]).exit_code == 0
    assert (tmp_path / "cascade.toml").is_file()


def test_only_one_provider_key(clean_env: pytest.MonkeyPatch) -> None:
    rungs = hosted_rungs({"GEMINI_API_KEY": "g"})
    assert [r.model for r in rungs] == ["gemini/gemini-2.5-flash", "gemini/gemini-2.5-pro"]
    assert hosted_rungs({"GEMINI_API_KEY": ""}) == []  # an empty key is no key


def test_ollama_detection(fake_openai: FakeOpenAI) -> None:
    assert ollama_models(closed_url()) == []
    assert ollama_models(fake_openai.root) == []  # answers, but not as Ollama (404)
    fake_openai.gets["/api/tags"] = {"models": [{"name": "mistral:7b"}]}
    assert ollama_models(fake_openai.root) == ["mistral:7b"]
    rung = local_rung(["mistral:7b"], fake_openai.root)
    assert rung is not None and rung.model == "ollama_chat/mistral:7b" and rung.local


def test_the_rendered_file_is_valid_and_commented(tmp_path: Path) -> None:
    rung = local_rung(["qwen2.5-coder"], "http://localhost:11434")
    assert rung is not None
    text = render([rung], ["mypy", "pytest", "ruff"])
    (tmp_path / "cascade.toml").write_text(text)
    config = load_config(tmp_path).config
    assert [r.name for r in config.ladder] == ["local"]
    assert "# installed: mypy, pytest, ruff" in text
    assert '# labels = ["security"]' in text and "# [policy.learned_skip]" in text
