"""`/fix <what to change>` on cascade's own draft pull request: check that the pull request is one
cascade opened (its branch `cascade/<issue>` in this very repository, opened by a bot, still
open), fetch that branch to be the run's base commit, and give the models the issue with the
reviewer's words added. Publishing (one more commit on the branch) is in job.py and branch.py.
The reviewer is trusted to ask; their words are still only text for the models, never a shell's."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cascade.ci.branch import BOT_NAME
from cascade.ci.event import Refusal, ReviewRequest
from cascade.ci.publish import code
from cascade.errors import SourceError
from cascade.records import Issue
from cascade.sources.github_api import GitHubAPI

# The branch cascade names its pull requests' heads: the issue's number, nothing else.
BRANCH = re.compile(r"cascade/([1-9][0-9]{0,9})")
REQUEST_CHARS = 20_000  # of the reviewer's words given to the models


@dataclass(frozen=True)
class Review:
    """A review request on a pull request that is cascade's own: the issue it fixes (from the
    branch's name), the branch, and where the pull request is."""

    request: ReviewRequest
    issue: int
    branch: str
    url: str  # the pull request's html_url
    draft: bool = True  # whether the pull request is a draft now


def check_pull(
    api: GitHubAPI, repo: str, request: ReviewRequest, bot: str = BOT_NAME
) -> Review | Refusal:
    """The pull request, read from the API (the event's copy says too little), if cascade may
    revise it; else why not. A refusal about a pull request that is cascade's tells it there.
    `bot`: the login cascade's pull requests are opened as (the job token's,
    github-actions[bot]; an App token's `<app>[bot]`) — any other bot's is not cascade's."""
    n = request.pull
    data = api.get(f"/repos/{repo}/pulls/{n}", what=f"pull request #{n} of {repo}")
    if not isinstance(data, dict):
        raise SourceError(f"GitHub answered pull request #{n} with something other than an object")
    head = _obj(data, "head")
    ref = str(head.get("ref", ""))
    source = str(_obj(head, "repo").get("full_name", ""))
    author = _obj(data, "user")
    if source.lower() != repo.lower():  # names differ only in case: the same repository
        # A fork's branch may have any name, ours included: its code is not the repository's.
        origin = f"the repository {source}" if source else "a repository that no longer exists"
        return Refusal(
            f"pull request #{n} comes from {origin}, not {repo}: cascade revises only its own "
            "pull requests"
        )
    found = BRANCH.fullmatch(ref)
    if found is None:
        return Refusal(
            f"pull request #{n} is not cascade's: its branch {ref!r} is not cascade/<issue>"
        )
    login = str(author.get("login", "")) or "someone"
    if author.get("type") != "Bot" or login != bot:
        return Refusal(
            f"pull request #{n} was opened by @{login}, not by cascade (@{bot}): cascade "
            "revises only its own pull requests"
        )
    state = "merged" if data.get("merged") else str(data.get("state", ""))
    if state != "open":
        return Refusal(
            f"pull request #{n} is {state or 'not open'}: cascade revises only an open pull "
            "request. Reopen it, or ask on the issue for a new one.",
            tell=n,
        )
    if not request.request:
        return Refusal(
            f"`/fix` on pull request #{n} needs the change you want after it, e.g. "
            "`/fix also handle an empty file`",
            tell=n,
        )
    url = str(data.get("html_url", ""))
    draft = bool(data.get("draft", False))
    return Review(request=request, issue=int(found.group(1)), branch=ref, url=url, draft=draft)


def reviewed(issue: Issue, review: Review, head: str) -> Issue:
    """The issue as the models read it for a review: its own text, then the reviewer's words
    under a heading of their own; the base is the pull request's branch at `head`."""
    words = review.request.request
    if len(words) > REQUEST_CHARS:
        words = words[:REQUEST_CHARS] + "\n[… trimmed]"
    login, pull = review.request.actor, review.request.pull
    body = (
        f"{issue.body.rstrip()}\n\n## Review of the draft pull request #{pull} (@{login})\n\n"
        f"The code you are given is that pull request's branch `{review.branch}`: it already "
        "holds the earlier fix of this issue. The reviewer asks for this change to it:\n\n"
        f"{words}\n"
    )
    note = (
        f"a review of draft pull request #{pull}: @{login} asked for a change; the base is its "
        f"branch {review.branch} at {head[:12]}"
    )
    return issue.model_copy(update={"body": body, "notes": (*issue.notes, note)})


def revised(report: str, review: Review, sha: str) -> str:
    """The comment on the pull request after a verified revision was pushed."""
    return (
        f"{report}\ncascade pushed {code(sha[:12])} onto {code(review.branch)}, as "
        f"@{review.request.actor} asked: one commit holding exactly the verified patch above. "
        "Review it before merging.\n"
    )


def moved(review: Review, base: str, found: str) -> str:
    """Why a verified revision was not pushed: the branch moved while cascade worked."""
    now = f"is at {code(found[:12])}" if found else "is gone"
    return (
        f"The branch {code(review.branch)} was at {code(base[:12])} when this run began and now "
        f"{now}: someone pushed to it meanwhile. Nothing was pushed (cascade never force-pushes); "
        "comment `/fix …` again to build on the branch as it is now."
    )


def _obj(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}
