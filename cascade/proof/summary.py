"""summary.md: one page a reviewer reads to see what the ladder did and why it climbed. Text that
a model or an evaluator wrote is escaped so it cannot break the table; full feedback stays in the
blobs."""

from __future__ import annotations

from collections.abc import Sequence

from cascade.records import Attempt, ProvingTest, RunOutcome, Verdict

TABLE_HEADER = (
    "| # | rung | model | attempt | status | verdicts | tokens in/out | cost | seconds |\n"
    "|---:|---|---|---:|---|---|---:|---:|---:|"
)
WHY_MAX = 200  # characters of feedback or error quoted per failed attempt
ADVICE_LISTED = 20  # advisory findings listed; the attempt record holds the rest


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
    # Runs sealed before workflows name none: their page reads as it always did.
    flow = f" · workflow `{cell(outcome.workflow)}`" if outcome.workflow else ""
    lines = [
        f"# {cell(outcome.task_id)}: {cell(task_title)}",
        "",
        _outcome_line(outcome),
        "",
        f"Run `{cell(outcome.run_id)}`{flow} · ladder: "
        f"{' → '.join(cell(r) for r in ladder) or '—'}",
        "",
        *_needs_review(outcome),
        *_path(attempts),
    ]
    if attempts:
        lines += [TABLE_HEADER, *(_row(a) for a in attempts), ""]
    else:
        lines += ["No attempt was made.", ""]
    if outcome.stop_reason and outcome.status != "verified":
        lines += [f"Stopped: {cell(first_line(outcome.stop_reason, 400))}", ""]
    lines += proof_lines(outcome, attempts)
    if attempts:
        lines += ["## Why each attempt", ""]
        for attempt in attempts:
            lines += _why_attempt(attempt)
        lines += [""]
    climbs = [a for i, a in enumerate(attempts) if _climbed(attempts[i - 1] if i else None, a)]
    if climbs:
        lines += ["## Why it climbed", "", *(_climb(attempts, a) for a in climbs), ""]
    if outcome.best_unverified is not None:
        lines += _best(outcome)
    lines += advice_lines(attempts)
    lines += [
        "Proof: `attempts.jsonl` (hash chain), `blobs/`, `receipt.intoto.json`. "
        "Check with `cascade proof verify RUN_DIR`.",
        "",
    ]
    return "\n".join(lines)


def _outcome_line(outcome: RunOutcome) -> str:
    if outcome.status == "verified":
        head = f"**Verified** on rung `{cell(outcome.verified_rung)}`"
    elif outcome.status == "unproven":
        head = (
            "**Unproven**: a patch passed every check, but no test shows that it fixes the "
            "issue; it is not applied or proposed"
        )
    elif outcome.status == "exhausted":
        head = f"**Exhausted**: no verified patch after {outcome.attempts} attempt(s)"
    elif outcome.status == "budget_exhausted":
        head = f"**Budget exhausted**: no verified patch after {outcome.attempts} attempt(s)"
    else:
        head = f"**Error**: {cell(first_line(outcome.error)) or 'unknown'}"
    base = cell(outcome.base_commit[:12]) or "unknown"
    return (
        f"{head} · cost ${outcome.cost_usd:.4f} · {outcome.duration_s:.1f} s · base commit `{base}`"
    )


def _path(attempts: Sequence[Attempt]) -> list[str]:
    """The task's path as its workflow set it before any model (context, scope, gate and proof,
    review, model), and every raise a patch or the tracebacks made; nothing for older runs."""
    first = attempts[0].decision if attempts else None
    choice = first.workflow if first is not None else None
    if choice is None:
        return []
    why = "; ".join(choice.matched) or "no workflow matched"
    passed = ", ".join(f"`{cell(o.workflow)}` ({cell(o.why)})" for o in choice.passed_over)
    context = f"{choice.context_tokens} tokens" if choice.context_tokens else "each rung's own"
    who = f" (reviewers {cell(', '.join(choice.reviewers))})" if choice.reviewers else ""
    cap = f"${choice.budget_usd:g} a task" if choice.budget_usd else "no cap a task"
    lines = [
        "## Path",
        "",
        f"Workflow `{cell(choice.name)}`: {cell(why)}."
        + (f" Passed over: {passed}." if passed else ""),
        "",
        f"- context: {context}",
        f"- scope: {cell(', '.join(choice.paths)) or '—'}",
        f"- gate: {cell(', '.join(choice.gate))} · proof: {cell(choice.proof)}",
        f"- review: {cell(choice.review)}{who} · delivered as {cell(choice.apply)}",
        f"- model: {cell(choice.ladder)} · budget: {cap}",
    ]
    raised: dict[str, list[str]] = {}  # why -> the attempts it held
    for a in attempts:
        if a.policy is not None and a.policy.raised_by:
            raised.setdefault("; ".join(a.policy.why), []).append(f"#{a.seq}")
    lines += [f"- raised for {', '.join(seqs)}: {cell(why)}" for why, seqs in raised.items()]
    return [*lines, ""]


def _needs_review(outcome: RunOutcome) -> list[str]:
    """A verified patch its workflow holds for a person: why, and who is asked."""
    if outcome.status != "verified" or not outcome.needs_review:
        return []
    why = outcome.review_why or f"workflow {outcome.workflow!r} asks for a person's review"
    who = ", ".join(f"`{cell(r)}`" for r in outcome.reviewers) or "none named"
    return [
        "## Needs review",
        "",
        f"Verified, and held for a person's review before it is applied or merged: {cell(why)}. "
        f"Reviewers: {who}. (`cascade fix --apply` applies it only with `--reviewed`.)",
        "",
    ]


def _row(attempt: Attempt) -> str:
    usage = attempt.usage
    cells = [
        str(attempt.seq),
        cell(attempt.rung),
        cell(attempt.model),
        str(attempt.attempt),
        cell(attempt.status if attempt.role == "fix" else f"{attempt.role}: {attempt.status}"),
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


def _why_attempt(attempt: Attempt) -> list[str]:
    """Why this rung was chosen, what it cost against the estimate, and how it ended."""
    decision = attempt.decision
    sample = f" · sample {attempt.sample}" if attempt.sample > 1 else ""
    retry = f" · retry {attempt.retry}" if attempt.retry else ""
    head = (
        f"- **#{attempt.seq}** `{cell(attempt.rung)}` · attempt {attempt.attempt}{retry}{sample}"
        f" · {'' if attempt.role == 'fix' else attempt.role + ': '}{cell(attempt.status)}"
    )
    chosen = decision.why if decision else attempt.reason
    lines = [head, f"  - chosen: {cell(chosen) or 'no reason recorded'}"]
    if decision is not None:
        lines += [f"  - note: {cell(note)}" for note in decision.notes]
        if decision.rejected:
            passed = "; ".join(f"`{cell(a.rung)}` ({cell(a.why)})" for a in decision.rejected)
            lines.append(f"  - passed over: {passed}")
        if decision.wait_s:
            lines.append(f"  - waited {decision.wait_s:g}s before the call")
        if attempt.localised:
            led = ", ".join(f"`{cell(name)}`" for name in attempt.localised)
            lines.append(f"  - context led by fault localisation: {led}")
        if attempt.candidates_sha256:
            lines.append(f"  - candidates tried: `blobs/{attempt.candidates_sha256}`")
        if attempt.mode == "agent":
            lines += _agent_lines(attempt)
        estimate = (
            "local model, no price: counted as $0"
            if decision.local
            else f"estimated ≤ ${decision.estimated_cost_usd:.4f}"
        )
        if attempt.mode == "agent" and not decision.local:  # every turn was checked the same way
            estimate = f"first turn {estimate}, each turn's checked before its call"
        lines.append(
            f"  - cost: {estimate} ({decision.estimated_prompt_tokens} prompt tokens), "
            f"actual ${attempt.cost_usd:.4f}"
        )
    if attempt.status != "verified":
        detail = headline(attempt)
        if attempt.fault:
            detail = f"{attempt.fault}: {detail}"
        lines.append(f"  - result: {cell(detail) or cell(attempt.status)}")
    return lines


def _agent_lines(attempt: Attempt) -> list[str]:
    """An agent attempt: its steps, how its loop ended, its last commands, its trajectory."""
    ended = f", {cell(attempt.ended)}" if attempt.ended else ""
    lines = [f"  - agent: {attempt.steps} step{'s' if attempt.steps != 1 else ''}{ended}"]
    if attempt.last_commands:
        shown = "; ".join(f"`{_code(c)}`" for c in attempt.last_commands)
        lines.append(f"  - last commands: {shown}")
    if attempt.trajectory_sha256:
        lines.append(f"  - trajectory: `blobs/{attempt.trajectory_sha256}`")
    return lines


def _code(text: str) -> str:
    """Text for a code span in a list line (not a table): one line, no backticks; a code span
    shows backslashes and pipes as they are."""
    return " ".join(text.split()).replace("`", "'")


def _climbed(before: Attempt | None, attempt: Attempt) -> bool:
    if attempt.decision is not None:
        return attempt.decision.kind == "climb"
    return before is not None and before.rung != attempt.rung  # a record from before decisions


def _climb(attempts: Sequence[Attempt], attempt: Attempt) -> str:
    before = next((a for a in reversed(attempts) if a.seq < attempt.seq), None)
    source = f"`{cell(before.rung)}` → " if before else ""
    why = attempt.decision.escalation if attempt.decision else attempt.reason
    if before is not None and not attempt.decision:
        why = f"{why} — {headline(before)}".strip(" —")
    return f"- {source}`{cell(attempt.rung)}` (#{attempt.seq}): {cell(why)}"


def advice_lines(attempts: Sequence[Attempt]) -> list[str]:
    """What the gate advised on the last judged fix without blocking it (a lint rule the
    repository does not enforce): a reviewer may want to tidy it."""
    last = next((a for a in reversed(attempts) if a.role == "fix" and a.verdicts), None)
    advised = [(v.evaluator, f) for v in last.verdicts for f in v.advisories] if last else []
    if last is None or not advised:
        return []
    lines = [
        "## Advice (not blocking)",
        "",
        f"The gate's notes on attempt #{last.seq}, from rules it does not enforce:",
        "",
    ]
    for evaluator, f in advised[:ADVICE_LISTED]:
        path = cell(f.path).replace("`", "'")  # a code span a path cannot end early
        where = f"`{path}:{f.line}` " if f.path else ""
        lines.append(f"- {cell(evaluator)}: {where}{cell(f.rule)} {cell(f.message)}")
    if len(advised) > ADVICE_LISTED:
        lines.append(f"- … and {len(advised) - ADVICE_LISTED} more in the attempt's record")
    return [*lines, ""]


def _best(outcome: RunOutcome) -> list[str]:
    best = outcome.best_unverified
    if best is None:
        return []
    failed = ", ".join(best.failed) or "none"
    passed = ", ".join(best.passed) or "none"
    return [
        "## Best unverified candidate",
        "",
        f"Attempt #{best.seq} on `{cell(best.rung)}` failed the fewest evaluators "
        f"(failed: {cell(failed)}; passed: {cell(passed)}). Its patch is "
        f"`blobs/{best.patch_sha256}`: never applied, never proposed; a human may pick it up.",
        "",
    ]


def proof_lines(outcome: RunOutcome, attempts: Sequence[Attempt]) -> list[str]:
    """What proves a verified patch, and who wrote the test and the fix; for an unproven one,
    how to make it provable. Tests kept from the models are counted, never named: this page
    may be public."""
    if outcome.status == "unproven":
        return [
            "## Why it is unproven",
            "",
            "No test that fails at the base commit passes with the patch: the issue names none "
            "that fails there, and no reproduction test was accepted. To make a fix provable, "
            "name a failing test in the issue (`tests`), add one the models do not see (a "
            "hidden test under `.cascade/hidden/`), or let the reproduce stage write one "
            '(`[reproduce] when = "missing"`, the default, with a rung that can write tests).',
            "",
        ]
    if outcome.status != "verified" or not outcome.proving:
        return []
    lines = [
        "## What proves it",
        "",
        "| test | from | written by | at the base commit | with the patch |",
        "|---|---|---|---|---|",
    ]
    hidden = 0
    for p in outcome.proving:
        if p.source == "hidden":
            hidden += 1
        lines.append(_proving_row(p, hidden))
    lines += ["", _duties(outcome), ""]
    return lines


def _proving_row(p: ProvingTest, hidden: int) -> str:
    # A test kept from the models is neither named nor quoted here: this page may be public.
    withheld = p.source == "hidden"
    name = f"withheld test #{hidden}" if withheld else f"`{cell(p.test)}`"
    source = "withheld from the models" if withheld else p.source
    author = f"`{cell(p.rung)}` ({cell(p.model)})" if p.rung else "the issue"
    # A reproduction's failure text comes from model-written test code: shown as code only.
    base = "failed" if withheld else "`" + cell(first_line(p.base, 120)).replace("`", "'") + "`"
    return f"| {name} | {source} | {author} | {base} | {cell(p.after)} |"


def _duties(outcome: RunOutcome) -> str:
    """Separation of duties: which model wrote the proving test, which the fix."""
    fix = f"`{cell(outcome.fix_model)}` (rung `{cell(outcome.verified_rung)}`)"
    authors = sorted({p.model for p in outcome.proving if p.source == "reproduction"})
    tests = "test" if len(outcome.proving) == 1 else "tests"
    if not authors:
        come = "comes" if tests == "test" else "come"
        return f"The proving {tests} {come} with the issue; the fix was written by {fix}."
    same = outcome.fix_model in authors
    note = " — the same model" if same else ", a different model"
    written = ", ".join(f"`{cell(a)}`" for a in authors)
    were = "was" if tests == "test" else "were"
    by = f"written by {written}, before the fix; the fix by {fix}{note}."
    return f"The proving {tests} {were} {by}"
