"""Errors before spending: a rung whose provider key is missing, or whose model string litellm
cannot route, stops `cascade fix` with exit 2 and one whole sentence naming the rung and the
variable, before any sandbox opens — through the installed entry point, from outside the repo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cascade.config import CascadeConfig, RungConfig
from cascade.errors import ConfigError
from cascade.models.preflight import ONLY_A_KEY, check_rungs, rung_problem

CASCADE = str(Path(sys.executable).parent / "cascade")
KEYS = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY")


def _fix(repo: Path, ladder: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (repo / "cascade.toml").write_text(ladder + '[gate]\nevaluators = ["diff_scope", "pytest"]\n')
    environ = {k: v for k, v in os.environ.items() if k not in KEYS}
    environ.update(LITELLM_LOCAL_MODEL_COST_MAP="True", **env)
    argv = [CASCADE, "fix", "DEMO-1", "--repo", str(repo), "--sandbox", "local"]
    return subprocess.run(
        argv, cwd=cwd, env=environ, capture_output=True, text=True, timeout=120, check=False
    )


LADDER = """
[[ladder]]
name = "cheap"
model = "openai/gpt-4o-mini"

[[ladder]]
name = "strong"
model = "anthropic/claude-sonnet-4-5"
"""


def test_missing_keys_are_exit_2_before_any_sandbox(demo: Path, tmp_path: Path) -> None:
    out = _fix(demo, LADDER, tmp_path)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    # Both rungs named at once, each with its variable, and nothing cut off.
    assert "rung 'cheap': model 'openai/gpt-4o-mini' (openai) needs OPENAI_API_KEY" in out.stderr
    assert (
        "rung 'strong'" in out.stderr and "needs ANTHROPIC_API_KEY in the environment" in out.stderr
    )
    assert "change the rung's model in the [[ladder]]" in out.stderr
    assert "opening a sandbox" not in out.stderr and "baseline" not in out.stderr
    assert not (demo / ".cascade" / "runs").exists()  # no run folder, nothing spent


def test_an_unknown_model_string_is_exit_2(demo: Path, tmp_path: Path) -> None:
    typo = '[[ladder]]\nname = "cheap"\nmodel = "gpt-4o-mni"\n'
    out = _fix(demo, typo, tmp_path, OPENAI_API_KEY="sk-test")
    assert out.returncode == 2, out.stderr
    assert "rung 'cheap': litellm cannot tell which provider serves model 'gpt-4o-mni'" in (
        out.stderr
    )
    assert "Provider List" not in out.stdout + out.stderr  # litellm's banner stays quiet


def test_a_local_server_needs_a_key_too_and_says_any_will_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    local = RungConfig(name="local", model="openai/qwen", api_base="http://127.0.0.1:8000/v1")
    problem = rung_problem(local)
    assert problem is not None and "any value does for a local server" in problem
    monkeypatch.setenv("OPENAI_API_KEY", "sk-anything")
    assert rung_problem(local) is None


def test_replay_rungs_need_nothing_and_the_default_ladder_routes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    replay = RungConfig(name="r", model="replay/demo-cheap", cassette="x.jsonl")
    assert rung_problem(replay) is None
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    default = CascadeConfig().ladder
    assert all("/" in r.model for r in default)  # provider-prefixed, as `cascade init` writes
    check_rungs(default)  # routes, and with the key set nothing is missing
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(ConfigError, match="needs OPENAI_API_KEY"):
        check_rungs(default)


@pytest.mark.parametrize("provider", sorted(ONLY_A_KEY))
def test_each_provider_checked_without_litellm_needs_only_its_key(
    provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The shortcut's table must say what litellm says: that key and nothing else.
    import litellm

    for var in {*ONLY_A_KEY.values(), "OPENAI_API_BASE", "OPENAI_BASE_URL"}:
        monkeypatch.delenv(var, raising=False)
    model = f"{provider}/some-model"
    found = litellm.validate_environment(model=model)
    assert list(found.get("missing_keys") or ()) == [ONLY_A_KEY[provider]]
    assert litellm.get_llm_provider(model=model)[1] == provider


def test_a_set_key_is_checked_without_importing_litellm() -> None:
    code = (
        "import sys\n"
        "from cascade.config import RungConfig\n"
        "from cascade.models.preflight import check_rungs\n"
        "check_rungs([RungConfig(name='a', model='openai/gpt-4o-mini'),\n"
        "             RungConfig(name='b', model='anthropic/claude-sonnet-4-5')])\n"
        "print('litellm' in sys.modules)\n"
    )
    env = {**os.environ, "OPENAI_API_KEY": "sk-x", "ANTHROPIC_API_KEY": "sk-y"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"  # seconds of import saved before the first line
