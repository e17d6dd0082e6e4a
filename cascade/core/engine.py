"""The engine: what every run of a process shares — the ladder and its models, the gate, how a
sandbox is opened, the policy, budget and workflows — and `Engine.run`, one task's run
(`cascade.core.loop`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import anyio

from cascade.config import BudgetConfig, PolicyConfig, RungConfig
from cascade.core.baseline_store import BaselineStore
from cascade.core.budget import Price, Purse
from cascade.core.context import TokenCounter
from cascade.core.events import Event
from cascade.core.gate import Gate
from cascade.core.ladder import start_index
from cascade.core.localised import Localising
from cascade.core.loop import Run
from cascade.core.prices import rung_price
from cascade.core.reproduce import ReproduceStage
from cascade.core.workflows import Workflow
from cascade.proof.log import ProofLog
from cascade.protocols import Model, SandboxOpener
from cascade.records import RunOutcome, Task


@dataclass
class Engine:
    ladder: Sequence[RungConfig]
    models: Mapping[str, Model]  # rung name -> model
    gate: Gate
    open_sandbox: SandboxOpener
    counter: Callable[[RungConfig], TokenCounter]
    feedback_chars: int = 4000
    on_event: Callable[[Event], None] = lambda _event: None
    sleep: Callable[[float], Any] = field(default=anyio.sleep)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    # `[[workflows]]`, built, in matching order; a task none matches runs as the default
    # workflow: this engine's own ladder, gate, budget and reproduce stage.
    workflows: tuple[Workflow, ...] = ()
    prices: Callable[[RungConfig], Price] = rung_price  # price and context window of a rung
    purse: Purse | None = None  # money shared by the tasks of a batch
    runs_dir: Path | None = None  # past runs for learned skip (default: beside this run)
    start_at: str | None = None  # `--start-at`: a human override of the start rung
    reproduce: ReproduceStage | None = None  # the test-first stage (None: never)
    baseline_store: BaselineStore | None = None  # baselines kept across runs
    overlap_baseline: bool = True  # the first model call does not wait for the whole baseline
    localising: Localising | None = None  # fault localisation ([localise]; None: never)

    def __post_init__(self) -> None:
        # Checked when the run's engine is built, so a bad --start-at is a usage error before
        # the issue is read or a proof log exists.
        start_index(self.ladder, self.start_at)

    async def run(self, task: Task, proof: ProofLog) -> RunOutcome:
        """Climb the ladder for `task`, appending every attempt to `proof`; sealed whatever
        happens (an infrastructure error is an outcome, not an exception)."""
        return await Run(self, task, proof, self.start_at).go()

    def for_workflow(self, flow: Workflow) -> Engine:
        """This engine with the workflow's ladder, gate, budget and reproduce stage (a bad
        `--start-at` for its ladder is a UsageError here)."""
        return replace(
            self, ladder=flow.ladder, gate=flow.gate, budget=flow.budget, reproduce=flow.reproduce
        )
