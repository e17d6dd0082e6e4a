"""The lint gate: `ruff check` on the Python files a patch changed, passing when it finds nothing
that was not already there at the base commit. A finding is matched by path, rule and the text of
its line, so one that the patch only moved down is not blamed on it."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from cascade.errors import InfraError
from cascade.protocols import Sandbox
from cascade.records import Finding, Patch, Task, Verdict
from evaluators import sarif
from evaluators.findings import (
    MAX_FINDINGS,
    ToolFinding,
    feedback,
    infra_problem,
    new_indices,
    read_patch,
    run_tool,
    source_line,
    split_lines,
    tail,
    tool_verdict,
)
from evaluators.infrastructure import Tool
from evaluators.patch_files import by_path, old_text, python_files
from evaluators.trusted_files import trusted_files

ARTIFACT = "ruff.sarif.json"
TOOLS: tuple[Tool, ...] = ("ruff",)


class RuffConfig(BaseModel):
    """`[gate.options.ruff]`. The repo's own ruff settings (pyproject.toml, ruff.toml) apply, as
    the base commit has them: a patch's changes to them are swapped out for its run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    args: tuple[str, ...] = ()  # extra `ruff check` arguments, e.g. ("--extend-select", "B")
    timeout: float = Field(default=120.0, gt=0)
    feedback_chars: int = Field(default=2000, ge=200)


class RuffEvaluator:
    name = "ruff"
    config_model: ClassVar[type[RuffConfig]] = RuffConfig

    def __init__(self, config: RuffConfig | None = None) -> None:
        self.config = config or RuffConfig()

    def baseline_key(self, task: Task) -> str:
        """The baseline depends on the commit and config only: shared by every task on it."""
        return ""

    async def baseline(self, sandbox: Sandbox, task: Task) -> dict[str, Any]:
        """Every finding in the repository at the base commit (ruff is fast enough that this
        costs less than working out which files a patch will touch)."""
        started = time.monotonic()
        found, _doc, problem = await self._check(sandbox, ["."])
        if problem:
            raise InfraError(f"ruff cannot lint the base commit: {problem}")
        return {
            "findings": [f.to_json() for f in found],
            "duration_s": round(time.monotonic() - started, 3),
        }

    async def evaluate(
        self, sandbox: Sandbox, task: Task, patch: Patch, baseline: Mapping[str, Any]
    ) -> Verdict:
        started = time.monotonic()
        diffs = by_path(read_patch(patch))
        paths = python_files(diffs.values())
        if not paths:
            return Verdict(evaluator=self.name, passed=True)
        async with trusted_files(sandbox, patch, TOOLS, exclusive=True):
            after, doc, problem = await self._check(sandbox, paths)
        if problem:
            text = f"ruff could not check your change: {problem}"
            return tool_verdict(
                self.name, started, text, (Finding(rule="ruff_failed", message=text),)
            )
        checked = set(paths)
        before = [
            f for f in map(ToolFinding.from_json, baseline.get("findings", [])) if f.path in checked
        ]
        texts: dict[str, str] = {}
        for path in sorted({f.path for f in (*after, *before)} & checked):
            texts[path] = ((await sandbox.read_file(path)) or b"").decode("utf-8", "replace")
        new_lines = {path: split_lines(text) for path, text in texts.items()}
        old_lines = {
            path: split_lines(old_text(texts[path], diffs[path]))
            for path in {f.path for f in before}
        }
        new = new_indices(
            [(f.path, f.rule, source_line(old_lines[f.path], f.line)) for f in before],
            [(f.path, f.rule, source_line(new_lines.get(f.path, []), f.line)) for f in after],
            after,
            {path: diff.added_line_numbers() for path, diff in diffs.items()},
        )
        fresh = [after[i] for i in sorted(new, key=lambda i: (after[i].path, after[i].line))]
        artifacts = {ARTIFACT: sarif.dump(sarif.mark(doc, new))}
        if not fresh:
            return tool_verdict(self.name, started, "", (), artifacts)
        head = (
            f"ruff reports {len(fresh)} new problem(s) in the files you changed (problems that "
            "were there before your change are not counted). Fix them in the code; do not "
            "silence them with `# noqa` or by changing the lint settings:"
        )
        text = feedback(head, fresh, self.config.feedback_chars)
        shown = tuple(f.as_finding() for f in fresh[:MAX_FINDINGS])
        return tool_verdict(self.name, started, text, shown, artifacts)

    async def _check(
        self, sandbox: Sandbox, paths: Sequence[str]
    ) -> tuple[list[ToolFinding], dict[str, Any], str]:
        """(findings, SARIF with repo-relative URIs, problem). `-I`: a `ruff/` package in the
        repo (or added by a patch) must not stand in for ruff. `--no-fix`: a repo with `fix =
        true` must not have the gate rewrite its files. `--force-exclude`: the repo's excludes
        apply to files named on the command line too. `--no-cache`: ruff's cache trusts file
        mtimes, and a patch written in the same second as the last run (tar-written files have
        whole-second mtimes) would get the old file's results."""
        argv = [
            *("python", "-I", "-m", "ruff", "check", "--output-format", "sarif", "--no-fix"),
            *("--force-exclude", "--no-cache", *self.config.args, "--", *paths),
        ]
        run = await run_tool(sandbox, argv, self.config.timeout)
        infra = infra_problem(run, "ruff")
        if infra:
            raise InfraError(infra)
        if run.result.timed_out:
            return [], {}, f"ruff timed out after {self.config.timeout:g} s"
        try:
            doc = sarif.relativize(sarif.load(run.output), run.roots)
        except sarif.SarifError:
            detail = tail(run.result.stderr or run.output)
            return [], {}, f"ruff exit {run.result.exit_code}: {detail}"
        return sarif.findings(doc), doc, ""
