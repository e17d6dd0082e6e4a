"""What the Action says: a Markdown report (job summary, PR body, issue comment) built from
structured fields only, the pull request, and comments and reactions on the issue or the pull
request. The branch itself is made in `branch.py`; how a verified patch is delivered (draft,
ready, a comment) and whose review is requested, in `deliver.py`."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cascade.errors import CascadeError
from cascade.proof.summary import cell, first_line, proof_lines
from cascade.records import Attempt, Issue, RunOutcome
from cascade.sources.github_api import GitHubAPI

FORBIDDEN_PREFIXES = (".github/",)  # workflows run with the repo's secrets: never proposed
BODY_LIMIT = 60_000  # GitHub refuses PR bodies and comments over 65,536 characters
MARK = {
    "verified": "✓", "accepted": "✓", "unproven": "~",
    "rejected": "✗", "edit_error": "✗", "empty_patch": "✗",
}  # fmt: skip


def code(text: str) -> str:
    """Text inside a code span: one line, no pipes to break a table, no backtick to break out, and
    no Markdown, links or @mentions rendered."""
    return "`" + (cell(text).replace("`", "'") or " ") + "`"


@dataclass(frozen=True)
class ReportLinks:
    artifact: str  # the proof artifact's name
    run_url: str  # the workflow run that holds it ("" outside Actions)

    def done(self, pr_url: str, *, draft: bool = True, held: str = "") -> str:
        """The closing comment on the issue after a verified patch: where the pull request,
        the run and its proof are, and (`held`) why it waits for a person's review."""
        run = f" of [the run]({self.run_url})" if self.run_url else ""
        if held:
            what = (
                f"draft pull request {pr_url}, held for a person's review ({code(held)}): it "
                "stays a draft until a reviewer marks it ready."
            )
        elif draft:
            what = f"draft pull request {pr_url} (review it before merging)."
        else:
            what = f"pull request {pr_url}, ready for review (its workflow says `apply = auto`)."
        return (
            f"cascade verified a patch: {what} The proof is the artifact {code(self.artifact)}"
            f"{run}; check it with `cascade proof verify`."
        )


def render_report(
    outcome: RunOutcome,
    attempts: Sequence[Attempt],
    issue: Issue,
    links: ReportLinks,
    *,
    files: Sequence[str] = (),
    note: str = "",
    patch_text: str = "",
) -> str:
    """The ladder table, the gate's verdicts and what proves the patch (or why nothing does),
    and who must review a verified one. Model answers, evaluator feedback and findings are left
    out (they may quote model text); the proof holds them. `patch_text` is shown, fenced: an
    unproven run's candidate, or a verified patch its workflow proposes as a comment."""
    lines = [f"## cascade: {code(issue.id)} {cell(issue.title)}", "", _headline(outcome), ""]
    if note:
        lines += [note, ""]
    lines += _review(outcome)
    lines += [f"> {cell(n)}" for n in issue.notes] + ([""] if issue.notes else [])
    lines += proof_lines(outcome, attempts)
    if patch_text:
        lines += _fenced(patch_text, _patch_head(outcome))
    if attempts:
        lines += [
            "| # | rung | model | status | gate | tokens in/out | cost | seconds |",
            "|---:|---|---|---|---|---:|---:|---:|",
            *(_row(a) for a in attempts),
            "",
        ]
        last = attempts[-1]
        if last.verdicts:
            lines += [
                f"**Gate verdicts** (attempt #{last.seq}):",
                "",
                "| evaluator | verdict | findings | seconds |",
                "|---|---|---:|---:|",
                *(
                    f"| {code(v.evaluator)} | {'✓ passed' if v.passed else '✗ failed'} | "
                    f"{len(v.findings)}{_advised(len(v.advisories))} | {v.duration_s:.1f} |"
                    for v in last.verdicts
                ),
                "",
                *_advice(last),
            ]
    else:
        lines += ["No attempt was made.", ""]
    if files:
        shown = ", ".join(code(f) for f in files[:20])
        more = f" and {len(files) - 20} more" if len(files) > 20 else ""
        lines += [f"**Patch**: {shown}{more}", ""]
    where = f"artifact {code(links.artifact)}"
    if links.run_url:
        where += f" of [workflow run {code(links.run_url.rsplit('/', 1)[-1])}]({links.run_url})"
    lines += [
        f"**Proof**: {where}, run {code(outcome.run_id)}. Download it and check it with "
        "`cascade proof verify RUN_DIR`. Model answers and gate feedback are in the proof, "
        "not here.",
    ]
    text = "\n".join(lines) + "\n"
    return text if len(text) <= BODY_LIMIT else text[:BODY_LIMIT] + "\n\n(truncated)\n"


def _advised(count: int) -> str:
    return f" (+{count} advisory)" if count else ""


def _advice(attempt: Attempt) -> list[str]:
    """The rules the gate advised on without blocking, counted (messages may quote code)."""
    counts: dict[tuple[str, str], int] = {}
    for v in attempt.verdicts:
        for f in v.advisories:
            counts[v.evaluator, f.rule] = counts.get((v.evaluator, f.rule), 0) + 1
    if not counts:
        return []
    shown = ", ".join(
        f"{code(name)} {code(rule)}" + (f" ×{n}" if n > 1 else "")
        for (name, rule), n in sorted(counts.items())
    )
    return [f"**Advisory, not blocking** (listed in the proof's summary.md): {shown}", ""]


def _headline(outcome: RunOutcome) -> str:
    money = f"cost ${outcome.cost_usd:.4f} · {outcome.duration_s:.1f} s"
    base = code(outcome.base_commit[:12] or "unknown")
    if outcome.status == "verified":
        head = f"**Verified** on rung {code(outcome.verified_rung)}"
    elif outcome.status == "unproven":
        head = "**Unproven**: a patch passed every check, but no test shows that it fixes the issue"
    elif outcome.status == "error":
        head = f"**Error**: {code(first_line(outcome.error) or 'unknown')}"
    elif outcome.status == "exhausted":
        head = f"**No verified patch**: the ladder is exhausted after {outcome.attempts} attempt(s)"
    else:  # any other way of stopping short (a spent budget)
        head = f"**No verified patch** ({code(outcome.status)}) after {outcome.attempts} attempt(s)"
    return f"{head} · {money} · base commit {base}"


def _review(outcome: RunOutcome) -> list[str]:
    """Why a verified patch waits for a person, and who is asked. The reason may name the
    patch's paths (a model chose them): code-spanned."""
    if outcome.status != "verified" or not outcome.needs_review:
        return []
    who = ", ".join(code(r) for r in outcome.reviewers) or "none named (the workflow's `reviewers`)"
    why = outcome.review_why or f"workflow {outcome.workflow!r} asks for a person's review"
    return [f"**Needs a person's review**: {code(why)}. Reviewers: {who}.", ""]


CANDIDATE_CHARS = 20_000


def _patch_head(outcome: RunOutcome) -> str:
    if outcome.status == "verified":
        return (
            f"**Verified patch** (workflow {code(outcome.workflow)} proposes its patches as a "
            "comment: no branch was pushed and no pull request opened; the proof artifact holds "
            "`patch.diff` for `git apply`):"
        )
    return "**Candidate patch** (unproven: no branch was pushed and no pull request opened):"


def _fenced(diff: str, head: str) -> list[str]:
    """The patch in a fence no line of it can close."""
    fence = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", diff)), default=0))
    shown = diff if len(diff) <= CANDIDATE_CHARS else diff[:CANDIDATE_CHARS] + "\n[… trimmed]"
    return [head, "", f"{fence}diff", shown.rstrip("\n"), fence, ""]


def _row(a: Attempt) -> str:
    gate = " ".join(f"{code(v.evaluator)} {'✓' if v.passed else '✗'}" for v in a.verdicts) or "—"
    cells = [
        str(a.seq),
        code(a.rung),
        code(a.model),
        f"{MARK.get(a.status, '!')} {cell(a.status)}",
        gate,
        f"{a.usage.prompt_tokens}/{a.usage.completion_tokens}",
        f"${a.cost_usd:.4f}",
        f"{a.duration_s:.1f}",
    ]
    return "| " + " | ".join(cells) + " |"


def forbidden(files: Sequence[str]) -> list[str]:
    return [f for f in files if f.lower().startswith(FORBIDDEN_PREFIXES)]


def open_pull(
    api: GitHubAPI, repo: str, *, head: str, base: str, title: str, body: str, draft: bool
) -> tuple[str, int]:
    """The new pull request's URL and number; `draft`: opened as a draft."""
    kind = "a draft pull request" if draft else "a pull request"
    data = api.post(
        f"/repos/{repo}/pulls",
        {"title": title, "head": head, "base": base, "body": body, "draft": draft},
        what=f"opening {kind} from {head} into {base}",
    )
    if not isinstance(data, dict):
        return "", 0
    return str(data.get("html_url", "")), int(data.get("number") or 0)


def acknowledge(
    api: GitHubAPI, repo: str, number: int, say: Callable[[str], None], comment_id: int = 0
) -> None:
    """An 👀 reaction on the issue (or on the comment `comment_id` that asked): the person who
    asked sees at once that a run started. Not worth failing the run for: a refusal is only
    logged."""
    path = f"/repos/{repo}/issues/{number}/reactions"
    if comment_id:
        path = f"/repos/{repo}/issues/comments/{comment_id}/reactions"
    try:
        api.post(path, {"content": "eyes"}, what=f"reacting to #{number}")
    except CascadeError as exc:
        say(f"cascade: could not react to #{number} (the run goes on): {exc}")


def comment(api: GitHubAPI, repo: str, number: int, body: str) -> str:
    data = api.post(
        f"/repos/{repo}/issues/{number}/comments", {"body": body}, what=f"commenting on #{number}"
    )
    return str(data.get("html_url", "")) if isinstance(data, dict) else ""
