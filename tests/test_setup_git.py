"""`[sandbox] setup` runs with the repository's git metadata at the base commit (issue 16, finding
6): `git describe` (so setuptools-scm) sees the commit's tags and a clean checkout, the
environment's key covers the commit and its tags, and setup's lines reach `fix` (the run's `open`
events) and `replay` (IssueRunner.prepare). Docker tests skip loudly without an engine, except in
CI (conftest)."""

from __future__ import annotations

import os
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from cascade.config import CascadeConfig, SandboxConfig
from cascade.core.events import Event
from cascade.errors import SandboxError
from cascade.testing import git, make_repo
from cascade.wiring.run_issue import IssueRunner
from cascade.wiring.settings import LoadedConfig
from sandboxes.docker_api import VENV
from sandboxes.docker_sandbox import DockerSandbox
from sandboxes.setup_git import git_facts, git_tar
from sandboxes.setup_key import environment_key

DESCRIBED = f"{VENV}/described.txt"


@pytest.fixture
def tagged(tmp_path: Path) -> Path:
    """v1.2.0 (annotated) on the first commit, one commit after it; a tag on another branch;
    a file `git archive` rewrites (export-subst) and a `.cascade/` it leaves out."""
    repo = make_repo(
        tmp_path / "repo",
        {
            "pyproject.toml": '[project]\nname = "demo"\ndynamic = ["version"]\n',
            ".gitattributes": ".git_archival.txt export-subst\n",
            ".git_archival.txt": "node: $Format:%H$\n",
            ".cascade/issues/ISSUE-1.md": "---\ntitle: x\n---\n",
            "src/x.py": "X = 1\n",
        },
    )
    git(repo, "tag", "-a", "v1.2.0", "-m", "release")
    git(repo, "checkout", "-q", "-b", "side")
    (repo / "side.txt").write_text("side\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "side")
    git(repo, "tag", "v9.9.9")
    git(repo, "checkout", "-q", "main")
    (repo / "src" / "x.py").write_text("X = 2\n")
    git(repo, "commit", "-qam", "after the release")
    return repo


def _setup(*commands: str) -> tuple[str, ...]:
    """Unique to this test run, so no environment image of an earlier run is reused."""
    return (f": {uuid.uuid4().hex}", *commands)


async def _cat(box: DockerSandbox, path: str) -> str:
    result = await box.exec(["cat", path], timeout=60)
    assert result.exit_code == 0, result.stderr
    return result.stdout


@pytest.mark.docker
@pytest.mark.anyio
async def test_setup_sees_the_tags_of_the_base_commit(tagged: Path, env_images: None) -> None:
    expected = git(tagged, "describe", "--tags", "--dirty").strip()
    assert expected.startswith("v1.2.0-1-g")  # the host's own checkout says so too
    setup = _setup(
        f"git describe --tags --dirty > {DESCRIBED}",
        f"git status --porcelain > {VENV}/status.txt",
        f"git tag > {VENV}/tags.txt",
    )
    lines: list[str] = []
    box = await DockerSandbox.open(
        tagged, "HEAD", SandboxConfig(setup=setup), progress=lines.append
    )
    try:
        assert (await _cat(box, DESCRIBED)).strip() == expected
        assert await _cat(box, f"{VENV}/status.txt") == ""  # a clean checkout to setup
        assert (await _cat(box, f"{VENV}/tags.txt")).split() == ["v1.2.0"]  # not the side's
        # the sandbox itself still holds a one-commit repository of the tree, nothing more
        log = await box.exec(["git", "log", "--oneline"], timeout=60)
        assert len(log.stdout.splitlines()) == 1
    finally:
        await box.close()
    assert any("git history of" in line and "1 tag(s)" in line for line in lines)
    assert f"setup: $ git describe --tags --dirty > {DESCRIBED}" in lines


@pytest.mark.docker
@pytest.mark.anyio
async def test_without_setup_git_setup_sees_no_history(tagged: Path, env_images: None) -> None:
    config = SandboxConfig(setup=_setup(f"git describe --tags > {DESCRIBED}"), setup_git=False)
    with pytest.raises(SandboxError, match="git describe"):
        await DockerSandbox.open(tagged, "HEAD", config)


def test_the_key_covers_the_nearest_tag_not_every_commit(tagged: Path) -> None:
    def key(commit: str = "HEAD") -> str:
        return environment_key("sha256:base", ("pip install -e .",), tagged, commit,
                               git_facts(tagged, commit))  # fmt: skip

    start = key()
    plain = environment_key("sha256:base", ("pip install -e .",), tagged, "HEAD")
    assert start != plain  # without the metadata, the key is what it always was
    assert git_facts(tagged, "HEAD")["tags"].keys() == {"refs/tags/v1.2.0"}
    git(tagged, "tag", "v5.0.0", "side")
    assert key() == start  # a tag the base commit cannot reach changes nothing
    git(tagged, "tag", "v1.3.0")
    assert key() != start  # git describe now says v1.3.0
    git(tagged, "tag", "-d", "v1.3.0")
    assert key() == start
    git(tagged, "commit", "-q", "--allow-empty", "-m", "one more")
    assert key() == start  # a new commit reuses the environment: setup does not run again
    git(tagged, "tag", "v1.2.1")
    assert key() != start and key("HEAD~1") == start  # a new release is a new environment


def test_a_shallow_checkout_gives_a_shallow_history_not_a_broken_one(
    tagged: Path, tmp_path: Path
) -> None:
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", f"file://{tagged}", str(shallow)], check=True
    )
    facts = git_facts(shallow, "HEAD")
    out = tmp_path / "out"
    with git_tar(shallow, facts, os.getuid()) as handle, tarfile.open(fileobj=handle) as tar:
        tar.extractall(out, filter="data")
    log = subprocess.run(
        ["git", "--git-dir", str(out / ".git"), "log", "--format=%H"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert log.returncode == 0, log.stderr
    assert log.stdout.split() == [facts["commit"]]


@pytest.mark.docker
@pytest.mark.anyio
async def test_setup_progress_reaches_replay_and_fix(
    tagged: Path, env_images: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # the default ladder's models are built
    sandbox = SandboxConfig(backend="docker", setup=_setup("echo installing-things"))
    loaded = LoadedConfig(CascadeConfig(sandbox=sandbox), tagged, tagged, None)
    # replay: the batch's runner is prepared with its progress, and the environment built there
    shown: list[str] = []
    runner = IssueRunner.prepare(loaded, tagged, progress=shown.append)
    assert "setup: $ echo installing-things" in shown and "setup:   installing-things" in shown
    assert shown[-1].startswith(f"sandbox {sandbox.image}: Python 3.")
    # fix: a run's engine shows what its sandbox shows while it opens, as `open` events
    events: list[Event] = []
    engine = runner.parts.engine("git-test", events.append)
    box = await engine.open_sandbox(tagged, runner.commit)
    await box.close()
    assert events and all(e.kind == "open" for e in events)
    assert any("setup: environment cascade-env:" in e.message for e in events)
