"""The resolved configuration: pydantic models only. Loading, layering and provenance live in
`cascade.wiring.settings`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from cascade.workflow_config import (
    DEFAULT_WORKFLOW,
    Section,
    ToolPolicy,
    WorkflowConfig,
    WorkflowLadder,
    WorkflowMatch,
    check_lane,
)

REPAIR_PREFIX = "repair/"
REPAIR_MODELS = ("repair/mutate",)


class RungConfig(Section):
    name: str
    model: str  # a litellm model string; `replay/<name>` is served from `cassette`
    attempts: int = Field(default=1, ge=1, le=20)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(default=4096, ge=1)
    context_tokens: int = Field(default=12000, ge=500)  # budget for the prompt's context
    timeout: float = Field(default=120.0, gt=0)  # seconds per call; always passed explicitly
    input_cost_per_token: float | None = Field(default=None, ge=0)
    output_cost_per_token: float | None = Field(default=None, ge=0)
    api_base: str | None = None
    cassette: str | None = None  # path, relative to the config file's folder
    # Per task: the most this rung may spend; a call that could exceed it climbs instead.
    max_cost_usd: float | None = Field(default=None, gt=0)
    # Answers drawn concurrently per attempt; gated one by one, the first verified wins.
    samples: int = Field(default=1, ge=1, le=8)
    # The model's context window when litellm's map does not know it (local models).
    max_input_tokens: int | None = Field(default=None, ge=1)
    # The longest answer text taken from the provider; a longer one is refused before anything
    # stores it (fault "refused": the ladder climbs). 1,000,000 characters is ~60x a full
    # 4,096-token answer (~4 characters a token): only an endpoint that ignores max_tokens, or a
    # broken or hostile one, sends more. Raise it with max_tokens above ~250,000.
    max_answer_chars: int = Field(default=1_000_000, ge=1)
    # "agent": the model works in the task's sandbox, one shell command a turn, under `tools`
    # (a workflow's `tools` replaces them); its patch is the workspace's diff, gated as any.
    mode: Literal["single", "agent"] = "single"
    tools: ToolPolicy = ToolPolicy()

    @model_validator(mode="after")
    def _replay_needs_cassette(self) -> RungConfig:
        if self.model.startswith("replay/") and not self.cassette:
            raise ValueError(f'rung {self.name!r}: a replay/ model needs `cassette = "FILE"`')
        if self.mode == "agent" and (self.is_repair or self.samples > 1):
            why = "a repair rung calls no model" if self.is_repair else "samples must be 1"
            raise ValueError(f'rung {self.name!r}: mode = "agent": {why}')
        if self.is_repair and self.model not in REPAIR_MODELS:
            known = ", ".join(REPAIR_MODELS)
            raise ValueError(f"rung {self.name!r}: unknown repair model {self.model!r} ({known})")
        return self

    @property
    def is_replay(self) -> bool:
        return self.model.startswith("replay/")

    @property
    def is_repair(self) -> bool:
        """`repair/mutate`: no provider; mutations of the most suspicious code, cost 0."""
        return self.model.startswith(REPAIR_PREFIX)


class SandboxConfig(Section):
    # "docker" (the default: no engine is an error), "auto" (Docker when an engine answers, else
    # local, with a warning), "local", or any sandbox the
    # registry can build: an entry point of `cascade.sandboxes` or a `module:Class` path.
    backend: str = Field(default="docker", min_length=1)
    command_timeout: float = Field(default=600.0, gt=0)
    image: str = "cascade-sandbox:latest"
    # Commands run once per repository environment (e.g. `pip install -e .[test]`), cached as an
    # image layer keyed by the base image, these commands and the repo's dependency files.
    setup: tuple[str, ...] = ()
    # Setup runs in a git checkout of the base commit: its history and the tags reachable from it
    # (`git describe`, setuptools-scm). The commit and those tags then join the environment's key,
    # so each commit gets its own; false: a plain tree, reused across commits.
    setup_git: bool = True
    # The sandbox's Python, "3.X". Empty: the image's own, unless the repository's
    # `requires-python` (or setup.cfg's `python_requires`) excludes it.
    python: str = ""
    options: dict[str, Any] = Field(default_factory=dict)  # backend-specific settings

    @field_validator("python", mode="before")
    @classmethod
    def _python_version(cls, value: Any) -> Any:
        if isinstance(value, int | float):  # 3.10 as a number is 3.1
            raise ValueError(f'write the version as a string ("{value}"): as a number, 3.10 is 3.1')
        if isinstance(value, str) and value and not re.fullmatch(r"3\.\d{1,2}", value):
            raise ValueError(f'must be a Python version like "3.11" (major.minor), not {value!r}')
        return value


class GateConfig(Section):
    # diff_scope costs nothing (no sandbox work) and holds the default deny rules (.github/,
    # CI and lock files, deleted or weakened tests): a gate without it has none of them.
    evaluators: tuple[str, ...] = ("diff_scope", "pytest")
    # `[gate.options.<name>]`: each evaluator's options, validated by its own config model (which
    # lives beside it) when the gate is built.
    options: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _fold_pytest_table(cls, data: Any) -> Any:
        """`[gate.pytest]`, the older place for the pytest evaluator's options, is folded into
        `[gate.options.pytest]`; a key set in both keeps the `[gate.options.pytest]` value."""
        if not isinstance(data, Mapping) or "pytest" not in data:
            return data
        data = dict(data)
        table = data.pop("pytest")
        if not isinstance(table, Mapping):
            raise ValueError("[gate.pytest] must be a table of the pytest evaluator's options")
        options = data.get("options", {})
        own = options.get("pytest", {}) if isinstance(options, Mapping) else None
        if not isinstance(own, Mapping):
            return data  # `options` itself is malformed: its own validation says how
        data["options"] = {**options, "pytest": {**table, **own}}
        return data


class IssuesConfig(Section):
    source: str = "files"
    dir: str = ".cascade/issues"
    # The github source: "owner/name" (default: the checkout's origin remote), and the REST API
    # root (default: $GITHUB_API_URL, else https://api.github.com).
    repo: str = ""
    api_url: str = ""


class RunConfig(Section):
    out: str = ".cascade/runs"
    feedback_chars: int = Field(default=4000, ge=200)
    # Keep each evaluator's baseline (per commit, configuration and sandbox image) in
    # .cascade/cache/baselines, so the next run on the same commit does not take it again.
    baseline_cache: bool = True
    # Take the baseline (ruff, mypy, the whole suite) while the first model call is drawn; the
    # gate waits for it only if the answer comes first. false: take it before any model call
    # (a repository whose gate cannot run then costs no call).
    overlap_baseline: bool = True


class LocaliseConfig(Section):
    """`[localise]`: fault localisation once a task has proving tests — the suite at the base
    commit under coverage, a context per test, statements and functions ranked by Ochiai. The
    top functions lead every rung's context; `repair/mutate` mutates the top statements."""

    enabled: bool = True
    # Seconds for the measured test runs (the first prompt waits for them; a hung test ends them).
    timeout: float = Field(default=120.0, gt=0)
    # Tests run besides the proving ones (the first in collection order); None: all of them.
    max_tests: int | None = Field(default=2000, ge=0)
    show: int = Field(default=5, ge=0, le=50)  # functions put first in a rung's context


class RepairConfig(Section):
    """`[repair]`: the `repair/mutate` rung's limits, per attempt."""

    max_candidates: int = Field(default=300, ge=1)  # mutants run against the proving tests
    max_seconds: float = Field(default=300.0, gt=0)  # wall time of the whole search
    test_timeout: float = Field(default=20.0, gt=0)  # seconds for one candidate's test run
    # Seconds for the visible suite, run on a candidate the proving tests pass (and once without
    # it): a candidate that breaks another test is not handed to the gate.
    suite_timeout: float = Field(default=120.0, gt=0)
    statements: int = Field(default=20, ge=1, le=50)  # the top-ranked statements mutated


class LearnedSkipConfig(Section):
    """Skip a rung that has rarely verified similar tasks (same label) in `.cascade/runs`."""

    enabled: bool = False
    window: int = Field(default=20, ge=1)  # the last N similar tasks that tried the rung
    min_tasks: int = Field(default=5, ge=1)  # less evidence than this never skips
    min_success: float = Field(default=0.2, ge=0.0, le=1.0)  # skip below this verified fraction


class PolicyConfig(Section):
    # What a later attempt is told of earlier ones: the last rejection, all of them, or nothing.
    carry_feedback: Literal["none", "last", "all"] = "last"
    carry_patch: bool = False  # also show the previous (rejected) patch
    # Timeouts, refused connections, 5xx and rate limits: retries of the same attempt, then climb.
    provider_retries: int = Field(default=2, ge=0, le=10)
    retry_wait_cap_s: float = Field(default=30.0, ge=0)  # a longer Retry-After climbs at once
    backoff_s: float = Field(default=1.0, ge=0)  # first wait without Retry-After; then doubles
    # Sandbox or gate-harness failures: retried on the same rung, never the model's fault.
    infra_retries: int = Field(default=2, ge=0, le=10)
    learned_skip: LearnedSkipConfig = LearnedSkipConfig()


class BudgetConfig(Section):
    """Spending caps, checked before every call against an upper-bound estimate."""

    max_cost_usd: float | None = Field(default=None, gt=0)  # per task
    batch_max_cost_usd: float | None = Field(default=None, gt=0)  # per run or batch, all tasks


class RouteRule(Section):
    """A start rung (and optionally a ceiling) for the tasks that match every condition given."""

    name: str = ""
    labels: tuple[str, ...] = ()  # the issue has one of these labels
    paths: tuple[str, ...] = ()  # every path of the task lies inside these globs
    touches: tuple[str, ...] = ()  # some path of the task lies inside these globs
    min_size: int | None = Field(default=None, ge=0)  # files in the target tests' tracebacks
    max_size: int | None = Field(default=None, ge=0)
    start_at: str | None = None
    max_rung: str | None = None  # never climb above this rung

    @model_validator(mode="after")
    def _says_something(self) -> RouteRule:
        conditions = (self.labels, self.paths, self.touches)
        if not any(conditions) and self.min_size is None and self.max_size is None:
            raise ValueError("a routing rule needs a condition: labels, paths, touches or size")
        if self.start_at is None and self.max_rung is None:
            raise ValueError("a routing rule needs `start_at` or `max_rung`")
        return self

    @property
    def label(self) -> str:
        return self.name or ", ".join(self.labels or self.paths or self.touches) or "size"


class RoutingConfig(Section):
    """`[[routing.rules]]`, the older form of `[[workflows]]`: each rule is read as a workflow
    that only moves the ladder (`CascadeConfig.lanes`), after the `[[workflows]]` given."""

    rules: tuple[RouteRule, ...] = ()  # the first rule that matches wins


def rule_as_workflow(rule: RouteRule, index: int) -> WorkflowConfig:
    """The `[[workflows]]` entry a `[[routing.rules]]` rule means: every condition must hold, and
    only the ladder moves."""
    return WorkflowConfig(
        name=rule.name or f"routing rule {index + 1}",
        match=WorkflowMatch(
            labels=rule.labels,
            paths=rule.paths,
            touches=rule.touches,
            min_size=rule.min_size,
            max_size=rule.max_size,
            mode="all",
        ),
        ladder=WorkflowLadder(start=rule.start_at, max=rule.max_rung),
    )


class ReproduceConfig(Section):
    """`[reproduce]`: the test-first stage. Before the fix ladder, a ladder of its own is asked
    for a test that fails at the base commit for the issue's reason; an accepted one proves the
    fix and ships in the patch."""

    # "missing": when no test named by the issue fails at the base commit; "always"; "never".
    when: Literal["missing", "always", "never"] = "missing"
    # A fix proven only by a test its own model wrote is not verified: the fix ladder passes
    # over rungs with that model.
    independent: bool = False
    # `[[reproduce.ladder]]`; empty: the fix ladder's rungs (names must not clash with them).
    ladder: tuple[RungConfig, ...] = ()
    options: dict[str, Any] = Field(default_factory=dict)  # the reproduction evaluator's


class ProofConfig(Section):
    """`[proof]`: how a run's receipt is sealed."""

    # An Ed25519 private key (PEM; `cascade proof keygen` makes one), relative to the config
    # file's folder: each receipt is signed with it. Empty: receipts are unsigned (tamper-evident,
    # not authenticated). Keep it outside the repository.
    key: str = ""


def default_ladder() -> tuple[RungConfig, ...]:
    return (
        RungConfig(name="cheap", model="openai/gpt-4o-mini", attempts=2),
        RungConfig(name="strong", model="openai/gpt-4o", attempts=2),
    )


class CascadeConfig(Section):
    ladder: tuple[RungConfig, ...] = Field(default_factory=default_ladder, min_length=1)
    sandbox: SandboxConfig = SandboxConfig()
    gate: GateConfig = GateConfig()
    issues: IssuesConfig = IssuesConfig()
    run: RunConfig = RunConfig()
    policy: PolicyConfig = PolicyConfig()
    budget: BudgetConfig = BudgetConfig()
    routing: RoutingConfig = RoutingConfig()
    reproduce: ReproduceConfig = ReproduceConfig()
    proof: ProofConfig = ProofConfig()
    localise: LocaliseConfig = LocaliseConfig()
    repair: RepairConfig = RepairConfig()
    workflows: tuple[WorkflowConfig, ...] = ()  # the first whose `match` holds is a task's

    @model_validator(mode="after")
    def _unique_rungs(self) -> CascadeConfig:
        names = [r.name for r in self.ladder]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"ladder rung names must be unique; repeated: {', '.join(dupes)}")
        own = [r.name for r in self.reproduce.ladder]
        clash = sorted({n for n in own if own.count(n) > 1 or n in names})
        if clash:
            raise ValueError(
                f"[[reproduce.ladder]] rung names must be unique and differ from the fix "
                f"ladder's; repeated: {', '.join(clash)}"
            )
        for rule in self.routing.rules:
            for rung in (rule.start_at, rule.max_rung):
                if rung is not None and rung not in names:
                    raise ValueError(
                        f"routing rule {rule.label!r} names rung {rung!r}, not in the ladder "
                        f"({', '.join(names)})"
                    )
        seen: set[str] = {DEFAULT_WORKFLOW}
        for flow in self.lanes:
            if flow.name in seen:
                raise ValueError(
                    f"workflow {flow.name!r}: `name` must be unique (and not {DEFAULT_WORKFLOW!r},"
                    " the workflow of every task no other matches)"
                )
            seen.add(flow.name)
            check_lane(flow, names, [r.name for r in self.reproduce.ladder])
            self._reviewer_reads(flow)
        return self

    def _reviewer_reads(self, flow: WorkflowConfig) -> None:
        """A model review needs a model: a search rung (`repair/mutate`) reads no patch."""
        if flow.review != "model":
            return
        lane = [r for r in self.ladder if not flow.ladder.rungs or r.name in flow.ladder.rungs]
        reviewer = flow.review_rung or lane[-1].name
        if any(r.name == reviewer and r.is_repair for r in lane):
            raise ValueError(
                f"workflow {flow.name!r}: the review rung {reviewer!r} is a search rung "
                f"({REPAIR_PREFIX}...), which reads no patch; name a model rung in review_rung"
            )

    @property
    def lanes(self) -> tuple[WorkflowConfig, ...]:
        """The workflows in matching order: `[[workflows]]`, then `[[routing.rules]]` as
        workflows."""
        rules = tuple(rule_as_workflow(r, i) for i, r in enumerate(self.routing.rules))
        return self.workflows + rules

    def rung(self, name: str) -> RungConfig:
        for r in (*self.ladder, *self.reproduce.ladder):
            if r.name == name:
                return r
        raise KeyError(name)

    @property
    def reproduce_ladder(self) -> tuple[RungConfig, ...]:
        """The reproduce stage's rungs: its own, or the fix ladder's."""
        return self.reproduce.ladder or self.ladder
