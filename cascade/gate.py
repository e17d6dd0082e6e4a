"""The gate: the configured evaluators, cheapest first and fail-fast, each judging the patch
against its own baseline. Evaluators of the same stage (lint and types) run concurrently. A
failed evaluator is data (a Verdict); an exception from one is broken infrastructure."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import anyio

from cascade.errors import CascadeError, InfraError
from cascade.protocols import Evaluator, Sandbox
from cascade.records import Patch, Task, Verdict

# Cheap first: scope needs no execution, lint and types take seconds, tests and coverage more.
STAGE = {"diff_scope": 0, "ruff": 1, "mypy": 1, "pytest": 2, "coverage": 3}
UNKNOWN_STAGE = 2

Baselines = Mapping[str, Mapping[str, Any]]


class Gate:
    def __init__(self, evaluators: Sequence[Evaluator]) -> None:
        names = [e.name for e in evaluators]
        if len(set(names)) != len(names):
            raise InfraError(f"the gate lists an evaluator twice: {names}")
        self.evaluators = sorted(evaluators, key=lambda e: STAGE.get(e.name, UNKNOWN_STAGE))

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.evaluators]

    def stages(self) -> list[list[Evaluator]]:
        stages: dict[int, list[Evaluator]] = {}
        for evaluator in self.evaluators:
            stages.setdefault(STAGE.get(evaluator.name, UNKNOWN_STAGE), []).append(evaluator)
        return [stages[key] for key in sorted(stages)]

    async def baseline(self, sandbox: Sandbox, task: Task) -> dict[str, Mapping[str, Any]]:
        """Every evaluator's pre-patch facts, on the untouched workspace."""
        results: dict[str, Mapping[str, Any]] = {}
        for evaluator in self.evaluators:
            try:
                results[evaluator.name] = await evaluator.baseline(sandbox, task)
            except CascadeError:
                raise
            except Exception as exc:  # an evaluator bug must not look like a model failure
                raise InfraError(
                    f"evaluator {evaluator.name!r} crashed at baseline: {exc!r}"
                ) from exc
        return results

    async def run(
        self, sandbox: Sandbox, task: Task, patch: Patch, baselines: Baselines
    ) -> list[Verdict]:
        """Verdicts of the stages run, in order; stops after the first stage with a failure."""
        verdicts: list[Verdict] = []
        for stage in self.stages():
            results: dict[str, Verdict] = {}

            async def one(evaluator: Evaluator, results: dict[str, Verdict] = results) -> None:
                results[evaluator.name] = await _evaluate(
                    evaluator, sandbox, task, patch, baselines.get(evaluator.name, {})
                )

            if len(stage) == 1:
                await one(stage[0])
            else:
                async with anyio.create_task_group() as group:
                    for evaluator in stage:
                        group.start_soon(one, evaluator)
            verdicts += [results[e.name] for e in stage]
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


def target_failures(baselines: Baselines) -> dict[str, str]:
    """What evaluators found wrong with the target tests at baseline (for the prompt)."""
    found: dict[str, str] = {}
    for facts in baselines.values():
        value = facts.get("target_failures")
        if isinstance(value, Mapping):
            found.update({str(k): str(v) for k, v in value.items()})
    return found


def summarize(verdicts: Sequence[Verdict], limit: int) -> str:
    """Feedback for the next model: each failed evaluator's own words, within `limit` chars."""
    parts = [f"[{v.evaluator}] {v.feedback.strip() or 'failed'}" for v in verdicts if not v.passed]
    text = "\n\n".join(parts)
    return text if len(text) <= limit else text[: limit - 20].rstrip() + "\n[… trimmed]"
