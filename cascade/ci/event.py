"""The GitHub Actions side of `cascade ci github`: the runner's environment, the event that
started the job and whether it may start a run (who asked, and how: an issue to fix, or a review
of cascade's own draft pull request), and the step's output files.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cascade.errors import UsageError
from cascade.sources.github import TRUSTED

_REPOSITORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}")
_FIX = re.compile(r"/fix(\s|$)")


@dataclass(frozen=True)
class ActionsEnv:
    """What the runner tells every step through its environment."""

    event_name: str
    event_path: Path
    repository: str  # owner/name
    workspace: Path
    step_summary: Path | None
    output: Path | None
    run_id: str
    run_attempt: str
    api_url: str
    server_url: str
    temp: Path | None = None  # $RUNNER_TEMP: emptied after the job, never inside the checkout

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> ActionsEnv:
        needed = ("GITHUB_EVENT_PATH", "GITHUB_REPOSITORY", "GITHUB_WORKSPACE")
        missing = [name for name in needed if not env.get(name)]
        if missing:
            raise UsageError(
                f"`cascade ci github` runs inside GitHub Actions: {', '.join(missing)} not set"
            )
        repository = env["GITHUB_REPOSITORY"]
        if not _REPOSITORY.fullmatch(repository):
            raise UsageError(f"GITHUB_REPOSITORY is not owner/name: {repository!r}")
        return cls(
            event_name=env.get("GITHUB_EVENT_NAME", ""),
            event_path=Path(env["GITHUB_EVENT_PATH"]),
            repository=repository,
            workspace=Path(env["GITHUB_WORKSPACE"]),
            step_summary=Path(env["GITHUB_STEP_SUMMARY"])
            if env.get("GITHUB_STEP_SUMMARY")
            else None,
            output=Path(env["GITHUB_OUTPUT"]) if env.get("GITHUB_OUTPUT") else None,
            run_id=env.get("GITHUB_RUN_ID", ""),
            run_attempt=env.get("GITHUB_RUN_ATTEMPT", "1"),
            api_url=env.get("GITHUB_API_URL", ""),
            server_url=env.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/"),
            temp=Path(env["RUNNER_TEMP"]) if env.get("RUNNER_TEMP") else None,
        )

    @property
    def run_url(self) -> str:
        if not self.run_id:
            return ""
        return f"{self.server_url}/{self.repository}/actions/runs/{self.run_id}"

    @property
    def artifact_name(self) -> str:
        """The name action.yml uploads the proof under (the same two numbers, the same order)."""
        return f"cascade-proof-{self.run_id or 'local'}-{self.run_attempt or '1'}"


@dataclass(frozen=True)
class Trigger:
    """Run cascade on this issue."""

    number: int
    event: str
    actor: str
    default_branch: str


@dataclass(frozen=True)
class ReviewRequest:
    """Run cascade again on pull request `pull` (which must be cascade's own: checked against the
    API before anything runs) with the reviewer's `request`: the comment's words after /fix."""

    pull: int
    actor: str
    request: str
    comment_id: int
    default_branch: str


@dataclass(frozen=True)
class Refusal:
    """Do nothing, and say why in the log (exit 0: not running is not a failure). `tell`: the
    issue or pull request to say it on as well (0: the log only)."""

    reason: str
    tell: int = 0


def load_event(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UsageError(f"the event payload {path} cannot be read: {exc}") from exc
    if not isinstance(data, dict):
        raise UsageError(f"the event payload {path} is not a JSON object")
    return data


def decide(
    event_name: str, payload: Mapping[str, Any], label: str
) -> Trigger | ReviewRequest | Refusal:
    """`issues: labeled` with `label`, or an `issue_comment` that starts with /fix (on an issue: a
    fix; on a pull request: a review of it); from a person the repository trusts (OWNER, MEMBER,
    COLLABORATOR), never from a bot."""
    name = event_name or ("issue_comment" if "comment" in payload else "issues")
    issue = _obj(payload, "issue")
    sender = _obj(payload, "sender")
    actor = str(sender.get("login", "")) or "someone"
    if name == "workflow_dispatch":
        return _dispatched(payload, actor)
    if name not in ("issues", "issue_comment"):
        return Refusal(
            f"event {name!r} is not handled (only issues: labeled, issue_comment and "
            "workflow_dispatch with an `issue` input)"
        )
    if not issue or not isinstance(issue.get("number"), int):
        return Refusal(f"the {name} event carries no issue")
    if "pull_request" in issue and name != "issue_comment":
        return Refusal(f"#{issue['number']} is a pull request: cascade fixes issues")
    if sender.get("type") == "Bot":
        return Refusal(f"@{actor} is a bot: bots cannot start cascade")
    if name == "issues":
        refusal = _check_label(payload, issue, actor, label)
    else:
        refusal = _check_comment(payload, actor)
    if refusal is not None:
        return refusal
    repo = _obj(payload, "repository")
    if "pull_request" in issue:
        comment = _obj(payload, "comment")
        words = str(comment.get("body", "")).lstrip()[len("/fix") :]  # _check_comment: it starts so
        comment_id = comment.get("id")
        return ReviewRequest(
            pull=issue["number"],
            actor=actor,
            request=words.replace("\r\n", "\n").strip(),
            comment_id=comment_id if isinstance(comment_id, int) else 0,
            default_branch=str(repo.get("default_branch") or ""),
        )
    return Trigger(
        number=issue["number"],
        event=name,
        actor=actor,
        default_branch=str(repo.get("default_branch") or ""),
    )


def _dispatched(payload: Mapping[str, Any], actor: str) -> Trigger | Refusal:
    """A run started by hand (`workflow_dispatch`): only people with write access can, so the
    person is trusted; the issue's number comes from the workflow's `issue` input."""
    raw = str(_obj(payload, "inputs").get("issue", "")).strip().lstrip("#")
    if not raw.isdigit() or int(raw) < 1:
        return Refusal(
            f"workflow_dispatch needs an `issue` input with an issue number, not {raw!r}"
        )
    repo = _obj(payload, "repository")
    return Trigger(
        number=int(raw),
        event="workflow_dispatch",
        actor=actor,
        default_branch=str(repo.get("default_branch") or ""),
    )


def _check_label(
    payload: Mapping[str, Any], issue: Mapping[str, Any], actor: str, label: str
) -> Refusal | None:
    if payload.get("action") != "labeled":
        return Refusal(f"issues event action {payload.get('action')!r} is not 'labeled'")
    got = str(_obj(payload, "label").get("name", ""))
    if got != label:
        return Refusal(f"label {got!r} is not the trigger label {label!r}")
    # Labelling takes triage access, so the labeller is trusted, unless the label came with the
    # issue itself (an issue template's `labels:`): then the author is the one asking.
    author = str(_obj(issue, "user").get("login", ""))
    association = str(issue.get("author_association", "NONE"))
    if actor == author and association not in TRUSTED:
        return Refusal(
            f"@{actor} labelled their own issue and is {association}, not OWNER, MEMBER or "
            "COLLABORATOR: a maintainer must add the label"
        )
    return None


def _check_comment(payload: Mapping[str, Any], actor: str) -> Refusal | None:
    if payload.get("action") != "created":
        return Refusal(f"issue_comment action {payload.get('action')!r} is not 'created'")
    comment = _obj(payload, "comment")
    if not _FIX.match(str(comment.get("body", "")).lstrip()):
        return Refusal("the comment does not start with /fix")
    association = str(comment.get("author_association", "NONE"))
    if association not in TRUSTED:
        return Refusal(
            f"@{actor} is {association}, not OWNER, MEMBER or COLLABORATOR: /fix is refused"
        )
    return None


def _obj(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def write_outputs(path: Path | None, outputs: Mapping[str, str]) -> None:
    """Append step outputs to $GITHUB_OUTPUT; a value with a line break uses the heredoc form."""
    if path is None:
        return
    lines = []
    for name, value in outputs.items():
        if "\n" in value or "\r" in value:
            delimiter = f"ghadelimiter_{secrets.token_hex(8)}"
            lines.append(f"{name}<<{delimiter}\n{value}\n{delimiter}")
        else:
            lines.append(f"{name}={value}")
    with path.open("a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def append_summary(path: Path | None, markdown: str) -> None:
    """Add to the job summary ($GITHUB_STEP_SUMMARY), which renders as Markdown."""
    if path is None:
        return
    with path.open("a", encoding="utf-8") as handle:
        handle.write(markdown.rstrip("\n") + "\n\n")
