"""The reproduce stage (test-first): when no test named by the issue fails at the base commit, a
ladder of its own is asked for a test that does, judged by the reproduction evaluator in the
sandbox at the base commit. An accepted test joins the task: the fix ladder sees it, the gate
runs it, diff_scope locks it, and it ships in the patch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cascade.config import RungConfig
from cascade.core.gate import Baselines, Gate
from cascade.core.ladder import Stop
from cascade.errors import SandboxError
from cascade.protocols import Model, Sandbox
from cascade.records import Patch, ProvingTest, Reproduction, Task, Verdict

When = Literal["missing", "always", "never"]


@dataclass(frozen=True)
class ReproduceStage:
    """What the stage needs; built from `[reproduce]` by `cascade.wiring.assemble`."""

    ladder: tuple[RungConfig, ...]
    models: Mapping[str, Model]  # rung name -> model
    gate: Gate  # the reproduction evaluator alone
    when: When = "missing"
    independent: bool = False  # a fix proven only by its own model's test is not verified

    def wanted(self, proving: Sequence[ProvingTest], can_prove: bool) -> bool:
        """Whether to run: never without an evaluator that runs tests by name (nothing could
        prove a fix), else as `when` says."""
        if not can_prove or self.when == "never":
            return False
        return self.when == "always" or not proving

    def announce(self, proving: Sequence[ProvingTest]) -> str:
        names = " → ".join(r.name for r in self.ladder)
        why = (
            "asked for ([reproduce] when = always)"
            if proving
            else "no test named by the issue fails at the base commit"
        )
        return f"reproduce first: {why}; reproduce ladder {names}"

    def baselines(self, gate_baselines: Baselines) -> dict[str, Mapping[str, Any]]:
        """The reproduction evaluator judges against the test suite's baseline (the one with
        `outcomes`): the tests that pass at base must still pass with the candidate in place."""
        suite = next((b for b in gate_baselines.values() if "outcomes" in b), {})
        return {e.name: suite for e in self.gate.evaluators}


async def accepted_reproduction(
    sandbox: Sandbox,
    task: Task,
    patch: Patch,
    verdict: Verdict,
    *,
    rung: str,
    model: str,
    seq: int,
) -> Task:
    """The task with the accepted reproduction: its files as the sandbox holds them now (read
    before the sandbox goes), its failing tests as the verdict named them, its author."""
    files: dict[str, str] = {}
    for path in patch.files:
        data = await sandbox.read_file(path)
        if data is None:
            raise SandboxError(f"the accepted reproduction's file {path} cannot be read back")
        files[path] = data.decode("utf-8", errors="replace")
    repro = Reproduction(
        files=files,
        diff=patch.diff,
        tests=tuple(verdict.tests),
        failures=dict(verdict.tests),
        rung=rung,
        model=model,
        seq=seq,
    )
    return task.model_copy(update={"reproduction": repro})


def reproduction_note(task: Task, stop: Stop, proving: Sequence[ProvingTest]) -> str:
    """What the fix stage is told of the reproduce stage, for the progress and the record."""
    repro = task.reproduction
    if repro is not None:
        tests = ", ".join(repro.tests)
        return f"reproduction accepted ({tests}, written on {repro.rung!r}): it must pass"
    if proving:
        return f"no reproduction was accepted ({stop.reason}); the issue's own tests prove a fix"
    return (
        f"no reproduction was accepted ({stop.reason}): nothing can prove a fix, so the best "
        "outcome is unproven"
    )
