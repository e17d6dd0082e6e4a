"""The seal's claims re-derived from the hash chain: every fact the receipt's predicate, its base
commit subject, outcome.json and summary.md state that the attempt records determine is computed
again from them and compared, and a difference names the file and the field. What the chain does
not hold (the ladder's rung list, the duration, the title) is checked for consistency only."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cascade.proof.log import BASE_SUBJECT, first_choice, gate_result
from cascade.proof.outcome import review_fields
from cascade.proof.run_folder import CHAIN_FIELDS, OUTCOME_FILE, RECEIPT_FILE, SUMMARY_FILE
from cascade.proof.summary import render_summary
from cascade.records import SCHEMA_VERSION, Attempt, RunOutcome

Records = list[tuple[int, dict[str, Any]]]


def check_claims(
    run_dir: Path, records: Records, statement: dict[str, Any], problems: list[str]
) -> None:
    attempts = _attempts(records, problems)
    if attempts is None:
        return
    predicate = statement.get("predicate") or {}
    derived = _derived(attempts, predicate.get("status"))
    for field, value in derived.items():
        if field != "attempts" and field in predicate and predicate[field] != value:
            problems.append(
                f"{RECEIPT_FILE}: predicate.{field} is {predicate[field]!r}; the attempts "
                f"say {value!r}"
            )
    if first_choice(attempts) is not None:  # a run that chose a workflow states its path
        stated = ("workflow", "route", "needs_review", "reviewers", "apply")
        missing = [key for key in stated if key not in predicate]
        if missing:
            problems.append(
                f"{RECEIPT_FILE}: predicate lacks {', '.join(missing)}, which the attempts of a "
                "run that chose a workflow determine"
            )
    if predicate.get("gate") != gate_result(attempts):
        problems.append(
            f"{RECEIPT_FILE}: predicate.gate is not the gate's verdicts of the last fix attempt "
            "in the log"
        )
    ladder = predicate.get("ladder") or []
    strays = sorted({a.rung for a in attempts if a.role == "fix"} - set(ladder))
    if strays:
        problems.append(f"{RECEIPT_FILE}: predicate.ladder lacks the rungs {strays} the log ran")
    base = derived.get("base_commit")
    if base:
        subjects = {s.get("name"): s.get("digest", {}) for s in statement.get("subject") or []}
        named = (subjects.get(BASE_SUBJECT) or {}).get("gitCommit")
        if named != base:
            problems.append(
                f"{RECEIPT_FILE}: subject {BASE_SUBJECT} is {named!r}; the attempts were judged "
                f"at {base!r}"
            )
    outcome = _outcome(run_dir)
    if outcome is None:
        return  # the outcome check names an unreadable outcome.json
    told = outcome.model_dump(mode="json")
    for field, value in derived.items():
        if field in told and told[field] != value:
            problems.append(
                f"{OUTCOME_FILE}: {field} is {told[field]!r}; the attempts say {value!r}"
            )
    if all(a.schema_version >= SCHEMA_VERSION for a in attempts):
        # The page's layout belongs to the version that wrote it: an older run's is not redrawn.
        _check_summary(run_dir, outcome, attempts, [str(r) for r in ladder], problems)


def _derived(attempts: Sequence[Attempt], status: Any) -> dict[str, Any]:
    """What the records alone determine about the run (`attempts` is the outcome's count; the
    receipt's `attempts` is the list checked record by record elsewhere)."""
    derived: dict[str, Any] = {
        "attempts": len(attempts),
        "cost_usd": round(sum(a.cost_usd for a in attempts), 8),
    }
    if status == "verified":  # a run that broke after verifying names no rung or names it
        won = next((a for a in attempts if a.status == "verified"), None)
        derived["verified_rung"] = won.rung if won else ""
        if won is not None and won.policy is not None:
            derived.update(review_fields(won))
    bases = {a.base_commit for a in attempts if a.base_commit}
    choice = first_choice(attempts)
    if choice is not None:
        derived["workflow"] = choice.name
        derived["route"] = choice.model_dump(mode="json")
    if attempts:
        derived["task_id"] = attempts[0].task_id
        derived["run_id"] = attempts[0].run_id
    if len(bases) == 1:  # records from before they carried it leave it to the outcome
        derived["base_commit"] = next(iter(bases))
    return derived


def _attempts(records: Records, problems: list[str]) -> list[Attempt] | None:
    out: list[Attempt] = []
    for number, line in records:
        body = {k: v for k, v in line.items() if k not in CHAIN_FIELDS}
        try:
            out.append(Attempt.model_validate(body))
        except ValidationError as exc:
            problems.append(f"attempts.jsonl line {number}: not an attempt record ({exc.title})")
            return None
    return out


def _outcome(run_dir: Path) -> RunOutcome | None:
    try:
        return RunOutcome.model_validate_json((run_dir / OUTCOME_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return None


def _check_summary(
    run_dir: Path,
    outcome: RunOutcome,
    attempts: Sequence[Attempt],
    ladder: Sequence[str],
    problems: list[str],
) -> None:
    """summary.md is rendered from the outcome and the records: rendered again (its title, which
    the chain does not hold, taken from its own first line), it must read the same."""
    try:
        text = (run_dir / SUMMARY_FILE).read_text("utf-8")
    except OSError:
        problems.append(f"{SUMMARY_FILE} cannot be read")
        return
    first = text.split("\n", 1)[0]
    head = f"# {outcome.task_id}: "
    title = first[len(head) :] if first.startswith(head) else ""
    expected = render_summary(outcome, attempts, _unescaped(title), ladder)
    if expected == text:
        return
    got, want = text.splitlines(), expected.splitlines()
    at = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), None)
    if at is None:
        at = min(len(got), len(want))
    line = got[at] if at < len(got) else "(missing)"
    problems.append(
        f"{SUMMARY_FILE} line {at + 1} is not what the log says: {json.dumps(line[:120])}"
    )


def _unescaped(title: str) -> str:
    """The title as `cell` escaped it (pipes and backslashes), undone."""
    return title.replace("\\|", "|").replace("\\\\", "\\")
