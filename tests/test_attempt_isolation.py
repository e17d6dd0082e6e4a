"""One attempt cannot poison the next (issue 14, findings 1-3): the code a patch brings runs during
its gate, so it may move the sandbox's HEAD, install a git filter, or leave a process behind. Each
answer is judged in a sandbox of its own, so the next answer sees none of it. Each attack is
real: the engine, the real pytest gate, the local sandbox and the Docker one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cascade.config import RungConfig, SandboxConfig
from cascade.core.engine import Engine
from cascade.core.gate import Gate
from cascade.proof.log import ProofLog
from cascade.proof.run_folder import RunFolder
from cascade.records import Issue, RunOutcome, Task
from cascade.replay.regate import RegateTask, regate
from cascade.testing import ScriptedModel, git, make_repo
from cascade.wiring.registry import sandbox_opener
from evaluators.pytest_gate import PytestEvaluator

CALC = "def add(a, b):\n    return a - b\n"
TESTS = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
TARGET = "tests/test_calc.py::test_add"
LADDER = (
    RungConfig(name="cheap", model="scripted/cheap", attempts=1),
    RungConfig(name="strong", model="scripted/strong", attempts=1),
)


def block(code: str) -> str:
    return f"calc.py\n<<<<<<< SEARCH\n{CALC}=======\n{code}>>>>>>> REPLACE\n"


# Wrong for 2 + 3: passes only where the target test has been neutered.
WRONG = block("def add(a, b):\n    return a * 2\n")

# Attempt 1's code, run at import during its gate: commit a neutered target test and move HEAD
# there, so a `git reset --hard` "back to base" lands on it.
MOVES_HEAD = block(
    "import os, subprocess\n\n"
    "def _poison():\n"
    "    env = {**os.environ, 'GIT_AUTHOR_NAME': 'x', 'GIT_AUTHOR_EMAIL': 'x@x',\n"
    "           'GIT_COMMITTER_NAME': 'x', 'GIT_COMMITTER_EMAIL': 'x@x'}\n"
    "    path = 'tests/test_calc.py'\n"
    "    head = 'def test_add():\\n'\n"
    "    text = open(path).read().replace(head, head + '    return\\n')\n"
    "    open(path, 'w').write(text)\n"
    "    subprocess.run(['git', 'commit', '-qam', 'x'], env=env, check=False)\n\n"
    "_poison()\n\n"
    "def add(a, b):\n    return a - b\n"
)

# Attempt 1's code installs a clean filter: whatever the next attempt writes to a .py file, git
# would record the text after `sed` in the diff, code that was never tested.
GIT_FILTER = block(
    "import os\n\n"
    "with open('.git/config', 'a') as f:\n"
    "    f.write('[filter \"x\"]\\n    clean = sed s/a-b/a+b/\\n')\n"
    "os.makedirs('.git/info', exist_ok=True)\n"
    "with open('.git/info/attributes', 'w') as f:\n"
    "    f.write('*.py filter=x\\n')\n\n"
    "def add(a, b):\n    return a - b\n"
)

# Attempt 1's code leaves a process behind that outlives the gate (a double fork in its own
# session): it would hold the pids limit and read later attempts' environments from /proc.
LINGERS = block(
    "import os, time\n\n"
    "if os.fork() == 0:\n"
    "    os.setsid()\n"
    "    if os.fork() == 0:\n"
    "        open('/tmp/cascade-lingering.pid', 'w').write(str(os.getpid()))\n"
    "        time.sleep(600)\n"
    "    os._exit(0)\n\n"
    "def add(a, b):\n    return a - b\n"
)

# Attempt 2 says whether it can see anything attempt 1 left: a test of its own would fail.
SEES_NOTHING = block(
    "import os, subprocess\n\n"
    "_left = [p for p in ('/tmp/cascade-lingering.pid',) if os.path.exists(p)]\n"
    "_log = subprocess.run(['git', 'log', '--oneline'], capture_output=True, text=True).stdout\n"
    "assert not _left, f'attempt 1 left {_left}'\n"
    "assert len(_log.splitlines()) == 1, _log\n\n"
    "def add(a, b):\n    return a + b\n"
)


ISSUE = Issue(id="CALC-1", title="add subtracts", body="add(2, 3) gives -1", tests=(TARGET,))


async def _run(tmp_path: Path, backend: str, cheap: str, strong: str) -> RunOutcome:
    repo = make_repo(tmp_path / "repo", {"calc.py": CALC, "tests/test_calc.py": TESTS})
    task = Task(issue=ISSUE, repo=str(repo), base_commit=git(repo, "rev-parse", "HEAD").strip())
    engine = Engine(
        ladder=LADDER,
        models={
            "cheap": ScriptedModel("cheap", sequence=[cheap]),
            "strong": ScriptedModel("strong", sequence=[strong]),
        },
        # No tamper check: the attacks below would trip it in attempt 1 already, and what is
        # under test is whether attempt 2 is judged as if attempt 1 never ran.
        gate=Gate([PytestEvaluator()], check_tamper=False),
        open_sandbox=sandbox_opener(SandboxConfig(backend=backend), backend, "isolation-test"),
        counter=lambda _rung: lambda text: len(text) // 4,
    )
    return await engine.run(task, ProofLog.create(tmp_path / "runs"))


def _statuses(outcome: RunOutcome) -> list[str]:
    return [a.status for a in RunFolder(Path(outcome.run_dir)).attempts()]


@pytest.mark.anyio
async def test_a_moved_head_does_not_neuter_the_next_attempts_tests(
    tmp_path: Path, backend: str
) -> None:
    outcome = await _run(tmp_path, backend, MOVES_HEAD, WRONG)
    # Attempt 2's wrong answer meets the real test again, not the neutered commit.
    assert _statuses(outcome) == ["rejected", "rejected"]
    assert outcome.status == "exhausted"


@pytest.mark.anyio
async def test_reexecution_judges_each_patch_in_a_fresh_sandbox(
    tmp_path: Path, backend: str
) -> None:
    # `proof verify --reexecute` re-gates a run's patches: the first one's code must not change
    # how the second is judged there either.
    outcome = await _run(tmp_path, backend, MOVES_HEAD, WRONG)
    run_dir = Path(outcome.run_dir)
    item = RegateTask(ISSUE, outcome, RunFolder(run_dir).attempts(), run_dir)
    opener = sandbox_opener(SandboxConfig(backend=backend), backend, "isolation-test")
    gate = Gate([PytestEvaluator()], check_tamper=False)
    result = await regate([item], gate, lambda _run_id: opener, tmp_path / "repo")
    assert [(p.seq, p.before, p.after) for p in result.patches] == [
        (1, "rejected", "rejected"),
        (2, "rejected", "rejected"),
    ]


@pytest.mark.anyio
async def test_a_git_filter_does_not_rewrite_the_next_attempts_patch(
    tmp_path: Path, backend: str
) -> None:
    honest = block("def add(a, b):\n    return a-b + 2*b\n")  # right, and `a-b` stays in it
    outcome = await _run(tmp_path, backend, GIT_FILTER, honest)
    assert _statuses(outcome) == ["rejected", "verified"]
    diff = (Path(outcome.run_dir) / "patch.diff").read_text()
    assert "+    return a-b + 2*b" in diff  # what was tested is what ships


@pytest.mark.anyio
@pytest.mark.docker
async def test_a_lingering_process_is_gone_in_the_next_attempt(
    tmp_path: Path, docker_engine: None
) -> None:
    outcome = await _run(tmp_path, "docker", LINGERS, SEES_NOTHING)
    records = RunFolder(Path(outcome.run_dir)).attempts()
    assert [a.status for a in records] == ["rejected", "verified"], json.dumps(
        [a.feedback for a in records]
    )
