"""The coverage gate: the fraction of the patch's changed executable lines (outside tests) that
the test suite runs, measured with coverage.py (`--branch`) inside the sandbox, with the base
commit's test and coverage configuration. It passes at or above `min_diff_coverage`; the default
0 only reports."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from typing import Any

import anyio
from pydantic import BaseModel, ConfigDict, Field

from cascade.errors import InfraError
from cascade.protocols import Sandbox
from cascade.records import Finding, Patch, Task, Verdict
from evaluators.patch_files import DiffError, FileDiff, parse_diff
from evaluators.trusted_files import trusted_files

DATA_DIR = ".git"  # coverage's data and report stay out of the tree and the patch
SHOWN = 12  # uncovered lines named in feedback
UNCOVERED = "changed line not run by any test"


class CoverageConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    min_diff_coverage: float = Field(default=0.0, ge=0.0, le=1.0)
    args: tuple[str, ...] = ()  # extra pytest arguments
    timeout: float = Field(default=900.0, gt=0)


class CoverageEvaluator:
    name = "coverage"
    config_model = CoverageConfig

    def __init__(self, config: CoverageConfig | None = None) -> None:
        self.config = config or CoverageConfig()

    def baseline_key(self, task: Task) -> str:
        return ""  # nothing is measured before the patch

    async def baseline(self, sandbox: Sandbox, task: Task) -> dict[str, Any]:
        return {}

    async def evaluate(
        self, sandbox: Sandbox, task: Task, patch: Patch, baseline: Mapping[str, Any]
    ) -> Verdict:
        started = time.monotonic()
        try:
            changed = changed_lines(patch.diff)
        except DiffError as exc:
            raise InfraError(f"coverage: the canonical patch cannot be read: {exc}") from exc
        if not changed:
            return Verdict(evaluator=self.name, passed=True, feedback="", duration_s=0.0)
        # The accepted reproduction's test is one of the tests the measure runs, as for pytest:
        # a fix whose new lines only the reproduction runs is covered.
        repro = task.reproduction.files if task.reproduction else {}
        # The patch's own tests count here (unlike for pytest's verdict): coverage asks whether
        # the changed lines are exercised, and tests written with a fix are how they get to be.
        async with trusted_files(sandbox, patch, ("pytest", "coverage"), copied=repro):
            report = await self._measure(sandbox)
        for path in set(changed) - set(report["files"]):
            changed[path] = _code_lines(await sandbox.read_file(path), changed[path])
        covered, missing = judge(changed, report)
        total = sum(len(v) for v in covered.values()) + sum(len(v) for v in missing.values())
        fraction = 1.0 if total == 0 else sum(len(v) for v in covered.values()) / total
        passed = fraction >= self.config.min_diff_coverage
        findings = tuple(
            Finding(message=UNCOVERED, path=path, line=line, rule="uncovered")
            for path, lines in sorted(missing.items())
            for line in sorted(lines)
        )
        summary = f"{fraction:.0%} of {total} changed executable line(s) covered"
        feedback = ""
        if not passed:
            where = ", ".join(f"{f.path}:{f.line}" for f in findings[:SHOWN])
            more = f" (+{len(findings) - SHOWN} more)" if len(findings) > SHOWN else ""
            feedback = (
                f"Only {summary}; at least {self.config.min_diff_coverage:.0%} must be. "
                f"No test runs: {where}{more}. Add or extend tests that exercise the new code."
            )
        return Verdict(
            evaluator=self.name,
            passed=passed,
            feedback=feedback,
            findings=findings,
            duration_s=round(time.monotonic() - started, 3),
            artifacts={"coverage.json": json.dumps({"summary": summary, **report}, indent=1)},
        )

    async def _measure(self, sandbox: Sandbox) -> dict[str, Any]:
        tag = secrets.token_hex(6)
        data, out = f"{DATA_DIR}/cascade-coverage-{tag}", f"{DATA_DIR}/cascade-coverage-{tag}.json"
        run = [
            *("python", "-m", "coverage", "run", "--branch", f"--data-file={data}"),
            *("-m", "pytest", "-p", "no:cacheprovider", "-q", "--no-header"),
            *self.config.args,
        ]
        try:
            result = await sandbox.exec(
                run, timeout=self.config.timeout, env={"PYTHONDONTWRITEBYTECODE": "1"}
            )
            if result.timed_out:
                raise InfraError(
                    f"coverage: the test run timed out after {self.config.timeout:g} s"
                )
            dump = ["python", "-m", "coverage", "json", f"--data-file={data}", "-o", out, "-q"]
            await sandbox.exec(dump, timeout=120)
            raw = await sandbox.read_file(out)
        finally:
            with anyio.CancelScope(shield=True):
                await sandbox.write_files({data: None, out: None})
        if raw is None:
            tail = (result.stderr or result.stdout)[-400:]
            raise InfraError(f"coverage: no report was written (exit {result.exit_code}): {tail}")
        files = json.loads(raw).get("files", {})
        return {
            "files": {
                path: {
                    "executed_lines": info.get("executed_lines", []),
                    "missing_lines": info.get("missing_lines", []),
                }
                for path, info in files.items()
            }
        }


def changed_lines(diff: str) -> dict[str, set[int]]:
    """Lines each patched Python source file gained, tests left out (they are the measure)."""
    out: dict[str, set[int]] = {}
    for item in parse_diff(diff):
        if item.status == "deleted" or not item.path.endswith(".py") or _is_test(item):
            continue
        lines = item.added_line_numbers()
        if lines:
            out[item.path] = lines
    return out


def judge(
    changed: Mapping[str, set[int]], report: Mapping[str, Any]
) -> tuple[dict[str, set[int]], dict[str, set[int]]]:
    """(covered, missing) changed lines; a line coverage.py does not call executable (a comment,
    a blank, a docstring continuation) counts as neither. A file the run never imported is all
    missing, unless coverage was told to omit it."""
    files = report.get("files", {})
    covered: dict[str, set[int]] = {}
    missing: dict[str, set[int]] = {}
    for path, lines in changed.items():
        info = files.get(path) or files.get(f"./{path}")
        if info is None:
            missing[path] = set(lines)  # never imported: nothing of it ran
            continue
        run, idle = set(info["executed_lines"]), set(info["missing_lines"])
        if lines & run:
            covered[path] = lines & run
        if lines & idle:
            missing[path] = lines & idle
    return covered, missing


def _code_lines(data: bytes | None, lines: set[int]) -> set[int]:
    """Of `lines`, those holding code (not blank, not a comment): for a file no test imported,
    whose executable lines coverage.py never worked out."""
    text = (data or b"").decode("utf-8", errors="replace").splitlines()
    return {
        n for n in lines
        if 0 < n <= len(text) and text[n - 1].strip() and not text[n - 1].lstrip().startswith("#")
    }  # fmt: skip


def _is_test(item: FileDiff) -> bool:
    name = item.path.rsplit("/", 1)[-1]
    parts = item.path.split("/")
    return (
        name.startswith("test_")
        or name.endswith("_test.py")
        or name == "conftest.py"
        or "tests" in parts[:-1]
        or "test" in parts[:-1]
    )
