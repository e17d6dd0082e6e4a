"""The gate: the configured evaluators, cheapest first and fail-fast, each judging the patch
against its own baseline. Evaluators of the same stage (lint and types) run concurrently. A
failed evaluator is data (a Verdict); an exception from one is broken infrastructure."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
from pydantic import BaseModel

from cascade.core.baseline_store import COMPUTED_BY, BaselineStore
from cascade.core.taskgroups import task_group
from cascade.errors import CascadeError, InfraError
from cascade.protocols import (
    CodeFreeEvaluator,
    ConfiguredEvaluator,
    Evaluator,
    ImageSandbox,
    ProvingEvaluator,
    Sandbox,
    ScopedBaselineEvaluator,
    TracingEvaluator,
)
from cascade.records import Finding, Patch, Task, Verdict
from cascade.workspace.tree import changed, snapshot

# Cheap first: scope needs no execution, lint and types take seconds, tests and coverage more.
STAGE = {"diff_scope": 0, "ruff": 1, "mypy": 1, "pytest": 2, "coverage": 3}
UNKNOWN_STAGE = 2

Baselines = Mapping[str, Mapping[str, Any]]
TAMPER = "evaluator_tampered"  # the verdict (and finding rule) when the tree moved during a stage
MUTATES = "_mutates"  # baseline key: paths the evaluator changes on the untouched tree


class Gate:
    """Shared by every task of a process (a batch reuses one): baselines are cached by (base
    commit, evaluator, its config, what of the task it depends on), so a second task on the
    same commit pays nothing."""

    def __init__(
        self,
        evaluators: Sequence[Evaluator],
        *,
        check_tamper: bool = True,
        shared: Gate | None = None,
    ) -> None:
        """`shared`: a gate whose baseline cache this one uses too (a workflow's gate raised by
        a stricter one's evaluators: what both run is taken once)."""
        names = [e.name for e in evaluators]
        if len(set(names)) != len(names):
            raise InfraError(f"the gate lists an evaluator twice: {names}")
        self.evaluators = sorted(
            evaluators, key=lambda e: STAGE.get(base_name(e.name), UNKNOWN_STAGE)
        )
        self.check_tamper = check_tamper
        self._cache: dict[str, Mapping[str, Any]] = shared._cache if shared else {}
        self._locks: dict[str, anyio.Lock] = shared._locks if shared else {}
        self.cache_hits = 0

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.evaluators]

    @property
    def digest(self) -> str:
        """sha256 of what judges: each evaluator's name and settings, in the order they run."""
        parts = [[e.name, settings_text(e)] for e in self.evaluators]
        raw = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()

    @property
    def can_prove(self) -> bool:
        """Whether an evaluator of this gate runs tests by name (so a test can prove a fix)."""
        return any(isinstance(e, ProvingEvaluator) for e in self.evaluators)

    async def base_outcomes(self, sandbox: Sandbox, task: Task) -> dict[str, str]:
        """How the task's named tests come out at the base commit, from every evaluator that
        runs tests by name (on the untouched workspace; not cached: it depends on the task)."""
        return (await self.base_failures(sandbox, task))[0]

    async def base_failures(
        self, sandbox: Sandbox, task: Task
    ) -> tuple[dict[str, str], Baselines | None]:
        """`base_outcomes`, and what the prompt is told of the targets from the same runs, by
        evaluator, in the shape `target_failures` reads; None when an evaluator that runs tests
        by name cannot tell it (the prompt then waits for the whole baseline)."""
        outcomes: dict[str, str] = {}
        traces: dict[str, Mapping[str, Any]] = {}
        told = True
        for evaluator in self.evaluators:
            if not isinstance(evaluator, ProvingEvaluator):
                continue
            try:
                if isinstance(evaluator, TracingEvaluator):
                    named, facts = await evaluator.base_failures(sandbox, task)
                    traces[evaluator.name] = facts
                    told = told and bool(facts)
                else:
                    named, told = await evaluator.base_outcomes(sandbox, task), False
            except CascadeError:
                raise
            except Exception as exc:
                raise InfraError(
                    f"evaluator {evaluator.name!r} crashed running the task's tests at "
                    f"the base commit: {exc!r}"
                ) from exc
            outcomes.update(named)
        return outcomes, traces if told and traces else None

    def stages(self) -> list[list[Evaluator]]:
        """Evaluators of one stage run together; a second run of an evaluator a stricter
        workflow configures otherwise (`pytest[security]`) runs alone, after its stage, so the
        two never share a sandbox's swapped-in files at once."""
        stages: dict[tuple[int, str], list[Evaluator]] = {}
        for evaluator in self.evaluators:
            twin = evaluator.name if base_name(evaluator.name) != evaluator.name else ""
            stages.setdefault((_stage(evaluator), twin), []).append(evaluator)
        return [stages[key] for key in sorted(stages)]

    def cached(
        self, sandbox: Sandbox, task: Task, store: BaselineStore | None = None
    ) -> dict[str, Mapping[str, Any]]:
        """The baselines known without running anything: taken earlier in this process, or kept
        in `store` by an earlier run (on a sandbox with an image digest); `baseline` takes the
        rest."""
        found: dict[str, Mapping[str, Any]] = {}
        for evaluator in self.evaluators:
            key = baseline_key(evaluator, task)
            facts = self._known(key, evaluator, sandbox, store)
            if facts is not None:
                found[evaluator.name] = facts
        return found

    def _known(
        self, key: str, evaluator: Evaluator, sandbox: Sandbox, store: BaselineStore | None
    ) -> Mapping[str, Any] | None:
        """The baseline under `key` from this process, else from `store` (kept here from then
        on), else None."""
        image = sandbox.image_id if isinstance(sandbox, ImageSandbox) else ""
        if key not in self._cache and store is not None and image:
            facts = store.get(store.entry_key(key, image, evaluator))
            if facts is not None:
                self._cache[key] = facts
        return self._cache.get(key)

    async def baseline(
        self, sandbox: Sandbox, task: Task, store: BaselineStore | None = None
    ) -> dict[str, Mapping[str, Any]]:
        """Every evaluator's pre-patch facts, on the untouched workspace (cached in this process
        and, with a `store` and a sandbox with an image digest, across runs)."""
        image = sandbox.image_id if isinstance(sandbox, ImageSandbox) else ""
        results: dict[str, Mapping[str, Any]] = {}
        for evaluator in self.evaluators:
            key = baseline_key(evaluator, task)
            async with self._locks.setdefault(key, anyio.Lock()):
                if key in self._cache:
                    self.cache_hits += 1
                elif self._known(key, evaluator, sandbox, store) is None:
                    facts = dict(await self._baseline(evaluator, sandbox, task))
                    if store is not None and image:
                        store.put(store.entry_key(key, image, evaluator), facts)
                        facts[COMPUTED_BY] = store.run_id
                    self._cache[key] = facts
            results[evaluator.name] = self._cache[key]
        return results

    async def _baseline(
        self, evaluator: Evaluator, sandbox: Sandbox, task: Task
    ) -> Mapping[str, Any]:
        before = await snapshot(sandbox) if self.check_tamper else {}
        try:
            facts = dict(await evaluator.baseline(sandbox, task))
        except CascadeError:
            raise
        except Exception as exc:  # an evaluator bug must not look like a model failure
            raise InfraError(f"evaluator {evaluator.name!r} crashed at baseline: {exc!r}") from exc
        if self.check_tamper:
            # Files the evaluator itself writes at baseline (a suite that writes a report into
            # the tree) are not held against a patch later.
            facts[MUTATES] = sorted(changed(before, await snapshot(sandbox)))
        return facts

    async def run(
        self, sandbox: Sandbox, task: Task, patch: Patch, baselines: Baselines
    ) -> list[Verdict]:
        """Verdicts of the stages run, in order; stops after the first stage with a failure."""
        verdicts: list[Verdict] = []
        before: dict[str, str] | None = None  # the tree as the last snapshot saw it
        for stage in self.stages():
            results: dict[str, Verdict] = {}

            async def one(evaluator: Evaluator, results: dict[str, Verdict] = results) -> None:
                results[evaluator.name] = await _evaluate(
                    evaluator, sandbox, task, patch, baselines.get(evaluator.name, {})
                )

            # A stage that runs no code in the sandbox (diff_scope) cannot move the tree.
            watch = self.check_tamper and any(_runs_code(e) for e in stage)
            if watch and before is None:
                before = await snapshot(sandbox)
            if len(stage) == 1:
                await one(stage[0])
            else:
                async with task_group() as group:
                    for evaluator in stage:
                        group.start_soon(one, evaluator)
            moved: set[str] = set()
            if watch and before is not None:
                # This stage's "after" is the next stage's "before": one snapshot per stage.
                after = await snapshot(sandbox)
                moved = changed(before, after)
                before = after
                for e in stage:
                    moved -= set(baselines.get(e.name, {}).get(MUTATES, ()))
            verdicts += [results[e.name] for e in stage]
            if moved:
                verdicts.append(_tampered(stage, sorted(moved)))
                break
            if not all(results[e.name].passed for e in stage):
                break
        return verdicts


async def _evaluate(
    evaluator: Evaluator, sandbox: Sandbox, task: Task, patch: Patch, baseline: Mapping[str, Any]
) -> Verdict:
    started = time.monotonic()
    try:
        verdict = await evaluator.evaluate(sandbox, task, patch, baseline)
    except CascadeError:
        raise
    except Exception as exc:
        raise InfraError(f"evaluator {evaluator.name!r} crashed: {exc!r}") from exc
    if not verdict.duration_s:
        verdict = verdict.model_copy(update={"duration_s": round(time.monotonic() - started, 3)})
    return verdict


def _runs_code(evaluator: Evaluator) -> bool:
    """Only an evaluator that says `runs_code = False` is spared the tamper check."""
    return not isinstance(evaluator, CodeFreeEvaluator) or bool(evaluator.runs_code)


def baseline_key(evaluator: Evaluator, task: Task) -> str:
    """An evaluator may say what of the task its baseline depends on (`ScopedBaselineEvaluator`);
    without that, everything the issue says about tests counts."""
    issue = task.issue
    scope = (
        evaluator.baseline_key(task)
        if isinstance(evaluator, ScopedBaselineEvaluator)
        else repr((issue.tests, issue.hidden_tests, sorted(issue.hidden_files.items())))
    )
    raw = "\0".join(
        (task.repo, task.base_commit, evaluator.name, settings_text(evaluator), str(scope))
    )
    return hashlib.sha256(raw.encode()).hexdigest()


def _stage(evaluator: Evaluator) -> int:
    return STAGE.get(base_name(evaluator.name), UNKNOWN_STAGE)


def base_name(name: str) -> str:
    """`coverage` of `coverage[security]`: an evaluator a stricter workflow's gate runs a second
    time, with its own options, beside the task's."""
    return name.split("[", 1)[0]


def settings_text(evaluator: Evaluator) -> str:
    """An evaluator's settings as text. The attribute's presence is all `isinstance` sees: a
    config that is not a pydantic model is known by its repr."""
    config = evaluator.config if isinstance(evaluator, ConfiguredEvaluator) else None
    return config.model_dump_json() if isinstance(config, BaseModel) else repr(config)


def _tampered(stage: Sequence[Evaluator], paths: Sequence[str]) -> Verdict:
    names = ", ".join(e.name for e in stage)
    shown = ", ".join(paths[:10]) + (f" (+{len(paths) - 10} more)" if len(paths) > 10 else "")
    return Verdict(
        evaluator=TAMPER,
        passed=False,
        feedback=(
            f"The workspace changed while {names} ran: {shown}. Code that rewrites tests or "
            "source during the gate run (a conftest, a test or a plugin writing files) is "
            "refused; make the change in the patch itself."
        ),
        findings=tuple(
            Finding(message="changed during evaluation", path=p, rule=TAMPER) for p in paths
        ),
    )


def target_failures(baselines: Baselines, tests: Sequence[str]) -> dict[str, str]:
    """How the issue's target tests fail at baseline (for the prompt), from any evaluator whose
    baseline has `outcomes` (node id -> outcome) and `failures` (node id -> text). A target that
    passes already is left out; one that does not exist is said to be missing."""
    found: dict[str, str] = {}
    for facts in baselines.values():
        outcomes, failures = facts.get("outcomes"), facts.get("failures")
        if not isinstance(outcomes, Mapping) or not isinstance(failures, Mapping):
            continue
        for test in tests:
            why = _target_failure(test, outcomes, failures)
            if why:
                found[test] = why
    return found


def _target_failure(test: str, outcomes: Mapping[str, Any], failures: Mapping[str, Any]) -> str:
    parts = test.split("::")
    for end in range(len(parts), 0, -1):  # the test itself, or a file that did not collect
        parent = "::".join(parts[:end])
        if parent in failures and (end == len(parts) or outcomes.get(parent) == "error"):
            return str(failures[parent])
    kids = [k for k in outcomes if k == test or k.startswith((test + "::", test + "["))]
    if not kids:
        return "not found at the base commit"
    bad = [k for k in kids if outcomes[k] in ("failed", "error")]
    if bad:
        return str(failures.get(bad[0], outcomes[bad[0]]))
    if all(outcomes[k] == "skipped" for k in kids):
        return "skipped at the base commit"
    return ""


def summarize(verdicts: Sequence[Verdict], limit: int) -> str:
    """Feedback for the next model: each failed evaluator's own words, then the advice of those
    that passed with some (labelled as such by them), within `limit` chars."""
    parts = [f"[{v.evaluator}] {v.feedback.strip() or 'failed'}" for v in verdicts if not v.passed]
    advised = [v for v in verdicts if v.passed and v.advisories and v.feedback.strip()]
    parts += [f"[{v.evaluator}] {v.feedback.strip()}" for v in advised]
    text = "\n\n".join(parts)
    return text if len(text) <= limit else text[: limit - 20].rstrip() + "\n[… trimmed]"
