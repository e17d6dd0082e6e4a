"""A privacy lane — a workflow whose `ladder.rungs` name the only rungs a task may use — holds for
every attempt: the fix's retries and escalation, and the reproduce stage's ladder too. On the
bundled demo in Docker, with a scripted ladder: the lane's tasks never reach the other rung, even
when the lane's rung fails; `--start-at` a rung outside the lane is refused, naming the workflow;
and `cascade route` says the lane before anything runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CASCADE = str(Path(sys.executable).parent / "cascade")

LANE = """
[[workflows]]
name = "private"
match = { labels = ["pricing", "report"] }
ladder = { rungs = ["cheap"] }
context_tokens = 3000
"""


def _cascade(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.run(
        [CASCADE, *args, "--repo", str(repo)],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def _rungs(run_dir: str) -> list[tuple[str, str]]:
    lines = (Path(run_dir) / "attempts.jsonl").read_text().splitlines()
    return [(json.loads(x)["role"], json.loads(x)["rung"]) for x in lines]


@pytest.fixture
def lane(demo: Path) -> Path:
    config = demo / "cascade.toml"
    config.write_text(config.read_text() + LANE)
    return demo


def test_route_says_the_lane_without_running(lane: Path) -> None:
    shown = _cascade(lane, "route", "DEMO-3", "--json")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["workflow"]["name"] == "private"
    assert doc["route"]["rungs"] == ["cheap"] and doc["route"]["ceiling"] == "cheap"
    assert doc["context_tokens"] == 3000
    assert not (lane / ".cascade" / "runs").exists()


@pytest.mark.docker
@pytest.mark.usefixtures("docker_engine")
def test_a_lane_task_never_leaves_its_rungs_not_even_to_reproduce(lane: Path) -> None:
    # DEMO-3: the cheap answer is wrong. Without the lane the ladder climbs to strong and
    # verifies; in the lane it stops on cheap.
    fixed = _cascade(lane, "fix", "DEMO-3", "--json")
    assert fixed.returncode == 1, fixed.stderr
    outcome = json.loads(fixed.stdout)
    assert outcome["status"] == "exhausted" and outcome["workflow"] == "private"
    assert _rungs(outcome["run_dir"]) == [("fix", "cheap")]
    first = json.loads((Path(outcome["run_dir"]) / "attempts.jsonl").read_text().splitlines()[0])
    assert first["decision"]["workflow"]["context_tokens"] == 3000
    assert "only rungs cheap" in first["decision"]["workflow"]["ladder"]
    # DEMO-4 names no test: the reproduce stage runs first — on the lane's rungs only.
    four = _cascade(lane, "fix", "DEMO-4", "--json")
    outcome = json.loads(four.stdout)
    assert outcome["workflow"] == "private", four.stderr
    used = _rungs(outcome["run_dir"])
    assert ("reproduce", "cheap") in used
    assert {rung for _, rung in used} == {"cheap"}


def test_start_at_outside_the_lane_is_refused_naming_the_workflow(lane: Path) -> None:
    out = _cascade(lane, "fix", "DEMO-3", "--start-at", "strong", "--sandbox", "local")
    assert out.returncode == 2, out.stderr
    assert "workflow 'private' allows only the rungs cheap" in out.stderr
    assert "Traceback" not in out.stderr
