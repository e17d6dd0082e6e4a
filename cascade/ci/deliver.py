"""How a verified patch reaches the repository, as its workflow's policy says: a pull request ready
for review (`apply = "auto"`), a draft (`"draft_pr"`, and always when a person must review it,
never marked ready by cascade), or no branch at all but a comment on the issue (`"comment"`).
Runs sealed before workflows (`apply` empty) open a draft, as before. Review requests that GitHub
refuses are warnings: the pull request stands."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from cascade.ci.publish import comment
from cascade.errors import CascadeError
from cascade.records import RunOutcome
from cascade.sources.github_api import GitHubAPI

Delivery = Literal["ready", "draft", "comment"]


def delivery(outcome: RunOutcome) -> Delivery:
    """A person's review outranks `apply = "auto"`; a comment outranks any pull request."""
    if outcome.apply == "comment":
        return "comment"
    if outcome.apply == "auto" and not outcome.needs_review:
        return "ready"
    return "draft"


def closing(outcome: RunOutcome, number: int) -> str:
    """The pull request body's last line: what closes, and what the reader is to do."""
    if delivery(outcome) == "ready":
        return f"Closes #{number}. Review it before merging."
    if outcome.needs_review:
        return (
            f"Closes #{number}. This pull request is a draft and stays one: its workflow holds "
            "it for a person's review (above). A reviewer marks it ready."
        )
    return f"Closes #{number}. This pull request is a draft: review it."


def request_reviewers(
    api: GitHubAPI, repo: str, number: int, reviewers: Sequence[str]
) -> list[str]:
    """Ask `reviewers` (logins, and `org/team` for a team) to review pull request `number`; one
    warning for each request GitHub refused. The users go in one request and each team in its
    own: GitHub drops a whole request for one team it cannot resolve (as the default Actions
    token cannot: a team needs a token that may read the organisation's teams)."""
    owner = repo.partition("/")[0].lower()
    users = [r.removeprefix("@") for r in reviewers if "/" not in r]
    asks: list[tuple[dict[str, list[str]], str]] = []
    if users:
        asks.append(({"reviewers": users}, ", ".join(users)))
    warnings: list[str] = []
    for team in (r.removeprefix("@") for r in reviewers if "/" in r):
        org, _, slug = team.partition("/")
        if org.lower() != owner:
            warnings.append(
                f"team {team} was not asked: a pull request of {repo} can only request a team "
                f"of {owner}"
            )
            continue
        asks.append(({"team_reviewers": [slug]}, f"team {team}"))
    path = f"/repos/{repo}/pulls/{number}/requested_reviewers"
    for payload, who in asks:
        try:
            api.post(path, payload, what=f"requesting a review of #{number} from {who}")
        except CascadeError as exc:
            warnings.append(f"could not request a review from {who}: {exc}")
    return warnings


def ask_reviewers(
    api: GitHubAPI, repo: str, number: int, reviewers: Sequence[str], say: Callable[[str], None]
) -> str:
    """The workflow's reviewers, requested on the new pull request `number`. A request GitHub
    refuses is a warning — in the log, a comment on the pull request, and the Markdown returned
    for the job summary ("" when every request was taken) — never a failure."""
    warnings = request_reviewers(api, repo, number, reviewers)
    if not warnings:
        say(f"cascade: requested a review from {', '.join(reviewers)}")
        return ""
    for warning in warnings:
        say(f"cascade: warning: {warning}")
    text = unrequested(warnings)
    try:
        comment(api, repo, number, text)
    except CascadeError as exc:
        say(f"cascade: warning: could not comment on #{number} either: {exc}")
    return text


def unrequested(warnings: Sequence[str]) -> str:
    """The pull request comment that says which review requests failed, and what to do."""
    lines = "\n".join(f"- {w}" for w in warnings)
    return (
        "**Warning**: cascade could not request every review its workflow names (the pull "
        f"request stands):\n\n{lines}\n\nRequest them by hand. A team needs a `github-token` "
        "that may read the organisation's teams (a GitHub App with `members: read`, or a token "
        "with `read:org`); the default Actions token cannot."
    )
