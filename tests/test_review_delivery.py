"""Human review as an outcome, and how a verified patch is delivered, on real runs of the demo:
`cascade fix --apply` leaves a patch its workflow holds for review alone (exit 4, the tree
untouched) unless `--reviewed` says a person has looked; `cascade ci github` opens such a patch as
a draft, requests the workflow's reviewers and never marks it ready; `apply = "auto"` opens a
ready pull request, `apply = "comment"` only comments. The CI runs use the world of
tests/test_ci_github.py (bare origin, loopback REST)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cascade.ci.deliver import delivery, request_reviewers
from cascade.cli.main import app
from cascade.proof.summary import render_summary
from cascade.records import RunOutcome
from cascade.sources.github_api import GitHubAPI
from cascade.testing import git
from tests.fake_github import serve
from tests.test_ci_github import DEMO, REPO, World, labeled, set_workflows
from tests.test_ci_github import world as github_world  # noqa: F401 - a fixture, for `world`

runner = CliRunner()


@pytest.fixture
def world(github_world: World) -> World:  # noqa: F811 - the imported fixture, by its name
    return github_world


MONEY = """[[workflows]]
name = "money"
match = { labels = ["money"] }
review = "human"
reviewers = ["alice", "acme/payments"]
"""


def _fix(repo: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    result = runner.invoke(app, ["fix", *args, "--repo", str(repo), "--sandbox", "local"])
    return result.exit_code, json.loads(result.stdout or "{}"), result.stderr


def _commit_workflows(demo: Path, workflows: str) -> None:
    """The workflows, committed: --apply wants a clean tree."""
    set_workflows(demo / "cascade.toml", workflows)
    git(demo, "commit", "-q", "-am", "workflows")


def _verifies(run_dir: str | Path) -> None:
    verify = runner.invoke(app, ["proof", "verify", str(run_dir)])
    assert verify.exit_code == 0, verify.stdout


def test_apply_holds_a_patch_for_review_until_reviewed_says_a_person_looked(demo: Path) -> None:
    _commit_workflows(demo, MONEY)
    money = (demo / "invoicekit" / "money.py").read_text()
    # Without --apply: verified (exit 0), and the output says who must review it and why.
    code, outcome, err = _fix(demo, "DEMO-1", "--json")
    assert code == 0, err
    assert outcome["status"] == "verified" and outcome["workflow"] == "money"
    assert outcome["needs_review"] is True and outcome["reviewers"] == ["alice", "acme/payments"]
    why = "workflow 'money' asks for a person's review"
    assert outcome["review_why"] == why
    assert f"needs a person's review: {why} (reviewers: alice, acme/payments)" in err
    assert "--apply applies it only with --reviewed" in err
    summary = (Path(outcome["run_dir"]) / "summary.md").read_text()
    assert "· workflow `money` ·" in summary and "## Needs review" in summary
    assert f"{why}. Reviewers: `alice`, `acme/payments`." in summary
    _verifies(outcome["run_dir"])  # summary.md is what the records and the outcome say
    # --apply: verified, held for review, not applied: exit 4 and the tree as it was.
    code, outcome, err = _fix(demo, "DEMO-1", "--json", "--apply")
    assert code == 4, err
    assert outcome["status"] == "verified" and outcome["needs_review"] is True
    assert f"--apply: verified, held for review: not applied: {why}" in err
    patch = f"{outcome['run_dir']}/patch.diff"
    assert f"read {patch}" in err and f"git apply {patch}" in err
    assert "cascade fix DEMO-1 --apply --reviewed" in err
    assert "applied patch.diff" not in err
    assert git(demo, "status", "--porcelain", "--untracked-files=no") == ""
    assert (demo / "invoicekit" / "money.py").read_text() == money
    # --apply --reviewed: a person has looked; the patch is applied.
    code, outcome, err = _fix(demo, "DEMO-1", "--json", "--apply", "--reviewed")
    assert code == 0, err
    assert "applied patch.diff" in err and "held for review" not in err
    assert git(demo, "diff", "--name-only").split() == ["invoicekit/money.py"]
    assert (demo / "invoicekit" / "money.py").read_text() != money


def test_a_workflow_that_proposes_by_comment_is_not_applied_either(demo: Path) -> None:
    proposals = '[[workflows]]\nname = "proposals"\nmatch = { labels = ["money"] }\n'
    _commit_workflows(demo, proposals + 'apply = "comment"\n')
    code, outcome, err = _fix(demo, "DEMO-1", "--json", "--apply")
    assert code == 4, err
    assert outcome["apply"] == "comment" and outcome["needs_review"] is False
    assert "workflow 'proposals' proposes its patches (apply = \"comment\")" in err
    assert git(demo, "status", "--porcelain", "--untracked-files=no") == ""
    # --reviewed means nothing without --apply: refused before anything runs or is spent.
    runs = len(list((demo / ".cascade" / "runs").iterdir()))
    code, _, err = _fix(demo, "DEMO-1", "--reviewed")
    assert code == 2 and "--reviewed" in err and "--apply" in err
    assert len(list((demo / ".cascade" / "runs").iterdir())) == runs


def _money_issue(world: World, workflows: str) -> None:
    """GitHub issue #2 (DEMO-2's text and answers), labelled `money`, and `workflows` in the
    workspace's config."""
    demo2 = (DEMO / ".cascade" / "issues" / "DEMO-2.md").read_text().split("---", 2)[2]
    world.github.add_issue(
        REPO, 2, title="CSV import breaks on quoted descriptions", body=demo2.strip(),
        labels=[{"name": "money"}, {"name": "bug"}],
    )  # fmt: skip
    world.workflows(workflows)


def _never_ready(world: World) -> None:
    """Nothing but GETs and POSTs of the REST routes cascade uses: no PATCH of the pull request,
    no GraphQL `markPullRequestReadyForReview`."""
    assert {r.method for r in world.github.requests} <= {"GET", "POST"}
    assert not any("graphql" in r.path or "ready" in r.path for r in world.github.requests)


def test_ci_opens_a_held_patch_as_a_draft_and_requests_its_reviewers(world: World) -> None:
    _money_issue(world, MONEY)
    code, err = world.run("issues", labeled(2))
    assert code == 0, err
    out = world.outputs()
    assert out["verified"] == "true" and out["pr-url"].endswith("/pull/100")
    assert (out["workflow"], out["needs-review"]) == ("money", "true")  # for a later step
    assert world.branches() == ["cascade/2", "main"]
    (pr,) = world.github.posted("/pulls")
    assert pr.body["draft"] is True and world.github.pulls[REPO, 100]["draft"] is True
    _never_ready(world)
    # Users in one request, each team (by its slug) in its own.
    asked = [r.body for r in world.github.posted("/pulls/100/requested_reviewers")]
    assert asked == [{"reviewers": ["alice"]}, {"team_reviewers": ["payments"]}]
    assert world.github.requested(REPO, 100) == (["alice"], ["payments"])
    assert "requested a review from alice, acme/payments" in err
    body = pr.body["body"]
    why = "workflow 'money' asks for a person's review"
    assert f"**Needs a person's review**: `{why}`. Reviewers: `alice`, `acme/payments`." in body
    assert "This pull request is a draft and stays one" in body and "Closes #2." in body
    (done,) = world.github.posted("/issues/2/comments")
    assert "held for a person's review" in done.body["body"]
    assert "stays a draft until a reviewer marks it ready" in done.body["body"]
    assert "**Needs a person's review**" in world.summary()
    _verifies(out["proof-path"])


def test_a_refused_review_request_is_a_warning_and_the_draft_stands(world: World) -> None:
    # `apply = "auto"` too: a person's review outranks it, the pull request is a draft.
    flow = MONEY.replace('"acme/payments"]', '"acme/payments", "other/ops"]\napply = "auto"')
    _money_issue(world, flow)
    world.github.unresolvable_teams = {"payments"}  # as the default Actions token cannot
    code, err = world.run("issues", labeled(2))
    assert code == 0, err
    assert world.outputs()["pr-url"].endswith("/pull/100")
    assert world.github.pulls[REPO, 100]["draft"] is True
    # alice is still asked; the team GitHub refused and the other organisation's are warnings.
    assert world.github.requested(REPO, 100) == (["alice"], [])
    assert "cascade: warning: could not request a review from team acme/payments" in err
    assert "GitHub API error 422" in err
    assert "cascade: warning: team other/ops was not asked" in err
    (warning,) = world.github.posted("/issues/100/comments")
    text = warning.body["body"]
    assert text.startswith("**Warning**") and "team acme/payments" in text
    assert "other/ops" in text and "`github-token`" in text
    assert "could not request a review from team acme/payments" in world.summary()
    _never_ready(world)


def test_apply_auto_opens_a_ready_pull_request(world: World) -> None:
    _money_issue(
        world, '[[workflows]]\nname = "fast"\nmatch = { labels = ["money"] }\napply = "auto"\n'
    )
    code, err = world.run("issues", labeled(2))
    assert code == 0, err
    (pr,) = world.github.posted("/pulls")
    assert pr.body["draft"] is False and world.github.pulls[REPO, 100]["draft"] is False
    assert "opened a pull request:" in err and "draft" not in pr.body["body"].lower()
    assert pr.body["body"].rstrip().endswith("Closes #2. Review it before merging.")
    assert world.github.posted("/requested_reviewers") == []  # nobody named
    (done,) = world.github.posted("/issues/2/comments")
    assert "ready for review (its workflow says `apply = auto`)" in done.body["body"]


def test_apply_comment_comments_the_verified_patch_and_opens_nothing(world: World) -> None:
    _money_issue(
        world,
        '[[workflows]]\nname = "proposals"\nmatch = { labels = ["money"] }\napply = "comment"\n',
    )
    code, err = world.run("issues", labeled(2))
    assert code == 0, err
    out = world.outputs()
    assert out["verified"] == "true" and out["pr-url"] == ""
    assert world.branches() == ["main"] and world.github.posted("/pulls") == []
    (note,) = world.github.posted("/issues/2/comments")
    text = note.body["body"]
    assert "**Verified** on rung `strong`" in text and "## What proves it" in text
    assert "**Verified patch** (workflow `proposals` proposes its patches as a comment" in text
    patch = Path(out["patch-path"]).read_text()
    assert f"```diff\n{patch.rstrip()}\n```" in text
    assert "**Candidate patch**" not in text
    assert "nothing was pushed (workflow 'proposals' proposes its patches as a comment)" in err
    _verifies(out["proof-path"])


def _outcome(**fields: Any) -> RunOutcome:
    base: dict[str, Any] = {
        "run_id": "r1", "task_id": "T-1", "status": "verified", "run_dir": "/x",
        "base_commit": "a" * 40, "attempts": 1, "cost_usd": 0.01, "duration_s": 1.0,
    }  # fmt: skip
    return RunOutcome(**{**base, **fields})


@pytest.mark.parametrize(
    ("apply", "needs_review", "expected"),
    [
        ("", False, "draft"),  # a run sealed before workflows: as it always was
        ("draft_pr", False, "draft"),
        ("auto", False, "ready"),
        ("auto", True, "draft"),  # a person's review outranks auto
        ("draft_pr", True, "draft"),
        ("comment", False, "comment"),
        ("comment", True, "comment"),  # nothing pushed outranks a draft
    ],
)
def test_delivery_follows_apply_and_review(apply: str, needs_review: bool, expected: str) -> None:
    assert delivery(_outcome(apply=apply, needs_review=needs_review)) == expected


def test_review_requests_split_users_and_teams_and_refusals_are_warnings() -> None:
    with serve() as github:
        github.add_pull(REPO, 7, head_ref="cascade/7")
        api = GitHubAPI(github.url, "t")
        try:
            warned = request_reviewers(
                api, REPO, 7, ["@alice", "acme/payments", "elsewhere/team", "github-actions[bot]"]
            )
        finally:
            api.close()
    # The author cannot review its own pull request: that request fails, the team's stands.
    assert [r.body for r in github.posted("/requested_reviewers")] == [
        {"reviewers": ["alice", "github-actions[bot]"]},
        {"team_reviewers": ["payments"]},
    ]
    assert github.requested(REPO, 7) == ([], ["payments"])
    assert len(warned) == 2
    assert warned[0].startswith("team elsewhere/team was not asked")
    assert "could not request a review from alice, github-actions[bot]" in warned[1]
    assert "Review cannot be requested from pull request author" in warned[1]


def test_summary_names_the_workflow_and_why_a_person_must_review() -> None:
    held = _outcome(
        workflow="security", needs_review=True, reviewers=("acme/sec",),
        review_why="workflow 'docs' asks …, raised by workflow 'security': a|b",
    )  # fmt: skip
    text = render_summary(held, [], "Title", ["cheap"])
    assert "Run `r1` · workflow `security` · ladder: cheap" in text
    assert "## Needs review" in text and "raised by workflow 'security': a\\|b." in text
    assert "Reviewers: `acme/sec`." in text
    # A run sealed before workflows renders as it did (verify compares it byte for byte).
    old = render_summary(_outcome(), [], "Title", ["cheap"])
    assert "workflow" not in old and "Needs review" not in old
    assert "Run `r1` · ladder: cheap\n" in old
