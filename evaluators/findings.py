"""What the baseline-relative tool gates (ruff, mypy) share: one finding shape, running a tool in
the sandbox, telling new findings from old ones whose lines moved, and feedback for a model."""

from __future__ import annotations

import re
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from cascade.errors import InfraError
from cascade.protocols import Sandbox
from cascade.records import ExecResult, Finding, Patch, Verdict
from evaluators.edited_lines import FileEdits
from evaluators.patch_files import DiffError, FileDiff, parse_diff

# Prints the workspace path (as given and resolved) before the tool's own output, so absolute
# paths in its report can be made repo-relative without a second round trip to the sandbox.
_WITH_ROOTS = 'pwd; pwd -P; exec "$@"'
MAX_FINDINGS = 50  # kept in a verdict; the SARIF artifact has them all
_NUMBERS = re.compile(r"\b\d+\b")  # a number on its own, not a digit in a name


@dataclass(frozen=True)
class ToolFinding:
    path: str
    line: int
    rule: str
    message: str
    column: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ToolFinding:
        return cls(**data)

    def as_finding(self) -> Finding:
        return Finding(message=self.message, path=self.path, line=self.line, rule=self.rule)


@dataclass(frozen=True)
class ToolRun:
    result: ExecResult
    roots: tuple[str, ...]  # the workspace's absolute path(s)
    output: str  # the tool's stdout, without the roots


async def run_tool(sandbox: Sandbox, argv: Sequence[str], timeout: float) -> ToolRun:
    result = await sandbox.exec(
        ["sh", "-c", _WITH_ROOTS, "sh", *argv],
        timeout=timeout,
        env={"PYTHONDONTWRITEBYTECODE": "1", "NO_COLOR": "1"},
    )
    head, output = _split_roots(result.stdout)
    return ToolRun(result, head, output)


def _split_roots(stdout: str) -> tuple[tuple[str, ...], str]:
    lines = stdout.split("\n", 2)
    if len(lines) < 3 or not lines[0].startswith("/"):
        return (), stdout
    roots = sorted({lines[0], lines[1]}, key=len, reverse=True)
    return tuple(root.rstrip("/") + "/" for root in roots), lines[2]


def infra_problem(run: ToolRun, module: str) -> str:
    """Why the tool itself could not run (not the patch's fault), or ""."""
    result = run.result
    if result.exit_code in (126, 127) or f"No module named {module}" in result.stderr:
        return f"`python -m {module}` cannot run in the sandbox: {tail(result.stderr)}"
    if result.exit_code < 0 and not result.timed_out:
        return f"{module} was killed by signal {-result.exit_code}"
    return ""


def relative(path: str, roots: Sequence[str]) -> str:
    for root in roots:
        if path.startswith(root):
            return path[len(root) :]
    return path.removeprefix("./")


def read_patch(patch: Patch) -> list[FileDiff]:
    try:
        return parse_diff(patch.diff)
    except DiffError as exc:  # the canonical diff always parses; this is a machinery fault
        raise InfraError(f"cannot read the canonical patch: {exc}") from exc


def new_indices(
    before: Sequence[Hashable],
    after: Sequence[Hashable],
    findings: Sequence[ToolFinding],
    fresh: Mapping[str, set[int]],
    *,
    base: Sequence[ToolFinding] = (),
    edits: Mapping[str, FileEdits] | None = None,
) -> set[int]:
    """Indices of the findings after the patch that were not there before, matched by key (not
    by line number). When a key occurs more often than before, the extra ones are new; those on
    lines the patch wrote (`fresh`, by path) are blamed first. With `base` (the findings whose
    keys `before` holds) and the patch's `edits`, a finding left over on a line the patch wrote
    is not new either when the base had the same problem (rule and message) on a line the patch
    removed, in the same change block or else in the same function: an edited line keeps its
    old findings, while a line the patch only added has none to keep."""
    removed = [_on_removed(f, edits) for f in base] if edits and len(base) == len(before) else []
    pools: dict[Hashable, list[int]] = {}
    # Old findings on lines that are still there are taken first; those on removed lines stay
    # free for the edited lines that replaced them.
    for j in sorted(range(len(before)), key=lambda j: (bool(removed) and removed[j], j)):
        pools.setdefault(before[j], []).append(j)
    # Findings on untouched lines take up the old ones first, so what is left over is fresh.
    order = sorted(
        range(len(after)),
        key=lambda i: (findings[i].line in fresh.get(findings[i].path, set()), i),
    )
    new: set[int] = set()
    for i in order:
        pool = pools.get(after[i])
        if pool:
            pool.pop(0)
        else:
            new.add(i)
    if not removed or edits is None:
        return new
    left = sorted(j for pool in pools.values() for j in pool if removed[j])
    return new - _kept_on_edited_lines(sorted(new), left, findings, base, edits)


def _on_removed(f: ToolFinding, edits: Mapping[str, FileEdits] | None) -> bool:
    e = (edits or {}).get(f.path)
    return e is not None and f.line in e.removed


def _kept_on_edited_lines(
    new: Sequence[int],
    left: Sequence[int],
    findings: Sequence[ToolFinding],
    base: Sequence[ToolFinding],
    edits: Mapping[str, FileEdits],
) -> set[int]:
    """Of the `new` findings on written lines, those that an unmatched base finding on a removed
    line (`left`) accounts for: each base finding accounts for one, by block first."""
    unused = list(left)
    kept: set[int] = set()
    for by_function in (False, True):
        for i in new:
            f = findings[i]
            e = edits.get(f.path)
            if i in kept or e is None or f.line not in e.written:
                continue
            for j in unused:
                old = base[j]
                if not _same_problem(f, old):
                    continue
                if by_function:
                    scope = e.new_scope(f.line)
                    same = bool(scope) and scope == e.old_scope(old.line)
                else:
                    same = e.written[f.line] == e.removed[old.line]
                if same:
                    kept.add(i)
                    unused.remove(j)
                    break
    return kept


def _same_problem(a: ToolFinding, b: ToolFinding) -> bool:
    """Same file, rule and message; numbers in messages (a line's length) may differ."""
    return (
        a.path == b.path
        and a.rule == b.rule
        and _NUMBERS.sub("#", a.message) == _NUMBERS.sub("#", b.message)
    )


def source_line(lines: Sequence[str], number: int) -> str:
    """The stripped text of a 1-based line; a key that survives the line moving."""
    return lines[number - 1].strip() if 0 < number <= len(lines) else ""


def split_lines(text: str) -> list[str]:
    return re.split(r"\r\n|\r|\n", text)


def feedback(head: str, findings: Sequence[ToolFinding], limit: int) -> str:
    """`path:line: RULE message` per finding, under a head line, within `limit` characters."""
    lines = [head]
    used = len(head)
    for shown, f in enumerate(findings):
        line = f"{f.path}:{f.line}: {f.rule} {f.message}"
        if used + len(line) + 40 > limit:
            lines.append(f"… and {len(findings) - shown} more.")
            break
        lines.append(line)
        used += len(line) + 1
    return "\n".join(lines)


def tail(text: str, lines: int = 15, chars: int = 1500) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])[-chars:]


def tool_verdict(
    name: str,
    started: float,
    text: str,
    found: tuple[Finding, ...],
    artifacts: dict[str, str] | None = None,
    *,
    advisories: tuple[Finding, ...] = (),
) -> Verdict:
    """A lint or type verdict: it passes exactly when there is no feedback to give, or when all
    there is to say is advice (`advisories`, and no `found`)."""
    return Verdict(
        evaluator=name,
        passed=not text or (bool(advisories) and not found),
        feedback=text,
        findings=found,
        duration_s=round(time.monotonic() - started, 3),
        artifacts=artifacts or {},
        advisories=advisories,
    )
