"""`cascade fix ISSUE-ID`: read the issue, climb the ladder in a sandbox, write the proof, and
optionally apply the verified patch to the user's working tree — unless its workflow holds it
for a person's review (or only proposes it) and `--reviewed` does not say a person has looked.
Sync at the edge; the run itself goes through anyio.run."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cascade.cli.failures import reported, usage_error
from cascade.cli.options import SandboxOption, check_cost_cap

if TYPE_CHECKING:  # imported where they are used: `cascade --help` pays for none of them
    from cascade.cli.progress import Progress
    from cascade.records import RunOutcome


def fix(  # noqa: PLR0917 - typer maps each parameter to a flag
    issue_id: Annotated[
        str,
        typer.Argument(
            help="ISSUE-7 (.cascade/issues/ISSUE-7.md), owner/repo#123, '#123' or an issue URL."
        ),
    ],
    repo: Annotated[
        Path, typer.Option(help="The repository checkout (its HEAD is the base).")
    ] = Path(),
    config: Annotated[
        Path | None, typer.Option(help="A config file instead of cascade.toml.")
    ] = None,
    start_at: Annotated[
        str | None, typer.Option(help="Start at this rung (logged as an override).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Where run folders go (default: .cascade/runs, or [run] out)."),
    ] = None,
    sandbox: SandboxOption = None,
    apply: Annotated[
        bool,
        typer.Option(
            "--apply",
            help="Apply a verified patch to the working tree (refused when it has changes).",
        ),
    ] = False,
    reviewed: Annotated[
        bool,
        typer.Option(
            "--reviewed",
            help=(
                "A person has reviewed the patch: with --apply, apply a patch its workflow "
                'holds for review (review = "human", or apply = "comment").'
            ),
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the outcome as JSON on stdout.")
    ] = False,
    record: Annotated[
        Path | None, typer.Option(help="Append every real model answer to this cassette file.")
    ] = None,
    max_cost_usd: Annotated[
        float | None,
        typer.Option(help="Stop before a call would take the task past this (budget_exhausted)."),
    ] = None,
) -> None:
    """Fix one issue: cheapest rung first, gated in a sandbox, every attempt logged as proof.

    The proof goes to .cascade/runs/<run-id>/ (check it with `cascade proof verify`).
    Exit codes: 0 verified patch · 1 none (exhausted or budget spent) · 2 usage or config
    error · 3 infrastructure (sandbox, provider auth, issue source) · 4 verified, held for
    review: not applied (--apply without --reviewed).
    """
    with reported():
        check_cost_cap(max_cost_usd)
        if reviewed and not apply:
            raise usage_error("--reviewed says a held patch may be applied: give it with --apply")
        request = FixRequest(
            issue_id, repo, config, start_at, out, sandbox, apply, as_json, record, max_cost_usd,
            reviewed,
        )  # fmt: skip
        code = _fix(request)
    raise typer.Exit(code)


HELD_FOR_REVIEW = 4  # the exit code of a verified patch --apply did not apply: see `held`


@dataclass(frozen=True)
class FixRequest:
    issue_id: str
    repo: Path
    config_file: Path | None
    start_at: str | None
    out: Path | None
    backend: str | None
    apply: bool
    as_json: bool
    record: Path | None
    max_cost_usd: float | None = None
    reviewed: bool = False


def _fix(req: FixRequest) -> int:
    """The exit code: the outcome's, or HELD_FOR_REVIEW when --apply left a held patch alone."""
    from cascade.cli.progress import Progress
    from cascade.proof.run_folder import PATCH_FILE
    from cascade.wiring.run_issue import IssueRunner, RunFlags, load_for_run
    from cascade.wiring.settings import repo_root

    # From a folder inside a repository, as git works: the repository is its root, and the
    # config file the nearest one from the folder up.
    start = req.repo.resolve()
    repo = repo_root(start)
    flags = RunFlags(req.config_file, req.backend, req.max_cost_usd)
    loaded = load_for_run(repo, flags, start=start)
    runner = IssueRunner.prepare(loaded, repo, record=req.record, runs_dir=req.out)
    progress = Progress(sys.stderr)
    run = runner.new_run(start_at=req.start_at, on_event=progress)
    if req.apply:
        _require_clean(repo)
    issue = runner.read_issue(req.issue_id)
    parts = runner.parts
    path = f"sandbox {parts.backend}"
    if not parts.workflows:  # else the task's workflow sets them: said on the next line
        path = f"ladder {' → '.join(runner.ladder)}, {path}, gate {', '.join(parts.gate.names)}"
    progress.note(f"{issue.id}: {issue.title} — {path}")
    try:
        run_dir, docker = runner.runs_dir / run.run_id, parts.backend == "docker"
        outcome = _run_interruptibly(lambda: run(issue), run_dir, progress, docker)
    finally:
        progress.close()
    _report(outcome, req.as_json, applying=req.apply)
    if not req.apply:
        return outcome.exit_code
    if outcome.status != "verified":
        typer.echo(
            f"--apply: nothing applied: only a verified patch is ({outcome.status})", err=True
        )
        return outcome.exit_code
    why = held(outcome)
    if why and not req.reviewed:
        patch = f"{_shown(outcome)}/{PATCH_FILE}"
        typer.echo(f"--apply: verified, held for review: not applied: {why}", err=True)
        typer.echo(
            f"next: read {patch}; once a person has reviewed it, `git apply {patch}` applies "
            f"exactly that patch (`cascade fix {outcome.task_id} --apply --reviewed` runs again "
            "and applies the new run's patch)",
            err=True,
        )
        return HELD_FOR_REVIEW
    _apply_patch(repo, Path(outcome.run_dir) / PATCH_FILE)
    return outcome.exit_code


def held(outcome: RunOutcome) -> str:
    """Why `--apply` leaves a verified patch alone without `--reviewed` ("" when it does not):
    its workflow asks for a person's review, or proposes its patches and never applies them."""
    if outcome.needs_review:
        return outcome.review_why or f"workflow {outcome.workflow!r} asks for a person's review"
    if outcome.apply == "comment":
        return (
            f'workflow {outcome.workflow!r} proposes its patches (apply = "comment"): a person '
            "applies them"
        )
    return ""


def _run_interruptibly(
    work: Callable[[], Awaitable[RunOutcome]], run_dir: Path, progress: Progress, docker: bool
) -> RunOutcome:
    """Ctrl-C or SIGTERM: the run is cancelled (its sandboxes closed, a local one's folder
    removed), its unsealed folder marked ABORTED, and the process exits 130 or 143."""
    from cascade.cli.interrupt import Interrupted, docker_leftovers, run_interruptible
    from cascade.proof.run_folder import ABORTED_FILE, RunFolder

    leftovers = docker_leftovers() if docker else None
    try:
        return run_interruptible(work, progress.note, leftovers)
    except Interrupted as exc:
        if run_dir.is_dir() and not RunFolder(run_dir).sealed:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            (run_dir / ABORTED_FILE).write_text(f"{stamp} interrupted: {exc}\n", encoding="utf-8")
        typer.echo(str(exc), err=True)
        typer.echo(f"the run folder {run_dir} is marked {ABORTED_FILE} (never sealed)", err=True)
        raise typer.Exit(exc.exit_code) from None


def _shown(outcome: RunOutcome) -> Path:
    """The run folder as the user will type it: relative to here when it is below here."""
    run_dir, here = Path(outcome.run_dir), Path.cwd()
    return run_dir.relative_to(here) if run_dir.is_relative_to(here) else run_dir


def _report(outcome: RunOutcome, as_json: bool, *, applying: bool = False) -> None:
    shown = _shown(outcome)
    if outcome.status == "verified":
        proof = ", ".join(
            p.test if p.source != "hidden" else "a withheld test" for p in outcome.proving
        )
        head = f"verified on rung {outcome.verified_rung!r}, proven by {proof or 'nothing'}"
    elif outcome.status == "unproven":
        head = (
            "unproven: a patch passed every check, but no test shows that it fixes the issue "
            "(name a failing test in the issue, or let [reproduce] write one)"
        )
    elif outcome.status == "exhausted":
        head = f"no verified patch: the ladder is exhausted after {outcome.attempts} attempt(s)"
        if not outcome.attempts:  # every rung passed over: say why
            head = f"no verified patch: {outcome.stop_reason}"
    elif outcome.status == "budget_exhausted":
        head = (
            f"no verified patch: the budget stopped the ladder after {outcome.attempts} "
            f"attempt(s): {outcome.stop_reason}"
        )
    else:
        head = f"error: {outcome.error}"
    typer.echo(
        f"{outcome.task_id}: {head} (cost ${outcome.cost_usd:.4f}, {outcome.duration_s:.1f}s)",
        err=True,
    )
    if outcome.status == "verified":
        typer.echo(f"patch: {shown}/patch.diff", err=True)
        why = held(outcome)
        if outcome.needs_review:
            who = ", ".join(outcome.reviewers) or "none named"
            typer.echo(f"needs a person's review: {why} (reviewers: {who})", err=True)
        elif why:
            typer.echo(f"proposed, not applied: {why}", err=True)
        if why and not applying:  # --apply says what it did with it
            typer.echo("--apply applies it only with --reviewed", err=True)
    typer.echo(f"proof: {shown}  (check: cascade proof verify {shown})", err=True)
    if outcome.best_unverified:
        best = outcome.best_unverified
        failed = f"failed {', '.join(best.failed)}" if best.failed else "passed every check"
        typer.echo(
            f"best unverified candidate (never applied): #{best.seq} on {best.rung!r}, {failed}: "
            f"{shown}/blobs/{best.patch_sha256}",
            err=True,
        )
    if as_json:
        sys.stdout.write(json.dumps(outcome.model_dump(mode="json"), indent=2) + "\n")


def _require_clean(repo: Path) -> None:
    """Untracked files (the runs folder among them) are fine; changes to tracked files are not."""
    proc = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or proc.stdout.strip():
        raise usage_error(
            f"--apply: {repo} has uncommitted changes; commit or stash them first "
            "(a verified patch is only applied to a clean tree)"
        )


def _apply_patch(repo: Path, patch: Path) -> None:
    _require_clean(repo)  # the tree may have changed while the ladder ran
    proc = subprocess.run(
        ["git", "-C", str(repo), "apply", "--whitespace=nowarn", str(patch)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise usage_error(f"--apply: the verified patch does not apply: {proc.stderr.strip()}")
    typer.echo(f"applied {patch.name} to {repo}", err=True)
