"""The proof of a verified run, checked against its log: every proving test failed at the base
commit (as the recorded base outcomes say) and passes with the patch (as the gate's verdicts
say); a reproduction's test was written by the accepted reproduce attempt it names; the shipped
patch is that reproduction plus the verified fix; and the receipt and outcome.json claim exactly
what the verified attempt records."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from cascade.core.proving import combined, failed
from cascade.proof.run_folder import ATTEMPTS_FILE, BLOBS_DIR, OUTCOME_FILE, RECEIPT_FILE
from cascade.records import Patch

Records = list[tuple[int, dict[str, Any]]]
PROVING_SCHEMA = 2  # records from this schema on must name what proves a verified fix
REPRODUCED = ("reproduce", "accepted")


def check_proving(
    run_dir: Path,
    records: Records,
    verified: tuple[int, dict[str, Any]],
    predicate: dict[str, Any],
    problems: list[str],
) -> str | None:
    """Problems go to `problems`; returns the sha256 patch.diff must have (None: unknown)."""
    number, line = verified
    where = f"{ATTEMPTS_FILE} line {number} (seq {line.get('seq', '?')})"
    proving = line.get("proving") or []
    if _int(line.get("schema_version"), 1) >= PROVING_SCHEMA and not proving:
        problems.append(
            f"{where} is verified but names no proving test (one that fails at the base "
            "commit and passes with the patch)"
        )
    repro = _accepted_reproduction(records, _int(line.get("seq"), 0))
    base = _blob_json(run_dir, line.get("baseline_sha256"))
    after: dict[str, Any] = {}
    for verdict in line.get("verdicts") or []:
        if isinstance(verdict, dict):
            after.update(verdict.get("tests") or {})
    for claim in proving if isinstance(proving, list) else []:
        _check_claim(claim, (base, after, repro), where, problems)
    _check_claims_sealed(run_dir, line, predicate, problems)
    return _expected_patch(run_dir, line, repro)


Evidence = tuple[dict[str, Any] | None, dict[str, Any], dict[str, Any] | None]


def _check_claim(claim: Any, evidence: Evidence, where: str, problems: list[str]) -> None:
    """One proving test against the evidence: (base outcomes, outcomes after, reproduction)."""
    base, after, repro = evidence
    if not isinstance(claim, dict):
        problems.append(f"{where}: a proving test is not an object")
        return
    test = str(claim.get("test", ""))
    said = f"{where}: proving test {test}"
    if base is None:
        problems.append(f"{said}: no readable base outcomes (baseline_sha256) to check it against")
    elif base.get(test) != claim.get("base") or not failed(str(claim.get("base", ""))):
        problems.append(
            f"{said} claims {claim.get('base')!r} at the base commit; the recorded base "
            f"outcomes say {base.get(test, 'missing')!r}"
        )
    if claim.get("after") != "passed" or after.get(test) != "passed":
        problems.append(
            f"{said} claims {claim.get('after')!r} with the patch; the gate's verdicts say "
            f"{after.get(test, 'nothing')!r}"
        )
    if claim.get("source") == "reproduction":
        tests = _verdict_tests(repro) if repro else {}
        author = (repro or {}).get("rung"), (repro or {}).get("model")
        if test not in tests or author != (claim.get("rung"), claim.get("model")):
            problems.append(
                f"{said} claims a reproduction written on {claim.get('rung')!r} "
                f"({claim.get('model')}), which no accepted reproduce attempt of the log wrote"
            )


def _check_claims_sealed(
    run_dir: Path, line: dict[str, Any], predicate: dict[str, Any], problems: list[str]
) -> None:
    proving, model = line.get("proving") or [], line.get("model", "")
    if predicate.get("proving", []) != proving or predicate.get("fix_model", "") != model:
        problems.append(
            f"{RECEIPT_FILE}: its proving tests or fix model differ from the verified attempt's"
        )
    try:
        outcome = json.loads((run_dir / OUTCOME_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # the outcome check reports an unreadable outcome.json
    if outcome.get("proving", []) != proving or outcome.get("fix_model", "") != model:
        problems.append(
            f"{OUTCOME_FILE}: its proving tests or fix model differ from the verified attempt's"
        )


def _accepted_reproduction(records: Records, before_seq: int) -> dict[str, Any] | None:
    """The last accepted reproduce attempt before the verified one, if any."""
    found = None
    for _, line in records:
        seq = _int(line.get("seq"), 0)
        if seq < before_seq and (line.get("role"), line.get("status")) == REPRODUCED:
            found = line
    return found


def _verdict_tests(line: dict[str, Any]) -> dict[str, Any]:
    tests: dict[str, Any] = {}
    for verdict in line.get("verdicts") or []:
        if isinstance(verdict, dict):
            tests.update(verdict.get("tests") or {})
    return tests


def _expected_patch(
    run_dir: Path, line: dict[str, Any], repro: dict[str, Any] | None
) -> str | None:
    """The digest of what a verified run ships: the fix's patch, after the reproduction's."""
    fix = str(line.get("patch_sha256") or "")
    if repro is None:
        return fix or None
    first, second = _blob_text(run_dir, repro.get("patch_sha256")), _blob_text(run_dir, fix)
    if first is None or second is None:
        return None  # a missing blob is reported by the reference check
    both = combined(_patch(first), _patch(second))
    return both.sha256


def _patch(diff: str) -> Patch:
    return Patch(diff=diff, sha256=hashlib.sha256(diff.encode()).hexdigest(), files=())


def _blob_text(run_dir: Path, digest: Any) -> str | None:
    if not digest:
        return None
    try:
        # bytes, decoded: read_text would turn a CRLF patch's line ends into LF
        return (run_dir / BLOBS_DIR / str(digest)).read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _blob_json(run_dir: Path, digest: Any) -> dict[str, Any] | None:
    text = _blob_text(run_dir, digest)
    try:
        value = json.loads(text) if text is not None else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _int(value: Any, default: int) -> int:
    """A record's number as written; a forged or broken one reads as `default`, never a crash
    (the chain check reports the record itself)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else default
