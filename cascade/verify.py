"""Check a run folder written by `cascade.proof`: the hash chain, every blob's name against its
bytes, every digest a record names, and the receipt against the log and patch.diff. Reading
only: a broken run is reported, never repaired."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from cascade.proof import (
    ATTEMPTS_FILE,
    BLOBS_DIR,
    GENESIS,
    PATCH_FILE,
    PATCH_SUBJECT,
    RECEIPT_FILE,
    STATEMENT_TYPE,
    record_digest,
)

_HEX64 = re.compile(r"[0-9a-f]{64}")
_RECEIPT_KEYS = ("seq", "rung", "model", "status", "sha256")


class VerifyReport(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    run_dir: str
    ok: bool
    problems: list[str]
    records: int
    blobs: int


def verify_run(run_dir: Path) -> VerifyReport:
    problems: list[str] = []
    if not run_dir.is_dir():
        return _report(run_dir, [f"{run_dir} is not a run folder"], [], 0)
    records = _check_chain(run_dir, problems)
    blobs = _check_blobs(run_dir / BLOBS_DIR, problems)
    _check_references(records, blobs, problems)
    _check_receipt(run_dir, records, problems)
    return _report(run_dir, problems, records, len(blobs))


def format_report(report: VerifyReport) -> str:
    counts = f"{report.records} record(s), {report.blobs} blob(s)"
    if report.ok:
        return f"OK {report.run_dir}: {counts}; hash chain, blobs and receipt intact"
    lines = [f"FAILED {report.run_dir}: {counts}; {len(report.problems)} problem(s)"]
    lines += [f"  - {problem}" for problem in report.problems]
    return "\n".join(lines)


def _report(
    run_dir: Path, problems: list[str], records: list[tuple[int, dict[str, Any]]], blobs: int
) -> VerifyReport:
    return VerifyReport(
        run_dir=str(run_dir),
        ok=not problems,
        problems=problems,
        records=len(records),
        blobs=blobs,
    )


def _where(number: int, line: dict[str, Any] | None = None) -> str:
    seq = f" (seq {line.get('seq', '?')})" if line is not None else ""
    return f"{ATTEMPTS_FILE} line {number}{seq}"


def _check_chain(run_dir: Path, problems: list[str]) -> list[tuple[int, dict[str, Any]]]:
    """Parse every line and check its digest and link; return (line number, record) pairs."""
    path = run_dir / ATTEMPTS_FILE
    try:
        data = path.read_bytes()
    except OSError as exc:
        problems.append(f"{ATTEMPTS_FILE} cannot be read: {exc}")
        return []
    raw_lines = data.split(b"\n")
    tail = raw_lines.pop()  # b"" when the file ends with a newline, as every complete log does
    records: list[tuple[int, dict[str, Any]]] = []
    expected_prev: str | None = GENESIS
    for number, raw in enumerate(raw_lines, 1):
        line = _parse(raw, number, problems)
        if line is None:
            expected_prev = None  # the link after a broken line cannot be judged
            continue
        where = _where(number, line)
        stated = line.get("sha256")
        if not isinstance(stated, str):
            problems.append(f"{where}: has no sha256")
        elif record_digest(line) != stated:
            problems.append(f"{where}: content does not match its sha256")
        if expected_prev is not None and line.get("prev") != expected_prev:
            before = f"line {number - 1}" if number > 1 else "the chain start (64 zeros)"
            problems.append(
                f"{where}: prev does not match the sha256 of {before} "
                "(a record was removed, inserted or reordered)"
            )
        if line.get("seq") != number:
            problems.append(f"{where}: expected seq {number}")
        expected_prev = stated if isinstance(stated, str) else None
        records.append((number, line))
    if tail:
        problems.append(
            f"{ATTEMPTS_FILE} line {len(raw_lines) + 1}: torn last line "
            f"({len(tail)} bytes with no newline; the write was interrupted)"
        )
    return records


def _parse(raw: bytes, number: int, problems: list[str]) -> dict[str, Any] | None:
    try:
        line = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.append(f"{_where(number)}: not valid JSON ({exc})")
        return None
    if not isinstance(line, dict):
        problems.append(f"{_where(number)}: not a JSON object")
        return None
    return line


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
    refs = [(f, line.get(f)) for f in ("prompt_sha256", "response_sha256", "patch_sha256")]
    for verdict in line.get("verdicts") or []:
        if isinstance(verdict, dict):
            name = verdict.get("evaluator", "?")
            for key, value in (verdict.get("artifacts") or {}).items():
                refs.append((f"verdict {name} artifact {key}", value))
    return [(field, str(value)) for field, value in refs if value]


def _check_references(
    records: list[tuple[int, dict[str, Any]]], blobs: set[str], problems: list[str]
) -> None:
    for number, line in records:
        for field, digest in _references(line):
            if digest not in blobs:
                where = _where(number, line)
                problems.append(f"{where}: {field} {digest} is not an intact blob in {BLOBS_DIR}/")


def _check_receipt(
    run_dir: Path, records: list[tuple[int, dict[str, Any]]], problems: list[str]
) -> None:
    path = run_dir / RECEIPT_FILE
    if not path.exists():
        problems.append(f"run was not sealed: {RECEIPT_FILE} is missing")
        return
    try:
        receipt = json.loads(path.read_text(encoding="utf-8"))
        predicate = receipt["predicate"]
        listed = predicate["attempts"]
        subjects = {s.get("name"): s.get("digest", {}) for s in receipt["subject"]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        problems.append(f"{RECEIPT_FILE} is not a readable cascade receipt ({exc!r})")
        return
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
    _check_patch(run_dir, subjects.get(PATCH_SUBJECT), predicate.get("status"), problems)


def _compare_listed(
    listed: Any, records: list[tuple[int, dict[str, Any]]], problems: list[str]
) -> None:
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
            problems.append(f"{_where(number, line)}: does not match the receipt's attempt list")
            return
    if len(records) > len(listed):
        number, line = records[len(listed)]
        problems.append(f"{_where(number, line)}: not in the receipt (appended after sealing)")


def _check_patch(run_dir: Path, digest: Any, status: Any, problems: list[str]) -> None:
    path = run_dir / PATCH_FILE
    if digest is None:
        if status == "verified":
            problems.append(f"{RECEIPT_FILE}: a verified run but no {PATCH_SUBJECT} subject")
        if path.exists():
            problems.append(f"{PATCH_FILE} exists but the receipt does not name it")
        return
    if not path.is_file():
        problems.append(f"{PATCH_FILE} is missing; the receipt names it")
        return
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if not isinstance(digest, dict) or digest.get("sha256") != actual:
        problems.append(f"{PATCH_FILE} does not match the receipt's subject digest")
