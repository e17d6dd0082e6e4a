"""A replay backlog: a folder of issue files or a JSONL of Issue objects, read into a list of
issues, and `--shard i/n`, a stable slice of it chosen by hashing each issue id."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from cascade.config import CascadeConfig
from cascade.errors import IssueError, UsageError
from cascade.records import Issue
from cascade.sources.files import FileIssueSource, bad_files
from cascade.validation import describe
from cascade.wiring.registry import build_source

log = logging.getLogger(__name__)
_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count`, 1-based (`--shard 1/2` and `--shard 2/2` split a backlog)."""

    index: int = 1
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = _SHARD.fullmatch(text)
        if not match:
            raise UsageError(f"--shard {text!r}: expected i/n, e.g. 1/4 (i from 1 to n)")
        index, count = int(match[1]), int(match[2])
        if count < 1 or not 1 <= index <= count:
            raise UsageError(f"--shard {text!r}: i must be between 1 and n (n >= 1)")
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, issue_id: str) -> bool:
        # A hash, not list position: a shard keeps its issues when others are added or removed.
        digest = hashlib.sha256(issue_id.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1

    def select(self, issues: list[Issue]) -> list[Issue]:
        return [i for i in issues if self.holds(i.id)]


GITHUB_PREFIX = "github:"


def is_github_query(spec: str) -> bool:
    return spec.startswith(GITHUB_PREFIX)


def github_backlog(spec: str, repo: Path, config: CascadeConfig) -> list[Issue]:
    """`github:OWNER/NAME[?QUERY]`: the repository's open issues (pull requests skipped), those
    whose id or title contains QUERY or that carry it as a label when it is given."""
    target, _, query = spec.removeprefix(GITHUB_PREFIX).partition("?")
    if target.count("/") != 1 or not all(target.split("/")):
        raise UsageError(f"backlog {spec!r}: expected github:OWNER/NAME or github:OWNER/NAME?QUERY")
    issues = build_source(config, repo, name="github", repo=target).list(query)
    if not issues:
        raise UsageError(f"backlog {spec!r}: no open issue matches")
    return _unique(issues, spec)


def load_backlog(
    path: Path, config: CascadeConfig | None = None, *, skip_bad: bool = False
) -> list[Issue]:
    """Every issue of a backlog, in a stable order; ids must be unique. A folder is read by the
    `files` source (its hidden tests beside it, in `../hidden`). Unreadable issues are all named
    in one IssueError; with `skip_bad`, each is logged as a warning and the rest are returned."""
    if path.is_dir():
        config = config or CascadeConfig()
        source = build_source(config, path, name="files", directory=path)
        if not isinstance(source, FileIssueSource):  # `name="files"` builds the built-in one
            raise UsageError(f"backlog {path}: the files source is not the built-in one")
        issues, bad = source.read_all()
        if not issues and not bad:
            raise UsageError(f"backlog {path}: no issue files (*.md) in this folder")
    elif path.is_file():
        issues, bad = _read_jsonl(path)
    else:
        raise UsageError(f"backlog {path}: no such folder or file")
    if bad and not skip_bad:
        raise IssueError(
            f"{bad_files(bad)}\n(fix them, or pass --skip-bad-issues to run the others)"
        )
    for problem in bad:
        log.warning("skipped (--skip-bad-issues): %s", problem)
    if not issues:
        raise UsageError(f"backlog {path}: no issue can be read")
    return _unique(issues, str(path))


def _unique(issues: list[Issue], where: str) -> list[Issue]:
    seen: set[str] = set()
    for issue in issues:
        if issue.id in seen:
            raise IssueError(f"backlog {where}: issue id {issue.id!r} appears twice")
        seen.add(issue.id)
    return issues


def _read_jsonl(path: Path) -> tuple[list[Issue], list[str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"backlog {path} cannot be read: {exc}") from exc
    issues: list[Issue] = []
    bad: list[str] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            issue = Issue.model_validate_json(line)
        except ValidationError as exc:
            problems = describe(exc, label="{}", unknown=None, top="line")
            bad.append(f"backlog {path}, line {lineno}: {problems}")
            continue
        issues.append(issue if issue.source else issue.model_copy(update={"source": str(path)}))
    if not issues and not bad:
        raise UsageError(f"backlog {path}: no issues (expected one JSON Issue object a line)")
    return issues, bad
