"""Which source reads an issue reference: GitHub for `owner/repo#123`, `#123` and issue URLs (and
bare numbers when `[issues] source = "github"`), the configured source for everything else."""

from __future__ import annotations

from pathlib import Path

from cascade.config import CascadeConfig
from cascade.errors import IssueError
from cascade.protocols import IssueSource
from cascade.sources.github_refs import origin_repo, parse_ref
from cascade.wiring.registry import build_source


def source_for(issue_ref: str, config: CascadeConfig, repo: Path) -> tuple[IssueSource, str]:
    """(the source, the id to `get` from it). `repo` is the checkout: its `origin` remote names
    the GitHub repository when the reference does not, and it holds the hidden tests."""
    github = config.issues.source == "github"
    ref = parse_ref(issue_ref, bare_numbers=github)
    if ref is None:
        if github:
            raise IssueError(
                f"not a GitHub issue: {issue_ref!r} (use owner/repo#123, #123 or an issue URL)"
            )
        return build_source(config, repo), issue_ref
    if not ref.owner:
        named = config.issues.repo
        if named:
            owner, _, name = named.partition("/")
            ref = ref.in_repo("", owner, name)
        else:
            ref = ref.in_repo(*origin_repo(repo))
    return build_source(config, repo, name="github", repo=ref.repo, host=ref.host), ref.id
