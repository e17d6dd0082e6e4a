"""The baseline-relative ruff gate, run for real: a tiny repository in tmp_path, a LocalSandbox,
and ruff inside it."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from cascade.errors import InfraError
from cascade.records import Issue, Patch, Task, Verdict
from cascade.testing import git as _git
from cascade.testing import make_repo
from cascade.workspace.apply import canonical_patch
from evaluators.ruff_gate import ARTIFACT, RuffConfig, RuffEvaluator
from sandboxes.local_sandbox import LocalSandbox
from tests.system_python import SystemPythonSandbox, python_without

PYPROJECT = '[project]\nname = "calc"\n\n[tool.ruff.lint]\nselect = ["E", "F"]\n'
CORE = """\
import os


def add(a, b):
    return a - b


def unused():
    x = 1
    return 2
"""
OTHER = "import json\n"  # F401 in a file the patches below never touch
TASK = Task(issue=Issue(id="L-1", title="fix add"), repo="/unused", base_commit="HEAD")


@pytest.fixture
async def box(tmp_path: Path) -> AsyncIterator[LocalSandbox]:
    files = {"pyproject.toml": PYPROJECT, "calc/core.py": CORE, "calc/other.py": OTHER}
    repo = make_repo(tmp_path / "repo", files)
    sandbox = await LocalSandbox.open(repo, _git(repo, "rev-parse", "HEAD").strip())
    try:
        yield sandbox
    finally:
        await sandbox.close()


async def _gate(
    box: LocalSandbox, files: Mapping[str, str | None], config: RuffConfig | None = None
) -> tuple[Verdict, dict[str, Any]]:
    evaluator = RuffEvaluator(config)
    base = await evaluator.baseline(box, TASK)
    await box.write_files({p: None if t is None else t.encode() for p, t in files.items()})
    patch = await canonical_patch(box)
    return await evaluator.evaluate(box, TASK, patch, base), base


def _states(verdict: Verdict) -> list[tuple[str, str, int, str]]:
    """(rule, uri, line, baselineState) for each result of the SARIF artifact."""
    doc = json.loads(verdict.artifacts[ARTIFACT])
    return [
        (
            r["ruleId"],
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            r["locations"][0]["physicalLocation"]["region"]["startLine"],
            r["baselineState"],
        )
        for r in doc["runs"][0]["results"]
    ]


@pytest.mark.anyio
async def test_baseline_records_the_whole_repository(box: LocalSandbox) -> None:
    base = await RuffEvaluator().baseline(box, TASK)
    found = {(f["path"], f["line"], f["rule"]) for f in base["findings"]}
    assert found == {
        ("calc/core.py", 1, "F401"),
        ("calc/core.py", 9, "F841"),
        ("calc/other.py", 1, "F401"),  # in a file no patch here touches
    }
    assert json.loads(json.dumps(base)) == base  # JSON-able, so it can be cached
    assert (await box.exec(["git", "status", "--porcelain"], timeout=30)).stdout == ""


@pytest.mark.anyio
async def test_new_finding_fails_and_only_it_is_reported(box: LocalSandbox) -> None:
    patched = CORE.replace("import os\n", "import os\nimport sys\n").replace("a - b", "a + b")
    verdict, _ = await _gate(box, {"calc/core.py": patched})
    assert not verdict.passed
    assert [(f.path, f.line, f.rule) for f in verdict.findings] == [("calc/core.py", 2, "F401")]
    assert "calc/core.py:2: F401 `sys` imported but unused" in verdict.feedback
    assert "`os`" not in verdict.feedback and "F841" not in verdict.feedback
    assert "calc/other.py" not in verdict.feedback  # not changed, not checked
    assert ("F401", "calc/core.py", 1, "unchanged") in _states(verdict)
    assert ("F401", "calc/core.py", 2, "new") in _states(verdict)


@pytest.mark.anyio
async def test_preexisting_findings_moved_down_are_tolerated(box: LocalSandbox) -> None:
    header = '"""Calculator."""\n\n# one\n# two\n# three\n'
    patched = header + CORE.replace("a - b", "a + b")
    verdict, base = await _gate(box, {"calc/core.py": patched})
    assert verdict.passed, verdict.feedback
    assert verdict.feedback == "" and verdict.findings == ()
    # The same two findings, five lines further down, are not the patch's.
    assert sorted(_states(verdict)) == [
        ("F401", "calc/core.py", 6, "unchanged"),
        ("F841", "calc/core.py", 14, "unchanged"),
    ]
    assert {f["line"] for f in base["findings"] if f["path"] == "calc/core.py"} == {1, 9}


@pytest.mark.anyio
async def test_fixing_a_finding_is_fine(box: LocalSandbox) -> None:
    patched = CORE.replace("import os\n\n\n", "").replace("    x = 1\n", "")
    verdict, _ = await _gate(box, {"calc/core.py": patched})
    assert verdict.passed, verdict.feedback
    assert _states(verdict) == []


@pytest.mark.anyio
async def test_a_second_copy_of_an_old_finding_is_new(box: LocalSandbox) -> None:
    # Same rule, same line text as the old F841 (`x = 1`): counted, and the copy on the line the
    # patch wrote is the one blamed.
    patched = CORE + "\n\ndef more():\n    x = 1\n    return 3\n"
    verdict, _ = await _gate(box, {"calc/core.py": patched})
    assert not verdict.passed
    assert [(f.line, f.rule) for f in verdict.findings] == [(14, "F841")]


@pytest.mark.anyio
async def test_syntax_error_is_a_new_finding(box: LocalSandbox) -> None:
    verdict, _ = await _gate(box, {"calc/core.py": CORE.replace("def add(a, b):", "def add(a, b:")})
    assert not verdict.passed
    assert {f.rule for f in verdict.findings} == {"invalid-syntax"}
    assert "calc/core.py:4: invalid-syntax" in verdict.feedback


@pytest.mark.anyio
async def test_new_file_deleted_file_and_non_python_changes(box: LocalSandbox) -> None:
    files = {
        "calc/other.py": None,  # deleted: nothing to lint
        "calc/extra.py": "def f():\n    return undefined_name\n",
        "README.md": "import os\n",
    }
    verdict, _ = await _gate(box, files)
    assert not verdict.passed
    assert [(f.path, f.rule) for f in verdict.findings] == [("calc/extra.py", "F821")]
    await box.reset()
    verdict, _ = await _gate(box, {"README.md": "docs only\n"})
    assert verdict.passed and verdict.artifacts == {}


@pytest.mark.anyio
async def test_same_size_patch_in_the_same_second_is_judged_afresh(box: LocalSandbox) -> None:
    # Same size, and the mtime pinned to the base file's, as when a patch lands within the
    # second of the baseline run (tar-written files have whole-second mtimes): no stale result.
    evaluator = RuffEvaluator()
    base = await evaluator.baseline(box, TASK)
    target = box.workdir / "calc" / "other.py"
    before = target.stat()
    target.write_text("import json\n".replace("import json", "x = y + 1  "))
    assert target.stat().st_size == before.st_size
    # The patch first: git itself trusts size and mtime, and would not see the change after.
    patch = await canonical_patch(box)
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    verdict = await evaluator.evaluate(box, TASK, patch, base)
    assert [f.rule for f in verdict.findings] == ["F821"]


@pytest.mark.anyio
async def test_feedback_is_capped(box: LocalSandbox) -> None:
    imports = "".join(f"import mod_{i}\n" for i in range(60))
    verdict, _ = await _gate(box, {"calc/many.py": imports}, RuffConfig(feedback_chars=400))
    assert len(verdict.feedback) <= 400
    assert verdict.feedback.rstrip().endswith("more.")
    assert len(verdict.findings) == 50  # the SARIF artifact keeps all 60
    assert len(_states(verdict)) == 60


@pytest.mark.anyio
async def test_repo_config_and_extra_args_are_honoured(tmp_path: Path) -> None:
    # The repo ignores F401 and has ruff `fix = true`: the gate does not report F401, and does
    # not let ruff rewrite the workspace (F541 has a safe fix ruff would otherwise apply).
    config = '[tool.ruff]\nfix = true\n\n[tool.ruff.lint]\nselect = ["F"]\nignore = ["F401"]\n'
    repo = make_repo(tmp_path / "repo", {"pyproject.toml": config, "m.py": "x = 1\n"})
    box = await LocalSandbox.open(repo, "HEAD")
    try:
        source = 'import os\n\n\ndef f():\n    return f"plain"  \n'
        verdict, _ = await _gate(box, {"m.py": source})
        assert [f.rule for f in verdict.findings] == ["F541"]
        assert await box.read_file("m.py") == source.encode()
        await box.reset()
        verdict, _ = await _gate(box, {"m.py": source}, RuffConfig(args=("--extend-select", "W")))
        assert [f.rule for f in verdict.findings] == ["F541", "W291"]
    finally:
        await box.close()


@pytest.mark.anyio
async def test_no_repo_config_blocks_only_correctness_rules(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"m.py": "x = 1\n"})
    box = await LocalSandbox.open(repo, "HEAD")
    try:
        # ruff's default set: F401 is in it (untidy, so advice only here), E501 is not.
        source = "import os\n\nx = '" + "y" * 120 + "'\n"
        verdict, _ = await _gate(box, {"m.py": source})
        assert verdict.passed and verdict.findings == ()
        assert [f.rule for f in verdict.advisories] == ["F401"]
        await box.reset()
        verdict, _ = await _gate(box, {"m.py": source + "y = undefined_name\n"})
        assert [f.rule for f in verdict.findings] == ["F821"]
        assert [f.rule for f in verdict.advisories] == ["F401"]
    finally:
        await box.close()


@pytest.mark.anyio
async def test_patch_that_breaks_the_ruff_config_fails(box: LocalSandbox) -> None:
    files = {"pyproject.toml": "[tool.ruff\n", "calc/core.py": CORE.replace("a - b", "a + b")}
    verdict, _ = await _gate(box, files)
    assert not verdict.passed
    assert [f.rule for f in verdict.findings] == ["ruff_failed"]
    assert "pyproject.toml" in verdict.feedback


@pytest.mark.anyio
async def test_a_ruff_package_in_the_repo_does_not_replace_ruff(box: LocalSandbox) -> None:
    fake = "print('{\"runs\": []}')\n"
    files = {"ruff/__init__.py": "", "ruff/__main__.py": fake, "calc/new.py": "import os\n"}
    verdict, _ = await _gate(box, files)
    assert not verdict.passed
    assert [(f.path, f.rule) for f in verdict.findings] == [("calc/new.py", "F401")]


@pytest.mark.anyio
async def test_missing_ruff_is_an_infrastructure_error(tmp_path: Path) -> None:
    bin_dir = python_without("ruff", tmp_path)
    repo = make_repo(tmp_path / "repo", {"m.py": "x = 1\n"})
    box = await SystemPythonSandbox.open(repo, "HEAD")
    assert isinstance(box, SystemPythonSandbox)
    box.bin_dir = bin_dir
    try:
        with pytest.raises(InfraError, match="python -m ruff` cannot run in the sandbox"):
            await RuffEvaluator().baseline(box, TASK)
        await box.write_files({"m.py": b"import os\n"})
        patch: Patch = await canonical_patch(box)
        with pytest.raises(InfraError, match="No module named ruff"):
            await RuffEvaluator().evaluate(box, TASK, patch, {"findings": []})
    finally:
        await box.close()
