"""The messages a model gets for one attempt: the issue, its target tests and how they fail at
the base commit (and the reproduction test, when one was written first), the context files, and
what the gate said of the previous attempt. The reproduce stage gets the same issue and context
and is asked for a failing test instead. Hidden tests are never named here; the gate's feedback
is already scrubbed of them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from cascade.core.context import Context
from cascade.core.edits import FORMAT_HELP
from cascade.records import Message, Role, Task

SYSTEM = f"""\
You are a careful software engineer fixing one issue in a git repository. Change the code so the
issue is resolved and the repository's tests pass; do not weaken, skip or delete tests, and keep
the change as small as the fix allows. Explain in one or two sentences, then give the edits.

{FORMAT_HELP}"""

REPRODUCE_SYSTEM = f"""\
You are a careful software engineer. Before anyone fixes the issue below, write a test that
reproduces it: a pytest test that fails on the current code because of the issue itself (an
assertion about the behaviour the issue asks for, or the error the issue reports) and that will
pass once the issue is fixed. Add or change test files only; never change the code under test,
conftest.py or fixtures. Import what you use; do not rely on fixtures that do not exist. Explain
in one sentence, then give the edits.

{FORMAT_HELP}"""

FAILURE_CHARS = 1500  # per target test, at baseline
REPRODUCTION_CHARS = 6000  # of the reproduction test's files


def build_messages(
    task: Task,
    context: Context,
    failures: Mapping[str, str],
    feedback: str = "",
    role: Role = "fix",
) -> list[Message]:
    issue = task.issue
    parts = [f"# Issue {issue.id}: {issue.title}", "", issue.body.strip() or "(no description)"]
    if role == "reproduce":
        return _reproduce_messages(parts, context, feedback)
    if issue.tests:
        parts += ["", "## Target tests (they must pass after your change)", ""]
        parts += [f"- `{test}`" for test in issue.tests]
    parts += _reproduction(task)
    shown = {t: text for t, text in failures.items() if text}
    if shown:
        parts += ["", "## How the target tests fail now", ""]
        for test, text in shown.items():
            parts += [f"`{test}`:", "```", trim(text, FAILURE_CHARS), "```"]
    parts += _context(context) + _rejected(feedback, "attempt")
    return [
        Message(role="system", content=SYSTEM),
        Message(role="user", content="\n".join(parts).strip() + "\n"),
    ]


def _reproduction(task: Task) -> list[str]:
    """The test written before the fix: shown whole, with how it fails now; it is locked."""
    repro = task.reproduction
    if repro is None:
        return []
    parts = [
        "",
        "## A test that reproduces the issue",
        "",
        "It was written before any fix and fails on the current code. It is locked: do not "
        "change or delete it; change the code so that it passes.",
        "",
    ]
    for path, text in sorted(repro.files.items()):
        parts += [path, "```", trim(text, REPRODUCTION_CHARS), "```", ""]
    for test, why in repro.failures.items():
        parts += [f"`{test}` fails now: {trim(why, FAILURE_CHARS)}"]
    return parts


def _reproduce_messages(parts: list[str], context: Context, feedback: str) -> list[Message]:
    parts += _context(context)
    parts += [
        "",
        "## Your task",
        "",
        "Write a pytest test that reproduces this issue: it must fail on the code above for the "
        "reason the issue describes, and pass once the issue is fixed. Put it in a test file "
        "(a new `tests/test_*.py`, or a new test function in an existing test module).",
    ]
    parts += _rejected(feedback, "test")
    return [
        Message(role="system", content=REPRODUCE_SYSTEM),
        Message(role="user", content="\n".join(parts).strip() + "\n"),
    ]


def _rejected(feedback: str, what: str) -> list[str]:
    if not feedback:
        return []
    return [
        "",
        f"## Your previous {what} was rejected",
        "",
        "The workspace was reset to the original code. What the checks said:",
        "",
        feedback.strip(),
    ]


def _context(context: Context) -> list[str]:
    parts: list[str] = _suspects(context)
    if context.files:
        parts += ["", "## Relevant files", ""]
        for item in context.files:
            parts += [f"{item.path}  ({item.why})", "```", item.text.rstrip("\n"), "```", ""]
    if context.omitted:
        names = ", ".join(context.omitted[:30])
        parts += ["", f"Also relevant but left out for space: {names}"]
    if context.listing:
        parts += ["", "## Files in the repository", "", *context.listing]
    return parts


def _suspects(context: Context) -> list[str]:
    if not context.suspects:
        return []
    parts = [
        "",
        "## Where the failing tests point",
        "",
        "Fault localisation ran the test suite on the current code: these functions are run by "
        "the failing tests more than by the passing ones, most suspicious first (`>>` marks "
        "their most suspicious lines). A lead, not a verdict.",
        "",
    ]
    for suspect in context.suspects:
        parts += [f"{suspect.label}  (rank {suspect.rank})", "```", suspect.excerpt, "```", ""]
    return parts


def render(messages: Sequence[Message]) -> str:
    """The prompt as stored in the proof: JSON, one object a message."""
    return json.dumps([m.model_dump() for m in messages], indent=1, ensure_ascii=False)


def trim(text: str, limit: int) -> str:
    """`text` stripped, cut to `limit` characters (an ellipsis says where)."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
