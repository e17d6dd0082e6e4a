"""A run never dirties `git status`: the folders cascade writes under `.cascade/` ignore
themselves, in a repository whose own .gitignore says nothing about them."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cascade.cli.main import app
from cascade.testing import git
from cascade.workspace.untracked import IGNORE_ALL, ignore_in_git

runner = CliRunner()


def test_a_run_leaves_git_status_clean(demo: Path) -> None:
    (demo / ".gitignore").write_text("__pycache__/\n*.pyc\n.pytest_cache/\n")  # no .cascade/runs
    git(demo, "commit", "-qam", "the runs folder is not ignored by the repository")
    result = runner.invoke(app, ["fix", "DEMO-1", "--repo", str(demo), "--sandbox", "local"])
    assert result.exit_code == 0, result.stderr
    assert any(p.is_dir() for p in (demo / ".cascade" / "runs").iterdir())
    assert git(demo, "status", "--porcelain", "--untracked-files=all") == ""
    assert (demo / ".cascade" / "runs" / ".gitignore").read_text() == IGNORE_ALL


def test_only_under_dot_cascade_and_never_over_the_users_own(tmp_path: Path) -> None:
    chosen = tmp_path / "results" / "runs"  # a folder the user named: maybe meant to be committed
    chosen.mkdir(parents=True)
    ignore_in_git(chosen)
    assert not (chosen / ".gitignore").exists()
    ours = tmp_path / ".cascade" / "runs"
    ours.mkdir(parents=True)
    (ours / ".gitignore").write_text("!keep-me\n")
    ignore_in_git(ours)
    assert (ours / ".gitignore").read_text() == "!keep-me\n"


def test_a_replay_batch_leaves_git_status_clean(tmp_path: Path) -> None:
    from cascade.testing.demo import demo_backlog

    demo = Path(__file__).resolve().parent.parent / "examples" / "demo"
    b = demo_backlog(demo, tmp_path / "b", copies=1, gate='["diff_scope"]', issues=("DEMO-1",))
    (b.repo / ".gitignore").write_text("__pycache__/\n")  # says nothing of .cascade/
    git(b.repo, "commit", "-qam", "no ignore rules for cascade")
    args = ["replay", str(b.backlog), "--repo", str(b.repo), "--config", str(b.config)]
    result = runner.invoke(app, [*args, "--sandbox", "local"])
    assert result.exit_code == 0, result.stderr
    assert (b.repo / ".cascade" / "replay").is_dir()  # the default batch folder
    assert git(b.repo, "status", "--porcelain", "--untracked-files=all") == ""
