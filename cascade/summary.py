"""summary.md: one page a reviewer reads to see what the ladder did and why it climbed. Text that
a model or an evaluator wrote is escaped so it cannot break the table; full feedback stays in the
blobs."""

from __future__ import annotations

from collections.abc import Sequence

from cascade.records import Attempt, RunOutcome, Verdict

TABLE_HEADER = (
    "| # | rung | model | attempt | status | verdicts | tokens in/out | cost | seconds |\n"
    "|---:|---|---|---:|---|---|---:|---:|---:|"
)
WHY_MAX = 200  # characters of feedback or error quoted per failed attempt


def cell(text: str) -> str:
    """Make text safe inside one Markdown table cell (or one list line): no line breaks, no
    unescaped pipes."""
    flat = " ".join(text.split())
    return flat.replace("\\", "\\\\").replace("|", "\\|")


def first_line(text: str, limit: int = WHY_MAX) -> str:
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def render_summary(
    outcome: RunOutcome, attempts: Sequence[Attempt], task_title: str, ladder: Sequence[str]
) -> str:
    lines = [
        f"# {cell(outcome.task_id)}: {cell(task_title)}",
        "",
        _outcome_line(outcome),
        "",
        f"Run `{cell(outcome.run_id)}` · ladder: {' → '.join(cell(r) for r in ladder) or '—'}",
        "",
    ]
    if attempts:
        lines += [TABLE_HEADER, *(_row(a) for a in attempts), ""]
    else:
        lines += ["No attempt was made.", ""]
    why = [_why(a) for a in attempts if a.status != "verified"]
    if why:
        lines += ["## Why it climbed", "", *why, ""]
    lines += [
        "Proof: `attempts.jsonl` (hash chain), `blobs/`, `receipt.intoto.json`. "
        "Check with `cascade proof verify RUN_DIR`.",
        "",
    ]
    return "\n".join(lines)


def _outcome_line(outcome: RunOutcome) -> str:
    if outcome.status == "verified":
        head = f"**Verified** on rung `{cell(outcome.verified_rung)}`"
    elif outcome.status == "exhausted":
        head = f"**Exhausted**: no verified patch after {outcome.attempts} attempt(s)"
    else:
        head = f"**Error**: {cell(first_line(outcome.error)) or 'unknown'}"
    base = cell(outcome.base_commit[:12]) or "unknown"
    return (
        f"{head} · cost ${outcome.cost_usd:.4f} · {outcome.duration_s:.1f} s · base commit `{base}`"
    )


def _row(attempt: Attempt) -> str:
    usage = attempt.usage
    cells = [
        str(attempt.seq),
        cell(attempt.rung),
        cell(attempt.model),
        str(attempt.attempt),
        cell(attempt.status),
        _verdicts(attempt.verdicts),
        f"{usage.prompt_tokens}/{usage.completion_tokens}",
        f"${attempt.cost_usd:.4f}",
        f"{attempt.duration_s:.1f}",
    ]
    return "| " + " | ".join(cells) + " |"


def _verdicts(verdicts: Sequence[Verdict]) -> str:
    if not verdicts:
        return "—"
    return " ".join(f"{cell(v.evaluator)} {'✓' if v.passed else '✗'}" for v in verdicts)


def headline(attempt: Attempt, limit: int = WHY_MAX) -> str:
    """One line on why an attempt did not verify: the first failed evaluator's first finding,
    else the first line of its feedback or error."""
    failed = [v for v in attempt.verdicts if not v.passed]
    if failed:
        verdict = failed[0]
        what = verdict.findings[0].message if verdict.findings else verdict.feedback
        more = len(verdict.findings) - 1
        extra = f" (+{more} more)" if more > 0 else ""
        return first_line(f"{verdict.evaluator}: {first_line(what, limit)}{extra}", limit)
    return first_line(attempt.feedback, limit) or first_line(attempt.error, limit)


def _why(attempt: Attempt) -> str:
    detail = headline(attempt)
    parts = [p for p in (cell(attempt.reason), cell(detail)) if p]
    text = " — ".join(parts) or "no reason recorded"
    return f"- **#{attempt.seq}** `{cell(attempt.rung)}` ({cell(attempt.status)}): {text}"
