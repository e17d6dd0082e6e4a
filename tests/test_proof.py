"""The proof log: write a run, seal it, verify it; then break it one way at a time and check
that verify names what broke."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from cascade.errors import UsageError
from cascade.proof.log import (
    GENESIS,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    TEST_RESULT_TYPE,
    ProofLog,
    canonical_json,
    gate_result,
    new_run_id,
)
from cascade.proof.signing import Signer
from cascade.proof.summary import render_summary
from cascade.proof.verify import VerifyReport, format_report, verify_run
from cascade.records import Attempt, Finding, Patch, ProvingTest, RunOutcome, Usage, Verdict

BASE = "a" * 40
DIFF = "diff --git a/m.py b/m.py\n--- a/m.py\n+++ b/m.py\n@@ -1 +1 @@\n-x = 1\n+x = 2\n"
LADDER = ("cheap", "mid", "strong")


def _attempt(log: ProofLog, seq: int, rung: str, status: str, **extra: object) -> Attempt:
    fields: dict[str, object] = {
        "run_id": log.run_id,
        "task_id": "ISSUE-7",
        "seq": seq,
        "rung": rung,
        "model": f"provider/{rung}-model",
        "attempt": 1,
        "status": status,
        "usage": Usage(prompt_tokens=900 * seq, completion_tokens=250),
        "cost_usd": 0.001 * seq,
        "duration_s": 2.5 * seq,
        "prompt_sha256": log.put_blob(f"prompt {seq}"),
        "response_sha256": log.put_blob(f"response {seq}"),
        "base_commit": BASE,
    }
    fields.update(extra)
    return Attempt.model_validate(fields)


PROOF_TEST = "tests/test_m.py::test_x"
PROVING = (
    ProvingTest(test=PROOF_TEST, source="issue", base="failed: AssertionError: assert 1 == 2"),
)


def _write_run(
    runs: Path, last: str = "verified", signer: Signer | None = None
) -> tuple[ProofLog, list[Attempt]]:
    """Three attempts; the third gated with status `last` (its pytest passes only if verified,
    and then the issue's test, failing at base, proves it). `signer` signs the receipt."""
    log = ProofLog.create(runs, "run-1", signer)
    patch_sha = log.put_blob(DIFF)
    base_sha = log.put_blob(json.dumps({PROOF_TEST: PROVING[0].base}, sort_keys=True, indent=1))
    verified = last == "verified"
    log_sha = log.put_blob("FAILED tests/test_m.py::test_x - assert 1 == 2\n")
    attempts = [
        _attempt(
            log,
            1,
            "cheap",
            "rejected",
            patch_sha256=patch_sha,
            reason="start on the cheapest rung",
            verdicts=(
                Verdict(evaluator="ruff", passed=True),
                Verdict(
                    evaluator="pytest",
                    passed=False,
                    feedback="test_x failed: a | b\nsecond line",
                    artifacts={"log": log_sha},
                ),
            ),
            feedback="test_x failed: a | b\nsecond line",
        ),
        _attempt(log, 2, "mid", "edit_error", reason="cheap failed", error="no SEARCH match"),
        _attempt(
            log,
            3,
            "strong",
            last,
            patch_sha256=patch_sha,
            verdicts=(
                Verdict(
                    evaluator="pytest",
                    passed=verified,
                    tests={PROOF_TEST: "passed" if verified else "failed: AssertionError"},
                ),
            ),
            proving=PROVING if verified else (),
            baseline_sha256=base_sha,
        ),
    ]
    for attempt in attempts:
        log.append(attempt)
    return log, attempts


def _outcome(log: ProofLog) -> RunOutcome:
    return RunOutcome(
        run_id=log.run_id,
        task_id="ISSUE-7",
        status="verified",
        run_dir=str(log.run_dir),
        base_commit=BASE,
        attempts=3,
        cost_usd=0.006,
        duration_s=15.0,
        patch_sha256=hashlib.sha256(DIFF.encode()).hexdigest(),
        verified_rung="strong",
        proving=PROVING,
        fix_model="provider/strong-model",
    )


def _seal(log: ProofLog, attempts: list[Attempt]) -> None:
    patch = Patch(diff=DIFF, sha256=hashlib.sha256(DIFF.encode()).hexdigest(), files=("m.py",))
    log.seal(_outcome(log), attempts, patch, "x should be 2", LADDER)


@pytest.fixture
def sealed(tmp_path: Path) -> Path:
    log, attempts = _write_run(tmp_path / "runs")
    _seal(log, attempts)
    return log.run_dir


def _failing(run_dir: Path, *needles: str) -> VerifyReport:
    report = verify_run(run_dir)
    assert not report.ok
    text = "\n".join(report.problems)
    for needle in needles:
        assert needle in text, format_report(report)
    return report


def statement(run_dir: Path) -> dict[str, Any]:
    """The in-toto Statement inside the receipt's DSSE envelope."""
    envelope = json.loads((run_dir / "receipt.intoto.json").read_bytes())
    return json.loads(base64.b64decode(envelope["payload"]))


def edit_statement(run_dir: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Change the receipt's Statement and encode it again, as anyone can with standard tools;
    the envelope's signatures stay as they were (none, for an unsigned run)."""
    path = run_dir / "receipt.intoto.json"
    envelope = json.loads(path.read_bytes())
    data = statement(run_dir)
    change(data)
    envelope["payload"] = base64.b64encode(rfc8785.dumps(data)).decode()
    path.write_bytes(rfc8785.dumps(envelope) + b"\n")


def reseal_files(run_dir: Path) -> None:
    """Put the digests of outcome.json and summary.md as they are now into the receipt."""

    def change(data: dict[str, Any]) -> None:
        for entry in data["predicate"]["sealed_files"]:
            path = run_dir / entry["name"]
            if path.exists():
                entry["digest"] = {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()}

    edit_statement(run_dir, change)


def _lines(run_dir: Path) -> list[bytes]:
    return (run_dir / "attempts.jsonl").read_bytes().splitlines(keepends=True)


def _write_lines(run_dir: Path, lines: list[bytes]) -> None:
    (run_dir / "attempts.jsonl").write_bytes(b"".join(lines))


def test_a_sealed_run_verifies(sealed: Path) -> None:
    report = verify_run(sealed)
    assert report.ok, format_report(report)
    assert report.records == 3
    assert report.blobs == 9  # 3 prompts, 3 responses, the patch, the pytest log, base outcomes
    assert format_report(report).startswith("OK ")
    assert (sealed / "patch.diff").read_text() == DIFF
    outcome = RunOutcome.model_validate_json((sealed / "outcome.json").read_text())
    assert outcome.status == "verified"


def test_records_are_chained(sealed: Path) -> None:
    lines = [json.loads(raw) for raw in _lines(sealed)]
    assert lines[0]["prev"] == GENESIS
    for before, after in itertools.pairwise(lines):
        assert after["prev"] == before["sha256"]
    body = {k: v for k, v in lines[1].items() if k != "sha256"}
    assert hashlib.sha256(canonical_json(body)).hexdigest() == lines[1]["sha256"]


def test_flipping_a_field_in_line_2_is_named(sealed: Path) -> None:
    lines = _lines(sealed)
    lines[1] = lines[1].replace(b'"rung":"mid"', b'"rung":"mie"')
    _write_lines(sealed, lines)
    _failing(sealed, "attempts.jsonl line 2 (seq 2): content does not match its sha256")


def test_flipping_any_byte_of_line_2_is_caught(sealed: Path) -> None:
    original = _lines(sealed)
    for index in range(len(original[1]) - 1):  # every byte but the newline
        line = bytearray(original[1])
        line[index] ^= 0x01
        _write_lines(sealed, [original[0], bytes(line), original[2]])
        _failing(sealed, "attempts.jsonl line 2")


def test_flipping_a_byte_of_a_blob_is_named(sealed: Path) -> None:
    digest = hashlib.sha256(b"response 2").hexdigest()
    blob = sealed / "blobs" / digest
    data = bytearray(blob.read_bytes())
    data[0] ^= 0x01
    blob.write_bytes(bytes(data))
    _failing(
        sealed,
        f"blobs/{digest}: content does not match its name",
        f"attempts.jsonl line 2 (seq 2): response_sha256 {digest}",
    )


def test_deleting_the_last_line_is_caught(sealed: Path) -> None:
    _write_lines(sealed, _lines(sealed)[:-1])
    _failing(sealed, "seals 3 record(s)", "has 2", "lists seq 3")


def test_deleting_a_middle_line_is_caught(sealed: Path) -> None:
    lines = _lines(sealed)
    _write_lines(sealed, [lines[0], lines[2]])
    _failing(sealed, "attempts.jsonl line 2 (seq 3): prev does not match the sha256 of line 1")


def test_deleting_a_blob_is_named(sealed: Path) -> None:
    digest = hashlib.sha256(b"prompt 3").hexdigest()
    (sealed / "blobs" / digest).unlink()
    _failing(sealed, f"attempts.jsonl line 3 (seq 3): prompt_sha256 {digest}")


def test_deleting_an_evaluator_log_is_named(sealed: Path) -> None:
    line = json.loads(_lines(sealed)[0])
    digest = line["verdicts"][1]["artifacts"]["log"]
    (sealed / "blobs" / digest).unlink()
    _failing(sealed, f"line 1 (seq 1): verdict pytest artifact log {digest}")


def test_changing_patch_diff_is_caught(sealed: Path) -> None:
    (sealed / "patch.diff").write_text(DIFF.replace("x = 2", "x = 3"))
    _failing(sealed, "patch.diff does not match the receipt's subject digest")


def test_an_unsealed_run_is_reported(tmp_path: Path) -> None:
    log, _ = _write_run(tmp_path)
    report = _failing(log.run_dir, "run was not sealed")
    assert report.records == 3
    assert len(report.problems) == 1


def test_a_torn_last_line_is_named(sealed: Path) -> None:
    with (sealed / "attempts.jsonl").open("ab") as handle:
        handle.write(b'{"seq":4,"rung":"str')
    _failing(sealed, "attempts.jsonl line 4: torn last line")


def test_appending_after_sealing_is_caught(sealed: Path) -> None:
    lines = _lines(sealed)
    _write_lines(sealed, [*lines, lines[-1]])
    _failing(sealed, "line 4 (seq 3): not in the receipt")


def test_put_blob_is_idempotent(tmp_path: Path) -> None:
    log = ProofLog.create(tmp_path)
    digest = log.put_blob("hello")
    path = log.run_dir / "blobs" / digest
    stamp = path.stat().st_mtime_ns
    assert log.put_blob(b"hello") == digest == hashlib.sha256(b"hello").hexdigest()
    assert path.stat().st_mtime_ns == stamp
    assert [p.name for p in (log.run_dir / "blobs").iterdir()] == [digest]


def test_append_writes_before_returning(tmp_path: Path) -> None:
    log = ProofLog.create(tmp_path)
    attempt = _attempt(log, 1, "cheap", "rejected")
    digest = log.append(attempt)
    lines = _lines(log.run_dir)
    assert len(lines) == 1
    assert lines[0].endswith(b"\n")
    line = json.loads(lines[0])
    assert line["sha256"] == digest
    assert line["prev"] == GENESIS
    assert Attempt.model_validate({k: v for k, v in line.items() if k not in ("prev", "sha256")})
    assert log.append(_attempt(log, 2, "mid", "rejected")) != digest
    assert json.loads(_lines(log.run_dir)[1])["prev"] == digest


def test_the_receipt_is_an_in_toto_statement(sealed: Path) -> None:
    receipt = statement(sealed)
    assert receipt["_type"] == STATEMENT_TYPE == "https://in-toto.io/Statement/v1"
    assert receipt["predicateType"] == PREDICATE_TYPE
    assert receipt["subject"] == [
        {"name": "patch.diff", "digest": {"sha256": hashlib.sha256(DIFF.encode()).hexdigest()}},
        {"name": "base-commit", "digest": {"gitCommit": BASE}},
    ]
    predicate = receipt["predicate"]
    lines = [json.loads(raw) for raw in _lines(sealed)]
    assert predicate["status"] == "verified"
    assert predicate["task_id"] == "ISSUE-7"
    assert predicate["base_commit"] == BASE
    assert predicate["ladder"] == list(LADDER)
    assert predicate["cost_usd"] == 0.006
    assert predicate["attempt_count"] == 3
    assert predicate["chain_head"] == lines[-1]["sha256"]
    assert [a["sha256"] for a in predicate["attempts"]] == [line["sha256"] for line in lines]
    assert predicate["attempts"][0] == {
        "seq": 1,
        "rung": "cheap",
        "model": "provider/cheap-model",
        "status": "rejected",
        "sha256": lines[0]["sha256"],
    }
    assert predicate["gate"]["result"] == "pass"
    assert predicate["gate"]["evaluators"] == [
        {
            "name": "pytest",
            "predicateType": TEST_RESULT_TYPE,
            "predicate": {
                "result": "PASSED",
                "configuration": [],
                "passedTests": ["pytest"],
                "warnedTests": [],
                "failedTests": [],
            },
        }
    ]


def test_each_evaluator_gets_a_test_result_predicate() -> None:
    failed = Verdict(
        evaluator="ruff",
        passed=False,
        findings=(Finding(message="unused import", path="a.py", line=3, rule="F401"),),
        artifacts={"ruff.sarif.json": "f" * 64},
    )
    attempt = Attempt(
        run_id="r", task_id="t", seq=1, rung="cheap", model="m", attempt=1, status="rejected",
        verdicts=(Verdict(evaluator="diff_scope", passed=True), failed),
    )  # fmt: skip
    gate = gate_result([attempt])
    assert gate["result"] == "fail" and gate["failedTests"] == ["ruff"]
    ruff = gate["evaluators"][1]["predicate"]
    assert ruff["result"] == "FAILED"
    assert ruff["failedTests"] == ["a.py:3: F401: unused import"]
    assert ruff["configuration"] == [{"name": "ruff.sarif.json", "digest": {"sha256": "f" * 64}}]


def test_an_exhausted_run_has_no_patch(tmp_path: Path) -> None:
    log, attempts = _write_run(tmp_path, last="rejected")
    outcome = _outcome(log).model_copy(
        update={"status": "exhausted", "verified_rung": "", "patch_sha256": ""}
    )
    log.seal(outcome, attempts, None, "x should be 2", LADDER)
    assert not (log.run_dir / "patch.diff").exists()
    receipt = statement(log.run_dir)
    assert [s["name"] for s in receipt["subject"]] == ["base-commit"]
    assert verify_run(log.run_dir).ok
    assert "**Exhausted**" in (log.run_dir / "summary.md").read_text()


def test_create_refuses_an_existing_folder(tmp_path: Path) -> None:
    ProofLog.create(tmp_path, "same")
    with pytest.raises(UsageError, match="already exists"):
        ProofLog.create(tmp_path, "same")
    with pytest.raises(UsageError, match="safe folder name"):
        ProofLog.create(tmp_path, "../escape")


def test_new_run_id_is_a_timestamp_and_a_random_suffix() -> None:
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{6}", new_run_id())
    assert new_run_id() != new_run_id()


def test_the_summary_escapes_table_breakers(tmp_path: Path) -> None:
    log, attempts = _write_run(tmp_path)
    odd = attempts[1].model_copy(update={"model": "evil|model\nnext"})
    text = render_summary(_outcome(log), [attempts[0], odd, attempts[2]], "a | title", LADDER)
    assert "a \\| b" in text
    assert "second line" not in text
    assert "a \\| title" in text
    table = text.split("## What proves it")[0]  # the attempts' table, not the proof's
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) == 4  # header + 3 attempts
    for row in rows:
        assert len(re.findall(r"(?<!\\)\|", row)) == 10, row
    assert "pytest ✗" in rows[1]
    assert "pytest ✓" in rows[3]
    assert "**Verified** on rung `strong`" in text
    assert "## Why it climbed" in text
    assert "no SEARCH match" in text
