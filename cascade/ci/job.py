"""`cascade ci github`, one GitHub Actions job: decide whether the event may start a run, run the
same engine as `cascade fix` on the checkout, then publish — job summary and step outputs always,
a draft pull request after a verified outcome, a comment on the issue otherwise."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import anyio

from cascade.ci.event import (
    ActionsEnv,
    Refusal,
    Trigger,
    append_summary,
    decide,
    load_event,
    write_outputs,
)
from cascade.ci.publish import (
    PatchBranch,
    ReportLinks,
    code,
    comment,
    current_branch,
    forbidden,
    open_draft_pr,
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


@dataclass
class _Outputs:
    """The step outputs; written whatever happens, so a later step can always read them."""

    verified: bool = False
    patch_path: str = ""
    proof_path: str = ""
    cost_usd: float = 0.0
    pr_url: str = ""
    predicate_type: str = ""
    predicate_path: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "verified": "true" if self.verified else "false",
            "patch-path": self.patch_path,
            "proof-path": self.proof_path,
            "cost-usd": f"{self.cost_usd:.6f}",
            "pr-url": self.pr_url,
            "predicate-type": self.predicate_type,
            "predicate-path": self.predicate_path,
        }


def run_ci(options: CIOptions, environ: Mapping[str, str], say: Say, stream: TextIO) -> int:
    """The exit code: 0 verified and proposed, or refused to run; 1 no verified patch; 2 usage;
    3 infrastructure. `say` writes one log line; `stream` takes the run's progress."""
    env = ActionsEnv.from_environ(environ)
    outputs = _Outputs()
    try:
        return _Job(
            options=options, env=env, environ=environ, outputs=outputs, say=say, stream=stream
        ).go()
    except CascadeError as exc:
        append_summary(env.step_summary, f"**cascade stopped**: {code(str(exc))}")
        raise
    finally:
        write_outputs(env.output, outputs.as_dict())


class _Job:
    def __init__(
        self,
        *,
        options: CIOptions,
        env: ActionsEnv,
        environ: Mapping[str, str],
        outputs: _Outputs,
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
            self.say(f"cascade: not running: {decision.reason}")
            append_summary(self.env.step_summary, f"cascade did not run: {code(decision.reason)}")
            return 0
        token = token_from_env(self.environ)
        if not token:
            raise UsageError(
                "GITHUB_TOKEN is not set: pass the action's `github-token` input "
                "(default: github.token) with contents, pull-requests and issues write access"
            )
        api = GitHubAPI(self.env.api_url or DEFAULT_API_URL, token)
        try:
            return self._run(decision, api)
        finally:
            api.close()

    def _run(self, trigger: Trigger, api: GitHubAPI) -> int:
        from cascade.cli.progress import Progress
        from cascade.wiring.registry import build_source
        from cascade.wiring.run_issue import IssueRunner, RunFlags, load_for_run

        workspace = self.env.workspace.resolve()
        if not workspace.is_dir():
            raise UsageError(f"GITHUB_WORKSPACE {workspace} is not a folder: check out the repo")
        config_file = self.options.config_file
        if config_file is not None and not config_file.is_absolute():
            config_file = workspace / config_file  # the action's input is relative to the repo
        flags = RunFlags(config_file, self.options.backend or None)
        loaded = load_for_run(workspace, flags, self.environ)
        runner = IssueRunner.prepare(loaded, workspace)
        source = build_source(
            loaded.config, workspace, name="github", repo=self.env.repository, api=api,
            trusted_comments_only=True,
        )  # fmt: skip
        try:
            issue = source.get(f"{self.env.repository}#{trigger.number}")
        except IssueError as exc:
            # The person who asked is on the issue, not in the job log: tell them there.
            comment(api, self.env.repository, trigger.number, _unreadable(exc))
            raise
        self.say(f"cascade: @{trigger.actor} asked ({trigger.event}) for a fix of {issue.id}")
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
        self.outputs.cost_usd = outcome.cost_usd
        if outcome.status == "verified":
            return self._propose(api, trigger, issue, outcome, attempts)
        candidate = ""
        best = outcome.best_unverified
        if outcome.status == "unproven" and best is not None:
            blob = RunFolder(Path(outcome.run_dir)).blob(best.patch_sha256)
            candidate = blob.read_bytes().decode("utf-8", errors="replace")
        report = render_report(outcome, attempts, issue, self.links, candidate=candidate)
        self._not_proposed(api, trigger, report)
        return outcome.exit_code

    def _propose(
        self,
        api: GitHubAPI,
        trigger: Trigger,
        issue: Issue,
        outcome: RunOutcome,
        attempts: list[Attempt],
    ) -> int:
        workspace = self.env.workspace.resolve()
        patch_path = Path(outcome.run_dir) / PATCH_FILE
        branch_name = f"cascade/{trigger.number}"
        with PatchBranch(workspace, outcome.base_commit, patch_path) as branch:
            bad = forbidden(branch.files)
            if bad:
                note = (
                    f"The verified patch changes {', '.join(code(f) for f in bad)}: cascade never "
                    "proposes changes under `.github/`. Nothing was pushed."
                )
                report = render_report(
                    outcome, attempts, issue, self.links, files=branch.files, note=note
                )
                self._not_proposed(api, trigger, report)
                return 1
            if branch.sha256 != outcome.patch_sha256:
                raise InfraError(
                    f"the patch staged for {branch_name} does not match the verified patch "
                    f"({branch.sha256[:12]} != {outcome.patch_sha256[:12]}): nothing was pushed"
                )
            self.outputs.verified = True
            self.outputs.patch_path = str(patch_path)
            self._predicate(Path(outcome.run_dir))
            report = render_report(outcome, attempts, issue, self.links, files=branch.files)
            append_summary(self.env.step_summary, report)
            sha = branch.push(branch_name, _commit_message(trigger, issue, outcome, self.links))
        self.say(f"cascade: pushed {branch_name} ({sha[:12]}) with the verified patch")
        base = current_branch(workspace) or trigger.default_branch
        if not base:
            raise UsageError("cannot tell the base branch: the checkout is detached")
        title = f"cascade: {issue.title}"[:200] + f" (#{trigger.number})"
        body = f"{report}\nCloses #{trigger.number}. This pull request is a draft: review it."
        self.outputs.pr_url = open_draft_pr(
            api, self.env.repository, head=branch_name, base=base, title=title, body=body
        )
        self.say(f"cascade: opened a draft pull request: {self.outputs.pr_url}")
        return 0

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

    def _not_proposed(self, api: GitHubAPI, trigger: Trigger, report: str) -> None:
        append_summary(self.env.step_summary, report)
        url = comment(api, self.env.repository, trigger.number, report)
        self.say(f"cascade: no pull request; the summary is on the issue: {url}")


def _commit_message(trigger: Trigger, issue: Issue, outcome: RunOutcome, links: ReportLinks) -> str:
    subject = " ".join(issue.title.split())[:60] or "issue"
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
