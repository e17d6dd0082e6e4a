"""`cascade replay` as a user meets it: real git repositories (the bundled demo), the real engine,
local sandbox, gate and proof log, the command line run in-process. Plus the small parts a batch
stands on: backlog loading, shards, the torn-line-safe ledger, cassette latency."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from typer.testing import CliRunner

from cascade.cli.main import app
from cascade.config import RungConfig
from cascade.errors import UsageError
from cascade.models import build_model
from cascade.proof.run_folder import RunFolder
from cascade.proof.verify import verify_run
from cascade.protocols import Model
from cascade.records import CompletionParams, Message
from cascade.replay.backlog import Shard, load_backlog
from cascade.replay.batch import LEDGER_FILE, RUNS_DIR, BatchDir, BatchHeader
from cascade.replay.ledger import JsonlWriter, read_jsonl, read_ledger
from cascade.replay.runner import BatchPlan, BatchRunner
from cascade.testing.demo import DemoBacklog, demo_backlog, demo_repo, without_workflows
from cascade.wiring.assemble import assemble
from cascade.wiring.run_issue import IssueRunner
from cascade.wiring.settings import load_config
from cascade.workspace.checkout import resolve_commit
from tests.loopback import FakeOpenAI, error_body

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo"
# pytest proves a fix (only the issue's own tests run after a patch): tasks take a second or so.
FAST_GATE = '["diff_scope", "pytest"]'
# The demo issues that name their tests. The batch mechanics below run on these; DEMO-4 (no
# tests: its run writes one first) joins the whole-demo batch and the cassette replay.
NAMED = ("DEMO-1", "DEMO-2", "DEMO-3")
runner = CliRunner()


def replay(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["replay", *args, "--sandbox", "local"])
    return result.exit_code, result.stdout, result.stderr


def fast_backlog(tmp_path: Path, copies: int = 2, issues: tuple[str, ...] = NAMED) -> DemoBacklog:
    return demo_backlog(
        DEMO,
        tmp_path / "b",
        copies=copies,
        gate=FAST_GATE,
        cheap_without_edits=True,
        focus_only=True,
        issues=issues,
    )


def batch_args(b: DemoBacklog, out: Path, *extra: str) -> list[str]:
    return [str(b.backlog), "--repo", str(b.repo), "--config", str(b.config), "--out", str(out),
            *extra]  # fmt: skip


# --- the small parts -----------------------------------------------------------------------


def test_shards_partition_the_backlog_stably() -> None:
    ids = [f"ISSUE-{n}" for n in range(200)]
    shards = [Shard(i, 3) for i in (1, 2, 3)]
    owners = [[s for s in shards if s.holds(i)] for i in ids]
    assert all(len(o) == 1 for o in owners)  # each issue in exactly one shard
    assert all(sum(1 for o in owners if o[0] is s) > 40 for s in shards)  # and spread out
    # Adding issues moves none of the old ones: the slice depends on the id alone.
    assert [Shard(2, 3).holds(i) for i in ids] == [Shard(2, 3).holds(i) for i in ids]
    assert Shard.parse(" 2/3 ") == Shard(2, 3)
    for bad in ("0/3", "4/3", "x/2", "1/0", "2"):
        with pytest.raises(UsageError, match="--shard"):
            Shard.parse(bad)


def test_ledger_repairs_a_torn_tail_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / LEDGER_FILE
    writer = JsonlWriter(path)
    writer.append({"event": "start", "task": "A", "run_id": "A.r1"})
    with path.open("ab") as handle:  # a kill in the middle of the next write
        handle.write(b'{"event":"done","task":"A","run_')
    read = read_jsonl(path)
    assert [r["task"] for r in read.records] == ["A"] and read.torn_tail
    again = JsonlWriter(path)  # the next process: starts a fresh line, keeps the fragment
    assert again.repaired and not JsonlWriter(path).repaired
    again.append({"event": "start", "task": "B", "run_id": "B.r1"})
    read = read_jsonl(path)
    assert [r["task"] for r in read.records] == ["A", "B"]
    assert read.bad_lines == 1 and not read.torn_tail
    assert b'"run_\n{"' in path.read_bytes()  # the fragment is still there, on its own line
    state = read_ledger(path)
    assert state.tasks["A"].open_runs == ["A.r1"] and state.bad_lines == 1


def test_backlog_and_flag_errors_are_exit_2_without_a_traceback(tmp_path: Path) -> None:
    b = fast_backlog(tmp_path, copies=1)
    out = tmp_path / "out"
    code, _, err = replay(*batch_args(b, out, "--shard", "3/2"))
    assert code == 2 and "--shard '3/2'" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text(b.backlog.read_text() + '{"id": "X-1"}\n')
    code, _, err = replay(str(bad), "--repo", str(b.repo), "--config", str(b.config))
    assert code == 2 and "bad.jsonl, line 4" in err and "title" in err
    bad.write_text(b.backlog.read_text().splitlines()[0] + "\n" + b.backlog.read_text())
    code, _, err = replay(str(bad), "--repo", str(b.repo), "--config", str(b.config))
    assert code == 2 and "appears twice" in err
    code, _, err = replay(str(tmp_path / "nope"), "--repo", str(b.repo))
    assert code == 2 and "no such folder or file" in err
    code, _, err = replay("--repo", str(b.repo))
    assert code == 2 and "BACKLOG" in err
    assert "Traceback" not in err
    assert not (out / RUNS_DIR).exists()  # nothing was started


@pytest.mark.anyio
async def test_cassette_latency_is_simulated_and_concurrent_calls_overlap(tmp_path: Path) -> None:
    entry = {"task": "T-1", "model": "replay/cheap", "attempt": 1, "content": "hi",
             "latency_s": 0.4}  # fmt: skip
    (tmp_path / "c.jsonl").write_text(json.dumps(entry) + "\n")
    model = build_model(
        RungConfig(name="cheap", model="replay/cheap", cassette="c.jsonl"), config_dir=tmp_path
    )
    params = CompletionParams(task_id="T-1", attempt=1, timeout=10)
    messages = [Message(role="user", content="fix")]
    await model.complete(messages, params)  # imports litellm outside the timing
    started = time.monotonic()
    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(model.complete, messages, params)
    elapsed = time.monotonic() - started
    assert 0.4 <= elapsed < 1.0  # three 0.4 s answers in parallel, not 1.2 s in a row


# --- whole batches ---------------------------------------------------------------------------


def _report(out: Path) -> dict[str, Any]:
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    return report


def _with_gate(repo: Path, dest: Path, gate: str) -> Path:
    """The demo's config with another `[gate]` evaluators line for every task (its workflows
    dropped; cassette paths made absolute)."""
    text = (repo / "cascade.toml").read_text().replace('"cassettes/', f'"{repo}/cassettes/')
    text = without_workflows(text)
    text, found = re.subn(r"(?m)^evaluators = \[.*\]$", f"evaluators = {gate}", text, count=1)
    assert found, "the demo's cascade.toml has no evaluators line"
    dest.write_text(text)
    return dest


def test_demo_backlog_with_the_test_gate_a_shadow_baseline_and_a_regate(tmp_path: Path) -> None:
    """The demo's four issues, gated by pytest: each cheap answer is rejected and each strong one
    verified (DEMO-4's reproduction first, then its fix). A `--shadow strongest` run makes the
    always-strongest baseline computable; a re-gate with a gate that runs no tests flips the
    cheap fixes' verdicts without calling a model."""
    repo = demo_repo(DEMO, tmp_path / "demo")
    config = _with_gate(repo, tmp_path / "pytest.toml", '["pytest"]')
    out = tmp_path / "batch"
    issues = repo / ".cascade" / "issues"
    code, _, err = replay(
        str(issues), "--repo", str(repo), "--config", str(config), "--out", str(out),
        "--concurrency", "3", "--shadow", "strongest",
    )  # fmt: skip
    assert code == 0, err
    assert "4/4 verified" in err and "report:" in err
    report = _report(out)
    assert report["tasks"]["verified"] == 4 and report["tasks"]["not_started"] == []
    assert report["rungs"]["strong"]["verified"] == 4 and report["rungs"]["cheap"]["verified"] == 0
    assert report["escalation_rate"] == 1.0
    # DEMO-4 takes four attempts: a test that passes at base, the accepted one, two fixes.
    assert report["attempts"] == {"total": 10, "per_task_mean": 2.5, "per_task_max": 4,
                                  "per_task_histogram": {"2": 3, "4": 1}}  # fmt: skip
    cost = report["cost"]
    assert cost["per_verified_usd"] == pytest.approx(cost["total_usd"] / 4)
    assert cost["unverified_usd"] == 0 and cost["total_usd"] > 0
    assert report["tokens"]["in"] > 0 and report["time"]["task_p95_s"] > 0
    evaluators = report["failures"]["evaluators"]
    assert evaluators["pytest"]["rejected"] == 4
    assert (evaluators["reproduction"]["ran"], evaluators["reproduction"]["rejected"]) == (2, 1)
    assert set(report["labels"]) == {"bug", "money", "import", "feature", "pricing", "report"}
    baselines = {b["name"]: b for b in report["baselines"]}
    cheap_only = baselines["cheapest rung alone (cheap)"]
    assert cheap_only["available"] and cheap_only["verified"] == 0
    strongest = baselines["always strongest rung (strong)"]
    assert strongest["available"] and strongest["kind"] == "shadow"
    assert strongest["verified"] == 4 and strongest["cost_usd"] < cost["total_usd"]
    assert strongest["cascade_cost_ratio"] > 1  # here the cascade paid for the cheap tries
    md = (out / "report.md").read_text()
    assert "per verified patch" in md and "always strongest rung (strong)" in md
    for row in report["task_rows"]:
        assert verify_run(out / RUNS_DIR / row["run_id"]).ok
    demo4 = next(r for r in report["task_rows"] if r["task"] == "DEMO-4")
    proving = RunFolder(out / RUNS_DIR / demo4["run_id"]).outcome().proving
    assert proving and proving[0].source == "reproduction"

    # The same batch again: everything is finished, nothing runs.
    code, _, err = replay(str(issues), "--repo", str(repo), "--config", str(config),
                          "--out", str(out))  # fmt: skip
    assert code == 0, err
    assert len(list((out / RUNS_DIR).iterdir())) == 4

    # Re-gate with a gate that runs no tests: the four rejected cheap fixes now pass. Only fixes
    # are re-judged (DEMO-4's with its accepted reproduction in place), not the tests before them.
    loose = _with_gate(repo, tmp_path / "loose.toml", '["diff_scope"]')
    code, stdout, err = replay("--regate", str(out), "--config", str(loose))
    assert code == 0, err
    assert "8 recorded patch(es) re-judged" in stdout and "4 newly accepted" in stdout
    regated = json.loads(next((out / "regate").glob("*.json")).read_text())
    assert {(c["rung"], c["before"], c["after"]) for c in regated["changes"]} == {
        ("cheap", "rejected", "accepted")
    }


class Exploding:
    """A model with a bug for one task: it raises something that is not a cascade error."""

    def __init__(self, task_prefix: str, model: Model) -> None:
        self.task_prefix, self.model = task_prefix, model

    async def complete(self, messages: Any, params: CompletionParams) -> Any:
        if params.task_id.startswith(self.task_prefix):
            raise RuntimeError("boom: a bug in an adapter")
        return await self.model.complete(messages, params)


@pytest.mark.anyio
async def test_one_task_exception_is_that_tasks_error_record(tmp_path: Path) -> None:
    b = fast_backlog(tmp_path, copies=1)
    loaded = load_config(b.repo, b.config, {"sandbox.backend": ("local", "test")})
    parts = assemble(loaded)
    models = {n: Exploding("DEMO-2", m) for n, m in parts.models.items()}
    commit = resolve_commit(b.repo)

    header = BatchHeader(backlog=str(b.backlog), repo=str(b.repo),
                         base_commit=resolve_commit(b.repo), ladder=("cheap", "strong"),
                         gate=("diff_scope",))  # fmt: skip
    batch = BatchDir.open(tmp_path / "out", header)
    runner = IssueRunner(dataclasses.replace(parts, models=models), b.repo, commit, batch.runs_dir)
    plan = BatchPlan(issues=load_backlog(b.backlog), repo=b.repo, concurrency=3)
    try:
        result = await BatchRunner(runner, batch, plan).run()
    finally:
        batch.close()
    assert (result.tally.verified, result.tally.errors) == (2, 1)
    state = read_ledger(tmp_path / "out" / LEDGER_FILE)
    failed = state.tasks["DEMO-2-c1"].done
    assert failed is not None and failed.outcome is not None
    assert failed.outcome.status == "error" and "boom" in failed.outcome.error
    # The failed run is sealed too: its folder is a complete proof of the error.
    assert verify_run(tmp_path / "out" / RUNS_DIR / failed.run_id).ok


def test_budget_stops_new_tasks_and_a_rerun_finishes_the_rest(tmp_path: Path) -> None:
    b = fast_backlog(tmp_path, copies=2)
    out = tmp_path / "out"
    code, _, err = replay(*batch_args(b, out, "--max-cost-usd", "0.015"))
    assert code == 1, err
    assert "not started" in err
    report = _report(out)
    assert report["budget"]["stopped"] and "--max-cost-usd" in report["budget"]["notes"][0]
    done = report["tasks"]["total"]
    assert 1 <= done < 6 and len(report["tasks"]["not_started"]) == 6 - done
    assert report["cost"]["total_usd"] >= 0.015  # the task in flight finished
    assert "Stopped by the budget" in (out / "report.md").read_text()

    code, _, err = replay(*batch_args(b, out))
    assert code == 0, err
    report = _report(out)
    assert report["tasks"]["verified"] == 6 and not report["budget"]["stopped"]
    assert len(list((out / RUNS_DIR).iterdir())) == 6  # no finished task ran twice


AUTH_REFUSED = (401, error_body("Incorrect API key provided", "invalid_api_key"), {})
FALLBACK_RUNG = """
[[ladder]]
name = "fallback"
model = "openai/fake-fallback"
api_base = "{base}"
attempts = 1
timeout = 5
input_cost_per_token = 0.0
output_cost_per_token = 0.0
"""


def with_refusing_provider(b: DemoBacklog, fake: FakeOpenAI, task: str) -> None:
    """`task` loses its strong answer, so it alone climbs on to a third rung: a loopback
    provider that refuses the API key (401), a provider auth fault that ends the run in error."""
    entries = [json.loads(line) for line in b.cassette.read_text().splitlines()]
    kept = [e for e in entries if (e["task"], e["model"]) != (task, "replay/demo-strong")]
    assert len(kept) == len(entries) - 1
    b.cassette.write_text("".join(json.dumps(e) + "\n" for e in kept))
    b.config.write_text(b.config.read_text() + FALLBACK_RUNG.format(base=fake.base))


def test_an_infrastructure_error_is_exit_3_and_a_resume_does_not_run_it_again(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    b = fast_backlog(tmp_path, copies=1)
    with_refusing_provider(b, fake_openai, "DEMO-2-c1")
    fake_openai.script.append(AUTH_REFUSED)
    out = tmp_path / "out"
    code, _, err = replay(*batch_args(b, out))
    assert code == 3, err
    assert "2/3 verified, 1 error;" in err
    last = err.rstrip().splitlines()[-1]  # the final line says how many, and what a re-run does
    assert last.startswith("1 task(s) ended in an infrastructure error: 1 in the batch (DEMO-2-c1)")
    assert "--retry-errors" in last
    report = _report(out)
    assert report["tasks"]["error"] == 1
    assert "OPENAI_API_KEY" in report["failures"]["errors"][0]["error"]
    assert any("1 task(s) ended in an infrastructure error" in n for n in report["notes"])

    # A resume runs nothing (the errored task counts as finished) and still exits 3.
    code, _, err = replay(*batch_args(b, out))
    assert code == 3 and "1 task(s) ended in an infrastructure error" in err
    assert len(fake_openai.requests) == 1 and len(list((out / RUNS_DIR).iterdir())) == 3

    # The shadow batch's errors count too: the last rung alone is the refusing provider.
    fake_openai.script += [AUTH_REFUSED] * 3
    code, _, err = replay(*batch_args(b, out, "--shadow", "strongest"))
    assert code == 3, err
    assert (
        "4 task(s) ended in an infrastructure error: 1 in the batch (DEMO-2-c1); 3 in shadow "
        "strongest-fallback (DEMO-1-c1, DEMO-2-c1, DEMO-3-c1)" in err
    )


def test_retry_errors_runs_an_errored_task_again_once_its_cause_is_fixed(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    b = fast_backlog(tmp_path, copies=1)
    whole = b.cassette.read_text()
    with_refusing_provider(b, fake_openai, "DEMO-2-c1")
    fake_openai.script.append(AUTH_REFUSED)
    out = tmp_path / "out"
    code, _, err = replay(*batch_args(b, out))
    assert code == 3, err
    first = _report(out)["cost"]
    errored_cost = first["unverified_usd"]  # the errored task is the only unverified one
    assert errored_cost > 0  # its cheap attempt was paid for

    b.cassette.write_text(whole)  # the cause is fixed: the strong rung has its answer again
    code, _, err = replay(*batch_args(b, out, "--retry-errors"))
    assert code == 0, err
    assert "3/3 verified;" in err and "infrastructure error" not in err
    report = _report(out)
    assert report["tasks"]["verified"] == 3 and report["tasks"]["error"] == 0
    # Only the errored task ran again; its first run stays on record, and in the spend.
    assert len(list((out / RUNS_DIR).iterdir())) == 4
    assert report["tasks"]["aborted_runs"] == 1
    assert len(list((out / RUNS_DIR).glob("*/ABORTED"))) == 1
    assert report["cost"]["aborted_runs_usd"] == pytest.approx(errored_cost)  # still counted
    assert len(fake_openai.requests) == 1  # the refusing provider was not asked again

    code, _, err = replay(*batch_args(b, out, "--retry-errors"))  # nothing left to retry
    assert code == 0 and len(list((out / RUNS_DIR).iterdir())) == 4


def test_an_infrastructure_error_outranks_a_budget_stop(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    b = fast_backlog(tmp_path, copies=1)
    with_refusing_provider(b, fake_openai, "DEMO-1-c1")  # the first task of the backlog
    fake_openai.script.append(AUTH_REFUSED)
    code, _, err = replay(*batch_args(b, tmp_path / "out", "--max-cost-usd", "0.000001"))
    assert code == 3, err
    assert "2 task(s) not started" in err
    assert "1 task(s) ended in an infrastructure error: 1 in the batch (DEMO-1-c1)" in err


def test_a_batch_whose_tasks_all_exhaust_the_ladder_exits_0(tmp_path: Path) -> None:
    """A ladder that runs out without a verified patch is an outcome of the batch, not a failure
    of the command."""
    b = fast_backlog(tmp_path, copies=1)
    b.cassette.write_text("")  # no rung has an answer for any task
    out = tmp_path / "out"
    code, _, err = replay(*batch_args(b, out))
    assert code == 0, err
    assert "0/3 verified, 3 exhausted;" in err and "infrastructure error" not in err
    assert _report(out)["tasks"]["exhausted"] == 3


def test_cassette_flag_replays_a_recorded_file_and_a_changed_ladder_is_refused(
    tmp_path: Path,
) -> None:
    b = fast_backlog(tmp_path, copies=1, issues=())  # every demo issue
    # A replay rung keeps its own model string as the cassette key (`replay/demo-cheap`); the
    # reproduce stage's answers are keyed by role as well, under the copy's id.
    recorded = tmp_path / "recorded.jsonl"
    recorded.write_text(b.cassette.read_text())
    keys = {(e["task"], e["model"], e.get("role", "fix"))
            for e in map(json.loads, recorded.read_text().splitlines())}  # fmt: skip
    assert ("DEMO-4-c1", "replay/demo-strong", "reproduce") in keys
    b.cassette.write_text("")  # the config's own cassette answers nothing now
    out = tmp_path / "out"
    code, _, err = replay(*batch_args(b, out, "--cassette", str(recorded)))
    assert code == 0, err
    report = _report(out)
    assert report["tasks"]["verified"] == 4
    demo4 = next(r for r in report["task_rows"] if r["task"] == "DEMO-4-c1")
    proving = RunFolder(out / RUNS_DIR / demo4["run_id"]).outcome().proving
    assert proving and proving[0].source == "reproduction"
    # Resuming the folder with other models under the same rung names would mix two batches.
    other = tmp_path / "other.toml"
    other.write_text(b.config.read_text().replace("replay/demo-cheap", "replay/other-cheap"))
    code, _, err = replay(str(b.backlog), "--repo", str(b.repo), "--config", str(other),
                          "--out", str(out))  # fmt: skip
    assert code == 2 and "models" in err and "another --out" in err
    code, _, err = replay(*batch_args(b, out, "--cassette", str(recorded), "--record", "x.jsonl"))
    assert code == 2 and "never recorded" in err
