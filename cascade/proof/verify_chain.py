"""The hash chain of a run, line by line: each record's digest over the encoding its
schema_version names (RFC 8785 from schema 3 on, the line then exactly that form), its link to
the line before, and its seq."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from cascade.proof.log import GENESIS, JCS_SCHEMA, record_bytes
from cascade.proof.run_folder import ATTEMPTS_FILE

Records = list[tuple[int, dict[str, Any]]]


def place(number: int, line: dict[str, Any] | None = None) -> str:
    seq = f" (seq {line.get('seq', '?')})" if line is not None else ""
    return f"{ATTEMPTS_FILE} line {number}{seq}"


def check_chain(run_dir: Path, problems: list[str]) -> tuple[Records, int]:
    """Parse every line and check its digest and link; return (line number, record) pairs and
    how many leading records hold (digest, link and seq)."""
    path = run_dir / ATTEMPTS_FILE
    try:
        data = path.read_bytes()
    except OSError as exc:
        problems.append(f"{ATTEMPTS_FILE} cannot be read: {exc}")
        return [], 0
    raw_lines = data.split(b"\n")
    tail = raw_lines.pop()  # b"" when the file ends with a newline, as every complete log does
    records: Records = []
    intact: int | None = None  # set at the first line that does not hold
    expected_prev: str | None = GENESIS
    for number, raw in enumerate(raw_lines, 1):
        found = len(problems)
        line = _parse(raw, number, problems)
        if line is None:
            expected_prev = None  # the link after a broken line cannot be judged
            intact = number - 1 if intact is None else intact
            continue
        where = place(number, line)
        stated = line.get("sha256")
        _check_digest(raw, line, where, problems)
        if expected_prev is not None and line.get("prev") != expected_prev:
            before = f"line {number - 1}" if number > 1 else "the chain start (64 zeros)"
            problems.append(
                f"{where}: prev does not match the sha256 of {before} "
                "(a record was removed, inserted or reordered)"
            )
        if line.get("seq") != number:
            problems.append(f"{where}: expected seq {number}")
        if len(problems) > found and intact is None:
            intact = number - 1
        expected_prev = stated if isinstance(stated, str) else None
        records.append((number, line))
    if tail:
        problems.append(
            f"{ATTEMPTS_FILE} line {len(raw_lines) + 1}: torn last line "
            f"({len(tail)} bytes with no newline; the write was interrupted)"
        )
    return records, len(raw_lines) if intact is None else intact


def _check_digest(raw: bytes, line: dict[str, Any], where: str, problems: list[str]) -> None:
    """The record's digest over the encoding its schema_version names; from JCS_SCHEMA on, the
    line must also be exactly its RFC 8785 form, so no edit keeps the same parsed record."""
    stated = line.get("sha256")
    if not isinstance(stated, str):
        problems.append(f"{where}: has no sha256")
        return
    body = {key: value for key, value in line.items() if key != "sha256"}
    try:
        digest = hashlib.sha256(record_bytes(body)).hexdigest()
        canonical = record_bytes(line)
    except ValueError as exc:
        problems.append(f"{where}: cannot be canonicalized ({exc})")
        return
    if digest != stated:
        problems.append(f"{where}: content does not match its sha256")
    elif _version(line) >= JCS_SCHEMA and raw != canonical:
        problems.append(f"{where}: not in canonical form (RFC 8785): edited after it was written")


def _version(line: dict[str, Any]) -> int:
    version = line.get("schema_version")
    return version if isinstance(version, int) and not isinstance(version, bool) else 1


def _parse(raw: bytes, number: int, problems: list[str]) -> dict[str, Any] | None:
    try:
        line = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.append(f"{place(number)}: not valid JSON ({exc})")
        return None
    if not isinstance(line, dict):
        problems.append(f"{place(number)}: not a JSON object")
        return None
    return line
