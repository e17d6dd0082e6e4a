"""`cascade ci github`, one GitHub Actions job: decide whether the event may start a run, run the
same engine as `cascade fix` on the checkout, then publish — job summary and step outputs always,
a pull request after a verified outcome (a draft unless its workflow says `apply = "auto"`, and
always a draft with its reviewers requested when a person must review it; a comment with the patch
when it says `"comment"`), a comment on the issue otherwise. A `/fix` on cascade's own pull
request runs on its branch instead and adds one commit to it."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import anyio

from cascade.ci.branch import BOT_NAME, Moved, PatchBranch, current_branch, fetch_branch
from cascade.ci.deliver import ask_reviewers, closing, delivery
from cascade.ci.event import (
    ActionsEnv,
    Refusal,
    ReviewRequest,
    Trigger,
    append_summary,
    decide,
    load_event,
    write_outputs,
)
from cascade.ci.iterate import Review, check_pull, moved, reviewed, revised
from cascade.ci.outputs import StepOutputs
from cascade.ci.publish import (
    ReportLinks,
    acknowledge,
    code,
    comment,
    forbidden,
    open_pull,
    render_report,
)
from cascade.core.events import Event
from cascade.errors import CascadeError, InfraError, IssueError, UsageError
from cascade.proof.log import canonical_json
from cascade.proof.run_folder import PATCH_FILE, RunFolder
from cascade.records import Attempt, Issue, RunOutcome
from cascade.sources.github_api import DEFAULT_API_URL, GitHubAPI, token_from_env

Say = Callable[[str], None]


@dataclass(frozen=True)
class CIOptions:
    label: str = "cascade"
    config_file: Path | None = None
    backend: str | None = None
    artifact_name: str = ""  # default: cascade-proof-<run id>-<run attempt>, as action.yml names it
    max_cost_usd: float | None = None  # per run: no call that would take it past this
    fail_on_no_patch: bool = True  # False: no verified patch exits 0 (the issue has the report)
    bot: str = BOT_NAME  # who cascade's pull requests are opened as (an App token: `<app>[bot]`)


def run_ci(options: CIOptions, environ: Mapping[str, str], say: Say, stream: TextIO) -> int:
    """The exit code: 0 verified and proposed, or refused to run; 1 no verified patch; 2 usage;
    3 infrastructure. `say` writes one log line; `stream` takes the run's progress."""
    env = ActionsEnv.from_environ(environ)
    outputs = StepOutputs()
    try:
        return _Job(
            options=options, env=env, environ=environ, outputs=outputs, say=say, stream=stream
        ).go()
    except CascadeError as exc:
        append_summary(env.step_summary, f"**cascade stopped**: {code(str(exc))}")
        raise
    finally:
        write_outputs(env.output, outputs.as_dict())


@dataclass(frozen=True)
class _Ran:
    """One finished run: what was asked, the task as the models read it, and the outcome."""

    trigger: Trigger
    issue: Issue
    outcome: RunOutcome
    attempts: list[Attempt]
    review: Review | None = None  # a /fix on cascade's own pull request

    @property
    def where(self) -> int:
        """The issue, or for a review the pull request, that hears of the outcome."""
        return self.review.request.pull if self.review else self.trigger.number

    @property
    def patch(self) -> Path:
        return Path(self.outcome.run_dir) / PATCH_FILE

    def report(
        self, links: ReportLinks, *, files: Sequence[str] = (), note: str = "", patch: str = ""
    ) -> str:
        return render_report(
            self.outcome, self.attempts, self.issue, links,
            files=files, note=note, patch_text=patch,
        )  # fmt: skip


class _Job:
    def __init__(
        self,
        *,
        options: CIOptions,
        env: ActionsEnv,
        environ: Mapping[str, str],
        outputs: StepOutputs,
        say: Say,
        stream: TextIO,
    ) -> None:
        self.options, self.env, self.environ = options, env, environ
        self.outputs, self.say, self.stream = outputs, say, stream
        self.links = ReportLinks(options.artifact_name or env.artifact_name, env.run_url)

    def go(self) -> int:
        label = self.options.label.strip()
        if not label or "\n" in label:
            raise UsageError(
                f"the trigger label (--label, the action's `label` input) must be one non-empty "
                f"line, not {self.options.label!r}"
            )
        decision = decide(self.env.event_name, load_event(self.env.event_path), label)
        if isinstance(decision, Refusal):
            return self._refused(decision)
        token = token_from_env(self.environ)
        if not token:
            raise UsageError(
                "GITHUB_TOKEN is not set: pass the action's `github-token` input "
                "(default: github.token) with contents, pull-requests and issues write access"
            )
        api = GitHubAPI(self.env.api_url or DEFAULT_API_URL, token)
        try:
            if isinstance(decision, ReviewRequest):
                return self._review(decision, api)
            return self._run(decision, api)
        finally:
            api.close()

    def _refused(self, refusal: Refusal, api: GitHubAPI | None = None) -> int:
        self.say(f"cascade: not running: {refusal.reason}")
        append_summary(self.env.step_summary, f"cascade did not run: {code(refusal.reason)}")
        if refusal.tell and api is not None:
            text = f"cascade did not run: {refusal.reason}"
            comment(api, self.env.repository, refusal.tell, text)
        return 0

    def _review(self, request: ReviewRequest, api: GitHubAPI) -> int:
        """A /fix on a pull request: only on cascade's own, and on its branch as it is now."""
        review = check_pull(api, self.env.repository, request, self.options.bot)
        if isinstance(review, Refusal):
            return self._refused(review, api)
        head = fetch_branch(self.env.workspace.resolve(), review.branch)
        self.say(f"cascade: pull request #{request.pull} is cascade's: {review.branch} at {head}")
        trigger = Trigger(review.issue, "issue_comment", request.actor, request.default_branch)
        return self._run(trigger, api, review, head)

    def _run(
        self, trigger: Trigger, api: GitHubAPI, review: Review | None = None, head: str = ""
    ) -> int:
        ran = self._execute(trigger, api, review, head)
        outcome = ran.outcome
        self.outputs.cost_usd = outcome.cost_usd
        self.outputs.workflow = outcome.workflow
        self.outputs.needs_review = outcome.needs_review and outcome.status == "verified"
        if outcome.status == "verified":
            return self._propose(api, ran)
        candidate = ""
        best = outcome.best_unverified
        if outcome.status == "unproven" and best is not None:
            blob = RunFolder(Path(outcome.run_dir)).blob(best.patch_sha256)
            candidate = blob.read_bytes().decode("utf-8", errors="replace")
        self._not_proposed(api, ran.where, ran.report(self.links, patch=candidate))
        if outcome.exit_code == 1 and not self.options.fail_on_no_patch:
            self.say("cascade: no verified patch; exit 0 as asked (fail-on-no-patch: false)")
            return 0
        return outcome.exit_code

    def _execute(self, trigger: Trigger, api: GitHubAPI, review: Review | None, head: str) -> _Ran:
        """The engine's run of the issue, at the checkout's HEAD or (a review) at `head`."""
        from cascade.cli.progress import Progress
        from cascade.wiring.registry import build_source
        from cascade.wiring.run_issue import IssueRunner, RunFlags, load_for_run

        workspace = self.env.workspace.resolve()
        if not workspace.is_dir():
            raise UsageError(f"GITHUB_WORKSPACE {workspace} is not a folder: check out the repo")
        config_file = self.options.config_file
        if config_file is not None and not config_file.is_absolute():
            config_file = workspace / config_file  # the action's input is relative to the repo
        flags = RunFlags(config_file, self.options.backend or None, self.options.max_cost_usd)
        loaded = load_for_run(workspace, flags, self.environ)
        runner = IssueRunner.prepare(loaded, workspace, commit=head or None)
        where = review.request.pull if review else trigger.number
        source = build_source(
            loaded.config, workspace, name="github", repo=self.env.repository, api=api,
            trusted_comments_only=True,
        )  # fmt: skip
        try:
            issue = source.get(f"{self.env.repository}#{trigger.number}")
        except IssueError as exc:
            # The person who asked is on the issue, not in the job log: tell them there.
            comment(api, self.env.repository, where, _unreadable(exc))
            raise
        if review is not None:
            issue = reviewed(issue, review, runner.commit)
            self.say(f"cascade: @{trigger.actor} asked on #{where} for a change to {issue.id}")
        else:
            self.say(f"cascade: @{trigger.actor} asked ({trigger.event}) for a fix of {issue.id}")
        asked = review.request.comment_id if review else 0
        acknowledge(api, self.env.repository, where, self.say, comment_id=asked)
        attempts: list[Attempt] = []
        progress = Progress(self.stream)

        def on_event(event: Event) -> None:
            progress(event)
            if event.kind == "attempt_done" and event.attempt is not None:
                attempts.append(event.attempt)

        run = runner.new_run(on_event=on_event)
        self.outputs.proof_path = str(runner.runs_dir / run.run_id)
        ladder = " → ".join(runner.ladder)
        progress.note(f"{issue.id}: ladder {ladder}, sandbox {runner.parts.backend}")
        try:
            outcome = anyio.run(run, issue)
        finally:
            progress.close()
        return _Ran(trigger, issue, outcome, attempts, review)

    def _propose(self, api: GitHubAPI, ran: _Ran) -> int:
        workspace = self.env.workspace.resolve()
        trigger, issue, outcome, review = ran.trigger, ran.issue, ran.outcome, ran.review
        branch_name = review.branch if review else f"cascade/{trigger.number}"
        with PatchBranch(workspace, outcome.base_commit, ran.patch) as branch:
            bad = forbidden(branch.files)
            if bad:
                note = (
                    f"The verified patch changes {', '.join(code(f) for f in bad)}: cascade never "
                    "proposes changes under `.github/`. Nothing was pushed."
                )
                report = ran.report(self.links, files=branch.files, note=note)
                self._not_proposed(api, ran.where, report)
                return 1
            verified = ran.patch.read_bytes()  # what the receipt's sha256 names
            same = hashlib.sha256(verified).hexdigest() == outcome.patch_sha256
            if not same or not branch.holds(verified.decode("utf-8")):
                raise InfraError(
                    f"the change staged for {branch_name} ({branch.sha256[:12]}) is not exactly "
                    f"the verified patch ({outcome.patch_sha256[:12]}): nothing was pushed"
                )
            message = _commit_message(ran, self.links)
            if review is not None:
                return self._revise(api, ran, review, branch, message)
            how = delivery(outcome)
            if how == "comment":
                return self._propose_in_comment(api, ran, branch.files)
            self._verified(ran)
            report = ran.report(self.links, files=branch.files)
            append_summary(self.env.step_summary, report)
            sha = branch.push(branch_name, message)
        self.say(f"cascade: pushed {branch_name} ({sha[:12]}) with the verified patch")
        base = current_branch(workspace) or trigger.default_branch
        if not base:
            raise UsageError("cannot tell the base branch: the checkout is detached")
        title = f"cascade: {issue.title}"[:200] + f" (#{trigger.number})"
        body = f"{report}\n{closing(outcome, trigger.number)}"
        draft = how == "draft"
        url, number = open_pull(
            api, self.env.repository,
            head=branch_name, base=base, title=title, body=body, draft=draft,
        )  # fmt: skip
        self.outputs.pr_url = url
        self.say(f"cascade: opened a {'draft ' if draft else ''}pull request: {url}")
        if outcome.reviewers and number:
            warned = ask_reviewers(api, self.env.repository, number, outcome.reviewers, self.say)
            if warned:
                append_summary(self.env.step_summary, warned)
        held = (outcome.review_why or "its workflow asks for it") if outcome.needs_review else ""
        comment(
            api, self.env.repository, trigger.number, self.links.done(url, draft=draft, held=held)
        )
        return 0

    def _propose_in_comment(
        self, api: GitHubAPI, ran: _Ran, files: Sequence[str], why: str = ""
    ) -> int:
        """`apply = "comment"` (or `why` a patch may not be pushed): the verified patch and its
        proof summary on the issue or pull request, for a person to apply; nothing pushed."""
        self._verified(ran)
        diff = ran.patch.read_bytes().decode("utf-8", errors="replace")
        why = why or f"workflow {ran.outcome.workflow!r} proposes its patches as a comment"
        report = ran.report(self.links, files=files, patch=diff, note=f"Not pushed: {why}.")
        append_summary(self.env.step_summary, report)
        url = comment(api, self.env.repository, ran.where, report)
        self.say(f"cascade: verified; nothing was pushed ({why}): {url}")
        return 0

    def _revise(
        self, api: GitHubAPI, ran: _Ran, review: Review, branch: PatchBranch, message: str
    ) -> int:
        """One more commit on cascade's branch, a fast-forward, and the report on the pull
        request; a branch that moved meanwhile is left as it is, and the pull request told. The
        workflow's policy holds for a revision too: a patch proposed only as a comment, or held
        for a person's review while the pull request is ready for review, is commented on the
        pull request and never pushed; a held one pushed onto a draft asks its reviewers."""
        outcome = ran.outcome
        if delivery(outcome) == "comment":
            return self._propose_in_comment(api, ran, branch.files)
        if outcome.needs_review and not review.draft:
            why = (
                f"{outcome.review_why or 'its workflow holds it for a person'}, and pull request "
                f"#{review.request.pull} is ready for review: a held patch is never pushed onto "
                "it. Mark the pull request a draft and ask again, or apply the patch below by hand"
            )
            return self._propose_in_comment(api, ran, branch.files, why=why)
        pushed = branch.push_onto(review.branch, message)
        if isinstance(pushed, Moved):
            self.say(f"cascade: {review.branch} moved while cascade worked: nothing was pushed")
            note = moved(review, branch.base, pushed.found)
            self._not_proposed(
                api, ran.where, ran.report(self.links, files=branch.files, note=note)
            )
            return 1
        self._verified(ran)
        report = ran.report(self.links, files=branch.files)
        append_summary(self.env.step_summary, report)
        self.outputs.pr_url = review.url
        self.say(f"cascade: pushed {pushed[:12]} onto {review.branch} with the verified patch")
        comment(api, self.env.repository, ran.where, revised(report, review, pushed))
        if outcome.needs_review and outcome.reviewers:
            number, repo = review.request.pull, self.env.repository
            warned = ask_reviewers(api, repo, number, outcome.reviewers, self.say)
            if warned:
                append_summary(self.env.step_summary, warned)
        return 0

    def _verified(self, ran: _Ran) -> None:
        self.outputs.verified = True
        self.outputs.patch_path = str(ran.patch)
        self._predicate(Path(ran.outcome.run_dir))

    def _predicate(self, run_dir: Path) -> None:
        """The receipt's predicate in a file outside the proof folder (which must stay as sealed),
        for the Action's `actions/attest` step: a GitHub attestation binding the same claims to
        the patch, signed keylessly by the workflow's identity."""
        statement = RunFolder(run_dir).receipt()
        temp = self.env.temp or Path(tempfile.gettempdir())
        path = temp / f"cascade-predicate-{run_dir.name}.json"
        path.write_bytes(canonical_json(statement["predicate"]) + b"\n")
        self.outputs.predicate_type = str(statement["predicateType"])
        self.outputs.predicate_path = str(path)

    def _not_proposed(self, api: GitHubAPI, number: int, report: str) -> None:
        append_summary(self.env.step_summary, report)
        url = comment(api, self.env.repository, number, report)
        self.say(f"cascade: nothing pushed; the summary is on #{number}: {url}")


def _commit_message(ran: _Ran, links: ReportLinks) -> str:
    trigger, outcome, review = ran.trigger, ran.outcome, ran.review
    subject = " ".join(ran.issue.title.split())[:60] or "issue"
    if review is not None:  # the reviewer's words stay out: they are in the proof's prompts
        subject = f"review of #{review.request.pull} by @{review.request.actor}"
    proven = [
        "Proven by a withheld test"
        if p.source == "hidden"
        else f"Proven by {p.test} ({p.source}" + (f", written by {p.model})" if p.model else ")")
        for p in outcome.proving
    ]
    return (
        f"cascade: fix #{trigger.number}: {subject}\n\n"
        f"Verified on rung {outcome.verified_rung} at base {outcome.base_commit[:12]}.\n"
        + "".join(f"{line}.\n" for line in proven)
        + f"Fix written by {outcome.fix_model}.\n"
        f"Patch sha256: {outcome.patch_sha256}\n"
        f"Proof: run {outcome.run_id}, artifact {links.artifact}.\n"
    )


def _unreadable(exc: IssueError) -> str:
    return (
        "cascade could not read this issue as a task, so nothing ran:\n\n"
        f"{code(str(exc))}\n\nFix the issue (its ```cascade block) and ask again."
    )
