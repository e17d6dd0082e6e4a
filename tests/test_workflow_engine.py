"""Workflows through the real engine, on the bundled demo in Docker: the task's workflow is chosen
before any model and runs its own gate; a verified patch of a `review = "human"` workflow ends
`needs_review`; a patch that touches a stricter workflow's paths is judged by that workflow's gate
and review (raised, never lowered), and the records, outcome, receipt and summary say so."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cascade.proof.log import canonical_json
from cascade.proof.run_folder import RECEIPT_FILE, RunFolder
from cascade.proof.signing import envelope
from cascade.testing.repos import git

CASCADE = str(Path(sys.executable).parent / "cascade")
pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker_engine")]


def _fix(repo: Path, issue: str) -> tuple[int, dict[str, object], str]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc = subprocess.run(
        [CASCADE, "fix", issue, "--repo", str(repo), "--json"],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    return proc.returncode, json.loads(proc.stdout or "{}"), proc.stderr


def _records(run_dir: str) -> list[dict[str, object]]:
    lines = (Path(run_dir) / "attempts.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def _verdicts(record: dict[str, object]) -> dict[str, bool]:
    return {v["evaluator"]: v["passed"] for v in record["verdicts"]}  # type: ignore[attr-defined, index]


def _reexecute(run_dir: str, repo: Path) -> subprocess.CompletedProcess[str]:
    """`proof verify --reexecute`: every recorded patch judged again, no model called."""
    return subprocess.run(
        [CASCADE, "proof", "verify", run_dir, "--reexecute", "--repo", str(repo)],
        capture_output=True, text=True, check=False,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    )  # fmt: skip


def _verify(run_dir: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CASCADE, "proof", "verify", run_dir], capture_output=True, text=True, check=False
    )


def test_a_money_labelled_issue_runs_the_stricter_gate_and_ends_needing_review(
    demo: Path,
) -> None:
    code, outcome, err = _fix(demo, "DEMO-1")
    assert code == 0, err
    assert outcome["status"] == "verified" and outcome["workflow"] == "money"
    assert outcome["needs_review"] is True
    assert outcome["reviewers"] == ["invoicekit/maintainers"]
    assert "workflow 'money' asks for a person's review" in str(outcome["review_why"])
    first, won = _records(str(outcome["run_dir"]))
    # Decided first, logged on the first attempt: which workflow, what matched, what was passed
    # over, and the path in decision order.
    choice = first["decision"]["workflow"]  # type: ignore[index]
    assert choice["name"] == "money" and choice["matched"] == ["label money"]
    assert choice["gate"] == ["diff_scope", "ruff", "mypy", "pytest", "coverage"]
    assert choice["review"] == "human"
    assert "workflow 'money' (label money)" in err
    # The money workflow's gate judged the patch: coverage ran (the default gate has none).
    assert _verdicts(won) == dict.fromkeys(
        ("diff_scope", "ruff", "mypy", "pytest", "coverage"), True
    )
    assert won["policy"]["review"] == "human"  # type: ignore[index]
    summary = (Path(str(outcome["run_dir"])) / "summary.md").read_text()
    assert "money" in summary
    verified = _verify(str(outcome["run_dir"]))
    assert verified.returncode == 0, verified.stdout + verified.stderr


DOCS_ISSUE = """---
id: {id}
title: "README.md: the example of a negative amount is wrong"
labels: [docs]
hidden_tests:
  - tests/test_hidden_refund.py::test_a_refund_prints_its_sign_first
---

README.md shows a refund printed as `$-1.50`; it should read `-$1.50`.
"""


HIDDEN = """from invoicekit.money import format_money


def test_a_refund_prints_its_sign_first() -> None:
    assert format_money(-150) == "-$1.50"
"""


def _docs_task(demo: Path, issue: str, answer_of: tuple[str, str]) -> None:
    """An issue that names only README.md (so the `docs` workflow is its: diff_scope alone,
    no ceiling above cheap), answered on the cheap rung with the demo's answer `answer_of`
    (task, model) — an edit of invoicekit/money.py, a path of the stricter `money` workflow."""
    (demo / ".cascade" / "issues" / f"{issue}.md").write_text(DOCS_ISSUE.format(id=issue))
    hidden = demo / ".cascade" / "hidden" / "tests" / "test_hidden_refund.py"
    hidden.parent.mkdir(parents=True, exist_ok=True)
    hidden.write_text(HIDDEN)
    cassette = demo / "cassettes" / "demo.jsonl"
    lines = [json.loads(line) for line in cassette.read_text().splitlines() if line.strip()]
    task, model = answer_of
    answer = next(x for x in lines if (x["task"], x["model"]) == (task, model))
    line = {**answer, "task": issue, "model": "replay/demo-cheap", "attempt": 1}
    with cassette.open("a") as out:
        out.write(json.dumps(line) + "\n")
    git(demo, "add", "-A")
    git(demo, "commit", "-q", "-m", f"add {issue}")


def test_a_docs_task_whose_patch_edits_money_code_is_judged_by_the_money_workflow(
    demo: Path,
) -> None:
    # Right answer: the docs gate alone has no test run, so nothing could prove it; raised to
    # the money workflow, pytest and coverage judge it, the hidden test proves it, and it is
    # held for a person's review.
    _docs_task(demo, "DEMO-5", ("DEMO-1", "replay/demo-strong"))
    # Wrong answer (the cheap rung's for DEMO-1): under the docs gate it would pass diff_scope;
    # the money workflow's pytest rejects it.
    _docs_task(demo, "DEMO-6", ("DEMO-1", "replay/demo-cheap"))

    code, outcome, err = _fix(demo, "DEMO-5")
    assert code == 0, err
    assert outcome["workflow"] == "docs"
    assert outcome["status"] == "verified" and outcome["needs_review"] is True
    assert "raised by workflow 'money'" in str(outcome["review_why"])
    (only,) = _records(str(outcome["run_dir"]))
    assert only["decision"]["workflow"]["name"] == "docs"  # type: ignore[index]
    assert only["decision"]["workflow"]["gate"] == ["diff_scope"]  # type: ignore[index]
    assert set(_verdicts(only)) == {"diff_scope", "ruff", "mypy", "pytest", "coverage"}
    policy = only["policy"]
    assert policy["workflow"] == "docs" and policy["raised_by"] == ["money"]  # type: ignore[index]
    assert "invoicekit/money.py" in policy["why"][0]  # type: ignore[index]
    proving = only["proving"][0]  # type: ignore[index]
    assert proving["test"] == "tests/test_hidden_refund.py::test_a_refund_prints_its_sign_first"
    assert _verify(str(outcome["run_dir"])).returncode == 0
    # Re-executed, the patch is judged by the gate its record names — docs raised by money —
    # rebuilt from the configuration, and the digests agree.
    again = _reexecute(str(outcome["run_dir"]), demo)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "the gate is configured as when the patches were judged" in again.stdout

    code, outcome, err = _fix(demo, "DEMO-6")
    assert code == 1, err
    assert outcome["workflow"] == "docs" and outcome["status"] == "exhausted"
    (only,) = _records(str(outcome["run_dir"]))  # docs never climbs above cheap
    assert _verdicts(only)["pytest"] is False
    assert only["policy"]["raised_by"] == ["money"]  # type: ignore[index]


def test_receipt_and_folder_survive_verify_and_a_forged_review_flag_is_caught(
    demo: Path,
) -> None:
    code, outcome, err = _fix(demo, "DEMO-1")
    assert code == 0, err
    run = Path(str(outcome["run_dir"]))
    told = json.loads((run / "outcome.json").read_text())
    told["needs_review"] = False  # someone "approves" by editing the sealed outcome
    (run / "outcome.json").write_text(json.dumps(told, indent=2))
    checked = _verify(str(run))
    assert checked.returncode != 0
    assert "needs_review" in checked.stdout + checked.stderr
    assert RunFolder(run).sealed
    (run / "outcome.json").write_text(json.dumps({**told, "needs_review": True}, indent=2))
    assert _verify(str(run)).returncode == 0  # back as sealed (the same bytes)
    # An unsigned receipt rewritten without the review claims, its outcome.json's digest kept:
    # a run that chose a workflow must state them.
    receipt = run / RECEIPT_FILE
    sealed = json.loads(receipt.read_text())
    statement = json.loads(base64.b64decode(sealed["payload"]))
    for key in ("needs_review", "reviewers", "apply", "workflow", "route"):
        del statement["predicate"][key]
    receipt.write_bytes(canonical_json(envelope(canonical_json(statement), None)) + b"\n")
    quiet = _verify(str(run))
    assert quiet.returncode != 0
    assert "predicate lacks workflow, route, needs_review, reviewers, apply" in quiet.stdout


REVIEWED = """
[[workflows]]
name = "reviewed"
match = { labels = ["pricing"] }
review = "model"
review_rung = "strong"
"""


def _review_line(issue: str, seq: int, verdict: str, reasons: list[str]) -> str:
    answer = {"verdict": verdict, "reasons": reasons}
    content = "I read the diff against the issue.\n\n```json\n" + json.dumps(answer) + "\n```\n"
    line = {
        "task": issue, "model": "replay/demo-strong", "attempt": seq, "role": "review",
        "content": content, "usage": {"prompt_tokens": 900, "completion_tokens": 60},
    }  # fmt: skip
    return json.dumps(line) + "\n"


@pytest.mark.parametrize(
    ("verdict", "status", "code"), [("approve", "verified", 0), ("concerns", "exhausted", 1)]
)
def test_a_model_review_is_one_more_blocking_check(
    demo: Path, verdict: str, status: str, code: int
) -> None:
    config = demo / "cascade.toml"
    config.write_text(config.read_text() + REVIEWED)
    with (demo / "cassettes" / "demo.jsonl").open("a") as out:  # DEMO-3 verifies on attempt #2
        out.write(_review_line("DEMO-3", 2, verdict, ["instalments(0, 3) is never handled"]))
    git(demo, "commit", "-qam", "a reviewed workflow")
    got, outcome, err = _fix(demo, "DEMO-3")
    assert got == code, err
    assert outcome["status"] == status and outcome["workflow"] == "reviewed"
    assert outcome["needs_review"] is False
    records = _records(str(outcome["run_dir"]))
    reviewed = records[-1]
    assert _verdicts(reviewed)["llm_review"] is (verdict == "approve")
    assert reviewed["policy"]["review"] == "model"  # type: ignore[index]
    # The review is paid for with the attempt: 900 in, 60 out at the strong rung's prices.
    review_usd = 900 * 0.0000025 + 60 * 0.00001
    assert reviewed["cost_usd"] >= review_usd  # type: ignore[operator]
    if verdict == "concerns":
        assert "instalments(0, 3) is never handled" in str(reviewed["feedback"])
    assert _verify(str(outcome["run_dir"])).returncode == 0
    # Re-executed, the gate's own verdicts are compared (no model is called, so no review):
    # a patch only the reviewer turned down is not a changed verdict.
    again = _reexecute(str(outcome["run_dir"]), demo)
    assert again.returncode == 0, again.stdout + again.stderr


HELD_TESTS = """
[[workflows]]
name = "report-tests"
match = { touches = ["tests/test_report*.py"] }
review = "human"
"""


def test_the_reproduction_a_patch_ships_with_is_held_to_the_workflow_of_its_paths(
    demo: Path,
) -> None:
    # DEMO-4 names no test: its reproduction (tests/test_report_currency.py) ships in the patch.
    config = demo / "cascade.toml"
    config.write_text(config.read_text() + HELD_TESTS)
    git(demo, "commit", "-qam", "hold report tests for review")
    code, outcome, err = _fix(demo, "DEMO-4")
    assert code == 0, err
    assert outcome["status"] == "verified" and outcome["workflow"] == "default"
    assert outcome["needs_review"] is True
    assert "tests/test_report_currency.py" in str(outcome["review_why"])
    patch = (Path(str(outcome["run_dir"])) / "patch.diff").read_text()
    assert "tests/test_report_currency.py" in patch
