"""The one reader of run folders: where each file of a run lives, and reading them back — the
attempt records (typed, chain fields dropped), the sealed outcome, the receipt's Statement (out
of its DSSE envelope, or as written by runs sealed before receipts were signed), the blobs.
Replay, reports, the ladder's history and re-gating read runs through this; `cascade.proof.log`
writes them and `cascade.proof.verify` checks their raw bytes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cascade.errors import InfraError, UsageError
from cascade.proof.signing import read_receipt
from cascade.records import Attempt, RunOutcome

ATTEMPTS_FILE = "attempts.jsonl"
BLOBS_DIR = "blobs"
PATCH_FILE = "patch.diff"
SUMMARY_FILE = "summary.md"
OUTCOME_FILE = "outcome.json"
RECEIPT_FILE = "receipt.intoto.json"
ABORTED_FILE = "ABORTED"  # a batch marks a run it cut short (or superseded) with this file
CHAIN_FIELDS = ("prev", "sha256")  # added by the log to each record; not part of an Attempt


@dataclass(frozen=True)
class JsonlRead:
    """The complete records of a JSONL file, and what was dropped on the way."""

    records: list[dict[str, Any]]
    bad_lines: int = 0  # complete lines that do not parse: earlier torn tails, now terminated
    torn_tail: bool = False  # the file ends inside a line (a write was interrupted)


def read_jsonl(path: Path) -> JsonlRead:
    """Parse every newline-terminated line; the unterminated tail is dropped, not guessed at."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return JsonlRead([])
    except OSError as exc:
        raise InfraError(f"cannot read {path}: {exc}") from exc
    pieces = data.split(b"\n")
    tail = pieces.pop()
    records: list[dict[str, Any]] = []
    bad = 0
    for raw in pieces:
        if not raw.strip():
            continue
        try:
            value = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            bad += 1
            continue
        if isinstance(value, dict):
            records.append(value)
        else:
            bad += 1
    return JsonlRead(records, bad, bool(tail))


@dataclass(frozen=True)
class RunFolder:
    """A run folder, `.cascade/runs/<run-id>/` (or `<batch>/runs/<run-id>/`)."""

    path: Path

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def attempts_file(self) -> Path:
        return self.path / ATTEMPTS_FILE

    @property
    def blobs_dir(self) -> Path:
        return self.path / BLOBS_DIR

    @property
    def patch_file(self) -> Path:
        return self.path / PATCH_FILE

    @property
    def summary_file(self) -> Path:
        return self.path / SUMMARY_FILE

    @property
    def outcome_file(self) -> Path:
        return self.path / OUTCOME_FILE

    @property
    def receipt_file(self) -> Path:
        return self.path / RECEIPT_FILE

    def blob(self, digest: str) -> Path:
        return self.blobs_dir / digest

    @property
    def sealed(self) -> bool:
        """The receipt is written last: its presence is what marks a run as sealed."""
        return self.receipt_file.is_file()

    @property
    def has_outcome(self) -> bool:
        return self.outcome_file.is_file()

    def records(self) -> list[dict[str, Any]]:
        """The complete lines of attempts.jsonl as written (chain fields included)."""
        return read_jsonl(self.attempts_file).records

    def attempts(self) -> tuple[Attempt, ...]:
        """The complete, well-formed attempt records, in order; chain fields are dropped."""
        attempts: list[Attempt] = []
        for record in self.records():
            body = {k: v for k, v in record.items() if k not in CHAIN_FIELDS}
            try:
                attempts.append(Attempt.model_validate(body))
            except ValidationError:
                continue
        return tuple(attempts)

    def spent_usd(self) -> float:
        """What the complete attempt records cost (for a run cut short, what it spent)."""
        return sum(float(r.get("cost_usd") or 0.0) for r in self.records())

    def outcome(self) -> RunOutcome:
        """outcome.json; a UsageError naming the file when it cannot be read."""
        try:
            return RunOutcome.model_validate_json(self.outcome_file.read_text("utf-8"))
        except (OSError, ValidationError) as exc:
            raise UsageError(f"{self.outcome_file} cannot be read: {exc}") from exc

    def sealed_outcome(self) -> RunOutcome | None:
        """The outcome of a sealed run, or None (not sealed, or its outcome unreadable)."""
        if not self.sealed:
            return None
        try:
            return self.outcome()
        except UsageError:
            return None

    def receipt(self) -> dict[str, Any]:
        """The receipt's Statement (its signature unchecked: that is `cascade.proof.verify`'s);
        a UsageError when the run was not sealed or the receipt is unreadable."""
        try:
            return read_receipt(self.receipt_file.read_bytes()).statement
        except (OSError, ValueError) as exc:
            raise UsageError(self._unsealed(exc)) from exc

    def ladder(self) -> tuple[str, ...]:
        """The rungs the run's receipt says it climbed."""
        try:
            return tuple(str(r) for r in self.receipt()["predicate"]["ladder"])
        except (KeyError, TypeError) as exc:
            raise UsageError(self._unsealed(exc)) from exc

    def _unsealed(self, exc: Exception) -> str:
        return f"{self.path}: no readable {RECEIPT_FILE}; was it sealed? ({exc})"
