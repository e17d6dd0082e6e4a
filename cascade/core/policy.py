"""Policy raised by what a task turns out to touch: the paths in its target tests' tracebacks
(once, after the baseline) and each fix patch's files (per patch). A stricter workflow whose path
conditions those paths meet joins the judging — its evaluators join the gate (its options win
for one both run when it asks at least as much in every other way), its review, delivery and proof
requirements are taken where stricter. Nothing here lowers what the task's own workflow asks."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import anyio

from cascade.core.attempt import Held
from cascade.core.gate import Gate
from cascade.core.proving import proving_tests
from cascade.core.workflows import (
    Judging,
    Workflow,
    choose,
    inside,
    issue_facts,
    joined_gate,
    raisers,
)
from cascade.errors import ConfigError, UsageError
from cascade.protocols import Sandbox
from cascade.records import Task, WorkflowChoice
from cascade.workspace.checkout import files_at


async def choose_workflow(
    workflows: Sequence[Workflow], default: Workflow, task: Task, start_at: str | None = None
) -> tuple[Workflow, WorkflowChoice]:
    """The task's workflow (the first whose `match` holds for what the issue says and names at
    the base commit; else `default`) and the decision record. A `--start-at` rung the workflow
    does not allow (a privacy lane's `rungs`) is a UsageError naming the workflow."""
    tracked = await tracked_at(Path(task.repo), task.base_commit)
    facts = issue_facts(task.issue, tracked)
    config, chosen = choose([f.config for f in workflows if f.config], facts)
    flow = default
    if config is not None:
        flow = next(f for f in workflows if f.config is config).matched(chosen)
    rungs = [r.name for r in flow.ladder]
    if start_at is not None and start_at not in rungs:
        raise UsageError(
            f"--start-at {start_at!r}: workflow {flow.name!r} allows only the rungs "
            f"{', '.join(rungs)}"
        )
    return flow, flow.choice(chosen, facts)


def said(choice: WorkflowChoice) -> str:
    """The decision in one progress line."""
    why = f" ({'; '.join(choice.matched)})" if choice.matched else " (no workflow matched)"
    return (
        f"workflow {choice.name!r}{why}: gate {', '.join(choice.gate)}; {choice.proof}; "
        f"review {choice.review}; {choice.ladder}"
    )


async def tracked_at(repo: Path, commit: str) -> list[str]:
    """The files of `commit` in the host's repository (none when it cannot say)."""
    return await anyio.to_thread.run_sync(files_at, repo, commit)


class PolicyRaiser:
    """The judging of one run: its workflow's, raised by the tracebacks' paths (`raise_run`)
    and, for each patch, by the patch's files (`for_patch`)."""

    def __init__(
        self, workflows: Sequence[Workflow], flow: Workflow, default: Workflow | None = None
    ) -> None:
        """`default`: the workflow of a task none matches. A task chosen for a workflow because
        every path it named lies inside that workflow's `paths` (a lane for easy work: docs,
        tests) is held to the default workflow too by a patch that strays outside them."""
        self.lane = flow.config.match.paths if flow.config is not None else ()
        self.default = default if default is not None and default.name != flow.name else None
        self.workflows = {w.name: w for w in workflows}
        self.lanes = [w.config for w in workflows if w.config is not None]
        self.judging = flow.judging
        self.gate = flow.gate
        self._gates: dict[tuple[str, ...], Gate] = {}
        self._held: dict[str, Held] = {}  # by a raised gate's digest
        self.rungs: list[tuple[str, set[str]]] = []  # raising lanes: the rungs each allows

    def raise_run(self, paths: Sequence[str], what: str) -> str:
        """Raise the whole run's judging for `paths`; a note saying so, or "". A raising
        workflow that is a lane (`ladder.rungs`) also narrows the run's rungs (`raised_flow`)."""
        found = raisers(self.lanes, self.judging.workflow, paths)
        judging, gate = self._raised(paths, what, self.judging, self.gate)
        for config, why in [(c, why) for c, why in found if c.ladder.rungs]:
            if config.name not in judging.raised_by:
                judging = judging.join(self.workflows[config.name].judging, f"{what} {why}")
            self.rungs.append((config.name, set(config.ladder.rungs)))
        if judging is self.judging:
            return ""
        self.judging, self.gate = judging, gate
        return "policy raised: " + "; ".join(judging.why)

    def raised_flow(self, flow: Workflow) -> Workflow:
        """`flow` under the run's raised policy: the joined gate, the reproduce stage under the
        raised proof requirement (None stays None: a patch is then held to it when judged), and
        only the rungs every raising lane allows too — a ConfigError when none is left."""
        ladder = flow.ladder
        for name, allowed in self.rungs:
            ladder = tuple(r for r in ladder if r.name in allowed)
            if not ladder:
                raise ConfigError(
                    f"workflow {name!r} (its paths are the task's) allows only the rungs "
                    f"{', '.join(sorted(allowed))}, none of which workflow {flow.name!r} has"
                )
        names = {r.name for r in ladder}
        lane = flow.lane
        if lane is not None:
            start = lane.start if lane.start in names else None
            lane = dataclasses.replace(
                lane, start=start, ceiling=lane.ceiling if lane.ceiling in names else None
            )
        stage = flow.reproduce
        if stage is not None:
            j = self.judging
            when = j.reproduce if j.reproduce != "never" else stage.when
            own = tuple(r for r in stage.ladder if not self.rungs or r.name in names) or ladder
            stage = dataclasses.replace(stage, when=when, independent=j.independent, ladder=own)
        return dataclasses.replace(
            flow, gate=self.gate, ladder=ladder, lane=lane, reproduce=stage, judging=self.judging
        )

    async def hold(
        self,
        paths: Sequence[str],
        own: Held,
        sandbox: Sandbox,
        task: Task,
        put_blob: Callable[[str], str],
    ) -> Held:
        """What a fix patch touching `paths` is held to: `own` (the run's gate, baselines,
        judging and proving tests), or — raised by a stricter workflow — its joined gate with
        that gate's baselines and the base outcomes of its test runs (what can prove the patch),
        taken on the untouched `sandbox` once per gate."""
        gate, judging = self.for_patch(paths, own.gate)
        if gate is own.gate:
            return dataclasses.replace(own, judging=judging)
        if gate.digest not in self._held:
            taken = await gate.baseline(sandbox, task)
            base = await gate.base_outcomes(sandbox, task)
            sha = put_blob(json.dumps(base, sort_keys=True, indent=1))
            self._held[gate.digest] = Held(gate, taken, judging, proving_tests(task, base), sha)
        return dataclasses.replace(self._held[gate.digest], judging=judging)

    def for_patch(self, paths: Sequence[str], gate: Gate) -> tuple[Gate, Judging]:
        """The gate and judging a fix patch touching `paths` is held to."""
        judging, raised = self._raised(paths, "the patch touches", self.judging, gate)
        return raised, judging

    def _raised(
        self, paths: Sequence[str], what: str, judging: Judging, gate: Gate
    ) -> tuple[Judging, Gate]:
        """`judging` and `gate` joined with every stricter workflow `paths` belong to; the same
        objects when none raises anything."""
        done = {judging.workflow, *judging.raised_by}
        stricter: list[tuple[str, Gate]] = []
        so_far = gate
        found = [
            (self.workflows[c.name], why) for c, why in raisers(self.lanes, judging.workflow, paths)
        ]
        astray = [p for p in paths if self.lane and not inside(p, self.lane)]
        if astray and self.default is not None:
            where = ", ".join(self.lane)
            found.append((self.default, f"{', '.join(astray[:3])} outside {where}"))
        for flow, why in found:
            if flow.name in done:
                continue
            joined = judging.join(flow.judging, f"{what} {why}")
            same = dataclasses.replace(joined, raised_by=judging.raised_by, why=judging.why)
            more = joined_gate(gate, [*stricter, (flow.name, flow.gate)])
            if same == judging and more.digest == so_far.digest:
                continue  # a workflow no stricter than this one in any way: nothing to say
            judging, so_far = joined, more
            stricter.append((flow.name, flow.gate))
        if not stricter:
            return judging, gate
        key = (gate.digest, *(f"{name}:{g.digest}" for name, g in stricter))
        if key not in self._gates:
            self._gates[key] = so_far
        return judging, self._gates[key]
