"""The type gate on layouts real repositories have (issue #16): stubs beside their modules, a
`src/` package, a mypy configuration mypy itself refuses, and no mypy configuration at all."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from cascade.config import PolicyConfig, RungConfig, SandboxConfig
from cascade.core.engine import Engine
from cascade.core.events import Event
from cascade.core.gate import Gate
from cascade.proof.log import ProofLog
from cascade.proof.run_folder import SUMMARY_FILE
from cascade.proof.verify import verify_run
from cascade.protocols import Sandbox
from cascade.records import Issue, Task, Verdict
from cascade.testing import ScriptedModel, git, make_repo
from cascade.wiring.registry import sandbox_opener
from cascade.workspace.apply import canonical_patch
from evaluators.findings import ToolFinding
from evaluators.mypy_gate import MypyConfig, MypyEvaluator
from evaluators.mypy_setup import lenient, module_targets
from sandboxes.local_sandbox import LocalSandbox

TASK = Task(issue=Issue(id="T-16", title="types"), repo="/unused", base_commit="HEAD")
# A package whose typed API is its stubs, as with a compiled module and its pure fallback:
# `speed.py` has no annotations, `speed.pyi` says what it takes.
STUBBED = {
    "fastpkg/__init__.py": "",
    "fastpkg/speed.py": "def scale(n):\n    return n * 2\n",
    "fastpkg/speed.pyi": "def scale(n: int) -> int: ...\n",
    "fastpkg/core.py": (
        "from fastpkg.speed import scale\n\n\ndef double(n: int) -> int:\n    return scale(n)\n"
    ),
    "src/fmtpkg/__init__.py": "",
    "src/fmtpkg/fmt.py": "def show(v):\n    return str(v)\n",
    "src/fmtpkg/fmt.pyi": "def show(v: object) -> str: ...\n",
    "setup.py": "",
}
CORE = STUBBED["fastpkg/core.py"]


Opener = Callable[[Mapping[str, str]], Awaitable[Sandbox]]


@asynccontextmanager
async def _opening(root: Path, open_box: Any) -> AsyncIterator[Opener]:
    """Sandboxes on small repositories, all closed at the end."""
    opened: list[Sandbox] = []

    async def open_repo(files: Mapping[str, str]) -> Sandbox:
        box: Sandbox = await open_box(make_repo(root / f"repo{len(opened)}", files), "HEAD")
        opened.append(box)
        return box

    try:
        yield open_repo
    finally:
        for box in opened:
            await box.close()


@pytest.fixture
async def boxes(tmp_path: Path, opener: Any) -> AsyncIterator[Opener]:
    """On both backends: the sandbox image's mypy must read these layouts as the host's does."""
    async with _opening(tmp_path, opener) as open_repo:
        yield open_repo


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[Opener]:
    async with _opening(tmp_path, LocalSandbox.open) as open_repo:
        yield open_repo


async def _gate(
    box: Sandbox, base: Mapping[str, Any], files: Mapping[str, str], config: MypyConfig
) -> Verdict:
    await box.reset()
    await box.write_files({p: t.encode() for p, t in files.items()})
    return await MypyEvaluator(config).evaluate(box, TASK, await canonical_patch(box), base)


def _found(verdict: Verdict) -> list[tuple[str, str]]:
    return [(f.path, f.rule) for f in verdict.findings]


@pytest.mark.anyio
async def test_stubs_beside_their_modules_without_a_mypy_config(boxes: Opener) -> None:
    box = await boxes(STUBBED)
    config = MypyConfig()
    # Every .py and .pyi named on mypy's command line was "Duplicate module named fastpkg.speed".
    base = await MypyEvaluator(config).baseline(box, TASK)
    assert base["mode"] == "files" and base["lenient"] and base["findings"] == []
    # A real type error in a changed module, seen through the stub: rejected.
    wrong = CORE.replace("scale(n)", "scale(str(n))")
    verdict = await _gate(box, base, {"fastpkg/core.py": wrong}, config)
    assert _found(verdict) == [("fastpkg/core.py", "arg-type")]
    assert 'Argument 1 to "scale" has incompatible type "str"' in verdict.feedback
    # A correct patch that changes a module and its stub together: passes.
    right = {
        "fastpkg/speed.py": STUBBED["fastpkg/speed.py"] + "\n\ndef halve(n):\n    return n // 2\n",
        "fastpkg/speed.pyi": "def scale(n: int) -> int: ...\ndef halve(n: int) -> int: ...\n",
        "fastpkg/core.py": CORE.replace("import scale", "import halve, scale")
        + "\n\ndef half(n: int) -> int:\n    return halve(n)\n",
        "src/fmtpkg/fmt.py": "def show(v):\n    return repr(v)\n",
    }
    verdict = await _gate(box, base, right, config)
    assert verdict.passed, verdict.feedback


TYPED = {
    "calc/__init__.py": "",
    "calc/ops.py": "def double(n: int) -> int:\n    return n * 2\n",
    "calc/use.py": "from calc.ops import double\n\n\ndef run() -> int:\n    return double(2)\n",
}


@pytest.mark.anyio
async def test_a_stub_the_patch_adds_hides_no_error(local: Opener) -> None:
    """A stub added by the patch does not stand in for its module: neither the module's own new
    error nor an importer's may hide behind a stub that says what the patch likes."""
    box = await local(TYPED)
    config = MypyConfig()
    base = await MypyEvaluator(config).baseline(box, TASK)
    loose = "from typing import Any\n\ndef double(n: Any) -> Any: ...\n"
    # The module breaks its own annotation; the new stub would have covered it.
    own = {"calc/ops.py": "def double(n: int) -> int:\n    return 'two'\n", "calc/ops.pyi": loose}
    verdict = await _gate(box, base, own, config)
    assert ("calc/ops.py", "return-value") in _found(verdict), verdict.feedback
    # An importer calls it wrongly; the new stub would have accepted anything.
    caller = {"calc/use.py": TYPED["calc/use.py"].replace("double(2)", "double('2')"),
              "calc/ops.pyi": loose}  # fmt: skip
    verdict = await _gate(box, base, caller, config)
    assert ("calc/use.py", "arg-type") in _found(verdict), verdict.feedback
    # A correct stub added with a correct change passes, and is itself checked.
    good = {"calc/ops.pyi": "def double(n: int) -> int: ...\n"}
    assert (await _gate(box, base, good, config)).passed
    bad_stub = {"calc/ops.pyi": "def double(n: int) -> Undefined: ...\n"}
    verdict = await _gate(box, base, bad_stub, config)
    assert ("calc/ops.pyi", "name-defined") in _found(verdict), verdict.feedback
    assert await box.read_file("calc/ops.pyi") is not None  # put back after its absence


def test_targets_are_top_level_packages_and_modules() -> None:
    tracked = [
        "app.py", "app.pyi", "conftest.py", "pkg/__init__.py", "pkg/a.py", "pkg/a.pyi",
        "src/lib/__init__.py", "src/lib/bad.py", "tools/.hidden/run.py", "tools/x.py",
        "gone/only.py", "pkg.py",
    ]  # fmt: skip
    targets, excluded = module_targets(tracked, {"src/lib/bad.py", "gone/only.py"})
    # mypy walks each directory (stub over module, as for an import); a module beside a package
    # of its name is the package's; a file the walk would pass over is named; no dead directory.
    assert targets == ["pkg", "src", "tools", "app.pyi", "conftest.py", "tools/.hidden/run.py"]
    assert excluded == [r"^src/lib/bad\.py$"]


def test_lenient_keeps_what_a_user_calls_an_error_and_what_blocks_mypy() -> None:
    found = [
        ToolFinding("m.py", 1, "var-annotated", 'Need type annotation for "items"'),
        ToolFinding("m.py", 2, "arg-type", 'Argument 1 to "f" has incompatible type "str"'),
        ToolFinding("m.py", 3, "no-redef", 'Name "f" already defined on line 1'),
        ToolFinding("m.py", 4, "import-untyped", 'Library stubs not installed for "yaml"'),
        # No code: a blocking error, after which mypy checked nothing else.
        ToolFinding("m.pyi", 0, "error", 'Duplicate module named "m" (also at "m.py")'),
    ]
    assert [f.rule for f in lenient(found)] == ["arg-type", "error"]


MYPY_INI = "[mypy]\nplugins = not_a_plugin_anywhere\n"
LADDER = (RungConfig(name="cheap", model="scripted/cheap", attempts=1),)


@pytest.mark.anyio
async def test_a_mypy_config_mypy_refuses_stops_the_run_once_as_a_config_error(
    tmp_path: Path,
) -> None:
    task, model = _refused(tmp_path)
    events: list[Event] = []
    engine = _mypy_engine(model, on_event=events.append, policy=PolicyConfig(infra_retries=2))
    outcome = await engine.run(task, ProofLog.create(tmp_path / "runs"))
    # Tried once: the same exit 2 would come back on every try. The baseline was taken while
    # the first call was drawn: its answer is recorded, paid and not gated.
    lines = [e.message for e in events if e.kind == "baseline"]
    assert sum("could not be taken" in m for m in lines) == 1, lines
    assert len(model.prompts) == 1 and outcome.attempts == 1
    assert outcome.status == "error" and outcome.exit_code == 2 and outcome.usage_error
    said = outcome.error
    assert said.startswith(
        "mypy cannot check this repository as configured: fix the repository's mypy "
        "configuration (mypy.ini), or name what to check in cascade.toml (`[gate.options.mypy] "
        'targets = [...]`), or remove "mypy" from `[gate] evaluators`.'
    )
    assert "not_a_plugin_anywhere" in said and "tried" not in said
    summary = (Path(outcome.run_dir) / SUMMARY_FILE).read_text()
    assert "mypy cannot check this repository as configured" in summary
    assert verify_run(Path(outcome.run_dir)).ok


@pytest.mark.anyio
async def test_without_overlap_a_gate_that_cannot_run_costs_no_call(tmp_path: Path) -> None:
    task, model = _refused(tmp_path)
    engine = _mypy_engine(model, overlap_baseline=False)  # [run] overlap_baseline = false
    outcome = await engine.run(task, ProofLog.create(tmp_path / "runs"))
    assert not model.prompts and outcome.attempts == 0
    assert outcome.exit_code == 2 and "mypy cannot check this repository" in outcome.error


def _refused(tmp_path: Path) -> tuple[Task, ScriptedModel]:
    """A task on a repository whose mypy config names a plugin mypy cannot find (exit 2)."""
    repo = make_repo(tmp_path / "repo", {**STUBBED, "mypy.ini": MYPY_INI})
    task = Task(
        issue=Issue(id="T-16", title="types"),
        repo=str(repo),
        base_commit=git(repo, "rev-parse", "HEAD").strip(),
    )
    return task, ScriptedModel("cheap", sequence=["never asked"])


def _mypy_engine(model: ScriptedModel, **options: Any) -> Engine:
    """An engine whose gate is mypy alone, in the local sandbox, that never waits."""
    return Engine(
        ladder=LADDER,
        models={"cheap": model},
        gate=Gate([MypyEvaluator()]),
        open_sandbox=sandbox_opener(SandboxConfig(), "local"),
        counter=lambda _rung: lambda text: len(text) // 4,
        sleep=_no_wait,
        **options,
    )


async def _no_wait(_seconds: float) -> None:
    return None


@pytest.mark.anyio
async def test_without_any_mypy_config_only_real_errors_count(local: Opener) -> None:
    plain = {
        "calc/__init__.py": "",
        "calc/core.py": "def double(n: int) -> int:\n    return n * 2\n",
    }
    added = {"calc/extra.py": 'from calc.core import double\n\nitems = []\nBAD = double("3")\n'}
    box = await local(plain)
    base = await MypyEvaluator().baseline(box, TASK)
    verdict = await _gate(box, base, added, MypyConfig())
    assert _found(verdict) == [("calc/extra.py", "arg-type")]  # no `var-annotated`
    assert "Need type annotation" not in verdict.feedback
    # A repository that configures mypy gets every error its configuration asks for.
    box = await local({**plain, "mypy.ini": "[mypy]\n"})
    base = await MypyEvaluator().baseline(box, TASK)
    assert not base["lenient"]
    verdict = await _gate(box, base, added, MypyConfig())
    assert _found(verdict) == [
        ("calc/extra.py", "var-annotated"),
        ("calc/extra.py", "arg-type"),
    ]
