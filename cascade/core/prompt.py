"""The messages a model gets for one attempt: the issue, its target tests and how they fail at
the base commit, the context files, and what the gate said of the previous attempt. Hidden
tests are never named here; the gate's feedback is already scrubbed of them."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from cascade.core.context import Context
from cascade.core.edits import FORMAT_HELP
from cascade.records import Message, Task

SYSTEM = f"""\
You are a careful software engineer fixing one issue in a git repository. Change the code so the
issue is resolved and the repository's tests pass; do not weaken, skip or delete tests, and keep
the change as small as the fix allows. Explain in one or two sentences, then give the edits.

{FORMAT_HELP}"""

FAILURE_CHARS = 1500  # per target test, at baseline


def build_messages(
    task: Task,
    context: Context,
    failures: Mapping[str, str],
    feedback: str = "",
) -> list[Message]:
    issue = task.issue
    parts = [f"# Issue {issue.id}: {issue.title}", "", issue.body.strip() or "(no description)"]
    if issue.tests:
        parts += ["", "## Target tests (they must pass after your change)", ""]
        parts += [f"- `{test}`" for test in issue.tests]
    shown = {t: text for t, text in failures.items() if text}
    if shown:
        parts += ["", "## How the target tests fail now", ""]
        for test, text in shown.items():
            parts += [f"`{test}`:", "```", _trim(text, FAILURE_CHARS), "```"]
    if context.files:
        parts += ["", "## Relevant files", ""]
        for item in context.files:
            parts += [f"{item.path}  ({item.why})", "```", item.text.rstrip("\n"), "```", ""]
    if context.omitted:
        names = ", ".join(context.omitted[:30])
        parts += ["", f"Also relevant but left out for space: {names}"]
    if context.listing:
        parts += ["", "## Files in the repository", "", *context.listing]
    if feedback:
        parts += [
            "",
            "## Your previous attempt was rejected",
            "",
            "The workspace was reset to the original code. What the checks said:",
            "",
            feedback.strip(),
        ]
    return [
        Message(role="system", content=SYSTEM),
        Message(role="user", content="\n".join(parts).strip() + "\n"),
    ]


def render(messages: Sequence[Message]) -> str:
    """The prompt as stored in the proof: JSON, one object a message."""
    return json.dumps([m.model_dump() for m in messages], indent=1, ensure_ascii=False)


def _trim(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
