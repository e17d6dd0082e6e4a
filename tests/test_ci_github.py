"""`cascade ci github` end to end, as a GitHub Actions job runs it: a synthetic event payload, the
demo repository pushed to a local bare repository that serves as `origin`, a checkout of it as
the workspace, and a loopback stand-in for the REST API that records every request."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cascade.ci.event import Refusal, ReviewRequest, Trigger, decide
from cascade.cli.main import app
from cascade.proof.signing import read_receipt
from cascade.testing import git
from cascade.testing.demo import without_rung_zero
from tests.fake_github import FakeGitHub, serve

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo"
REPO = "acme/invoicekit"
MONEY_BLOCK = "```cascade\ntests: [tests/test_money.py::test_format_money_negative_amounts]\n```"
runner = CliRunner()


@dataclass
class World:
    root: Path
    origin: Path  # the bare repository
    workspace: Path  # its checkout, GITHUB_WORKSPACE
    github: FakeGitHub
    env: dict[str, str]

    def run(self, event_name: str, payload: dict[str, Any], *args: str) -> tuple[int, str]:
        event = self.root / "event.json"
        event.write_text(json.dumps(payload))
        env = {**self.env, "GITHUB_EVENT_NAME": event_name, "GITHUB_EVENT_PATH": str(event)}
        result = runner.invoke(app, ["ci", "github", *args], env=env)
        return result.exit_code, result.stderr

    def outputs(self) -> dict[str, str]:
        lines = Path(self.env["GITHUB_OUTPUT"]).read_text().splitlines()
        return dict(line.split("=", 1) for line in lines)

    def summary(self) -> str:
        return Path(self.env["GITHUB_STEP_SUMMARY"]).read_text()

    def branches(self) -> list[str]:
        return git(self.origin, "branch", "--format=%(refname:short)").split()

    def workflows(self, workflows: str = "") -> None:
        """The repository's `[[workflows]]` replaced by `workflows`, committed and pushed to
        main, where the job reads its configuration: the checkout stays clean and at main."""
        set_workflows(self.workspace / "cascade.toml", workflows)
        git(self.workspace, "commit", "-q", "-am", "workflows")
        git(self.workspace, "push", "-q", "origin", "HEAD:main")


def set_workflows(config: Path, workflows: str = "") -> None:
    """Replace the `[[workflows]]` tables of the cascade.toml at `config` with `workflows` (none:
    every task runs the default workflow), whatever the demo's own config holds today."""
    kept: list[str] = []
    skipping = False
    for line in config.read_text().splitlines():
        if line.startswith("["):
            skipping = line.strip() == "[[workflows]]"
        if not skipping:
            kept.append(line)
    config.write_text("\n".join(kept).rstrip("\n") + "\n\n" + workflows)


def _answers() -> dict[tuple[str, str], str]:
    lines = (DEMO / "cassettes" / "demo.jsonl").read_text().splitlines()
    return {(e["task"], e["model"]): e["content"] for e in map(json.loads, lines)}


def _cassette(seed: Path) -> None:
    """Answers for the GitHub issues, keyed by their ids: #2 is DEMO-2 (cheap wrong, strong
    right); #3 gets DEMO-1's wrong answer twice; #4 DEMO-1's right answer plus a workflow file."""
    a = _answers()
    workflow = "\n.github/workflows/x.yml\n<<<<<<< SEARCH\n=======\non: push\n>>>>>>> REPLACE\n"
    plan = {
        2: (a["DEMO-2", "replay/demo-cheap"], a["DEMO-2", "replay/demo-strong"]),
        3: (a["DEMO-1", "replay/demo-cheap"], a["DEMO-1", "replay/demo-cheap"]),
        4: (a["DEMO-1", "replay/demo-cheap"], a["DEMO-1", "replay/demo-strong"] + workflow),
    }
    usage = {"prompt_tokens": 900, "completion_tokens": 250}
    with (seed / "cassettes" / "demo.jsonl").open("a") as handle:
        for number, (cheap, strong) in plan.items():
            for model, content in (("replay/demo-cheap", cheap), ("replay/demo-strong", strong)):
                task = f"{REPO}#{number}"
                entry = {"task": task, "model": model, "attempt": 1, "content": content}
                handle.write(json.dumps({**entry, "usage": usage}) + "\n")


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    seed = tmp_path / "seed"
    shutil.copytree(DEMO, seed, ignore=shutil.ignore_patterns("__pycache__", "runs"))
    config = seed / "cascade.toml"  # the cassette's ladder alone: rung zero is not the subject
    config.write_text(without_rung_zero(config.read_text()))
    _cassette(seed)
    hidden = seed / ".cascade" / "hidden" / "gh-2" / "tests"
    hidden.mkdir(parents=True)
    shutil.copy(seed / ".cascade" / "hidden" / "tests" / "test_hidden_csv_quoting.py", hidden)
    git(seed, "init", "-q", "-b", "main")
    git(seed, "add", "-A")
    git(seed, "commit", "-q", "-m", "base")
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(seed), str(origin))
    workspace = tmp_path / "workspace"
    git(tmp_path, "clone", "-q", str(origin), str(workspace))
    for name in ("GITHUB_TOKEN", "GH_TOKEN", "GITHUB_EVENT_NAME", "GITHUB_OUTPUT"):
        monkeypatch.delenv(name, raising=False)
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    with serve() as github:
        github.token = "ghs_job_token"
        env = {
            "GITHUB_REPOSITORY": REPO,
            "GITHUB_WORKSPACE": str(workspace),
            "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
            "GITHUB_OUTPUT": str(tmp_path / "output.txt"),
            "GITHUB_RUN_ID": "4242",
            "GITHUB_RUN_ATTEMPT": "1",
            "GITHUB_API_URL": github.url,
            "GITHUB_SERVER_URL": "https://github.example",
            "GITHUB_TOKEN": "ghs_job_token",
            "RUNNER_TEMP": str(runner_temp),
            "CASCADE_SANDBOX__BACKEND": "local",
        }
        yield World(tmp_path, origin, workspace, github, env)


def _issue(number: int, **fields: Any) -> dict[str, Any]:
    return {
        "number": number,
        "title": f"Issue {number}",
        "user": {"login": "reporter", "type": "User"},
        "author_association": "NONE",
        **fields,
    }


def labeled(number: int, *, label: str = "cascade", sender: str = "maintainer") -> dict[str, Any]:
    return {
        "action": "labeled",
        "label": {"name": label},
        "issue": _issue(number),
        "sender": {"login": sender, "type": "User"},
        "repository": {"full_name": REPO, "default_branch": "main"},
    }


def commented(
    number: int, body: str, association: str, sender_type: str = "User"
) -> dict[str, Any]:
    return {
        "action": "created",
        "issue": _issue(number),
        "comment": {"body": body, "author_association": association},
        "sender": {"login": "commenter", "type": sender_type},
        "repository": {"full_name": REPO, "default_branch": "main"},
    }


def test_a_labelled_issue_becomes_a_draft_pr_with_exactly_the_verified_patch(
    world: World,
) -> None:
    demo2 = (DEMO / ".cascade" / "issues" / "DEMO-2.md").read_text().split("---", 2)[2]
    world.github.add_issue(
        REPO, 2, title="CSV import breaks on quoted descriptions", body=demo2.strip()
    )
    world.github.add_comment(REPO, 2, "Seen on 1.4 as well.", author_association="MEMBER")
    world.workflows()  # the default workflow for every task: a draft, as ever
    code, err = world.run("issues", labeled(2))
    assert code == 0, err
    out = world.outputs()
    assert out["verified"] == "true" and float(out["cost-usd"]) > 0
    assert out["pr-url"] == f"https://github.example/{REPO}/pull/100"
    run_dir, patch = Path(out["proof-path"]), Path(out["patch-path"])
    assert patch == run_dir / "patch.diff" and run_dir.parent == world.workspace / ".cascade/runs"
    records = [json.loads(x) for x in (run_dir / "attempts.jsonl").read_text().splitlines()]
    assert [r["status"] for r in records] == ["rejected", "verified"]  # the hidden test bit
    # The pushed branch: one bot commit on top of main holding exactly the verified patch.
    assert world.branches() == ["cascade/2", "main"]
    assert git(world.origin, "rev-list", "--count", "main..cascade/2").strip() == "1"
    author = git(world.origin, "log", "-1", "--format=%an <%ae>", "cascade/2")
    assert author.startswith("github-actions[bot] <41898282+github-actions[bot]@")
    pushed = git(world.origin, "diff", "--full-index", "--binary", "main", "cascade/2")
    assert pushed == patch.read_text()
    # The workspace itself is untouched and has no leftover worktree.
    assert git(world.workspace, "status", "--porcelain", "--untracked-files=no") == ""
    assert len(git(world.workspace, "worktree", "list").splitlines()) == 1
    # The draft PR, and nothing posted on the issue.
    (pr,) = world.github.posted("/pulls")
    assert pr.body["draft"] is True and world.github.pulls[REPO, 100]["draft"] is True
    assert world.github.posted("/requested_reviewers") == []  # its workflow names nobody
    assert (pr.body["head"], pr.body["base"]) == ("cascade/2", "main")
    assert pr.body["title"].startswith("cascade: CSV import breaks") and "(#2)" in pr.body["title"]
    body = pr.body["body"]
    assert "**Verified** on rung `strong`" in body and "| # | rung | model |" in body
    assert "**Gate verdicts** (attempt #2)" in body and "| `pytest` | ✓ passed |" in body
    assert "artifact `cascade-proof-4242-1`" in body and "Closes #2." in body
    assert "https://github.example/acme/invoicekit/actions/runs/4242" in body
    assert "hidden" not in body.lower()  # neither the hidden test nor its name
    # The asker saw the run start (a reaction) and is told where the PR and the proof are.
    (seen,) = world.github.posted("/issues/2/reactions")
    assert seen.body == {"content": "eyes"}
    (done,) = world.github.posted("/issues/2/comments")
    assert f"draft pull request https://github.example/{REPO}/pull/100" in done.body["body"]
    assert "`cascade-proof-4242-1`" in done.body["body"]
    assert "actions/runs/4242" in done.body["body"]
    assert all(r.headers["authorization"] == "Bearer ghs_job_token" for r in world.github.requests)
    # The job summary carries the same report; the proof verifies.
    assert "**Verified** on rung `strong`" in world.summary()
    verify = runner.invoke(app, ["proof", "verify", str(run_dir)])
    assert verify.exit_code == 0, verify.stdout
    # What the Action's attest step signs: the receipt's own predicate and type, written beside
    # (not into) the sealed folder.
    receipt = read_receipt((run_dir / "receipt.intoto.json").read_bytes()).statement
    assert out["predicate-type"] == receipt["predicateType"]
    predicate = Path(out["predicate-path"])
    assert predicate.parent == world.root / "runner-temp"
    assert json.loads(predicate.read_text()) == receipt["predicate"]
    assert receipt["predicate"]["chain_head"] and receipt["subject"][0]["digest"] == {
        "sha256": hashlib.sha256(patch.read_bytes()).hexdigest()
    }


def test_an_exhausted_ladder_comments_on_the_issue_and_pushes_nothing(world: World) -> None:
    body = f"`format_money(-150)` is wrong\n\n{MONEY_BLOCK}\n"
    world.github.add_issue(REPO, 3, title="Negative amounts", body=body)
    code, err = world.run("issue_comment", commented(3, "/fix please", "COLLABORATOR"))
    assert code == 1, err
    out = world.outputs()
    assert out["verified"] == "false" and out["pr-url"] == "" and out["patch-path"] == ""
    assert world.branches() == ["main"] and world.github.posted("/pulls") == []
    (note,) = world.github.posted("/issues/3/comments")
    assert "**No verified patch**: the ladder is exhausted after 2 attempt(s)" in note.body["body"]
    assert "divmod" not in note.body["body"]  # the model's own words stay in the proof
    # A maintainer who prefers the comment alone keeps the job green; a cost cap is honoured.
    world.github.requests.clear()
    code, err = world.run(
        "issue_comment", commented(3, "/fix", "COLLABORATOR"),
        "--no-fail-on-no-patch", "--max-cost-usd", "0.000001",
    )  # fmt: skip
    assert code == 0, err
    assert "exit 0 as asked (fail-on-no-patch: false)" in err
    (note,) = world.github.posted("/issues/3/comments")
    assert "budget" in note.body["body"].lower()
    assert "**No verified patch**" in world.summary()
    verify = runner.invoke(app, ["proof", "verify", out["proof-path"]])
    assert verify.exit_code == 0, verify.stdout


def test_a_verified_patch_under_dot_github_is_never_proposed(world: World) -> None:
    body = f"Fix `format_money`.\n\n{MONEY_BLOCK}\n"
    world.github.add_issue(REPO, 4, title="Negative amounts", body=body)
    # The scope gate (diff_scope) would already refuse `.github/`; with only the tests gating
    # (and no workflow of the demo's adding its own gate), this shows the publishing step
    # refuses it on its own too.
    world.env["CASCADE_GATE__EVALUATORS"] = '["pytest"]'
    world.workflows()
    code, err = world.run("issues", labeled(4))
    assert code == 1, err
    assert world.outputs()["verified"] == "false"
    assert world.branches() == ["main"] and world.github.posted("/pulls") == []
    (note,) = world.github.posted("/issues/4/comments")
    assert "`.github/workflows/x.yml`" in note.body["body"]
    assert "never proposes changes under `.github/`" in note.body["body"]


@pytest.mark.parametrize(
    ("name", "payload", "why"),
    [
        ("issue_comment", commented(2, "/fix", "CONTRIBUTOR"), "CONTRIBUTOR, not OWNER"),
        ("issue_comment", commented(2, "/fix", "NONE"), "NONE, not OWNER"),
        ("issue_comment", commented(2, "/fix", "OWNER", "Bot"), "is a bot"),
        ("issues", {**labeled(2), "sender": {"login": "x[bot]", "type": "Bot"}}, "is a bot"),
        ("issues", labeled(2, sender="reporter"), "labelled their own issue"),
        ("issues", labeled(2, label="bug"), "not the trigger label"),
        ("issue_comment", commented(2, "/fixture later", "OWNER"), "does not start with /fix"),
        ("issues", {**labeled(2), "action": "opened"}, "is not 'labeled'"),
        ("push", {"ref": "refs/heads/main"}, "is not handled"),
    ],
)
def test_untrusted_or_unrelated_events_do_nothing(
    world: World, name: str, payload: dict[str, Any], why: str
) -> None:
    code, err = world.run(name, payload)
    assert code == 0, err
    assert "cascade: not running:" in err and why in err
    assert world.github.requests == []
    assert world.branches() == ["main"]
    assert not (world.workspace / ".cascade" / "runs").exists()
    assert world.outputs() == {
        "verified": "false",
        "patch-path": "",
        "proof-path": "",
        "cost-usd": "0.000000",
        "pr-url": "",
        "predicate-type": "",
        "predicate-path": "",
        "workflow": "",
        "needs-review": "false",
    }
    assert "cascade did not run" in world.summary()


def test_a_pull_request_comment_is_a_review_not_a_fix() -> None:
    # /fix on a pull request asks to revise it (tests/test_ci_iterate.py checks it is cascade's);
    # an `issues` event about a pull request is still refused.
    payload = commented(5, "/fix also X", "OWNER")
    payload["issue"]["pull_request"] = {"url": "x"}
    decision = decide("issue_comment", payload, "cascade")
    assert isinstance(decision, ReviewRequest) and decision.pull == 5
    labelled = labeled(5)
    labelled["issue"]["pull_request"] = {"url": "x"}
    decision = decide("issues", labelled, "cascade")
    assert isinstance(decision, Refusal) and "pull request" in decision.reason
    assert decide("", commented(5, "  /fix\nnow", "MEMBER"), "cascade") == Trigger(
        5, "issue_comment", "commenter", "main"
    )


def test_usage_errors_are_exit_2_before_any_request(world: World) -> None:
    env = {k: v for k, v in world.env.items() if k != "GITHUB_TOKEN"}
    (world.root / "event.json").write_text(json.dumps(labeled(2)))
    env["GITHUB_EVENT_PATH"] = str(world.root / "event.json")
    result = runner.invoke(app, ["ci", "github"], env=env)
    assert result.exit_code == 2 and "GITHUB_TOKEN is not set" in result.stderr
    result = runner.invoke(app, ["ci", "github", "--label", " "], env=env)
    assert result.exit_code == 2 and "label" in result.stderr
    result = runner.invoke(app, ["ci", "github"], env={**env, "GITHUB_EVENT_PATH": ""})
    assert result.exit_code == 2 and "GITHUB_EVENT_PATH" in result.stderr
    assert world.github.requests == []


def test_a_missing_issue_is_exit_3(world: World) -> None:
    code, err = world.run("issues", labeled(77))
    assert code == 3 and "GitHub has no issue acme/invoicekit#77" in err
    assert world.outputs()["verified"] == "false"
    assert "cascade stopped" in world.summary()


def test_a_bad_cascade_block_is_exit_2_and_said_on_the_issue(world: World) -> None:
    world.github.add_issue(REPO, 6, body="```cascade\nhidden_tests: [tests/test_x.py]\n```\n")
    code, err = world.run("issue_comment", commented(6, "/fix", "OWNER"))
    assert code == 2 and "public issue's tests are not hidden" in err
    (note,) = world.github.posted("/issues/6/comments")
    assert "could not read this issue" in note.body["body"]
    assert not (world.workspace / ".cascade" / "runs").exists()


def test_a_run_started_by_hand_fixes_the_issue_it_names(world: World) -> None:
    body = f"`format_money(-150)` is wrong\n\n{MONEY_BLOCK}\n"
    world.github.add_issue(REPO, 3, title="Negative amounts", body=body)
    dispatched = {
        "inputs": {"issue": "3"},
        "sender": {"login": "maintainer", "type": "User"},
        "repository": {"full_name": REPO, "default_branch": "main"},
    }
    code, err = world.run("workflow_dispatch", dispatched, "--no-fail-on-no-patch")
    assert code == 0, err
    assert "@maintainer asked (workflow_dispatch) for a fix of" in err
    (note,) = world.github.posted("/issues/3/comments")
    assert "**No verified patch**" in note.body["body"]
    world.github.requests.clear()
    code, err = world.run("workflow_dispatch", {**dispatched, "inputs": {"issue": "x"}})
    assert code == 0 and "needs an `issue` input with an issue number, not 'x'" in err
    assert world.github.requests == []
