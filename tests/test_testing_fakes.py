"""The fakes in `cascade.testing` honour the protocols they stand in for, so tests written on them
say something about the real adapters. DirectorySandbox runs on a real git repository."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cascade.errors import SandboxError
from cascade.protocols import IssueSource, Model, Sandbox
from cascade.records import Edit
from cascade.testing import DirectorySandbox, MemoryIssueSource, ScriptedModel, git, make_repo

APP = "def add(a, b):\n    return a - b\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"calc/app.py": APP, "README.md": "# calc\n"})


def test_the_fakes_conform_to_their_protocols(repo: Path) -> None:
    assert isinstance(DirectorySandbox(repo), Sandbox)
    assert isinstance(ScriptedModel("m"), Model)
    assert isinstance(MemoryIssueSource([]), IssueSource)


@pytest.mark.anyio
async def test_a_timeout_is_reported_as_data(repo: Path) -> None:
    box = DirectorySandbox(repo)
    started = time.monotonic()
    result = await box.exec(["sh", "-c", "echo started; sleep 30"], timeout=0.5)
    assert time.monotonic() - started < 10
    assert result.timed_out and result.exit_code == 124
    assert result.stdout == "started\n"
    assert "[killed after 0.5s timeout]" in result.stderr


@pytest.mark.anyio
async def test_exec_runs_in_the_folder_and_records_every_argv(repo: Path) -> None:
    box = DirectorySandbox(repo)
    where = await box.exec(["pwd"], timeout=30)
    env = await box.exec(["sh", "-c", "echo $CASCADE_X"], timeout=30, env={"CASCADE_X": "1"})
    missing = await box.exec(["no-such-program-here"], timeout=30)
    assert (where.exit_code, Path(where.stdout.strip()).resolve()) == (0, repo.resolve())
    assert env.stdout == "1\n"
    assert missing.exit_code == 127 and not missing.timed_out
    assert box.calls == [
        ("pwd",),
        ("sh", "-c", "echo $CASCADE_X"),
        ("no-such-program-here",),
    ]


@pytest.mark.anyio
async def test_files_are_read_written_and_deleted_inside_the_folder(repo: Path) -> None:
    box = DirectorySandbox(repo)
    await box.write_files({"new/dir/x.txt": b"x\n", "README.md": None})
    assert (repo / "new" / "dir" / "x.txt").read_bytes() == b"x\n"
    assert await box.read_file("README.md") is None
    assert await box.read_file("calc") is None  # a directory is not a file
    assert await box.read_file("calc/app.py") == APP.encode()
    with pytest.raises(SandboxError, match="escapes the workspace"):
        await box.read_file("../outside.txt")


@pytest.mark.anyio
async def test_apply_and_reset_round_trip(repo: Path) -> None:
    box = DirectorySandbox(repo)
    base = git(repo, "rev-parse", "HEAD")
    fix = Edit(
        path="calc/app.py",
        kind="search_replace",
        search="    return a - b\n",
        replace="    return a + b\n",
    )
    new = Edit(path="calc/more.py", kind="whole_file", replace="X = 1\n")
    patch = await box.apply([fix, new])
    assert patch.files == ("calc/app.py", "calc/more.py")
    assert "+    return a + b\n" in patch.diff
    (repo / "scratch.log").write_text("left behind\n")
    await box.reset()
    assert git(repo, "status", "--porcelain", "--ignored") == ""
    assert (repo / "calc" / "app.py").read_text() == APP
    assert git(repo, "rev-parse", "HEAD") == base
    assert ("git", "add", "-A") in box.calls  # what apply ran is on record
    await box.close()
    with pytest.raises(SandboxError, match="closed"):
        await box.exec(["true"], timeout=30)
    assert (repo / "calc" / "app.py").exists()  # closing leaves the caller's folder alone
