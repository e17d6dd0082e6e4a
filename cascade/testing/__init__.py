"""Fakes shipped with the package, for tests and for trying the engine without a provider: a
scripted model and an in-memory issue source. They honour the same protocols as the real
adapters; the model also records every prompt it was shown. Plus a real git repository
builder, for tests of anything that takes a checkout."""

from __future__ import annotations

import builtins
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from cascade.errors import IssueError, ModelError
from cascade.records import Completion, CompletionParams, Issue, Message, Usage

Answer = str | ModelError
DEFAULT_USAGE = Usage(prompt_tokens=100, completion_tokens=50)


class ScriptedModel:
    """Answers from a script: `answers[(task_id, attempt)]`, or in order from `sequence`. A raised
    `ModelError` in the script is raised as the provider fault it stands for."""

    def __init__(
        self,
        name: str,
        *,
        sequence: Sequence[Answer] = (),
        answers: Mapping[tuple[str, int], Answer] | None = None,
        cost_usd: float = 0.001,
        usage: Usage = DEFAULT_USAGE,
    ) -> None:
        self.name = name
        self._sequence = list(sequence)
        self._answers = dict(answers or {})
        self.cost_usd = cost_usd
        self.usage = usage
        self.prompts: list[list[Message]] = []

    async def complete(self, messages: Sequence[Message], params: CompletionParams) -> Completion:
        self.prompts.append(list(messages))
        key = (params.task_id, params.attempt)
        if key in self._answers:
            answer = self._answers[key]
        elif self._sequence:
            answer = self._sequence.pop(0)
        else:
            raise ModelError(f"{self.name}: the script has no answer for {key}")
        if isinstance(answer, ModelError):
            raise answer
        return Completion(text=answer, usage=self.usage, cost_usd=self.cost_usd, model=self.name)


class MemoryIssueSource:
    def __init__(self, issues: Sequence[Issue]) -> None:
        self._issues = {i.id: i for i in issues}

    def get(self, issue_id: str) -> Issue:
        if issue_id not in self._issues:
            raise IssueError(f"no issue {issue_id!r} in memory")
        return self._issues[issue_id]

    def list(self, query: str = "") -> builtins.list[Issue]:
        return [i for i in self._issues.values() if query.lower() in f"{i.id} {i.title}".lower()]


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` with a fixed identity; its stdout, or CalledProcessError."""
    argv = ["git", "-C", str(repo), "-c", "user.name=cascade-test", "-c", "user.email=t@localhost"]
    return subprocess.run([*argv, *args], check=True, capture_output=True, text=True).stdout


def make_repo(root: Path, files: Mapping[str, str], *, branch: str = "main") -> Path:
    """A real git repository at `root` holding `files` in one commit."""
    for path, text in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    git(root, "init", "-q", "-b", branch)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    return root
