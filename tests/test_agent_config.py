"""Configuring agent rungs (issue 22): `mode = "agent"` and `tools` on a rung, a workflow's
`tools` laid over every agent rung of its tasks, what is refused before any work (an agent rung
on the local sandbox, more than one sample, a repair rung as an agent, an allow-list that is no
list of argv prefixes), and the cassette's step key."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from cascade.config import RungConfig
from cascade.errors import ConfigError
from cascade.models.cassette import Cassette, CassetteEntry
from cascade.records import Issue
from cascade.wiring.assemble import assemble
from cascade.wiring.route_plan import plan, render
from cascade.wiring.settings import LoadedConfig, load_config
from cascade.wiring.workflows import workflows_of

TOML = """\
[[ladder]]
name = "cheap"
model = "replay/cheap"
cassette = "c.jsonl"

[[ladder]]
name = "agent"
model = "replay/agent"
cassette = "c.jsonl"
mode = "agent"
tools = { max_steps = 12, allow = [["pytest"], "git diff"] }

[[workflows]]
name = "strict"
match = { labels = ["security"] }
tools = { max_steps = 4, command_timeout = 10, allow = [["python", "-m", "pytest"]] }
"""


def load(tmp_path: Path, text: str = TOML, **overrides: str) -> LoadedConfig:
    (tmp_path / "cascade.toml").write_text(text)
    (tmp_path / "c.jsonl").write_text("")
    return load_config(
        tmp_path, overrides={k: (v, "--flag") for k, v in overrides.items()}, environ={}
    )


def test_a_rungs_tools_and_a_workflows_tools_over_them(tmp_path: Path) -> None:
    loaded = load(tmp_path)
    agent = loaded.config.ladder[1]
    assert agent.mode == "agent"
    assert agent.tools.max_steps == 12
    assert agent.tools.allow == (("pytest",), ("git", "diff"))  # a string is its words
    assert loaded.config.ladder[0].mode == "single"
    flows = {f.name: f for f in workflows_of(loaded)}
    strict = {r.name: r for r in flows["strict"].ladder}["agent"].tools
    assert (strict.max_steps, strict.command_timeout) == (4, 10)
    assert strict.allow == (("python", "-m", "pytest"),)
    assert {r.name: r for r in flows["default"].ladder}["agent"].tools.max_steps == 12


@pytest.mark.parametrize(
    ("update", "says"),
    [
        ({"samples": 2}, "samples must be 1"),
        ({"model": "repair/mutate"}, "a repair rung calls no model"),
        ({"tools": {"allow": [[]]}}, "not an argv prefix"),
        ({"tools": {"allow": "pytest"}}, "list of argv prefixes"),
        ({"tools": {"max_steps": 0}}, "max_steps"),
        ({"tools": {"command_timeout": 0}}, "command_timeout"),
        ({"tools": {"max_step": 3}}, "max_step"),
    ],
)
def test_what_an_agent_rung_refuses(update: dict[str, object], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        RungConfig.model_validate({"name": "a", "model": "openai/x", "mode": "agent", **update})


def test_an_agent_rung_is_refused_on_the_local_sandbox_before_any_work(tmp_path: Path) -> None:
    loaded = load(tmp_path, **{"sandbox.backend": "local"})
    with pytest.raises(ConfigError, match="'agent': an agent rung runs the model's commands"):
        assemble(loaded)


def test_a_cassette_keys_each_turn_by_its_step(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    lines = [
        CassetteEntry(task="T", model="replay/a", attempt=1, content="single"),
        CassetteEntry(task="T", model="replay/a", attempt=1, step=1, content="turn one"),
        CassetteEntry(task="T", model="replay/a", attempt=1, step=2, content="turn two"),
    ]
    path.write_text("".join(e.to_line() for e in lines))
    assert '"step"' not in lines[0].to_line()  # a single answer's line keeps its shape
    cassette = Cassette.load(path)
    assert cassette.answer("T", "replay/a", 1).content == "single"
    assert cassette.answer("T", "replay/a", 1, step=2).content == "turn two"
    with pytest.raises(Exception, match="step 3"):
        cassette.answer("T", "replay/a", 1, step=3)


def test_route_says_what_each_agent_rung_may_do_for_the_tasks_workflow(tmp_path: Path) -> None:
    loaded = load(tmp_path)
    plain = plan(loaded, Issue(id="T-1", title="x"), set())
    strict = plan(loaded, Issue(id="T-2", title="x", labels=("security",)), set())
    assert list(plain.doc["tools"]) == ["agent"]  # the single-shot rung has none
    assert plain.doc["tools"]["agent"]["max_steps"] == 12
    assert strict.doc["tools"]["agent"]["allow"] == [["python", "-m", "pytest"]]
    assert "tools:    agent (an agent) — 4 steps, 10 s a command" in render(strict)
    assert "only python -m pytest" in render(strict)
