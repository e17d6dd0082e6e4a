"""A bad answer is the answer's fault (issue 14, findings 15, 16, 18): what it did is recorded as
its own failure and the ladder climbs, instead of an infrastructure error retried three times and
a run that exits 3. Real engine, real pytest gate, the local sandbox and the Docker one."""

from __future__ import annotations

from pathlib import Path

import pytest

from cascade.config import RungConfig, SandboxConfig
from cascade.core.engine import Engine
from cascade.core.gate import Gate
from cascade.proof.log import ProofLog
from cascade.proof.run_folder import RunFolder
from cascade.records import Attempt, Issue, RunOutcome, Task
from cascade.testing import ScriptedModel, git, make_repo
from cascade.wiring.registry import sandbox_opener
from cascade.workspace.apply import MAX_PATCH_BYTES
from evaluators.pytest_gate import PytestEvaluator

CALC = "def add(a, b):\n    return a - b\n"
TESTS = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
TARGET = "tests/test_calc.py::test_add"
RIGHT = (
    f"calc.py\n<<<<<<< SEARCH\n{CALC}=======\ndef add(a, b):\n    return a + b\n>>>>>>> REPLACE\n"
)
LADDER = (
    RungConfig(name="cheap", model="scripted/cheap", attempts=1),
    RungConfig(name="strong", model="scripted/strong", attempts=1),
)


def _new_file(path: str, text: str) -> str:
    return f"{path}\n<<<<<<< SEARCH\n=======\n{text}>>>>>>> REPLACE\n"


async def _run(tmp_path: Path, backend: str, cheap: str) -> tuple[RunOutcome, list[Attempt]]:
    repo = make_repo(tmp_path / "repo", {"calc.py": CALC, "tests/test_calc.py": TESTS})
    issue = Issue(id="CALC-1", title="add subtracts", body="add(2, 3) gives -1", tests=(TARGET,))
    task = Task(issue=issue, repo=str(repo), base_commit=git(repo, "rev-parse", "HEAD").strip())
    engine = Engine(
        ladder=LADDER,
        models={
            "cheap": ScriptedModel("cheap", sequence=[cheap]),
            "strong": ScriptedModel("strong", sequence=[RIGHT]),
        },
        gate=Gate([PytestEvaluator()]),
        open_sandbox=sandbox_opener(SandboxConfig(backend=backend), backend, "blame-test"),
        counter=lambda _rung: lambda text: len(text) // 4,
    )
    outcome = await engine.run(task, ProofLog.create(tmp_path / "runs"))
    return outcome, list(RunFolder(Path(outcome.run_dir)).attempts())


@pytest.mark.anyio
async def test_a_path_into_git_in_another_case_is_the_answers_edit_error(
    tmp_path: Path, backend: str
) -> None:
    # Finding 15: `.GIT/config` made `git add` fail: infra_error three times, exit 3.
    outcome, attempts = await _run(tmp_path, backend, RIGHT + _new_file(".GIT/config", "x\n"))
    assert [a.status for a in attempts] == ["edit_error", "verified"]
    assert "point into `.git/`" in attempts[0].feedback
    assert outcome.status == "verified"


@pytest.mark.anyio
async def test_a_tree_too_deep_to_walk_is_tampering_not_a_crash(
    tmp_path: Path, backend: str
) -> None:
    # Finding 16: test-time code that builds a 3,000-level tree crashed the tamper snapshot
    # (RecursionError) and the run was an infrastructure error.
    deep = (
        "import os\n\n"
        "_here = os.getcwd()\n"
        "for _ in range(3000):\n"
        "    os.mkdir('d')\n"
        "    os.chdir('d')\n"
        "os.chdir(_here)\n\n"
        "def add(a, b):\n    return a - b\n"
    )
    cheap = f"calc.py\n<<<<<<< SEARCH\n{CALC}=======\n{deep}>>>>>>> REPLACE\n"
    outcome, attempts = await _run(tmp_path, backend, cheap)
    assert [a.status for a in attempts] == ["rejected", "verified"]
    failed = [v.evaluator for v in attempts[0].verdicts if not v.passed]
    assert "evaluator_tampered" in failed
    assert outcome.status == "verified"


@pytest.mark.anyio
async def test_a_patch_too_big_to_keep_is_refused_whole_not_cut(
    tmp_path: Path, backend: str
) -> None:
    # Finding 18: a 10 MB edit was judged as a `malformed_diff`, because the canonical diff was
    # cut at 2 MB, and the cut patch was stored as if whole.
    row = "    'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',\n"
    big = "DATA = [\n" + row * (MAX_PATCH_BYTES // len(row) + 1000) + "]\n"  # just over
    outcome, attempts = await _run(tmp_path, backend, RIGHT + _new_file("data.py", big))
    assert [a.status for a in attempts] == ["edit_error", "verified"]
    assert "bytes; at most" in attempts[0].feedback and not attempts[0].patch_sha256
    patches = [
        blob
        for blob in RunFolder(Path(outcome.run_dir)).blobs_dir.iterdir()
        if blob.read_bytes().startswith(b"diff --git")
    ]
    assert len(patches) == 1 and patches[0].stat().st_size < MAX_PATCH_BYTES  # the right fix
