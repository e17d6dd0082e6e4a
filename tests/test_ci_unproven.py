"""`cascade ci github` on an issue that nothing can prove: the do-nothing patch that passes every
check is never pushed or proposed; the issue gets a comment with the candidate patch and how to
make a fix provable. The same world as tests/test_ci_github.py (bare origin, loopback REST)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cascade.cli.main import app
from tests.test_ci_github import REPO, World, labeled, world  # noqa: F401 - the fixture

COSMETIC = (
    "invoicekit/money.py\n<<<<<<< SEARCH\n    whole, frac = divmod(cents, 100)\n=======\n"
    "    # whole units, then cents\n    whole, frac = divmod(cents, 100)\n>>>>>>> REPLACE\n"
)


def test_an_unproven_patch_is_commented_with_its_candidate_never_pushed(
    world: World,  # noqa: F811 - the fixture imported above
) -> None:
    # Issue 13's DEMO-9 through the Action: no test named, no reproduction in the cassette (the
    # reproduce stage's calls miss), and the cheap rung's answer only adds a comment.
    tape = world.workspace / "cassettes" / "demo.jsonl"
    line = {"task": f"{REPO}#5", "model": "replay/demo-cheap", "attempt": 1, "content": COSMETIC}
    with tape.open("a") as handle:
        handle.write(json.dumps(line) + "\n")
    body = '`format_money(-150)` gives "$-2.50"; it should give "-$1.50".'
    world.github.add_issue(REPO, 5, title="Negative amounts are formatted wrongly", body=body)
    code, err = world.run("issues", labeled(5))
    assert code == 1, err
    out = world.outputs()
    assert out["verified"] == "false" and out["pr-url"] == "" and out["patch-path"] == ""
    assert world.branches() == ["main"] and world.github.posted("/pulls") == []
    (note,) = world.github.posted("/issues/5/comments")
    text = note.body["body"]
    assert "**Unproven**" in text and "## Why it is unproven" in text
    assert "**Candidate patch** (unproven" in text and "+    # whole units, then cents" in text
    assert "**Unproven**" in world.summary()
    run_dir = Path(out["proof-path"])
    records = [json.loads(x) for x in (run_dir / "attempts.jsonl").read_text().splitlines()]
    assert [(r["role"], r["status"]) for r in records][-1] == ("fix", "unproven")
    assert not (run_dir / "patch.diff").exists()
    verify = CliRunner().invoke(app, ["proof", "verify", str(run_dir)])
    assert verify.exit_code == 0, verify.stdout
