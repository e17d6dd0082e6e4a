"""The text protocol of an agent rung, pure: what the model is told, how one turn of its answer
is read (exactly one shell command in a fenced block, or `submit`), whether a command is inside
the workflow's allow-list, and how a command's output is fed back. No provider feature is
needed (no function calling): any model that can write a fenced block can be an agent.

The allow-list is a courtesy to the model, not a boundary: the sandbox is (no network, non-root,
read-only root, limits), and the patch is judged as data whatever the agent ran."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from cascade.records import ExecResult
from cascade.workflow_config import ToolPolicy

SUBMIT = "submit"

AGENT_SYSTEM = """\
You are a careful software engineer fixing one issue in a git repository. You work in a shell in
the repository's root, one command at a time, and the repository's files are your workspace:
read them, run the tests, edit files, run the tests again. Change the code so the issue is
resolved and the repository's tests pass; do not weaken, skip or delete tests, and keep the
change as small as the fix allows. There is no network.

Answer every turn with a sentence or two of reasoning, then exactly one command in a fenced
block, like this:

```bash
python -m pytest -x -q tests/test_example.py
```

The command runs with `bash -c` in the repository root; you get its exit code and its output
(long output is cut in the middle). Each command runs on its own: `cd` and variables do not carry
over to the next one. Edit files with commands (`sed -i`, `python - <<'EOF' ... EOF`, or
`cat > path <<'EOF' ... EOF`). Nothing is interactive: no editors, no prompts.

When the fix is complete, answer with a block that holds only the word `submit`:

```bash
submit
```

What you submit is `git diff` of the workspace against the commit you started from (new files
included); it is then judged by the repository's tests and checks in a fresh copy of the
repository. You have at most {max_steps} commands and {timeout:g} seconds per command."""

FENCE = re.compile(r"^(`{3,}|~{3,})[ \t]*([\w+-]*)[^\n]*\n(.*?)^\1[ \t]*$", re.M | re.S)
SHELLS = {"", "bash", "sh", "shell", "console", "zsh"}
# With an allow-list a step is one simple command: these would chain, pipe or redirect past it.
OPERATORS = re.compile(r"[;&|<>`\n]|\$\(")


@dataclass(frozen=True)
class Command:
    text: str


@dataclass(frozen=True)
class Submit:
    pass


@dataclass(frozen=True)
class Malformed:
    feedback: str  # said to the model; the turn counts as a step


Turn = Command | Submit | Malformed


def system_prompt(tools: ToolPolicy) -> str:
    """The agent's instructions, with its limits and, when it has one, its allow-list."""
    text = AGENT_SYSTEM.format(max_steps=tools.max_steps, timeout=tools.command_timeout)
    if tools.allow is not None:
        listed = ", ".join(f"`{' '.join(prefix)}`" for prefix in tools.allow) or "(none)"
        text += (
            f"\n\nOnly commands that start with one of these run: {listed}. Each command is one "
            "simple command: no ; & | < > ` $( or newlines. Anything else is refused, not run."
        )
    return text


def read_turn(text: str) -> Turn:
    """The one command (or `submit`) of a model's turn."""
    blocks = [m[3] for m in FENCE.finditer(text) if m[2].lower() in SHELLS]
    if len(blocks) != 1:
        found = "no fenced command" if not blocks else f"{len(blocks)} fenced commands"
        return Malformed(
            f"Your answer had {found}. Answer with exactly one command in a ```bash block, or "
            "with a block holding only `submit` when the fix is complete."
        )
    command = blocks[0].strip()
    if command == SUBMIT:
        return Submit()
    if not command:
        return Malformed("Your command block was empty. Give one command, or `submit`.")
    return Command(command)


def refusal(command: str, allow: Sequence[Sequence[str]] | None) -> str:
    """Why `command` is outside the allow-list (said to the model, not run), or "" when it may
    run. No list: every command may run (the sandbox is the boundary either way)."""
    if allow is None:
        return ""
    listed = ", ".join(f"`{' '.join(prefix)}`" for prefix in allow) or "(none)"
    allowed = f"Allowed commands start with: {listed}"
    if OPERATORS.search(command):
        return (
            "refused, not run: with this task's allow-list a command is one simple command, "
            f"without ; & | < > ` $( or newlines. {allowed}"
        )
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        return f"refused, not run: the command cannot be read ({exc}). {allowed}"
    if any(tuple(argv[: len(prefix)]) == tuple(prefix) for prefix in allow if prefix):
        return ""
    first = argv[0] if argv else ""
    return f"refused, not run: `{first}` is not allowed here. {allowed}"


def observation(result: ExecResult, limit: int) -> str:
    """What the model reads back: the exit code (or the timeout), then the output, its middle
    cut when it is longer than `limit` characters."""
    output = result.stdout
    if result.stderr:
        output = f"{output}\n{result.stderr}" if output else result.stderr
    head = (
        f"killed: the command ran past its {result.duration_s:.0f}-second limit"
        if result.timed_out
        else f"exit code {result.exit_code}"
    )
    return f"{head}\n{cut(output, limit)}".rstrip() + "\n"


def cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    keep = limit // 2
    dropped = len(text) - 2 * keep
    return f"{text[:keep]}\n[... {dropped:,} characters cut ...]\n{text[-keep:]}"
