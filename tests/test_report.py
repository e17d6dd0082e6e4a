"""`cascade report` and `cascade report merge` on real replay batches of the demo: a two-shard
run merged reports what a one-shard run reports, and a baseline the data cannot support is
listed with the reason instead of a number."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cascade.cli.main import app
from cascade.replay.batch import RUNS_DIR
from cascade.report.numbers import percentile
from cascade.testing.demo import DemoBacklog, demo_backlog

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo"
runner = CliRunner()


@pytest.fixture(scope="module")
def backlog(tmp_path_factory: pytest.TempPathFactory) -> DemoBacklog:
    # Cheap answers without edits, and pytest running only each issue's own tests: every task
    # climbs to the strong rung, which is proven, in about a second. The issues that name their
    # tests only: DEMO-4 would add a reproduce stage per copy, and nothing to the report's logic
    # that tests/test_replay.py does not already cover.
    root = tmp_path_factory.mktemp("report")
    return demo_backlog(
        DEMO, root / "b", copies=3, gate='["diff_scope", "pytest"]', cheap_without_edits=True,
        focus_only=True, issues=("DEMO-1", "DEMO-2", "DEMO-3"),
    )  # fmt: skip


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def replay(b: DemoBacklog, out: Path, *extra: str) -> dict[str, Any]:
    code, _, err = run(
        "replay", str(b.backlog), "--repo", str(b.repo), "--config", str(b.config),
        "--out", str(out), "--sandbox", "local", "--concurrency", "3", *extra,
    )  # fmt: skip
    assert code == 0, err
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    return report


# Timing, when the report was written and where things were written differ between two runs of
# the same batch; the rest is what the batch *did*, and must be equal.
VOLATILE = {"time", "sources", "notes", "provenance"}
VOLATILE_ROW = {"duration_s", "run_dir", "summary_md", "patch_diff"}


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in report.items() if k not in VOLATILE}
    kept["task_rows"] = sorted(
        ({k: v for k, v in row.items() if k not in VOLATILE_ROW} for row in report["task_rows"]),
        key=lambda row: row["task"],
    )
    kept["baselines"] = [
        {k: v for k, v in b.items() if k != "sources"} for b in report["baselines"]
    ]
    return kept


def test_two_shards_merged_equal_one_shard(backlog: DemoBacklog, tmp_path: Path) -> None:
    whole = replay(backlog, tmp_path / "whole")
    first = replay(backlog, tmp_path / "s1", "--shard", "1/2")
    second = replay(backlog, tmp_path / "s2", "--shard", "2/2")
    assert first["tasks"]["total"] + second["tasks"]["total"] == 9
    assert first["tasks"]["total"] and second["tasks"]["total"]  # both shards hold work
    merged_dir = tmp_path / "merged"
    code, stdout, err = run("report", "merge", str(tmp_path / "s1"), str(tmp_path / "s2"),
                            "--out", str(merged_dir))  # fmt: skip
    assert code == 0, err
    assert "# Replay report" in stdout
    merged = json.loads((merged_dir / "report.json").read_text())
    assert comparable(merged) == comparable(whole)
    assert merged["tasks"]["verified"] == 9 and merged["rungs"]["strong"]["verified"] == 9
    assert len(list((merged_dir / RUNS_DIR).iterdir())) == 9  # the merged batch is self-contained
    # Merging one shard alone says what is missing; merging it twice is refused.
    code, _, err = run("report", "merge", str(tmp_path / "s1"), "--out", str(tmp_path / "half"))
    assert code == 0 and "shard(s) 2/2 not merged" in err
    code, _, err = run("report", "merge", str(tmp_path / "s1"), str(tmp_path / "s1"),
                       "--out", str(tmp_path / "twice"))  # fmt: skip
    assert code == 2 and "given twice" in err


def test_report_says_which_baselines_the_data_cannot_support(
    backlog: DemoBacklog, tmp_path: Path
) -> None:
    out = tmp_path / "batch"
    replay(backlog, out)
    code, stdout, err = run("report", str(out), "--json")
    assert code == 0, err
    report = json.loads(stdout)
    rows = {b["name"]: b for b in report["baselines"]}
    assert rows["cascade (this run)"]["verified"] == 9
    cheap = rows["cheapest rung alone (cheap)"]  # exact: every task started on it
    assert cheap["available"] and cheap["verified"] == 0
    assert cheap["cost_usd"] == report["rungs"]["cheap"]["cost_usd"]
    strongest = rows["always strongest rung (strong)"]
    assert strongest["available"] is False and "--shadow strongest" in strongest["why"]
    # Every task climbed to it (the cheap rung failed all 9): not "answered only 9 of 9".
    assert strongest["why"].startswith("every task reached the strongest rung, but after")
    assert "cost_usd" not in strongest  # no number is invented
    md = (out / "report.md").read_text()
    assert "always strongest rung (strong): cannot be computed" in md
    for heading in ("## Outcomes", "## Per rung", "## Cost, time, tokens", "## Baselines",
                    "## Per label", "## Where patches fail", "## Tasks"):  # fmt: skip
        assert heading in md
    assert report["failures"]["attempt_statuses"] == {"edit_error": 9, "verified": 9}
    assert report["labels"]["bug"]["tasks"] == 6  # DEMO-1 and DEMO-2, three copies each


def test_report_usage_errors_are_exit_2(tmp_path: Path) -> None:
    code, _, err = run("report", str(tmp_path / "missing"))
    assert code == 2 and "no such folder" in err
    code, _, err = run("report", str(tmp_path))
    assert code == 2 and "no replay batch" in err
    code, _, err = run("report", str(tmp_path), str(tmp_path))
    assert code == 2 and "--out" in err
    assert "Traceback" not in err


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0], 0.95) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.5
    assert percentile([float(n) for n in range(1, 101)], 0.95) == 95.05
