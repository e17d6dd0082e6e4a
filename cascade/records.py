"""Typed records at every boundary: frozen, no unknown fields; persisted ones carry a
schema_version."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 3  # 3: chained records hashed over RFC 8785; 2: roles and proving tests


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Scope(Record):
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()


class Issue(Record):
    """An issue as a source delivers it. `hidden_files` maps repo paths to test sources that the
    gate copies in for its run; neither they nor `hidden_tests` ever reach a prompt. `notes` are
    what the source left out or changed and the run should say (an untrusted author's settings
    ignored): cascade's own sentences, never the issue's text, so any log or report may print
    them; they never reach a prompt either."""

    id: str
    title: str
    body: str = ""
    labels: tuple[str, ...] = ()
    tests: tuple[str, ...] = ()
    hidden_tests: tuple[str, ...] = ()
    hidden_files: dict[str, str] = Field(default_factory=dict)
    scope: Scope = Scope()
    source: str = ""  # where it was read from (a file path, a URL)
    notes: tuple[str, ...] = ()

    def matches(self, query: str) -> bool:
        """What an issue source's `list(query)` keeps: "" keeps all; else the query found in the
        id or title, or equal to a label (case-insensitive)."""
        q = query.lower()
        return (
            not q
            or q in self.id.lower()
            or q in self.title.lower()
            or any(q == label.lower() for label in self.labels)
        )


Role = Literal["fix", "reproduce"]  # whom an attempt works for: the fix or the test proving it
# Whom one model call works for: an attempt's role, or the review of a patch that passed the gate.
CallRole = Literal["fix", "reproduce", "review"]


class Reproduction(Record):
    """An accepted reproduction: a test, written before the fix by the reproduce stage, that
    fails at the base commit for the issue's reason. Its files are copied in for every gate run
    of the fix, shown to the fix ladder, locked against the fix, and shipped in the patch."""

    files: dict[str, str]  # path -> content with the reproduction applied
    diff: str  # its canonical patch against the base commit
    tests: tuple[str, ...]  # pytest node ids that fail at the base commit for the issue's reason
    failures: dict[str, str] = Field(default_factory=dict)  # node id -> how it fails at base
    rung: str = ""  # who wrote it
    model: str = ""
    seq: int = 0  # the reproduce attempt that wrote it


class Task(Record):
    """One issue against one repository at one commit (and, once the reproduce stage accepted
    one, the test that reproduces it)."""

    issue: Issue
    repo: str  # absolute path of the user's checkout
    base_commit: str
    reproduction: Reproduction | None = None

    @property
    def targets(self) -> tuple[str, ...]:
        """The tests that must pass after a fix: the issue's own, then the reproduction's."""
        extra = self.reproduction.tests if self.reproduction else ()
        return (*self.issue.tests, *(t for t in extra if t not in self.issue.tests))


class Message(Record):
    role: Literal["system", "user", "assistant"]
    content: str


class Usage(Record):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class CompletionParams(Record):
    """What one call asks of a model, beyond the messages."""

    temperature: float = 0.0
    max_tokens: int = 4096
    timeout: float = 120.0
    task_id: str = ""  # lets a cassette find its answer
    attempt: int = 1
    sample: int = 1  # which of a rung's `samples` answers this call is (a cassette's key too)
    role: CallRole = "fix"  # the reproduce stage's and the review's calls are keyed apart
    step: int = 0  # an agent rung's turn (1, 2, ...; a cassette's key too); 0: a single answer


class Completion(Record):
    text: str
    usage: Usage = Usage()
    cost_usd: float = 0.0
    latency_s: float = 0.0
    model: str  # the model that actually answered


class Edit(Record):
    """One change asked for by a model. `search` empty on a search/replace edit creates a file."""

    path: str
    kind: Literal["search_replace", "whole_file", "udiff"]
    search: str = ""
    replace: str = ""
    diff: str = ""  # kind == "udiff": a unified diff for this file, as the model wrote it


class Patch(Record):
    """The canonical patch: `git diff` of the sandbox workspace against the base, never the
    model's own diff text."""

    diff: str
    sha256: str
    files: tuple[str, ...]
    added: int = 0
    removed: int = 0


class ExecResult(Record):
    argv: tuple[str, ...]
    exit_code: int
    stdout: str
    stderr: str = ""
    duration_s: float = 0.0
    timed_out: bool = False


class Finding(Record):
    """One problem an evaluator saw, specific enough for a model to act on."""

    message: str
    path: str = ""
    line: int = 0
    rule: str = ""


class Verdict(Record):
    """One evaluator's judgement. Evaluators return `artifacts` as name -> text; the engine
    stores each as a blob and records name -> sha256."""

    evaluator: str
    passed: bool
    feedback: str = ""  # written for the next model: short, specific, no hidden-test source
    findings: tuple[Finding, ...] = ()
    duration_s: float = 0.0
    artifacts: dict[str, str] = Field(default_factory=dict)  # name -> blob sha256
    # The tests this verdict speaks for by name, node id -> outcome ("passed", "failed: ..."):
    # pytest's targets and hidden tests after the patch; a reproduction's failing tests at base.
    tests: dict[str, str] = Field(default_factory=dict)
    # Problems worth a look that never fail a verdict (a lint rule the repository does not
    # enforce): shown to the model and the reviewer. Absent from records older than it.
    advisories: tuple[Finding, ...] = ()


AttemptStatus = Literal[
    "verified", "rejected", "edit_error", "provider_error", "infra_error", "empty_patch",
    "cancelled",  # a sample drawn but not gated: another sample of its round verified first
    "unproven",  # a fix that passed every check, but no test shows that it fixes the issue
    "accepted",  # a reproduction that fails at the base commit for the issue's reason
]  # fmt: skip

ProofSource = Literal["issue", "hidden", "reproduction"]


class ProvingTest(Record):
    """A test that proves a fix: it failed at the base commit and passes with the patch."""

    test: str  # pytest node id
    source: ProofSource
    base: str  # how it failed at the base commit (its outcome and first line)
    after: str = "passed"
    rung: str = ""  # who wrote it (a reproduction); empty for the issue's own tests
    model: str = ""


# What a provider fault was, so the ladder can answer it (wait, retry, climb to a larger context
# window, stop) and a reader can see it in the record.
FaultKind = Literal[
    "rate_limit", "timeout", "connection", "server",  # transient: bounded retries
    "context_window", "refused",  # this rung cannot answer: climb
    "auth", "not_found", "bad_request", "unknown",  # the configuration is wrong: stop
]  # fmt: skip

DecisionKind = Literal["start", "retry", "fault_retry", "infra_retry", "climb"]


class Alternative(Record):
    """A rung the policy considered and passed over, and why."""

    rung: str
    why: str


class PassedOver(Record):
    """A workflow a task did not match, and which of its conditions failed."""

    workflow: str
    why: str


class WorkflowChoice(Record):
    """The task's path, decided before any model call and in the order it is decided: which
    workflow and why (and which were passed over), then context, scope, gate and proof,
    review, and last the model's ladder."""

    name: str
    matched: tuple[str, ...] = ()  # the conditions that held; none for the default workflow
    passed_over: tuple[PassedOver, ...] = ()
    context_tokens: int | None = None  # the workflow's; None: each rung's own
    paths: tuple[str, ...] = ()  # the task's paths the choice saw (what the issue names)
    gate: tuple[str, ...] = ()
    proof: str = ""  # e.g. "reproduce missing", "reproduce always, independent"
    review: str = "none"
    ladder: str = ""  # "start cheap, ceiling strong" (and the rungs a lane allows)
    budget_usd: float | None = None  # the per-task cap
    apply: str = "draft_pr"
    reviewers: tuple[str, ...] = ()


class AppliedPolicy(Record):
    """What a fix attempt was held to: the task's workflow, raised (never lowered) by stricter
    workflows whose paths the target tests' tracebacks or this patch touch."""

    workflow: str
    raised_by: tuple[str, ...] = ()
    why: tuple[str, ...] = ()  # for each raise: which paths matched which workflow
    review: str = "none"
    apply: str = "draft_pr"
    reviewers: tuple[str, ...] = ()


class Decision(Record):
    """Why the ladder made this attempt, as the pure policy decided it before the call."""

    kind: DecisionKind
    why: str  # why this rung and attempt, one sentence
    escalation: str = ""  # on a climb: why the previous rung was left
    route: str = ""  # the routing rule or human override that set the start rung
    rejected: tuple[Alternative, ...] = ()
    labels: tuple[str, ...] = ()  # the task facts the policy saw
    size: int = 0  # files in the target tests' tracebacks at baseline
    estimated_prompt_tokens: int = 0
    estimated_cost_usd: float = 0.0  # upper bound for the call(s), checked against the budgets
    local: bool = False  # the rung has no price (a local model): its calls count as $0
    wait_s: float = 0.0  # slept before the call (Retry-After, backoff)
    notes: tuple[str, ...] = ()  # what happened before it that was not the model's doing
    # The first attempt of a run: the workflow that set its path, and why.
    workflow: WorkflowChoice | None = None


class Attempt(Record):
    """One try of one rung, as written to attempts.jsonl (the chain fields are added there)."""

    schema_version: int = SCHEMA_VERSION
    run_id: str
    task_id: str
    seq: int  # 1-based position in the run
    rung: str
    model: str
    attempt: int  # 1-based within the rung
    status: AttemptStatus
    reason: str = ""  # why the ladder chose this rung / why it will climb
    model_used: str = ""
    usage: Usage = Usage()
    cost_usd: float = 0.0
    latency_s: float = 0.0
    duration_s: float = 0.0
    prompt_sha256: str = ""
    response_sha256: str = ""
    patch_sha256: str = ""
    verdicts: tuple[Verdict, ...] = ()
    feedback: str = ""
    error: str = ""
    started_at: str = ""
    sandbox: str = ""  # backend and image digest the patch was gated in
    context_files: tuple[str, ...] = ()  # what the model was shown, in prompt order
    decision: Decision | None = None  # None in records written before the policy logged them
    retry: int = 0  # 0 for a first try; n for the n-th retry after a provider or infra fault
    sample: int = 1  # which of the rung's `samples` concurrent answers this is
    fault: FaultKind | None = None  # provider_error: what kind of fault
    role: Role = "fix"
    # What proves a verified fix (each test failed at base and passes with this patch), and the
    # blob of the test outcomes at the base commit that the claims can be checked against.
    proving: tuple[ProvingTest, ...] = ()
    baseline_sha256: str = ""
    # What the verdict depends on, in the chain itself: the commit the patch was judged against
    # and a digest of the gate's configuration (its evaluators and their settings, in order);
    # the sandbox image is in `sandbox`. Re-judging a run needs nothing an unchained file says.
    base_commit: str = ""
    gate_sha256: str = ""
    policy: AppliedPolicy | None = None  # a gated fix: the workflow's policy it was held to
    # Fault localisation at the base commit (a blob: the ranked statements and functions), and
    # which of the context's functions it put first ("path::qualname"), when the run had one.
    localisation_sha256: str = ""
    localised: tuple[str, ...] = ()
    # A search rung (`repair/mutate`): every candidate it tried (operator, place, result), a blob.
    candidates_sha256: str = ""
    # An agent rung (`mode = "agent"`): its turns, and the whole trajectory as a blob (each
    # model message, command, exit code and output); usage and cost are summed over the turns.
    mode: Literal["single", "agent"] = "single"
    steps: int = 0
    trajectory_sha256: str = ""
    ended: str = ""  # how the agent's loop ended: submitted, max_steps, wall_time, budget, ...
    last_commands: tuple[str, ...] = ()  # its last few commands, each cut short


RunStatus = Literal["verified", "unproven", "exhausted", "budget_exhausted", "error"]


class Candidate(Record):
    """The best unverified attempt of a run, kept for a human: never applied, never proposed."""

    seq: int
    rung: str
    patch_sha256: str  # blobs/<sha256> in the run folder
    failed: tuple[str, ...]  # evaluators that failed
    passed: tuple[str, ...] = ()


class RunOutcome(Record):
    schema_version: int = SCHEMA_VERSION
    run_id: str
    task_id: str
    status: RunStatus
    run_dir: str
    base_commit: str
    attempts: int
    cost_usd: float
    duration_s: float
    patch_sha256: str = ""
    verified_rung: str = ""
    error: str = ""
    stop_reason: str = ""  # why the ladder stopped where it did
    best_unverified: Candidate | None = None  # when nothing verified
    proving: tuple[ProvingTest, ...] = ()  # a verified run: the tests that prove the patch
    fix_model: str = ""  # a verified run: the model that wrote the fix
    # An error the configuration causes (a gate's tool that cannot run on the repository as set
    # up): exit 2, as for any usage error, not the machinery's 3.
    usage_error: bool = False
    # The workflow that set the task's path; a verified patch its policy (raised by what the
    # patch touched) says a person must approve, and why, and who is asked.
    workflow: str = ""
    route: WorkflowChoice | None = None  # the first attempt's decision: why this workflow
    needs_review: bool = False
    review_why: str = ""
    reviewers: tuple[str, ...] = ()
    apply: str = ""  # auto | draft_pr | comment, as the policy of the verified patch says

    @property
    def exit_code(self) -> int:
        if self.status == "error" and self.usage_error:
            return 2
        codes = {"verified": 0, "unproven": 1, "exhausted": 1, "budget_exhausted": 1, "error": 3}
        return codes[self.status]
