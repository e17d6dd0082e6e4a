"""What the Action leaves behind: a Markdown report (job summary, PR body, issue comment) built
from structured fields only, a branch holding exactly the verified patch, a draft pull request,
or a comment on the issue. Git runs with argv lists; issue text never reaches a shell."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from cascade.errors import InfraError, SourceError
from cascade.proof.summary import cell, first_line, proof_lines
from cascade.records import Attempt, Issue, RunOutcome
from cascade.sources.github_api import GitHubAPI

BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"
FORBIDDEN_PREFIXES = (".github/",)  # workflows run with the repo's secrets: never proposed
BODY_LIMIT = 60_000  # GitHub refuses PR bodies and comments over 65,536 characters
# The sandbox's canonical diff (edit_apply.DIFF), with the user's diff settings pinned so that
# the same change gives the same bytes here.
STAGED_DIFF = (
    "-c", "diff.noprefix=false", "-c", "diff.mnemonicPrefix=false", "-c", "diff.algorithm=myers",
    "-c", "diff.relative=false", "-c", "core.quotePath=true",
    "diff", "--cached", "--no-color", "--no-ext-diff", "--no-renames",
)  # fmt: skip
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


def render_report(
    outcome: RunOutcome,
    attempts: Sequence[Attempt],
    issue: Issue,
    links: ReportLinks,
    *,
    files: Sequence[str] = (),
    note: str = "",
    candidate: str = "",
) -> str:
    """The ladder table, the gate's verdicts and what proves the patch (or why nothing does).
    Model answers, evaluator feedback and findings are left out (they may quote model text);
    the proof holds them. An unproven run's `candidate` patch is shown, fenced, for a human."""
    lines = [f"## cascade: {code(issue.id)} {cell(issue.title)}", "", _headline(outcome), ""]
    if note:
        lines += [note, ""]
    lines += [f"> {cell(n)}" for n in issue.notes] + ([""] if issue.notes else [])
    lines += proof_lines(outcome, attempts)
    if candidate:
        lines += _candidate(candidate)
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
                    f"{len(v.findings)} | {v.duration_s:.1f} |"
                    for v in last.verdicts
                ),
                "",
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


CANDIDATE_CHARS = 20_000


def _candidate(diff: str) -> list[str]:
    """The unproven patch in a fence no line of it can close."""
    fence = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", diff)), default=0))
    shown = diff if len(diff) <= CANDIDATE_CHARS else diff[:CANDIDATE_CHARS] + "\n[… trimmed]"
    return [
        "**Candidate patch** (unproven: no branch was pushed and no pull request opened):",
        "",
        f"{fence}diff",
        shown.rstrip("\n"),
        fence,
        "",
    ]


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


class PatchBranch:
    """A temporary worktree of `workspace` at `base` with the verified patch staged, so the
    checkout itself is never touched. `files` is what git staged; `push` commits and pushes."""

    def __init__(self, workspace: Path, base: str, patch: Path) -> None:
        self.workspace = workspace
        self.base = base
        self.patch = patch.resolve()
        self.files: list[str] = []
        self.diff = ""
        self._tmp = Path(tempfile.mkdtemp(prefix="cascade-branch-"))
        self.tree = self._tmp / "tree"

    def __enter__(self) -> PatchBranch:
        try:
            _git(
                self.workspace, "worktree", "add", "--detach", "--quiet", str(self.tree), self.base
            )
            _git(self.tree, "apply", "--index", "--whitespace=nowarn", str(self.patch))
            staged = _git(self.tree, *STAGED_DIFF, "--name-only", "-z", "HEAD")
            self.diff = _git(self.tree, *STAGED_DIFF, "--full-index", "--binary", "HEAD")
        except BaseException:
            self._cleanup()
            raise
        self.files = [name for name in staged.split("\0") if name]
        return self

    @property
    def sha256(self) -> str:
        """Of the staged change, diffed as the sandbox diffs: equal to the verified patch's."""
        return hashlib.sha256(self.diff.encode()).hexdigest()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._cleanup()

    def push(self, branch: str, message: str, remote: str = "origin") -> str:
        """Commit the staged patch with the bot identity and push it as a new branch; an existing
        branch is never overwritten. Returns the commit sha."""
        identity = ("-c", f"user.name={BOT_NAME}", "-c", f"user.email={BOT_EMAIL}")
        _git(self.tree, *identity, "-c", "commit.gpgsign=false", "commit", "--quiet",
             "--no-verify", "-m", message)  # fmt: skip
        sha = _git(self.tree, "rev-parse", "HEAD").strip()
        proc = _run(self.tree, "push", "--quiet", remote, f"HEAD:refs/heads/{branch}")
        if proc.returncode != 0:
            why = _redact(proc.stderr.strip())
            if "rejected" in why or "already exists" in why:
                raise SourceError(
                    f"{remote} already has a branch {branch} (an earlier run's pull request?); "
                    f"it is never overwritten: delete it, then ask again ({why})"
                )
            raise SourceError(f"git push of {branch} to {remote} failed: {why}")
        return sha

    def _cleanup(self) -> None:
        _run(self.workspace, "worktree", "remove", "--force", str(self.tree))
        shutil.rmtree(self._tmp, ignore_errors=True)
        _run(self.workspace, "worktree", "prune")


def open_draft_pr(api: GitHubAPI, repo: str, *, head: str, base: str, title: str, body: str) -> str:
    """The new draft pull request's URL."""
    data = api.post(
        f"/repos/{repo}/pulls",
        {"title": title, "head": head, "base": base, "body": body, "draft": True},
        what=f"opening a draft pull request from {head} into {base}",
    )
    return str(data.get("html_url", "")) if isinstance(data, dict) else ""


def comment(api: GitHubAPI, repo: str, number: int, body: str) -> str:
    data = api.post(
        f"/repos/{repo}/issues/{number}/comments", {"body": body}, what=f"commenting on #{number}"
    )
    return str(data.get("html_url", "")) if isinstance(data, dict) else ""


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # No prompt for credentials in CI: a push without them must fail, not hang.
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    return subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, check=False, env=env
    )


def _git(cwd: Path, *args: str) -> str:
    proc = _run(cwd, *args)
    if proc.returncode != 0:
        verb = next((a for a in args if not a.startswith("-") and "=" not in a), "")
        raise InfraError(f"git {verb} failed in {cwd}: {_redact(proc.stderr.strip())}")
    return proc.stdout


def _redact(text: str) -> str:
    return re.sub(r"//[^@/\s]+@", "//***@", text)


def current_branch(workspace: Path) -> str:
    """The branch the checkout is on ("" when detached): the pull request's base."""
    proc = _run(workspace, "symbolic-ref", "--quiet", "--short", "HEAD")
    return proc.stdout.strip() if proc.returncode == 0 else ""
