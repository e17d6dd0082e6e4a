"""Issues as Markdown files with YAML front matter: `.cascade/issues/<ID>.md`. Hidden test files
live beside them under `.cascade/hidden/<repo path>` and are copied in only for the gate run."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from cascade.config import IssuesConfig
from cascade.errors import IssueError
from cascade.records import Issue, Scope
from cascade.validation import describe


class _FrontMatter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = None
    title: str
    labels: builtins.list[str] = []
    tests: builtins.list[str] = []
    hidden_tests: builtins.list[str] = []
    scope: Scope = Scope()

    @field_validator("labels", "tests", "hidden_tests", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class FileIssueSource:
    """Reads `<dir>/<ID>.md`; `hidden_dir` (default: `<dir>/../hidden`) holds hidden test files."""

    def __init__(self, directory: Path, hidden_dir: Path | None = None) -> None:
        self.directory = directory
        self.hidden_dir = hidden_dir or directory.parent / "hidden"

    @classmethod
    def from_config(
        cls, config: IssuesConfig, checkout: Path, *, directory: Path | None = None
    ) -> FileIssueSource:
        """`[issues] dir` (relative to the checkout), or another folder of issue files."""
        folder = directory or Path(config.dir)
        return cls(folder if folder.is_absolute() else checkout / folder)

    def get(self, issue_id: str) -> Issue:
        if not issue_id or "/" in issue_id or "\\" in issue_id or issue_id.startswith("."):
            raise IssueError(f"not an issue id: {issue_id!r}")
        path = self.directory / f"{issue_id}.md"
        if not path.is_file():
            known = sorted(p.stem for p in self.directory.glob("*.md"))
            hint = f" (issues there: {', '.join(known[:10])})" if known else ""
            raise IssueError(f"no issue {issue_id!r}: looked for {path}{hint}")
        return self._read(path, issue_id)

    def list(self, query: str = "") -> list[Issue]:
        """Every issue in the folder; `query` keeps those whose id, title or labels contain it."""
        issues, bad = self.read_all()
        if bad:
            raise IssueError(bad_files(bad))
        return [i for i in issues if i.matches(query)]

    def read_all(self) -> tuple[builtins.list[Issue], builtins.list[str]]:
        """Every issue file of the folder that reads, and what is wrong with each one that does
        not (all of them, not only the first)."""
        if not self.directory.is_dir():
            raise IssueError(f"issue folder not found: {self.directory}")
        issues: builtins.list[Issue] = []
        bad: builtins.list[str] = []
        for path in sorted(self.directory.glob("*.md")):
            try:
                issues.append(self._read(path, path.stem))
            except IssueError as exc:
                bad.append(str(exc))
        return issues, bad

    def _read(self, path: Path, issue_id: str) -> Issue:
        import frontmatter  # a leaf dependency, only needed here
        import yaml

        try:
            post = frontmatter.loads(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, ValueError) as exc:
            raise IssueError(f"{path}: the front matter is not valid YAML: {exc}") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise IssueError(f"{path}: cannot be read: {exc}") from exc
        try:
            meta = _FrontMatter.model_validate(dict(post.metadata))
        except ValidationError as exc:
            problems = describe(exc, label="field `{}`", unknown="unknown field", top="field ``")
            raise IssueError(f"{path}: {problems}") from exc
        if meta.id is not None and meta.id != issue_id:
            raise IssueError(
                f"{path}: field `id` is {meta.id!r} but the file is named {issue_id!r}"
            )
        return Issue(
            id=issue_id,
            title=meta.title,
            body=post.content.strip(),
            labels=tuple(meta.labels),
            tests=tuple(meta.tests),
            hidden_tests=tuple(meta.hidden_tests),
            hidden_files=self._hidden_files(path, meta.hidden_tests),
            scope=meta.scope,
            source=str(path),
        )

    def _hidden_files(self, path: Path, node_ids: builtins.list[str]) -> dict[str, str]:
        files: dict[str, str] = {}
        for node in node_ids:
            rel = node.split("::", 1)[0]
            if rel in files:
                continue
            src = self.hidden_dir / rel
            if not src.is_file():
                raise IssueError(
                    f"{path}: field `hidden_tests` names {node!r} but {src} does not exist"
                )
            files[rel] = src.read_text(encoding="utf-8")
        return files


def bad_files(problems: list[str]) -> str:
    """One message for every unreadable issue file (or backlog line)."""
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} issues cannot be read:\n  - " + "\n  - ".join(problems)
