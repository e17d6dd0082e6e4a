"""Check a run folder written by `cascade.proof.log`: the hash chain, every blob's name against its
bytes, every digest a record names, the receipt's envelope and (given a public key) its signature,
and what the seal claims (receipt, patch.diff, outcome.json, summary.md) against the log. Reading
only: a broken run is reported, never repaired."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict

from cascade.proof.log import GENESIS, PATCH_SUBJECT, STATEMENT_TYPE
from cascade.proof.run_folder import (
    ABORTED_FILE,
    ATTEMPTS_FILE,
    BLOBS_DIR,
    OUTCOME_FILE,
    PATCH_FILE,
    RECEIPT_FILE,
)
from cascade.proof.signing import PublicKey
from cascade.proof.verify_chain import Records, check_chain, place
from cascade.proof.verify_claims import check_claims
from cascade.proof.verify_proving import check_proving
from cascade.proof.verify_seal import Seal, check_sealed_files, read_seal
from cascade.records import RunStatus

_HEX64 = re.compile(r"[0-9a-f]{64}")
_RECEIPT_KEYS = ("seq", "rung", "model", "status", "sha256")
_RUN_STATUSES = get_args(RunStatus)
# The ladder stops at the first verified attempt, so a run that ran out never verified. An
# "error" run may hold one: the run can break after verifying (closing the sandbox) and is then
# sealed as an error without a patch, which is honest.
_NEVER_VERIFIED = ("exhausted", "budget_exhausted", "unproven")


class VerifyReport(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    run_dir: str
    ok: bool
    problems: list[str]
    records: int
    blobs: int
    intact: int = 0  # the leading records whose digest, link and seq hold
    aborted: str = ""  # the ABORTED mark of a run a batch cut short (or superseded)
    sealed: bool = False
    signing: str = ""  # "legacy", "unsigned", "signed", "authenticated"; "" without a receipt
    signed_by: list[str] = []
    key_id: str = ""  # the --key given


def verify_run(run_dir: Path, key: PublicKey | None = None) -> VerifyReport:
    """Check `run_dir`; with `key`, the receipt must also carry a signature that verifies under
    it (a signature problem is listed first)."""
    if not run_dir.is_dir():
        return VerifyReport(
            run_dir=str(run_dir), ok=False, problems=[f"{run_dir} is not a run folder"],
            records=0, blobs=0,
        )  # fmt: skip
    problems: list[str] = []
    records, intact = check_chain(run_dir, problems)
    blobs = _check_blobs(run_dir / BLOBS_DIR, problems)
    _check_references(records, blobs, problems)
    seal = _check_receipt(run_dir, records, key, problems)
    if seal is not None and seal.signature_problem:
        problems.insert(0, seal.signature_problem)
    return VerifyReport(
        run_dir=str(run_dir),
        ok=not problems,
        problems=problems,
        records=len(records),
        blobs=len(blobs),
        intact=intact,
        aborted=_aborted(run_dir),
        sealed=(run_dir / RECEIPT_FILE).exists(),
        signing=seal.signing if seal else "",
        signed_by=list(seal.signed_by) if seal else [],
        key_id=key.keyid if key else "",
    )


def format_report(report: VerifyReport) -> str:
    lines = []
    if report.aborted and not report.sealed:
        upto = f"chain intact up to seq {report.intact}" if report.intact else "no record"
        lines.append(f"aborted: {upto}, never sealed ({report.aborted})")
    elif report.aborted:
        lines.append(f"aborted: marked after it was sealed ({report.aborted})")
    counts = f"{report.records} record(s), {report.blobs} blob(s)"
    if report.ok:
        lines.append(f"OK {report.run_dir}: {counts}; hash chain, blobs and receipt intact")
    else:
        lines.append(f"FAILED {report.run_dir}: {counts}; {len(report.problems)} problem(s)")
        lines += [f"  - {problem}" for problem in report.problems]
    said = _signing(report)
    return "\n".join([*lines, said] if said else lines)


def _signing(report: VerifyReport) -> str:
    """Who sealed the run, as far as this check can tell."""
    if report.signing == "authenticated" and report.ok:
        return f"authenticated: signed by {report.key_id}, the key given"
    if report.signing == "authenticated":
        return (
            f"the receipt's signature verifies under the key given ({report.key_id}); the "
            "problems above are in what it seals"
        )
    if report.key_id:
        return ""  # the first problem says why the key does not authenticate the receipt
    if report.signing == "signed":
        return f"signed by {', '.join(report.signed_by)}; pass --key to authenticate"
    if report.signing == "unsigned":
        return "unsigned: tamper-evident, not authenticated"
    if report.signing == "legacy":
        return "unsigned: tamper-evident, not authenticated (sealed before receipts were signed)"
    return ""


def _aborted(run_dir: Path) -> str:
    try:
        text = (run_dir / ABORTED_FILE).read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""
    return f"marked {ABORTED_FILE}: {text}" if text else f"marked {ABORTED_FILE}"


def _check_blobs(blobs_dir: Path, problems: list[str]) -> set[str]:
    """Every stored blob's name must be the sha256 of its bytes; return the names that are."""
    if not blobs_dir.is_dir():
        problems.append(f"{BLOBS_DIR}/ is missing")
        return set()
    good: set[str] = set()
    for path in sorted(blobs_dir.iterdir()):
        if path.name.startswith(".tmp-"):
            continue  # an interrupted write; nothing refers to it
        if not _HEX64.fullmatch(path.name) or not path.is_file():
            problems.append(f"{BLOBS_DIR}/{path.name}: not a content-addressed blob")
            continue
        if hashlib.sha256(path.read_bytes()).hexdigest() != path.name:
            problems.append(f"{BLOBS_DIR}/{path.name}: content does not match its name")
            continue
        good.add(path.name)
    return good


def _references(line: dict[str, Any]) -> list[tuple[str, str]]:
    fields = (
        *("prompt_sha256", "response_sha256", "patch_sha256", "baseline_sha256"),
        *("localisation_sha256", "candidates_sha256", "trajectory_sha256"),
    )
    refs = [(f, line.get(f)) for f in fields]
    for verdict in line.get("verdicts") or []:
        if isinstance(verdict, dict):
            name = verdict.get("evaluator", "?")
            for key, value in (verdict.get("artifacts") or {}).items():
                refs.append((f"verdict {name} artifact {key}", value))
    return [(field, str(value)) for field, value in refs if value]


def _check_references(records: Records, blobs: set[str], problems: list[str]) -> None:
    for number, line in records:
        for field, digest in _references(line):
            if digest not in blobs:
                where = place(number, line)
                problems.append(f"{where}: {field} {digest} is not an intact blob in {BLOBS_DIR}/")


def _check_receipt(
    run_dir: Path, records: Records, key: PublicKey | None, problems: list[str]
) -> Seal | None:
    if not (run_dir / RECEIPT_FILE).exists():
        problems.append(f"run was not sealed: {RECEIPT_FILE} is missing")
        return None
    seal = read_seal(run_dir, key, problems)
    if seal is None:
        return None
    receipt = seal.statement
    try:
        predicate = receipt["predicate"]
        listed = predicate["attempts"]
        subjects = {s.get("name"): s.get("digest", {}) for s in receipt["subject"]}
    except (KeyError, TypeError, AttributeError) as exc:
        problems.append(f"{RECEIPT_FILE} is not a readable cascade receipt ({exc!r})")
        return seal
    if receipt.get("_type") != STATEMENT_TYPE:
        problems.append(f"{RECEIPT_FILE}: _type is not {STATEMENT_TYPE}")
    head = records[-1][1].get("sha256") if records else GENESIS
    if predicate.get("attempt_count") != len(records) or predicate.get("chain_head") != head:
        problems.append(
            f"{RECEIPT_FILE} seals {predicate.get('attempt_count')} record(s) with chain head "
            f"{predicate.get('chain_head')}, but {ATTEMPTS_FILE} has {len(records)} with head "
            f"{head}: records were removed or added after sealing"
        )
    _compare_listed(listed, records, problems)
    status = predicate.get("status")
    verified = _check_status(status, records, problems)
    shipped = _check_patch(run_dir, subjects.get(PATCH_SUBJECT), status, problems)
    if verified is not None:
        expected = check_proving(run_dir, records, verified, predicate, problems)
        if shipped is not None:
            _check_verified_patch(shipped, expected, *verified, problems)
    _check_outcome(run_dir, status, shipped, problems)
    check_claims(run_dir, records, receipt, problems)
    check_sealed_files(run_dir, predicate, seal.enveloped, problems)
    return seal


def _compare_listed(listed: Any, records: Records, problems: list[str]) -> None:
    if not isinstance(listed, list):
        problems.append(f"{RECEIPT_FILE}: predicate.attempts is not a list")
        return
    for index, entry in enumerate(listed):
        if index >= len(records):
            seq = entry.get("seq", "?") if isinstance(entry, dict) else "?"
            problems.append(
                f"{RECEIPT_FILE} lists seq {seq} (attempt {index + 1}), "
                f"missing from {ATTEMPTS_FILE}"
            )
            return
        number, line = records[index]
        expected = {key: line.get(key) for key in _RECEIPT_KEYS}
        if entry != expected:
            problems.append(f"{place(number, line)}: does not match the receipt's attempt list")
            return
    if len(records) > len(listed):
        number, line = records[len(listed)]
        problems.append(f"{place(number, line)}: not in the receipt (appended after sealing)")


def _check_status(
    status: Any, records: Records, problems: list[str]
) -> tuple[int, dict[str, Any]] | None:
    """The receipt's status against the log: a verified run ends at its verified attempt (the
    engine records the winner last and stops). Return that attempt when the status holds."""
    if status not in _RUN_STATUSES:
        problems.append(f"{RECEIPT_FILE}: status {status!r} is not a run status")
        return None
    if status == "verified":
        if not records:
            problems.append(f"{RECEIPT_FILE} says verified, but {ATTEMPTS_FILE} has no attempts")
            return None
        number, line = records[-1]
        if line.get("status") != "verified":
            problems.append(
                f"{RECEIPT_FILE} says verified, but the last attempt, {place(number, line)}, "
                f"is {line.get('status')!r}"
            )
            return None
        return number, line
    won = next((r for r in records if r[1].get("status") == "verified"), None)
    if status in _NEVER_VERIFIED and won is not None:
        problems.append(f"{RECEIPT_FILE} says {status}, but {place(*won)} verified")
    return None


def _check_patch(run_dir: Path, digest: Any, status: Any, problems: list[str]) -> str | None:
    """patch.diff against the receipt's subject; return its sha256 when it exists."""
    path = run_dir / PATCH_FILE
    if digest is None:
        if status == "verified":
            problems.append(f"{RECEIPT_FILE}: a verified run but no {PATCH_SUBJECT} subject")
        if path.exists():
            problems.append(f"{PATCH_FILE} exists but the receipt does not name it")
        return None
    if status != "verified":
        problems.append(
            f"{RECEIPT_FILE} names a {PATCH_SUBJECT} subject, but its status is {status!r} "
            "(only a verified run ships a patch)"
        )
    if not path.is_file():
        problems.append(f"{PATCH_FILE} is missing; the receipt names it")
        return None
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if not isinstance(digest, dict) or digest.get("sha256") != actual:
        problems.append(f"{PATCH_FILE} does not match the receipt's subject digest")
    return actual


def _check_verified_patch(
    shipped: str, expected: str | None, number: int, line: dict[str, Any], problems: list[str]
) -> None:
    # patch_sha256 is the blob digest of the diff the gate passed; patch.diff is that diff,
    # after the accepted reproduction's test when the reproduce stage wrote one.
    stated = line.get("patch_sha256")
    if expected is not None and expected != stated:
        if shipped != expected:
            problems.append(
                f"{PATCH_FILE} (sha256 {shipped}) is not the accepted reproduction plus the "
                f"patch of the verified attempt {place(number, line)}"
            )
    elif stated != shipped:
        problems.append(
            f"{PATCH_FILE} (sha256 {shipped}) is not the patch of the verified attempt: "
            f"{place(number, line)} has patch_sha256 {stated or 'none'}"
        )


def _check_outcome(run_dir: Path, status: Any, shipped: str | None, problems: list[str]) -> None:
    """outcome.json is written by the same seal as the receipt and must tell the same story."""
    path = run_dir / OUTCOME_FILE
    if not path.exists():
        problems.append(f"{OUTCOME_FILE} is missing; the receipt seals the run")
        return
    try:
        outcome = json.loads(path.read_text(encoding="utf-8"))
        told, named = outcome["status"], outcome.get("patch_sha256")
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        problems.append(f"{OUTCOME_FILE} is not a readable run outcome ({exc!r})")
        return
    if told != status:
        problems.append(f"{OUTCOME_FILE} says status {told!r}, the receipt {status!r}")
    if status == "verified" and shipped is not None and named != shipped:
        problems.append(
            f"{OUTCOME_FILE} names patch_sha256 {named or 'none'}, "
            f"but {PATCH_FILE} has sha256 {shipped}"
        )
