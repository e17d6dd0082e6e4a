"""`cascade replay --shadow all` then `cascade report --ladders` on the demo backlog, end to end
(local sandbox, scripted answers, real gate): every rung runs alone into its own proof folder, a
resume pays for nothing twice, every number of the review traces to a run in the batch folder
whose proof verifies, and `--max-cost-usd` caps the batch and its shadows together."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cascade.cli.main import app
from cascade.proof.verify import verify_run
from cascade.replay.batch import LEDGER_FILE, SHADOW_DIR
from cascade.replay.ledger import read_ledger
from cascade.testing.demo import DemoBacklog, demo_backlog

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo"
runner = CliRunner()


@pytest.fixture(scope="module")
def backlog(tmp_path_factory: pytest.TempPathFactory) -> DemoBacklog:
    # The demo's cheap answers (wrong patches the tests reject) and strong answers (proven), with
    # pytest running each issue's own tests: the rungs differ, as a review needs them to.
    root = tmp_path_factory.mktemp("ladders")
    return demo_backlog(
        DEMO, root / "b", copies=1, gate='["diff_scope", "pytest"]', focus_only=True,
        issues=("DEMO-1", "DEMO-2", "DEMO-3"),
    )  # fmt: skip


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def replay(b: DemoBacklog, out: Path, *extra: str, shadow: str = "all") -> tuple[int, str]:
    code, _, err = run(
        "replay", str(b.backlog), "--repo", str(b.repo), "--config", str(b.config),
        "--out", str(out), "--sandbox", "local", "--shadow", shadow, *extra,
    )  # fmt: skip
    return code, err


def _runs(out: Path) -> set[Path]:
    return {p for p in out.rglob("runs/*") if p.is_dir()}


@pytest.fixture(scope="module")
def batch(backlog: DemoBacklog, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("batch") / "all"
    code, err = replay(backlog, out, "--concurrency", "3")
    assert code == 0, err
    return out


def test_shadow_all_runs_every_rung_alone_and_a_resume_runs_nothing_again(
    batch: Path, backlog: DemoBacklog
) -> None:
    shadows = sorted(p.name for p in (batch / SHADOW_DIR).iterdir())
    assert shadows == ["rung-cheap", "strongest-strong"]  # the last shares --shadow strongest's
    for name in shadows:
        state = read_ledger(batch / SHADOW_DIR / name / LEDGER_FILE)
        assert sorted(state.finished) == sorted(backlog.ids)
    before = {p: (p / "outcome.json").read_bytes() for p in _runs(batch)}
    # As a batch begun before headers recorded each rung's settings: the resume fills them in.
    header = json.loads((batch / "batch.json").read_text())
    rungs = header.pop("rungs")
    (batch / "batch.json").write_text(json.dumps(header))
    code, err = replay(backlog, batch)
    assert code == 0, err
    assert {p: (p / "outcome.json").read_bytes() for p in _runs(batch)} == before
    assert json.loads((batch / "batch.json").read_text())["rungs"] == rungs
    assert Path(rungs[0]["cassette"]).is_absolute()  # a ready block works from any config
    assert "shadows: rung-cheap $" in err and "the batch and its shadows $" in err


def _outcome(run_dir: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((Path(run_dir) / "outcome.json").read_text())
    return data


def test_every_number_of_the_review_traces_to_a_run_in_the_batch(batch: Path) -> None:
    code, out, err = run("report", str(batch), "--ladders", "--json")
    assert code == 0, err
    review = json.loads(out)["ladders"]
    assert review["available"] and [r["rung"] for r in review["rungs"]] == ["cheap", "strong"]
    # Each outcome is a sealed run under the batch's shadow folders, whose proof verifies, and
    # whose outcome.json says what the review says.
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for cell in review["cells"]:
        run_dir = Path(cell["run_dir"])
        assert run_dir.is_relative_to(batch / SHADOW_DIR)
        assert verify_run(run_dir).ok
        sealed = _outcome(cell["run_dir"])
        assert sealed["status"] == cell["status"] and sealed["cost_usd"] == pytest.approx(
            cell["cost_usd"]
        )
        table[(cell["rung"], cell["task"])] = sealed
    assert len(table) == 2 * 3
    # The demo's cheap answers are all wrong, the strong ones all right: strong alone is the
    # cheapest ladder that keeps 95% of the best solve rate, and cheap → strong (replayed) costs
    # more for the same 3/3. Each figure, recomputed from the outcome files.
    tasks = sorted({task for _, task in table})
    strong = sum(table[("strong", t)]["cost_usd"] for t in tasks)
    cheap = sum(table[("cheap", t)]["cost_usd"] for t in tasks)
    assert all(table[("cheap", t)]["status"] != "verified" for t in tasks)
    assert all(table[("strong", t)]["status"] == "verified" for t in tasks)
    best = review["recommended"]
    assert best["ladder"] == ["strong"] and best["verified"] == 3
    assert best["cost_usd"] == pytest.approx(strong)
    rows = {" → ".join(r["ladder"]): r for r in review["ladders"]}
    assert rows["cheap → strong"]["cost_usd"] == pytest.approx(cheap + strong)
    assert [" → ".join(r["ladder"]) for r in review["frontier"]] == ["cheap", "strong"]
    assert review["saving"]["usd"] == 0  # the recommendation is always-the-strongest here
    # The replayed ladder beside its projection: the batch's own figures, from its ledger.
    actual = review["replayed"]["actual"]
    main = read_ledger(batch / LEDGER_FILE)
    spent = sum(
        line.done.outcome.cost_usd
        for line in main.tasks.values()
        if line.done is not None and line.done.outcome is not None
    )
    assert actual["ladder"] == ["cheap", "strong"] and actual["cost_usd"] == pytest.approx(spent)
    assert review["replayed"]["projected"]["ladder"] == ["cheap", "strong"]
    # The ready block names the rungs as the batch ran them, cassette and prices included.
    assert 'model = "replay/demo-strong"' in review["ready_block"]
    assert "input_cost_per_token" in review["ready_block"]
    markdown = (batch / "report.md").read_text()
    assert "## Ladders" in markdown and "```toml" in markdown
    page = (batch / "report.html").read_text()
    assert '<section id="ladders">' in page and "<pre><code># cascade report --ladders" in page
    assert (batch / "ladder_frontier.png").is_file()


def test_max_cost_usd_caps_the_batch_and_its_shadows_together(
    batch: Path, backlog: DemoBacklog, tmp_path: Path
) -> None:
    state = read_ledger(batch / LEDGER_FILE)
    main = sum(t.done.outcome.cost_usd for t in state.tasks.values() if t.done and t.done.outcome)
    # Three tasks in flight start at once, under the cap; together they pass it. Then no shadow
    # task may start: capped per folder, each shadow would have run all three again.
    out = tmp_path / "capped"
    code, err = replay(backlog, out, "--concurrency", "3", "--max-cost-usd", f"{main / 2:.6f}")
    assert code == 1, err
    assert len(read_ledger(out / LEDGER_FILE).finished) == 3
    first = read_ledger(out / SHADOW_DIR / "rung-cheap" / LEDGER_FILE)
    assert first.finished == [] and first.budget_stops
    assert not (out / SHADOW_DIR / "strongest-strong").exists()  # stopped: the rest never open


def test_report_ladders_usage_errors_and_a_batch_without_shadows(batch: Path) -> None:
    for bad in (["--floor", "0"], ["--floor", "1.5"], ["--max-rungs", "0"]):
        code, _, err = run("report", str(batch), "--ladders", *bad)
        assert code == 2, (bad, err)
    code, out, err = run("report", str(batch / SHADOW_DIR / "rung-cheap"), "--ladders", "--json")
    assert code == 0, err
    review = json.loads(out)["ladders"]
    assert review["available"] is False and "--shadow all" in review["why"]


def test_a_new_model_is_assessed_as_one_more_rung_run_alone(
    batch: Path, backlog: DemoBacklog, tmp_path: Path
) -> None:
    """Last (it adds a rung to the shared batch): a model as good as the strong one at a
    fraction of its price, run alone on the finished batch, is where the ladder should start."""
    rung = tmp_path / "mid.toml"
    rung.write_text(
        '[[ladder]]\nname = "mid"\nmodel = "replay/demo-strong"\n'
        f"cassette = {json.dumps(str(backlog.cassette))}\n"
        "input_cost_per_token = 1e-07\noutput_cost_per_token = 4e-07\n"
    )
    before = _runs(batch)
    code, err = replay(backlog, batch, shadow=str(rung))
    assert code == 0, err
    new = _runs(batch) - before  # the batch itself is finished: only the new rung ran
    assert len(new) == 3 and all(p.is_relative_to(batch / SHADOW_DIR / "mid") for p in new)
    code, out, err = run("report", str(batch), "--ladders", "--json")
    assert code == 0, err
    review = json.loads(out)["ladders"]
    assert [r["rung"] for r in review["rungs"]] == ["cheap", "strong", "mid"]
    assert review["recommended"]["ladder"] == ["mid"] and review["recommended"]["verified"] == 3
    assert review["saving"]["usd"] > 0 and review["saving"]["solve_rate_change"] == 0
    block = tomllib.loads(review["ready_block"])["ladder"]
    assert [(r["name"], r["model"]) for r in block] == [("mid", "replay/demo-strong")]
    assert block[0]["input_cost_per_token"] == 1e-07
