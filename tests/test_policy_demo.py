"""The acceptance check of the ladder policy on the bundled demo: `cascade fix` (local sandbox)
writes a summary.md that says, for every attempt, why that rung was chosen and why the ladder
climbed; `cascade ladder stats` reads the demo's history back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from cascade.cli.main import app

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo"
runner = CliRunner()


def test_demo_summary_says_why_each_rung_and_stats_read_the_history(demo: Path) -> None:
    fixed = runner.invoke(
        app, ["fix", "DEMO-3", "--repo", str(demo), "--sandbox", "local", "--json"]
    )
    assert fixed.exit_code == 0, fixed.stderr
    outcome = json.loads(fixed.stdout)
    summary = (Path(outcome["run_dir"]) / "summary.md").read_text()
    assert "## Why each attempt" in summary
    assert "- **#1** `cheap` · attempt 1 · rejected" in summary
    assert "  - chosen: start at 'cheap': the cheapest rung" in summary
    assert "  - chosen: climb to 'strong': 'cheap' 1 attempt(s) failed: gate failure" in summary
    assert summary.count("  - cost: estimated ≤ $") == 2
    assert "## Why it climbed" in summary
    assert "- `cheap` → `strong` (#2): 'cheap' 1 attempt(s) failed: gate failure" in summary

    stats = runner.invoke(app, ["ladder", "stats", "--repo", str(demo)])
    assert stats.exit_code == 0, stats.stderr
    rows = {tuple(line.split()[:2]): line.split()[2:6] for line in stats.stdout.splitlines()[2:]}
    assert rows[("cheap", "*")] == ["1", "0", "0", "0%"]  # tried, verified, unproven, rate
    assert rows[("strong", "*")] == ["1", "1", "0", "100%"]
    assert rows[("cheap", "pricing")] == ["1", "0", "0", "0%"]  # per label, from the issue
    assert "learned skip off" in stats.stdout
    # The same numbers as one JSON object, for a script.
    shown = runner.invoke(app, ["ladder", "stats", "--repo", str(demo), "--json"])
    assert shown.exit_code == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["runs"] == 1 and doc["learned_skip"]["enabled"] is False
    row = next(r for r in doc["rows"] if (r["rung"], r["label"]) == ("strong", "*"))
    assert (row["tried"], row["verified"], row["rate"]) == (1, 1, 1.0)


def test_ladder_stats_without_runs_says_so_and_exits_0(tmp_path: Path) -> None:
    cascade = str(Path(sys.executable).parent / "cascade")  # the installed entry point
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    repo = tmp_path / "repo"
    repo.mkdir()

    def stats(*extra: str) -> subprocess.CompletedProcess[str]:
        argv = [cascade, "ladder", "stats", "--repo", str(repo), *extra]
        return subprocess.run(
            argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
        )

    empty = stats()
    assert empty.returncode == 0, empty.stderr
    assert "no runs with answered attempts" in empty.stdout and "yet" in empty.stdout
    shown = stats("--json")
    assert shown.returncode == 0 and json.loads(shown.stdout)["rows"] == []
