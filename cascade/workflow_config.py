"""`[[workflows]]`: the configuration of a task's whole path — what it is shown, what judges its
patch, what must prove it, who approves it, what it may spend and how it is delivered — chosen
by what the task is. Validated as strictly as the rest of the config (`cascade.config`); how a
workflow is chosen and raised is `cascade.core.workflows`."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


Review = Literal["none", "model", "human"]
Apply = Literal["auto", "draft_pr", "comment"]
Reproduce = Literal["missing", "always", "never"]


class WorkflowMatch(Section):
    """When a workflow is a task's. `any` (the default): one condition holding is enough (a
    `security` label, or a path under `src/auth/`); `all`: every condition given must hold."""

    labels: tuple[str, ...] = ()  # the issue has one of these labels
    paths: tuple[str, ...] = ()  # every path of the task lies inside these globs
    touches: tuple[str, ...] = ()  # some path of the task lies inside these globs
    min_size: int | None = Field(default=None, ge=0)  # repository files the issue names
    max_size: int | None = Field(default=None, ge=0)
    mode: Literal["any", "all"] = "any"

    @model_validator(mode="after")
    def _says_something(self) -> WorkflowMatch:
        if not (self.labels or self.paths or self.touches) and not self.sized:
            raise ValueError("`match` needs a condition: labels, paths, touches or a size bound")
        for key in ("labels", "paths", "touches"):
            if any(not item.strip() for item in getattr(self, key)):
                raise ValueError(f"`{key}` holds an empty string")
        low, high = self.min_size, self.max_size
        if low is not None and high is not None and low > high:
            raise ValueError(f"min_size {low} is above max_size {high}: nothing would match")
        return self

    @property
    def sized(self) -> bool:
        return self.min_size is not None or self.max_size is not None


class WorkflowGate(Section):
    """The evaluators that judge this workflow's patches (default: `[gate] evaluators`) and
    options laid over `[gate.options]`, key by key for each evaluator."""

    evaluators: tuple[str, ...] | None = None
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @field_validator("evaluators")
    @classmethod
    def _judges(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if value is not None and not value:
            raise ValueError("is empty: nothing would judge a patch, and nothing could prove one")
        twice = sorted({name for name in value or () if value and value.count(name) > 1})
        if twice:
            raise ValueError(f"lists {', '.join(twice)} more than once")
        return value


class WorkflowProof(Section):
    """What must prove this workflow's patches: `[reproduce] when` and `independent`, per
    workflow (unset: as `[reproduce]` says)."""

    reproduce: Reproduce | None = None
    independent: bool | None = None


class WorkflowLadder(Section):
    """Where the ladder starts and how high it climbs; `rungs`: the only rungs any attempt of the
    task may use, the reproduce stage's included (a privacy lane: a self-hosted rung alone)."""

    start: str | None = None
    max: str | None = None
    rungs: tuple[str, ...] = ()


class ToolPolicy(Section):
    """What an agent rung (`mode = "agent"`) may do in its sandbox: at most `max_steps` model
    turns, each command killed at `command_timeout` seconds, the whole loop ended at `wall_time`
    seconds, `output_chars` of a command's output fed back. `allow` (optional): the argv prefixes
    a command must start with (`[["pytest"], ["git", "diff"]]`); a command outside it is refused
    with a message the model reads, not run. The sandbox, not this list, is the security
    boundary: a list of strings cannot see what `python -c` or a test file will run."""

    max_steps: int = Field(default=30, ge=1, le=500)
    command_timeout: float = Field(default=60.0, gt=0, le=3600)
    wall_time: float = Field(default=1800.0, gt=0, le=18000)  # under the sandbox's 6-hour TTL
    output_chars: int = Field(default=10_000, ge=200, le=200_000)
    allow: tuple[tuple[str, ...], ...] | None = None

    @field_validator("allow", mode="before")
    @classmethod
    def _prefixes(cls, value: Any) -> Any:
        """Each prefix is a list of argv words; a plain string is one command's words."""
        if value is None:
            return value
        if not isinstance(value, list | tuple):
            raise ValueError('is a list of argv prefixes, e.g. [["pytest"], ["git", "diff"]]')
        out = []
        for item in value:
            words = item.split() if isinstance(item, str) else item
            if (
                not isinstance(words, list | tuple)
                or not words
                or not all(isinstance(w, str) and w.strip() for w in words)
            ):
                raise ValueError(f"{item!r} is not an argv prefix (a list of non-empty words)")
            out.append(tuple(words))
        return tuple(out)


class WorkflowBudget(Section):
    max_cost_usd: float | None = Field(default=None, gt=0)  # per task; `--max-cost-usd` caps it


class WorkflowConfig(Section):
    """`[[workflows]]`: a task's whole path — what it is shown, what judges its patch, what must
    prove it, who must approve it, what it may spend and how it is delivered — for the tasks
    its `match` holds for. The first matching workflow wins; unset keys keep the defaults."""

    name: str = Field(min_length=1)
    match: WorkflowMatch
    gate: WorkflowGate = WorkflowGate()
    proof: WorkflowProof = WorkflowProof()
    review: Review = "none"
    # review = "model": the rung whose model reviews a patch that passed every check (a blocking
    # verdict); default the top rung of the workflow's ladder. Best another family than the fixer.
    review_rung: str | None = None
    ladder: WorkflowLadder = WorkflowLadder()
    budget: WorkflowBudget = WorkflowBudget()
    context_tokens: int | None = Field(default=None, ge=500)  # every rung's, for this workflow
    tools: ToolPolicy | None = None  # every agent rung's, for this workflow
    apply: Apply = "draft_pr"
    reviewers: tuple[str, ...] = ()  # requested on the pull request (users or org/team)

    @field_validator("reviewers")
    @classmethod
    def _logins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [r for r in value if not _REVIEWER.fullmatch(r)]
        if bad:
            raise ValueError(
                f"{', '.join(map(repr, bad))}: a reviewer is a GitHub login (`alice`) or a team "
                "(`org/team`)"
            )
        return value

    @model_validator(mode="after")
    def _review_rung_reviews(self) -> WorkflowConfig:
        if self.review_rung is not None and self.review != "model":
            raise ValueError(
                f"review_rung is set, but review is {self.review!r} "
                '(a rung reviews only with review = "model")'
            )
        return self


_REVIEWER = re.compile(r"@?[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:/[A-Za-z0-9][A-Za-z0-9_.-]*)?")


DEFAULT_WORKFLOW = "default"


def check_lane(flow: WorkflowConfig, fix: list[str], reproduce: list[str]) -> None:
    """A workflow's rungs exist; `start` and `max` lie inside its `rungs`, in ladder order."""
    where = f"workflow {flow.name!r}"
    lane = flow.ladder
    unknown = [r for r in lane.rungs if r not in fix and r not in reproduce]
    if unknown:
        raise ValueError(
            f"{where}: ladder.rungs names {', '.join(map(repr, unknown))}, not a rung of the "
            f"ladder ({', '.join(fix + reproduce)})"
        )
    allowed = [r for r in fix if not lane.rungs or r in lane.rungs]
    if not allowed:
        raise ValueError(f"{where}: ladder.rungs leaves no rung of the fix ladder")
    for key in ("start", "max"):
        rung = getattr(lane, key)
        if rung is not None and rung not in allowed:
            raise ValueError(
                f"{where}: ladder.{key} is {rung!r}, not one of its rungs ({', '.join(allowed)})"
            )
    # The reviewer reads the patch: a privacy lane's `rungs` bind it as they bind every attempt.
    if flow.review_rung is not None and flow.review_rung not in allowed:
        raise ValueError(
            f"{where}: review_rung is {flow.review_rung!r}, not one of its rungs "
            f"({', '.join(allowed)})"
        )
    if lane.start and lane.max and allowed.index(lane.start) > allowed.index(lane.max):
        raise ValueError(f"{where}: ladder.start {lane.start!r} is above ladder.max {lane.max!r}")
