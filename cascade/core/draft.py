"""An attempt while it is being made: what the ladder knew before the call (rung, prompt,
decision), filled in as the answer is drawn, applied and gated, then frozen into the `Attempt`
record the proof log appends. Typed all the way, so a misspelt field fails where it is set."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from cascade.records import (
    AppliedPolicy,
    Attempt,
    AttemptStatus,
    Completion,
    Decision,
    FaultKind,
    ProvingTest,
    Role,
    Usage,
    Verdict,
)


@dataclass
class Draft:
    rung: str
    model: str
    attempt: int
    retry: int
    reason: str
    prompt_sha256: str
    context_files: tuple[str, ...]
    decision: Decision
    role: Role = "fix"
    sample: int = 1
    began: float | None = None  # monotonic start of what the record times; None: not timed
    model_used: str = ""
    usage: Usage = dataclasses.field(default_factory=Usage)
    cost_usd: float = 0.0
    latency_s: float = 0.0
    response_sha256: str = ""
    patch_sha256: str = ""
    verdicts: tuple[Verdict, ...] = ()
    feedback: str = ""
    error: str = ""
    proving: tuple[ProvingTest, ...] = ()
    baseline_sha256: str = ""
    base_commit: str = ""
    gate_sha256: str = ""
    policy: AppliedPolicy | None = None
    localisation_sha256: str = ""
    localised: tuple[str, ...] = ()
    candidates_sha256: str = ""
    mode: Literal["single", "agent"] = "single"
    steps: int = 0
    trajectory_sha256: str = ""
    ended: str = ""
    last_commands: tuple[str, ...] = ()

    def for_sample(self, sample: int, *, timed: bool = True) -> Draft:
        """A copy for one sample of the round, timed from now (or from the round's start)."""
        began = time.monotonic() if timed else self.began
        return dataclasses.replace(self, sample=sample, began=began)

    def answered(
        self, completion: Completion, charged: bool, put_blob: Callable[[str], str]
    ) -> Draft:
        """The fields of a model's answer; a re-gated answer's cost was recorded already."""
        self.model_used = completion.model
        self.usage = completion.usage
        self.cost_usd = 0.0 if charged else completion.cost_usd
        self.latency_s = round(completion.latency_s, 3)
        self.response_sha256 = put_blob(completion.text)
        return self

    def record(  # noqa: PLR0917 - the fields the run, not the attempt, knows
        self,
        run_id: str,
        task_id: str,
        seq: int,
        status: AttemptStatus,
        sandbox: str,
        fault: FaultKind | None = None,
    ) -> Attempt:
        """The frozen record, stamped now."""
        now = time.monotonic()
        return Attempt(
            run_id=run_id, task_id=task_id, seq=seq, status=status, sandbox=sandbox, fault=fault,
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            duration_s=round(now - (self.began if self.began is not None else now), 3),
            rung=self.rung, model=self.model, attempt=self.attempt, retry=self.retry,
            reason=self.reason, prompt_sha256=self.prompt_sha256,
            context_files=self.context_files, decision=self.decision, sample=self.sample,
            model_used=self.model_used, usage=self.usage, cost_usd=self.cost_usd,
            latency_s=self.latency_s, response_sha256=self.response_sha256,
            patch_sha256=self.patch_sha256, verdicts=self.verdicts, feedback=self.feedback,
            error=self.error, role=self.role, proving=self.proving,
            baseline_sha256=self.baseline_sha256, base_commit=self.base_commit,
            gate_sha256=self.gate_sha256, policy=self.policy,
            localisation_sha256=self.localisation_sha256, localised=self.localised,
            candidates_sha256=self.candidates_sha256, mode=self.mode, steps=self.steps,
            trajectory_sha256=self.trajectory_sha256, ended=self.ended,
            last_commands=self.last_commands,
        )  # fmt: skip
