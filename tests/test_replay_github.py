"""`cascade replay github:OWNER/NAME?QUERY`: a backlog read from GitHub's REST API (a loopback
stand-in), replayed on the demo repository with answers keyed by the GitHub issue ids."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cascade.cli.main import app
from cascade.testing.demo import demo_repo
from tests.fake_github import FakeGitHub, serve

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo"
REPO = "acme/invoicekit"
BLOCK = "```cascade\ntests: [tests/test_pricing.py::test_instalments_sum_to_the_total]\n```"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with serve() as fake:
        yield fake


def test_a_github_query_is_a_backlog(tmp_path: Path, github: FakeGitHub) -> None:
    repo = demo_repo(DEMO, tmp_path / "demo")
    answers = {
        (e["task"], e["model"]): e["content"]
        for e in map(json.loads, (DEMO / "cassettes" / "demo.jsonl").read_text().splitlines())
    }
    labelled = [{"name": "cascade"}]
    github.add_issue(REPO, 7, title="Split a total", body=f"Add instalments.\n\n{BLOCK}",
                     labels=labelled)  # fmt: skip
    github.add_issue(REPO, 8, title="Unrelated", body="not for the cascade")
    cassette = tmp_path / "gh.jsonl"
    entries = [
        {"task": f"{REPO}#7", "model": m, "attempt": 1, "content": answers[("DEMO-3", m)]}
        for m in ("replay/demo-cheap", "replay/demo-strong")
    ]
    cassette.write_text("".join(json.dumps(e) + "\n" for e in entries))
    config = tmp_path / "c.toml"
    text = (repo / "cascade.toml").read_text().replace("cassettes/demo.jsonl", str(cassette))
    config.write_text(text.replace('evaluators = ["diff_scope", "ruff", "mypy", "pytest"]',
                                   'evaluators = ["pytest"]'))  # fmt: skip
    env = {
        "GITHUB_API_URL": github.url,
        "GITHUB_TOKEN": "t0ken",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    out = tmp_path / "batch"
    result = CliRunner().invoke(
        app,
        ["replay", f"github:{REPO}?cascade", "--repo", str(repo), "--config", str(config),
         "--out", str(out), "--sandbox", "local"],
        env=env,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "1/1 verified" in result.stderr
    ledger = [json.loads(x) for x in (out / "ledger.jsonl").read_text().splitlines()]
    assert {x["task"] for x in ledger if x.get("task")} == {f"{REPO}#7"}  # not #8: no label
    bad = CliRunner().invoke(app, ["replay", "github:nope", "--repo", str(repo)], env=env)
    assert bad.exit_code == 2 and "github:OWNER/NAME" in bad.stderr
