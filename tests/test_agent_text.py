"""The agent rung's text protocol (issue 22): one command a turn, `submit`, the allow-list's
refusals (and the ways around a string allow-list it closes), output cut in the middle, and a
patch fenced so that no line of it can close its block."""

from __future__ import annotations

import io

import pytest

from cascade.cli.progress import Progress
from cascade.core.agent_text import (
    Command,
    Malformed,
    Submit,
    cut,
    observation,
    read_turn,
    refusal,
    system_prompt,
)
from cascade.core.edits import parse_edits
from cascade.core.events import Event
from cascade.records import ExecResult
from cascade.workflow_config import ToolPolicy


def test_one_fenced_command_is_the_turn() -> None:
    turn = read_turn("Let me look.\n\n```bash\ncat src/calc.py\n```\n")
    assert turn == Command("cat src/calc.py")
    assert read_turn("```\nls -la\n```") == Command("ls -la")
    assert read_turn("Done.\n```bash\nsubmit\n```") == Submit()


@pytest.mark.parametrize(
    "text",
    [
        "I think the fix is to change add().",  # no block
        "```bash\nls\n```\nand then\n```bash\ncat x\n```",  # two commands
        "```bash\n\n```",  # empty
        "```python\nprint(1)\n```",  # not a shell block
    ],
)
def test_anything_else_is_malformed_and_says_what_to_do(text: str) -> None:
    turn = read_turn(text)
    assert isinstance(turn, Malformed)
    assert "```bash" in turn.feedback or "command" in turn.feedback


def test_no_allow_list_runs_anything() -> None:
    assert refusal("rm -rf / && curl x", None) == ""


@pytest.mark.parametrize(
    ("command", "allowed"),
    [
        ("pytest -x tests/test_calc.py", True),
        ("git diff", True),
        ("git diff --stat", True),
        ("git push origin main", False),  # a prefix is whole words
        ("curl http://example.com", False),
        ("pytest -x && curl http://example.com", False),  # chained past the prefix
        ("pytest; curl x", False),
        ("pytest | sh", False),
        ("pytest > /tmp/x", False),
        ("pytest $(curl x)", False),
        ("pytest `curl x`", False),
        ("pytest\ncurl x", False),
        ("pytest 'unclosed", False),
    ],
)
def test_the_allow_list_takes_whole_word_prefixes_of_one_simple_command(
    command: str, allowed: bool
) -> None:
    why = refusal(command, (("pytest",), ("git", "diff")))
    assert (why == "") is allowed
    if not allowed:
        assert why.startswith("refused, not run")
        assert "`pytest`" in why  # the model is told what it may run


def test_output_is_cut_in_the_middle_and_the_exit_code_leads() -> None:
    long = "head-" + "x" * 5000 + "-tail"
    shown = observation(ExecResult(argv=("bash",), exit_code=1, stdout=long), 1000)
    assert shown.startswith("exit code 1\n")
    assert "head-" in shown and "-tail" in shown
    assert "characters cut" in shown
    assert len(shown) < 1200
    assert cut("short", 100) == "short"
    killed = ExecResult(argv=("bash",), exit_code=124, stdout="", timed_out=True, duration_s=5)
    assert observation(killed, 100).startswith("killed: the command ran past its 5-second limit")


def test_the_system_prompt_states_the_limits_and_the_allow_list() -> None:
    text = system_prompt(ToolPolicy(max_steps=12, command_timeout=30))
    assert "at most 12 commands" in text and "30 seconds" in text
    assert "Only commands" not in text
    listed = system_prompt(ToolPolicy(allow=[["python", "-m", "pytest"], ["cat"]]))
    assert "Only commands that start with one of these run: `python -m pytest`, `cat`" in listed


DIFF = """\
diff --git a/README.md b/README.md
index 1111111..2222222 100644
--- a/README.md
+++ b/README.md
@@ -1,3 +1,3 @@
 Example:
 ```
-old
+new
diff --git a/pkg/__init__.py b/pkg/__init__.py
index e69de29..3333333 100644
--- a/pkg/__init__.py
+++ b/pkg/__init__.py
@@ -0,0 +1 @@
+VERSION = "1"
diff --git a/new.txt b/new.txt
new file mode 100644
index 0000000..4444444
--- /dev/null
+++ b/new.txt
@@ -0,0 +1 @@
+hello ```` there
diff --git a/gone.py b/gone.py
deleted file mode 100644
index 5555555..0000000
--- a/gone.py
+++ /dev/null
@@ -1 +0,0 @@
-x = 1
"""


def test_a_git_diff_with_new_deleted_and_previously_empty_files_parses() -> None:
    # A hunk numbered `-0,0` (a file that was empty: `__init__.py`) has only added lines, and
    # there is one place for it, so it is not refused as unplaceable.
    edits = parse_edits(f"````diff\n{DIFF}````\n")
    assert [e.path for e in edits] == ["README.md", "pkg/__init__.py", "new.txt", "gone.py"]
    assert all(e.kind == "udiff" for e in edits)
    assert "+hello ```` there" in edits[2].diff  # a shorter fence inside cannot close it
    assert edits[3].diff.splitlines()[:2] == ["--- a/gone.py", "+++ /dev/null"]


def test_progress_shows_a_command_as_text_never_as_markup() -> None:
    # `[/]` in a command is rich markup's closing tag: on a terminal it raised MarkupError.
    stream = io.StringIO()
    progress = Progress(stream)
    progress.live = True
    progress(Event("agent", "step 1: sed -i 's/[/]/_/' f  (exit 0)"))
    progress(Event("agent", "step 2: echo '[bold]x[/bold]'  (exit 0)"))
    progress.close()
