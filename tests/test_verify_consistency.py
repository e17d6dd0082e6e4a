"""verify against a run's own claims: the receipt's status and patch.diff must agree with the
log's verified attempt, and outcome.json with the receipt. Each run is written by the real proof
writer, then tampered with the way an auditor did: thoroughly, so that only the check under test
can notice."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cascade.proof.run_folder import RunFolder
from cascade.proof.summary import render_summary
from cascade.proof.verify import VerifyReport, format_report, verify_run
from cascade.records import Patch, RunOutcome
from tests.test_proof import (
    DIFF,
    LADDER,
    PROOF_TEST,
    PROVING,
    _outcome,
    _seal,
    _write_run,
    edit_statement,
    reseal_files,
)

OTHER_DIFF = DIFF.replace("+x = 2", "+x = 2  # and a backdoor")
DIFF_SHA = hashlib.sha256(DIFF.encode()).hexdigest()
OTHER_SHA = hashlib.sha256(OTHER_DIFF.encode()).hexdigest()


def _verified_run(tmp_path: Path) -> Path:
    log, attempts = _write_run(tmp_path / "runs")
    _seal(log, attempts)
    return log.run_dir


def _stopped_run(tmp_path: Path, status: str, last: str = "rejected") -> Path:
    log, attempts = _write_run(tmp_path / "runs", last=last)
    outcome = _outcome(log).model_copy(
        update={
            "status": status,
            "verified_rung": "",
            "patch_sha256": "",
            "proving": (),
            "fix_model": "",
        }
    )
    log.seal(outcome, attempts, None, "x should be 2", LADDER)
    return log.run_dir


def _edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """The receipt: its Statement, re-encoded in the (unsigned) envelope. Another sealed file:
    edited, and its digest in the receipt re-sealed."""
    if path.name == "receipt.intoto.json":
        edit_statement(path.parent, change)
        return
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))
    if path.name == "outcome.json":
        _rerender_summary(path.parent)
    reseal_files(path.parent)


def _rerender_summary(run_dir: Path) -> None:
    """A thorough forger keeps summary.md telling the edited outcome's story too (it is rendered
    from the outcome and the records), so only the check under test can notice."""
    try:
        outcome = RunOutcome.model_validate_json((run_dir / "outcome.json").read_text())
    except ValidationError:
        return  # not an outcome any more: the outcome check names that
    attempts = list(RunFolder(run_dir).attempts())
    text = render_summary(outcome, attempts, "x should be 2", LADDER)
    (run_dir / "summary.md").write_text(text)


def _relabel(run_dir: Path, status: str, patch_sha: str) -> None:
    """Set the status and the patch digest in both the receipt and outcome.json."""

    def receipt(data: dict[str, Any]) -> None:
        data["predicate"]["status"] = status
        data["subject"] = [s for s in data["subject"] if s["name"] != "patch.diff"]
        if patch_sha:
            data["subject"].insert(0, {"name": "patch.diff", "digest": {"sha256": patch_sha}})

    def outcome(data: dict[str, Any]) -> None:
        data["status"] = status
        data["patch_sha256"] = patch_sha

    _edit(run_dir / "receipt.intoto.json", receipt)
    _edit(run_dir / "outcome.json", outcome)


def _only_problem(run_dir: Path, expected: str) -> VerifyReport:
    report = verify_run(run_dir)
    assert not report.ok
    assert report.problems == [expected], format_report(report)
    return report


def test_an_intact_verified_and_an_intact_exhausted_run_verify(tmp_path: Path) -> None:
    for run_dir in (_verified_run(tmp_path / "v"), _stopped_run(tmp_path / "x", "exhausted")):
        report = verify_run(run_dir)
        assert report.ok, format_report(report)


def test_an_error_after_verifying_is_an_honest_run(tmp_path: Path) -> None:
    # The run can break after its verified attempt (closing the sandbox): sealed as an error,
    # without a patch. That log and that receipt agree.
    report = verify_run(_stopped_run(tmp_path, "error", last="verified"))
    assert report.ok, format_report(report)


def test_a_replaced_patch_is_not_the_verified_attempts(tmp_path: Path) -> None:
    run_dir = _verified_run(tmp_path)
    (run_dir / "patch.diff").write_text(OTHER_DIFF)
    _relabel(run_dir, "verified", OTHER_SHA)
    _only_problem(
        run_dir,
        f"patch.diff (sha256 {OTHER_SHA}) is not the patch of the verified attempt: "
        f"attempts.jsonl line 3 (seq 3) has patch_sha256 {DIFF_SHA}",
    )


def test_an_exhausted_run_relabelled_verified_is_caught(tmp_path: Path) -> None:
    run_dir = _stopped_run(tmp_path, "exhausted")
    (run_dir / "patch.diff").write_text(OTHER_DIFF)
    _relabel(run_dir, "verified", OTHER_SHA)
    _only_problem(
        run_dir,
        "receipt.intoto.json says verified, but the last attempt, "
        "attempts.jsonl line 3 (seq 3), is 'rejected'",
    )


def test_a_verified_run_relabelled_exhausted_is_caught(tmp_path: Path) -> None:
    run_dir = _verified_run(tmp_path)
    (run_dir / "patch.diff").unlink()
    _relabel(run_dir, "exhausted", "")
    _only_problem(
        run_dir, "receipt.intoto.json says exhausted, but attempts.jsonl line 3 (seq 3) verified"
    )


def test_an_unknown_status_is_named(tmp_path: Path) -> None:
    run_dir = _stopped_run(tmp_path, "exhausted")
    _relabel(run_dir, "solved", "")
    _only_problem(run_dir, "receipt.intoto.json: status 'solved' is not a run status")


def test_a_patch_on_a_run_that_did_not_verify_is_named(tmp_path: Path) -> None:
    run_dir = _stopped_run(tmp_path, "exhausted")
    (run_dir / "patch.diff").write_text(DIFF)
    _relabel(run_dir, "exhausted", DIFF_SHA)
    _only_problem(
        run_dir,
        "receipt.intoto.json names a patch.diff subject, but its status is 'exhausted' "
        "(only a verified run ships a patch)",
    )


def test_outcome_json_must_tell_the_receipts_story(tmp_path: Path) -> None:
    run_dir = _verified_run(tmp_path)
    outcome = run_dir / "outcome.json"
    original = outcome.read_text()
    _edit(outcome, lambda data: data.update(status="exhausted"))
    _only_problem(run_dir, "outcome.json says status 'exhausted', the receipt 'verified'")

    outcome.write_text(original)
    _edit(outcome, lambda data: data.update(patch_sha256=OTHER_SHA))
    _only_problem(
        run_dir,
        f"outcome.json names patch_sha256 {OTHER_SHA}, but patch.diff has sha256 {DIFF_SHA}",
    )

    outcome.unlink()
    _only_problem(run_dir, "outcome.json is missing; the receipt seals the run")


def _forged_run(tmp_path: Path, **claims: Any) -> Path:
    """A verified run whose verified attempt claims `claims` (proving, baseline...), written and
    sealed consistently by the real writer: only the proof check can tell."""
    log, attempts = _write_run(tmp_path / "runs")
    last = attempts[2].model_copy(update=claims)
    attempts = [*attempts[:2], last]
    # Rewrite the log from scratch with the forged record: the chain itself is intact.
    (log.run_dir / "attempts.jsonl").write_text("")
    fresh = type(log)(log.run_id, log.run_dir)
    for attempt in attempts:
        fresh.append(attempt)
    outcome = _outcome(fresh).model_copy(update={"proving": last.proving})
    patch = Patch(diff=DIFF, sha256=DIFF_SHA, files=("m.py",))
    fresh.seal(outcome, attempts, patch, "x should be 2", LADDER)
    return fresh.run_dir


def test_a_verified_attempt_that_names_no_proving_test_is_not_proof(tmp_path: Path) -> None:
    # The DEMO-9 forgery: everything consistent, nothing proves the patch.
    run_dir = _forged_run(tmp_path, proving=())
    _only_problem(
        run_dir,
        "attempts.jsonl line 3 (seq 3) is verified but names no proving test (one that fails "
        "at the base commit and passes with the patch)",
    )


def test_a_proving_test_that_passed_at_base_is_caught(tmp_path: Path) -> None:
    claim = PROVING[0].model_copy(update={"base": "passed"})
    run_dir = _forged_run(tmp_path, proving=(claim,))
    _only_problem(
        run_dir,
        f"attempts.jsonl line 3 (seq 3): proving test {PROOF_TEST} claims 'passed' at the base "
        f"commit; the recorded base outcomes say {PROVING[0].base!r}",
    )


def test_a_proving_test_the_gate_did_not_pass_is_caught(tmp_path: Path) -> None:
    claim = PROVING[0].model_copy(update={"test": "tests/test_m.py::test_other"})
    run_dir = _forged_run(tmp_path, proving=(claim,))
    report = verify_run(run_dir)
    assert not report.ok
    assert any("the gate's verdicts say 'nothing'" in p for p in report.problems)


def test_a_receipt_that_claims_other_proof_is_caught(tmp_path: Path) -> None:
    run_dir = _verified_run(tmp_path)
    _edit(
        run_dir / "receipt.intoto.json",
        lambda data: data["predicate"].update(fix_model="someone/else"),
    )
    _only_problem(
        run_dir,
        "receipt.intoto.json: its proving tests or fix model differ from the verified attempt's",
    )


# -- issue 15: every claim of the seal re-derived from the chain ----------------------------------


def _claims_problems(run_dir: Path) -> list[str]:
    report = verify_run(run_dir)
    assert not report.ok
    return report.problems


def test_a_receipt_naming_another_base_commit_rung_or_task_is_caught(tmp_path: Path) -> None:
    run_dir = _verified_run(tmp_path)
    base = json.loads((run_dir / "outcome.json").read_text())["base_commit"]

    def forge(data: dict[str, Any]) -> None:
        data["subject"] = [
            {**s, "digest": {"gitCommit": "b" * 40}} if s["name"] == "base-commit" else s
            for s in data["subject"]
        ]
        data["predicate"].update(verified_rung="cheap", task_id="ISSUE-8")

    _edit(run_dir / "receipt.intoto.json", forge)
    assert _claims_problems(run_dir) == [
        "receipt.intoto.json: predicate.verified_rung is 'cheap'; the attempts say 'strong'",
        "receipt.intoto.json: predicate.task_id is 'ISSUE-8'; the attempts say 'ISSUE-7'",
        f"receipt.intoto.json: subject base-commit is '{'b' * 40}'; the attempts were judged "
        f"at '{base}'",
    ]


def test_a_fake_passed_evaluator_in_the_receipt_is_caught(tmp_path: Path) -> None:
    run_dir = _verified_run(tmp_path)

    def forge(data: dict[str, Any]) -> None:
        gate = data["predicate"]["gate"]
        gate["passedTests"].append("security_review")
        gate["evaluators"].append({"name": "security_review", "predicate": {"result": "PASSED"}})

    _edit(run_dir / "receipt.intoto.json", forge)
    assert _claims_problems(run_dir) == [
        "receipt.intoto.json: predicate.gate is not the gate's verdicts of the last fix "
        "attempt in the log"
    ]


def test_an_outcome_with_another_cost_rung_or_base_is_caught(tmp_path: Path) -> None:
    # A thorough forger: outcome.json edited, summary.md redrawn from it, digests re-sealed.
    run_dir = _verified_run(tmp_path)
    base = json.loads((run_dir / "outcome.json").read_text())["base_commit"]
    forged = {"cost_usd": 0.0001, "verified_rung": "cheap", "base_commit": "c" * 40}
    _edit(run_dir / "outcome.json", lambda data: data.update(forged))
    assert _claims_problems(run_dir) == [
        "outcome.json: cost_usd is 0.0001; the attempts say 0.006",
        "outcome.json: verified_rung is 'cheap'; the attempts say 'strong'",
        f"outcome.json: base_commit is '{'c' * 40}'; the attempts say '{base}'",
    ]


def test_a_summary_that_says_what_the_log_does_not_is_caught(tmp_path: Path) -> None:
    run_dir = _verified_run(tmp_path)
    summary = run_dir / "summary.md"
    summary.write_text(summary.read_text().replace("| 2 | mid |", "| 2 | cheap |"))
    reseal_files(run_dir)
    (problem,) = _claims_problems(run_dir)
    assert problem.startswith("summary.md line ") and "is not what the log says" in problem
