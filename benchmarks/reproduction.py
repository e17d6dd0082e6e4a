"""The gate benchmark's reproduction cases: for issues that name no test, candidate reproduction
tests judged by the reproduction evaluator (false accepts, false rejects, rejections for another
rule than the expected one), and fixes judged as the engine judges them — the gate, then the
proving rule — once with the task as its issue gives it and once with each accepted
reproduction in it. A fix that does nothing must never come out verified. `benchmarks/gate.py`
runs these in each repository's sandbox after its patches and adds the section to its results.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from benchmarks.task_suite import (
    Expectation,
    FixOutcome,
    FixSpec,
    ReproductionSpec,
    ReproductionTaskSpec,
    apply_diff,
    task_dir,
)
from cascade.config import CascadeConfig, GateConfig
from cascade.core.gate import Gate
from cascade.core.proving import proven, proving_tests
from cascade.core.reproduce import ReproduceStage, accepted_reproduction
from cascade.protocols import IssueSource, Sandbox
from cascade.records import Task, Verdict
from cascade.wiring.registry import build_reproduction_gate

ReproStatus = Literal["ok", "false_accept", "false_reject", "wrong_reason"]
# `unexpected`: neither a false accept nor a false reject (a fix that does nothing was rejected
# where it was expected to pass the gate and stay unproven).
FixStatus = Literal["ok", "false_accept", "false_reject", "unexpected"]
Progress = Callable[[str], None]
ALONE = "(alone)"  # the `reproduction` of a fix judged without one
FEEDBACK_CHARS = 400


class Row(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReproductionResult(Row):
    repo: str
    task: str
    file: str
    kind: str
    expect: Expectation
    status: ReproStatus
    why: str  # for anything but "ok": what happened instead
    accepted: bool
    rejected_by: str
    rules: tuple[str, ...]  # the rejecting verdict's finding rules
    tests: tuple[str, ...]  # an accepted one's failing tests: what would prove a fix
    feedback: str  # trimmed: what the model that wrote it would be told
    judge_s: float

    @property
    def name(self) -> str:
        return f"{self.task}/{self.file}"


class FixResult(Row):
    repo: str
    task: str
    file: str
    kind: str
    reproduction: str  # the accepted reproduction the task held, or ALONE
    expect: FixOutcome
    outcome: FixOutcome
    status: FixStatus
    why: str
    rejected_by: str
    rules: tuple[str, ...]
    # The tests that failed at the base commit and pass with it, whatever the gate said: what
    # proves it when the gate passes it too.
    proves: tuple[str, ...]
    gate_s: float

    @property
    def name(self) -> str:
        with_ = "alone" if self.reproduction == ALONE else f"with {self.reproduction}"
        return f"{self.task}/{self.file} ({with_})"


class CaseRun(Row):
    reproductions: tuple[ReproductionResult, ...] = ()
    fixes: tuple[FixResult, ...] = ()
    wall_s: float = 0.0


def reproduction_gate(config: GateConfig) -> Gate:
    """The reproduce stage's judge, built as the engine builds it from this gate's options."""
    return build_reproduction_gate(CascadeConfig(gate=config))


async def run_cases(
    sandbox: Sandbox,
    gate: Gate,
    config: GateConfig,
    source: IssueSource,
    cases: Sequence[ReproductionTaskSpec],
    *,
    root: Path,
    repo: str,
    checkout: Path,
    commit: str,
    progress: Progress,
) -> CaseRun:
    """Every case of one repository in its open sandbox, through the suite's gate (shared with
    its patches, so its baseline cache serves these too)."""
    started = time.perf_counter()
    judge = _Judge(sandbox, config, gate, reproduction_gate(config), progress)
    for case in cases:
        task = Task(issue=source.get(case.id), repo=str(checkout), base_commit=commit)
        await judge.case(repo, task, case, task_dir(root, repo, case.id))
    wall_s = round(time.perf_counter() - started, 1)
    return CaseRun(reproductions=tuple(judge.repros), fixes=tuple(judge.fixes), wall_s=wall_s)


@dataclass
class _Judge:
    sandbox: Sandbox
    config: GateConfig
    gate: Gate  # the suite's gate, which judges fixes
    repro_gate: Gate  # the reproduce stage's, which judges candidate tests
    progress: Progress
    repros: list[ReproductionResult] = field(default_factory=list)
    fixes: list[FixResult] = field(default_factory=list)

    async def case(self, repo: str, task: Task, case: ReproductionTaskSpec, where: Path) -> None:
        """The candidates first; then every fix alone, and with each reproduction that was
        meant to be accepted and was (the engine's `_accept` and `_prove`, step by step)."""
        baselines = await self.gate.baseline(self.sandbox, task)
        stage = ReproduceStage(ladder=(), models={}, gate=self.repro_gate)
        judged = stage.baselines(baselines)  # the pytest baseline, as the engine hands it over
        with_repro: list[tuple[str, Task]] = [(ALONE, task)]
        for spec in case.reproductions:
            judgement, held = await self._reproduction(repo, task, spec, where, judged)
            self.repros.append(judgement)
            self.progress(_repro_line(judgement))
            if held is not None and spec.expect.verdict == "accept":
                with_repro.append((spec.file, held))
        for name, held in with_repro:
            baselines = await self.gate.baseline(self.sandbox, held)
            base = await self.gate.base_outcomes(self.sandbox, held)
            for fix in case.fixes:
                result = await self._fix(repo, held, name, fix, where=where, baselines=baselines,
                                         base=base)  # fmt: skip
                self.fixes.append(result)
                self.progress(_fix_line(result))

    async def _reproduction(
        self,
        repo: str,
        task: Task,
        spec: ReproductionSpec,
        where: Path,
        baselines: Mapping[str, Mapping[str, Any]],
    ) -> tuple[ReproductionResult, Task | None]:
        """Judge one candidate; an accepted one also becomes the task's reproduction (its files
        read back before the reset, as the engine reads them)."""
        sandbox = self.sandbox
        patch = await apply_diff(sandbox, (where / spec.file).read_bytes())
        held = None
        try:
            started = time.perf_counter()
            verdicts = await self.repro_gate.run(sandbox, task, patch, baselines)
            judge_s = time.perf_counter() - started
            accepted = bool(verdicts) and all(v.passed for v in verdicts)
            if accepted:
                held = await accepted_reproduction(
                    sandbox, task, patch, verdicts[-1], rung="bench", model="bench", seq=1
                )
        finally:
            await sandbox.reset()
        failed = next((v for v in verdicts if not v.passed), None)
        status, why = judge_reproduction(spec.expect, verdicts)
        result = ReproductionResult(
            repo=repo,
            task=task.issue.id,
            file=spec.file,
            kind=spec.kind,
            expect=spec.expect,
            status=status,
            why=why,
            accepted=accepted,
            rejected_by=failed.evaluator if failed else "",
            rules=_rules(failed),
            tests=tuple(verdicts[-1].tests) if accepted else (),
            feedback=(failed.feedback if failed else "")[:FEEDBACK_CHARS],
            judge_s=round(judge_s, 3),
        )
        return result, held

    async def _fix(
        self,
        repo: str,
        task: Task,
        reproduction: str,
        spec: FixSpec,
        *,
        where: Path,
        baselines: Mapping[str, Mapping[str, Any]],
        base: Mapping[str, str],
    ) -> FixResult:
        """The gate's verdicts, then the proving rule: verified only when a test that failed at
        the base commit passes with the fix (`cascade.core.proving`)."""
        sandbox = self.sandbox
        patch = await apply_diff(sandbox, (where / spec.file).read_bytes())
        try:
            started = time.perf_counter()
            verdicts = await self.gate.run(sandbox, task, patch, baselines)
            gate_s = time.perf_counter() - started
        finally:
            await sandbox.reset()
        failed = next((v for v in verdicts if not v.passed), None)
        proves = proven(proving_tests(task, base), verdicts)
        outcome: FixOutcome = "rejected" if failed or not verdicts else "unproven"
        outcome = "verified" if proves and outcome == "unproven" else outcome
        expect, by = spec.expect.with_reproduction, ""
        if task.reproduction is None:
            expect = spec.expect.alone
            if spec.uncovered and _coverage_threshold(self.config):
                expect, by = "rejected", "coverage"
        status, why = judge_fix(expect, outcome, failed, by)
        return FixResult(
            repo=repo,
            task=task.issue.id,
            file=spec.file,
            kind=spec.kind,
            reproduction=reproduction,
            expect=expect,
            outcome=outcome,
            status=status,
            why=why,
            rejected_by=failed.evaluator if failed else "",
            rules=_rules(failed),
            proves=tuple(p.test for p in proves),
            gate_s=round(gate_s, 3),
        )


def judge_reproduction(expect: Expectation, verdicts: Sequence[Verdict]) -> tuple[ReproStatus, str]:
    accepted = bool(verdicts) and all(v.passed for v in verdicts)
    failed = next((v for v in verdicts if not v.passed), None)
    if expect.verdict == "accept":
        return ("ok", "") if accepted else ("false_reject", f"the judge {_said(failed)}")
    if failed is None:
        tests = ", ".join(verdicts[-1].tests) if verdicts else ""
        return "false_accept", f"the judge accepted it (failing: {tests or 'none named'})"
    if failed.evaluator != expect.by or (expect.rule and expect.rule not in _rules(failed)):
        return "wrong_reason", f"expected {expect.by} ({expect.rule}), the judge {_said(failed)}"
    return "ok", ""


def judge_fix(
    expect: FixOutcome, outcome: FixOutcome, failed: Verdict | None, by: str = ""
) -> tuple[FixStatus, str]:
    """`by`: the evaluator that should reject it, when that is expected and matters."""
    if outcome == expect and not (by and failed and failed.evaluator != by):
        return "ok", ""
    what = _said(failed).replace(" it", "") if failed else outcome
    if outcome == "verified":
        return "false_accept", "verified: a test that failed at the base commit passes with it"
    if expect == "verified":
        return "false_reject", f"expected verified, was {what}"
    return "unexpected", f"expected {expect}" + (f" by {by}" if by else "") + f", was {what}"


def _coverage_threshold(config: GateConfig) -> bool:
    """Whether the gate rejects a patch whose new lines no test runs."""
    options = config.options.get("coverage", {})
    return "coverage" in config.evaluators and bool(options.get("min_diff_coverage"))


def _said(failed: Verdict | None) -> str:
    if failed is None:
        return "accepted it"
    return f"rejected it by {failed.evaluator} ({', '.join(_rules(failed)) or 'no rule'})"


def _rules(verdict: Verdict | None) -> tuple[str, ...]:
    return tuple(sorted({f.rule for f in verdict.findings if f.rule})) if verdict else ()


def _repro_line(r: ReproductionResult) -> str:
    said = "accepted" if r.accepted else f"rejected ({', '.join(r.rules) or r.rejected_by})"
    flag = "" if r.status == "ok" else f"  <-- {r.status.upper()}: {r.why}"
    return f"  {r.task:7} {r.file:30} {said:34} {r.judge_s:6.2f} s{flag}"


def _fix_line(r: FixResult) -> str:
    with_ = "alone" if r.reproduction == ALONE else f"with {r.reproduction}"
    flag = "" if r.status == "ok" else f"  <-- {r.status.upper()}: {r.why}"
    return f"  {r.task:7} {r.file:24} {with_:34} {r.outcome:9} {r.gate_s:6.2f} s{flag}"


def summary(runs: Sequence[CaseRun]) -> dict[str, Any]:
    """The section of results/gate.json: figures first, then every row."""
    repros = [r for run in runs for r in run.reproductions]
    fixes = [f for run in runs for f in run.fixes]

    def named(rows: Sequence[ReproductionResult | FixResult], status: str) -> list[str]:
        return [r.name for r in rows if r.status == status]

    return {
        "tasks": len({(r.repo, r.task) for r in repros} | {(f.repo, f.task) for f in fixes}),
        "wall_s": round(sum(run.wall_s for run in runs), 1),
        "reproductions": {
            "judged": len(repros),
            "ok": len(named(repros, "ok")),
            "false_accepts": named(repros, "false_accept"),
            "false_rejects": named(repros, "false_reject"),
            "wrong_reason": named(repros, "wrong_reason"),
        },
        "fixes": {
            "judged": len(fixes),
            "ok": len(named(fixes, "ok")),
            "false_accepts": named(fixes, "false_accept"),
            "false_rejects": named(fixes, "false_reject"),
            "unexpected": named(fixes, "unexpected"),
            "verified": sum(f.outcome == "verified" for f in fixes),
            "unproven": sum(f.outcome == "unproven" for f in fixes),
            "rejected": sum(f.outcome == "rejected" for f in fixes),
        },
        "reproduction_rows": [r.model_dump(mode="json") for r in repros],
        "fix_rows": [f.model_dump(mode="json") for f in fixes],
    }


def markdown(section: Mapping[str, Any]) -> list[str]:
    """The section of results/gate.md."""
    repro, fixes = section["reproductions"], section["fixes"]
    lines = [
        "## Reproductions and proof",
        "",
        f"{section['tasks']} issues that name no test; {repro['judged']} candidate reproduction "
        "tests judged by the `reproduction` evaluator, and "
        f"{fixes['judged']} fixes judged as the engine judges them (the gate, then the proving "
        "rule: verified only when a test that failed at the base commit passes with the fix), "
        f"each alone and with each accepted reproduction. {section['wall_s']:.0f} s.",
        "",
        "| | count |",
        "|---|---:|",
        f"| **reproduction false accepts** (a bad test accepted) | "
        f"**{len(repro['false_accepts'])}** |",
        f"| **reproduction false rejects** (a good test refused) | "
        f"**{len(repro['false_rejects'])}** |",
        f"| reproductions rejected, but not for the expected rule | {len(repro['wrong_reason'])} |",
        f"| **fix false accepts** (verified, but does nothing) | "
        f"**{len(fixes['false_accepts'])}** |",
        f"| fix false rejects (the right fix not verified with its reproduction) | "
        f"{len(fixes['false_rejects'])} |",
        f"| fixes ended otherwise than expected, neither of those | {len(fixes['unexpected'])} |",
        "",
        "| task | reproduction | expected | judged | status |",
        "|---|---|---|---|---|",
    ]
    for r in section["reproduction_rows"]:
        want = "accept" if r["expect"]["verdict"] == "accept" else f"reject ({r['expect']['rule']})"
        got = "accept" if r["accepted"] else f"reject ({', '.join(r['rules']) or 'no rule'})"
        lines.append(f"| {r['task']} | {r['file']} | {want} | {got} | {_status(r)} |")
    lines += [
        "",
        "*passes a proving test*: a test that failed at the base commit passes with the fix, "
        "whatever the gate said.",
        "",
        "| task | fix | judged with | expected | outcome | passes a proving test | status |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in section["fix_rows"]:
        outcome = f["outcome"] + (f" by {f['rejected_by']}" if f["rejected_by"] else "")
        proves = "yes" if f["proves"] else "no"
        lines.append(
            f"| {f['task']} | {f['file']} | {f['reproduction']} | {f['expect']} | {outcome} | "
            f"{proves} | {_status(f)} |"
        )
    by_coverage = [f for f in section["fix_rows"] if f["status"] == "false_reject"]
    if by_coverage and all(f["rejected_by"] == "coverage" and f["proves"] for f in by_coverage):
        lines += [
            "",
            f"Each of the {len(by_coverage)} fix false rejects passes its reproduction test and "
            "every other stage; only `coverage` refused it, as uncovered: it measures without "
            "the reproduction's test files, the one test that runs the new lines.",
        ]
    return [*lines, ""]


def _status(row: Mapping[str, Any]) -> str:
    if row["status"] == "ok":
        return "ok"
    return f"**{row['status']}**: " + str(row["why"]).replace("|", "\\|")
