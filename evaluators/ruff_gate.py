"""The lint gate: `ruff check` on the Python files a patch changed, failing on the new findings of
rules that block (evaluators/ruff_policy.py: all of a repository's own ruff rules; without its own
configuration only those that mean wrong behaviour); the others are advice. A finding is matched
by path, rule and the text of its line, so one the patch only moved down is not blamed on it, and
one on a line the patch edited is matched with the old line's (evaluators/edited_lines.py)."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cascade.errors import InfraError
from cascade.protocols import Sandbox
from cascade.records import Finding, Patch, Task, Verdict
from evaluators import sarif
from evaluators.edited_lines import file_edits
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
from evaluators.ruff_policy import ALL, LintPolicy, governs, policy_for, ruff_config_dirs
from evaluators.trusted_files import trusted_files

ARTIFACT = "ruff.sarif.json"
TOOLS: tuple[Tool, ...] = ("ruff",)
_SELECTOR = re.compile(r"[A-Z]+[0-9]*")
MIN_ADVICE_CHARS = 200  # advice after blocking findings: left out when less room remains


class RuffConfig(BaseModel):
    """`[gate.options.ruff]`. The repo's own ruff settings (pyproject.toml, ruff.toml) apply, as
    the base commit has them: a patch's changes to them are swapped out for its run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    args: tuple[str, ...] = ()  # extra `ruff check` arguments, e.g. ("--extend-select", "B")
    timeout: float = Field(default=120.0, gt=0)
    feedback_chars: int = Field(default=2000, ge=200)
    # Rule codes or prefixes as ruff spells them ("F", "B006", "ALL") whose new findings reject
    # a patch; the others only advise. Unset: every rule for files under the repository's own
    # ruff configuration, else the correctness set (evaluators/ruff_policy.py).
    block: tuple[str, ...] | None = None
    advise: tuple[str, ...] = ()  # exceptions to `block`: these only advise

    @field_validator("block", "advise")
    @classmethod
    def _selectors(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        bad = [s for s in value or () if s != ALL and not _SELECTOR.fullmatch(s)]
        if bad:
            raise ValueError(
                f"{', '.join(map(repr, bad))} is not a ruff rule code or prefix "
                '(such as "F", "E9", "B006" or "ALL")'
            )
        return value


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
        costs less than working out which files a patch will touch), and the folders whose
        files the repository's own ruff configuration governs."""
        started = time.monotonic()
        found, _doc, problem = await self._check(sandbox, ["."])
        if problem:
            raise InfraError(f"ruff cannot lint the base commit: {problem}")
        return {
            "findings": [f.to_json() for f in found],
            "configs": await ruff_config_dirs(sandbox, self.config.args),
            "duration_s": round(time.monotonic() - started, 3),
        }

    def policy(self, baseline: Mapping[str, Any], path: str) -> LintPolicy:
        """Which rules block in this file: the repository's ruff configuration at the base
        commit decides, unless `block` is set."""
        governed = governs(baseline.get("configs", []), path)
        return policy_for(governed, self.config.block, self.config.advise, self.config.args)

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
        old_texts = {path: old_text(texts[path], diffs[path]) for path in {f.path for f in before}}
        new_lines = {path: split_lines(text) for path, text in texts.items()}
        old_lines = {path: split_lines(text) for path, text in old_texts.items()}
        edits = {p: file_edits(diffs[p], old_texts.get(p, ""), text) for p, text in texts.items()}
        new = new_indices(
            [(f.path, f.rule, source_line(old_lines[f.path], f.line)) for f in before],
            [(f.path, f.rule, source_line(new_lines.get(f.path, []), f.line)) for f in after],
            after,
            {path: diff.added_line_numbers() for path, diff in diffs.items()},
            base=before,
            edits=edits,
        )
        advice = {
            i for i, f in enumerate(after) if not self.policy(baseline, f.path).blocks(f.rule)
        }
        artifacts = {ARTIFACT: sarif.dump(sarif.mark(doc, new, advice))}
        fresh = sorted(new, key=lambda i: (after[i].path, after[i].line))
        blocking = [after[i] for i in fresh if i not in advice]
        advisory = [after[i] for i in fresh if i in advice]
        text = self._feedback(blocking, advisory)
        shown = tuple(f.as_finding() for f in blocking[:MAX_FINDINGS])
        advised = tuple(f.as_finding() for f in advisory[:MAX_FINDINGS])
        return tool_verdict(self.name, started, text, shown, artifacts, advisories=advised)

    def _feedback(self, blocking: list[ToolFinding], advisory: list[ToolFinding]) -> str:
        """The blocking findings first, then the advice in what room is left."""
        limit = self.config.feedback_chars
        parts: list[str] = []
        if blocking:
            head = (
                f"ruff reports {len(blocking)} new problem(s) in the files you changed (problems "
                "that were there before your change, on lines you edited too, are not counted). "
                "Fix them in the code; do not silence them with `# noqa` or by changing the lint "
                "settings:"
            )
            parts.append(feedback(head, blocking, limit))
        room = limit - sum(len(p) + 2 for p in parts)
        if advisory and room >= MIN_ADVICE_CHARS:
            head = (
                f"Advisory only, not blocking: ruff also notes {len(advisory)} new finding(s) of "
                "rules this gate does not enforce. Change them only where that is quick and safe:"
            )
            parts.append(feedback(head, advisory, room))
        return "\n\n".join(parts)

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
