"""The proof log of one run: a hash-chained attempts.jsonl, content-addressed blobs, and at the
end a seal (patch.diff, summary.md, outcome.json, and the receipt: a DSSE envelope over an in-toto
Statement, signed when the run has a signer). `cascade.proof.verify` checks it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import rfc8785

from cascade.errors import InfraError, UsageError
from cascade.proof.run_folder import (
    ATTEMPTS_FILE,
    BLOBS_DIR,
    OUTCOME_FILE,
    PATCH_FILE,
    RECEIPT_FILE,
    SUMMARY_FILE,
)
from cascade.proof.signing import Signer, envelope
from cascade.proof.summary import render_summary
from cascade.records import Attempt, Patch, RunOutcome, Verdict, WorkflowChoice
from cascade.workspace.untracked import ignore_in_git

GENESIS = "0" * 64  # the `prev` of the first record
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://cascade-engine.dev/ladder-outcome/v1"
TEST_RESULT_TYPE = "https://in-toto.io/attestation/test-result/v0.1"
MAX_LISTED = 50  # findings listed per evaluator in the receipt; the rest are in the blobs
PATCH_SUBJECT = "patch.diff"
BASE_SUBJECT = "base-commit"
SEALED_FILES = (OUTCOME_FILE, SUMMARY_FILE)  # sealed by digest (patch.diff is the subject)
JCS_SCHEMA = 3  # records from this schema_version on are hashed over RFC 8785 bytes

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 (JSON Canonicalization Scheme): the bytes every record digest (from schema 3 on),
    and the signed Statement, are taken over. A ValueError for what JCS cannot represent exactly:
    NaN, infinities, integers beyond 2**53, lone surrogates."""
    return rfc8785.dumps(obj)


def legacy_json(obj: Any) -> bytes:
    """What records of schema 1 and 2 were hashed over (Python's json: sorted keys, compact,
    UTF-8); kept so that their runs still verify."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def record_bytes(record: dict[str, Any]) -> bytes:
    """A record in the encoding its own `schema_version` names: RFC 8785 from JCS_SCHEMA on."""
    version = record.get("schema_version")
    modern = isinstance(version, int) and not isinstance(version, bool) and version >= JCS_SCHEMA
    return canonical_json(record) if modern else legacy_json(record)


def record_digest(line: dict[str, Any]) -> str:
    """sha256 of a log line's record: every field, `prev` included, except `sha256` itself."""
    body = {key: value for key, value in line.items() if key != "sha256"}
    return hashlib.sha256(record_bytes(body)).hexdigest()


def new_run_id() -> str:
    """A sortable, collision-resistant id: UTC timestamp and six random hex digits."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


class ProofLog:
    """Writes one run folder. Every write is durable (fsync) before the call returns, so a crash
    loses at most the record being written — and verify names a torn last line."""

    def __init__(self, run_id: str, run_dir: Path, signer: Signer | None = None) -> None:
        # Use `create`; this only binds the names.
        self.run_id = run_id
        self.run_dir = run_dir
        self._signer = signer  # signs the receipt at the seal; None: an unsigned envelope
        self._head = GENESIS
        self._entries: list[dict[str, Any]] = []
        self._sealed = False

    @classmethod
    def create(
        cls, runs_dir: Path, run_id: str | None = None, signer: Signer | None = None
    ) -> ProofLog:
        """Make a new run folder under `runs_dir`; an existing folder is never reused."""
        run_id = run_id or new_run_id()
        if not _RUN_ID.fullmatch(run_id):
            raise UsageError(
                f"run id {run_id!r} is not a safe folder name (letters, digits, '.', '_', '-')"
            )
        run_dir = runs_dir / run_id
        if runs_dir.exists() and not runs_dir.is_dir():
            raise UsageError(f"{runs_dir} is a file: run folders go in a folder (--out, [run] out)")
        try:
            runs_dir.mkdir(parents=True, exist_ok=True)
            ignore_in_git(runs_dir)
            run_dir.mkdir()
        except FileExistsError as exc:
            raise UsageError(f"run folder {run_dir} already exists; pick another run id") from exc
        except OSError as exc:
            raise InfraError(f"cannot create run folder {run_dir}: {exc}") from exc
        try:
            (run_dir / BLOBS_DIR).mkdir()
            (run_dir / ATTEMPTS_FILE).touch(exist_ok=False)
            _fsync_dir(run_dir)
            _fsync_dir(runs_dir)
        except OSError as exc:
            raise InfraError(f"cannot set up run folder {run_dir}: {exc}") from exc
        return cls(run_id, run_dir, signer)

    def put_blob(self, data: bytes | str) -> str:
        """Store content under its sha256 and return the digest; storing it again is a no-op."""
        raw = data.encode("utf-8") if isinstance(data, str) else data
        digest = hashlib.sha256(raw).hexdigest()
        path = self.run_dir / BLOBS_DIR / digest
        if not path.exists():
            _write_atomic(path, raw)
        return digest

    def append(self, record: Attempt) -> str:
        """Chain the record to the previous one, write it as one line, fsync, return its sha256."""
        if self._sealed:
            raise InfraError(f"proof log {self.run_dir} is sealed; cannot append seq {record.seq}")
        line: dict[str, Any] = record.model_dump(mode="json")
        line["prev"] = self._head
        try:
            digest = record_digest(line)
            line["sha256"] = digest
            raw = record_bytes(line)  # from schema 3 on, the line is its record's RFC 8785 form
        except ValueError as exc:
            raise InfraError(f"attempt seq {record.seq} cannot be canonicalized: {exc}") from exc
        path = self.run_dir / ATTEMPTS_FILE
        try:
            with path.open("ab") as handle:
                handle.write(raw + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise InfraError(f"cannot append to {path}: {exc}") from exc
        self._head = digest
        self._entries.append(
            {
                "seq": record.seq,
                "rung": record.rung,
                "model": record.model,
                "status": record.status,
                "sha256": digest,
            }
        )
        return digest

    def seal(
        self,
        outcome: RunOutcome,
        attempts: Sequence[Attempt],
        patch: Patch | None,
        task_title: str,
        ladder: Sequence[str],
    ) -> None:
        """Write patch.diff (verified runs only), summary.md, outcome.json, and last the receipt:
        its presence is what marks the run as sealed."""
        if self._sealed:
            raise InfraError(f"proof log {self.run_dir} is already sealed")
        patch_digest = ""
        if patch is not None and outcome.status == "verified":
            raw = patch.diff.encode("utf-8")
            patch_digest = hashlib.sha256(raw).hexdigest()
            _write_atomic(self.run_dir / PATCH_FILE, raw)
        summary = render_summary(outcome, attempts, task_title, ladder).encode("utf-8")
        _write_atomic(self.run_dir / SUMMARY_FILE, summary)
        told = outcome.model_dump_json(indent=2).encode()
        _write_atomic(self.run_dir / OUTCOME_FILE, told)
        statement = self._receipt(outcome, attempts, patch_digest, ladder)
        statement["predicate"]["sealed_files"] = [
            {"name": name, "digest": {"sha256": hashlib.sha256(data).hexdigest()}}
            for name, data in zip(SEALED_FILES, (told, summary), strict=True)
        ]
        try:
            sealed = envelope(canonical_json(statement), self._signer)
        except ValueError as exc:
            raise InfraError(f"{self.run_dir}: the receipt cannot be canonicalized: {exc}") from exc
        # The envelope in RFC 8785 form too: verify can then refuse any other bytes, so no byte
        # of the folder goes unchecked (its whitespace included).
        _write_atomic(self.run_dir / RECEIPT_FILE, canonical_json(sealed) + b"\n")
        self._sealed = True

    def _receipt(
        self,
        outcome: RunOutcome,
        attempts: Sequence[Attempt],
        patch_digest: str,
        ladder: Sequence[str],
    ) -> dict[str, Any]:
        subject: list[dict[str, Any]] = []
        if patch_digest:
            subject.append({"name": PATCH_SUBJECT, "digest": {"sha256": patch_digest}})
        if outcome.base_commit:
            subject.append({"name": BASE_SUBJECT, "digest": {"gitCommit": outcome.base_commit}})
        predicate: dict[str, Any] = {
            "run_id": outcome.run_id,
            "task_id": outcome.task_id,
            "status": outcome.status,
            "base_commit": outcome.base_commit,
            "ladder": list(ladder),
            "verified_rung": outcome.verified_rung,
            "cost_usd": outcome.cost_usd,
            "duration_s": outcome.duration_s,
            "error": outcome.error,
            # What proves a verified patch, and who wrote the test and the fix.
            "proving": [p.model_dump(mode="json") for p in outcome.proving],
            "fix_model": outcome.fix_model,
            "reproduction": _reproduction(attempts),
            "attempt_count": len(self._entries),
            "chain_head": self._head,
            "attempts": list(self._entries),
            "gate": gate_result(attempts),
            # The path the task took: its workflow, why, and what the verified patch needs.
            "workflow": outcome.workflow,
            "route": _route(attempts),
            "needs_review": outcome.needs_review,
            "reviewers": list(outcome.reviewers),
            "apply": outcome.apply,
        }
        return {
            "_type": STATEMENT_TYPE,
            "subject": subject,
            "predicateType": PREDICATE_TYPE,
            "predicate": predicate,
        }


def first_choice(attempts: Sequence[Attempt]) -> WorkflowChoice | None:
    """The workflow decision, said on a run's first attempt (None before workflows were)."""
    first = attempts[0].decision if attempts else None
    return first.workflow if first is not None else None


def _route(attempts: Sequence[Attempt]) -> dict[str, Any] | None:
    choice = first_choice(attempts)
    return choice.model_dump(mode="json") if choice is not None else None


def _reproduction(attempts: Sequence[Attempt]) -> dict[str, Any] | None:
    """The accepted reproduction test, if the reproduce stage wrote one: who and which tests."""
    won = next((a for a in attempts if a.role == "reproduce" and a.status == "accepted"), None)
    if won is None:
        return None
    tests = sorted({t for v in won.verdicts for t in v.tests})
    return {"seq": won.seq, "rung": won.rung, "model": won.model, "tests": tests}


def gate_result(attempts: Sequence[Attempt]) -> dict[str, Any]:
    """The last fix attempt's gate: an overall result, and one in-toto test-result predicate
    (v0.1) per evaluator, so a policy written for that predicate reads each without a cascade
    parser. Each evaluator's artifacts (JUnit XML, SARIF, coverage JSON) are its
    `configuration`."""
    fixes = [a for a in attempts if a.role == "fix"]
    verdicts = fixes[-1].verdicts if fixes else ()
    passed = [v.evaluator for v in verdicts if v.passed]
    failed = [v.evaluator for v in verdicts if not v.passed]
    result = "pass" if verdicts and not failed else "fail"
    return {
        "result": result,
        "passedTests": passed,
        "warnedTests": [],
        "failedTests": failed,
        "evaluators": [_test_result(v) for v in verdicts],
    }


def _test_result(verdict: Verdict) -> dict[str, Any]:
    failed = [
        f"{f.path}:{f.line}: {f.rule}: {f.message}" if f.path else f.message
        for f in verdict.findings[:MAX_LISTED]
    ]
    return {
        "name": verdict.evaluator,
        "predicateType": TEST_RESULT_TYPE,
        "predicate": {
            "result": "PASSED" if verdict.passed else "FAILED",
            "configuration": [
                {"name": name, "digest": {"sha256": digest}}
                for name, digest in sorted(verdict.artifacts.items())
            ],
            "passedTests": [verdict.evaluator] if verdict.passed else [],
            "warnedTests": [],
            "failedTests": failed or ([] if verdict.passed else [verdict.evaluator]),
        },
    }


def _write_atomic(path: Path, data: bytes) -> None:
    """Write via a temp file in the same folder and rename, so readers never see half a file."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)
    except OSError as exc:
        raise InfraError(f"cannot write {path}: {exc}") from exc


def _fsync_dir(path: Path) -> None:
    # Makes a new name durable; not every platform can open a directory, and that is fine.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
