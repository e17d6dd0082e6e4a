"""`cascade route` and `cascade replay --plan` say the path a task would take without spending
anything: no model called, no cassette read, no sandbox opened, no run folder written. Through
the installed entry point, from outside the repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CASCADE = str(Path(sys.executable).parent / "cascade")
# The older form, still read (as a workflow after the demo's own `[[workflows]]`).
RULE = '\n[[routing.rules]]\nname = "imports"\nlabels = ["import"]\nstart_at = "strong"\n'


def _cascade(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["DOCKER_HOST"] = f"unix://{cwd / 'no-docker.sock'}"  # no engine: none is needed
    return subprocess.run(
        [CASCADE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip


def _spendless(demo: Path) -> None:
    """The demo's ladder pointed at a cassette that is not there (reading it would fail), plus
    a rung on a provider whose key is not set (calling it would fail), plus a routing rule."""
    config = demo / "cascade.toml"
    text = config.read_text().replace('"cassettes/demo.jsonl"', '"cassettes/missing.jsonl"')
    text += '\n[[ladder]]\nname = "hosted"\nmodel = "openai/gpt-4o"\n' + RULE
    config.write_text(text)


def test_route_says_each_demo_issues_path_and_spends_nothing(demo: Path, tmp_path: Path) -> None:
    _spendless(demo)
    said = {}
    for issue in ("DEMO-1", "DEMO-2", "DEMO-3", "DEMO-4"):
        out = _cascade(tmp_path, "route", issue, "--repo", str(demo))
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith(f"{issue}: ")
        assert "would stop: rung 'hosted'" in out.stdout and "OPENAI_API_KEY" in out.stdout
        said[issue] = out.stdout
    assert not (demo / ".cascade" / "runs").exists()
    # in the order it is decided: workflow, context, scope, gate, proof, review, model, budget
    heads = [line.split(":")[0].strip() for line in said["DEMO-3"].splitlines()[1:]]
    order = ["workflow", "context", "scope", "gate", "proof", "review", "model", "budget"]
    assert [h for h in heads if h in order] == order
    # DEMO-1 is labelled money: the demo's money workflow, its stricter gate and a person's review
    assert "workflow: money (label money)" in said["DEMO-1"]
    assert "coverage" in said["DEMO-1"].split("gate:")[1].splitlines()[0]
    assert "review:   human (reviewers invoicekit/maintainers)" in said["DEMO-1"]
    # DEMO-2 is labelled import: the routing rule, read as a workflow, starts it strong
    assert "workflow: imports (label import)" in said["DEMO-2"]
    started = "model:    start strong, ceiling hosted — workflow 'imports' (label import)"
    assert started in said["DEMO-2"]
    assert "workflow: default (no workflow matched)" in said["DEMO-3"]
    assert "passed over imports: no label import" in said["DEMO-3"]
    assert "gate:     diff_scope, ruff, mypy, pytest\n" in said["DEMO-3"]
    shown = json.loads(_cascade(tmp_path, "route", "DEMO-2", "--repo", str(demo), "--json").stdout)
    flow = shown["workflow"]
    assert flow["name"] == "imports" and flow["matched"] == ["label import"]
    # a routing rule is read after every `[[workflows]]` entry: the demo's were passed over
    assert [p["workflow"] for p in flow["passed_over"]] == ["money", "docs"]
    assert shown["route"]["start"] == "strong" and "workflow 'imports'" in shown["route"]["because"]
    assert shown["route"]["passed_over"][0]["rung"] == "cheap"
    assert shown["first_call_usd_at_most"] > 0
    four = json.loads(_cascade(tmp_path, "route", "DEMO-4", "--repo", str(demo), "--json").stdout)
    assert four["route"]["start"] == "cheap" and four["workflow"]["name"] == "default"
    assert four["proof"]["first"] == "the reproduce stage writes the proving test, then the fix"


def test_replay_plan_prints_the_split_and_runs_nothing(demo: Path, tmp_path: Path) -> None:
    _spendless(demo)
    backlog = str(demo / ".cascade" / "issues")
    out = _cascade(tmp_path, "replay", backlog, "--repo", str(demo), "--plan")
    assert out.returncode == 0, out.stderr
    assert "4 task(s): workflows 2 default, 1 money, 1 imports; 3 start on cheap, " in out.stdout
    assert "1 start on strong" in out.stdout and "(nothing was run)" in out.stdout
    doc = json.loads(
        _cascade(tmp_path, "replay", backlog, "--repo", str(demo), "--plan", "--json").stdout
    )
    assert doc["tasks"] == 4 and doc["by_start"] == {"strong": 1, "cheap": 3}
    assert doc["by_workflow"] == {"money": 1, "imports": 1, "default": 2}
    assert doc["first_calls_usd_at_most"] > 0
    assert not (demo / ".cascade" / "replay").exists() and not (demo / ".cascade" / "runs").exists()
