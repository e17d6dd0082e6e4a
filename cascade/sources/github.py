"""GitHub issues as input: the issue and its comments through the REST API, target tests and scope
from a fenced ```cascade block in the body. Untrusted text never loosens a rule: the block's
`labels` and `scope.allow` count only when its author is trusted. Hidden tests never come from a
public issue: they live in the checkout, under `.cascade/hidden/gh-<number>/<repo path>`."""

from __future__ import annotations

import builtins
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from cascade.config import IssuesConfig
from cascade.errors import IssueError, SourceError
from cascade.records import Issue, Scope
from cascade.sources.github_api import GitHubAPI, api_url_from_env, token_from_env
from cascade.sources.github_refs import IssueRef, api_url_for_host, parse_ref
from cascade.validation import describe

TRUSTED = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})
HIDDEN_ROOT = Path(".cascade") / "hidden"

log = logging.getLogger(__name__)

# A fenced block whose info string is `cascade`: ```cascade ... ``` (or ~~~cascade ... ~~~).
_BLOCK = re.compile(
    r"^(?P<fence>`{3,}|~{3,})[ \t]*cascade[ \t]*\n(?P<yaml>.*?)^(?P=fence)[ \t]*$\n?",
    re.MULTILINE | re.DOTALL,
)
_TEST_FILE = re.compile(r"(^|/)(test_[^/]*|[^/]*_test)\.py$")


class _Block(BaseModel):
    """What a ```cascade block may say. `hidden_tests` is refused with a reason, not ignored.
    `tests` and `scope.deny` only add requirements; `labels` (allow-test-changes, routing rules)
    and `scope.allow` (it can lift a default deny) loosen rules, so `_trusted_part` drops them
    unless the issue's author is trusted."""

    model_config = ConfigDict(extra="forbid")

    tests: builtins.list[str] = []
    labels: builtins.list[str] = []
    scope: Scope = Scope()

    @field_validator("labels", "tests", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


def hidden_dir(checkout: Path, number: int) -> Path:
    return checkout / HIDDEN_ROOT / f"gh-{number}"


def trusted_author(item: Mapping[str, Any]) -> bool:
    """The trigger's rule, for whoever wrote an issue or comment (`item` as the API returns it):
    a person, not a bot, whose `author_association` is OWNER, MEMBER or COLLABORATOR. A missing
    association is NONE: the rule can only ever fail towards ignoring."""
    user = item.get("user") or {}
    return user.get("type") != "Bot" and str(item.get("author_association")) in TRUSTED


class GitHubIssueSource:
    """Reads issues of one repository (`repo`, "owner/name"), or of any named as owner/name#N.
    `checkout` is where hidden tests are looked up. With `trusted_comments_only`, comments by
    anyone but the issue's author and OWNER/MEMBER/COLLABORATOR are left out of the prompt."""

    def __init__(
        self,
        config: IssuesConfig | None = None,
        *,
        repo: str = "",
        checkout: Path | None = None,
        api: GitHubAPI | None = None,
        host: str = "",
        trusted_comments_only: bool = False,
    ) -> None:
        self.repo = repo or (config.repo if config else "")
        self.checkout = checkout
        self.trusted_comments_only = trusted_comments_only
        configured = (config.api_url if config else "") or api_url_for_host(host)
        self.api = api or GitHubAPI(api_url_from_env(configured), token_from_env())

    @classmethod
    def from_config(cls, config: IssuesConfig, checkout: Path, **options: Any) -> GitHubIssueSource:
        """`[issues]` plus what the caller knows (`repo`, `host`, `api`, `trusted_comments_only`);
        hidden tests are looked up in `checkout`."""
        return cls(config, checkout=checkout, **options)

    def get(self, issue_id: str) -> Issue:
        ref = self._ref(issue_id)
        what = f"issue {ref.id}"
        data = self.api.get(f"/repos/{ref.repo}/issues/{ref.number}", what=what)
        if not isinstance(data, dict):
            raise SourceError(f"GitHub answered {what} with something other than an object")
        if "pull_request" in data:
            raise IssueError(f"{ref.id} is a pull request, not an issue: cascade fixes issues")
        return self._issue(ref, data)

    def list(self, query: str = "") -> builtins.list[Issue]:
        """Open issues of `repo` (pull requests skipped); `query` keeps those whose id or title
        contains it, or that carry it as a label."""
        if not self.repo:
            raise IssueError("listing GitHub issues needs a repository: set [issues] repo")
        what = f"open issues of {self.repo}"
        items = self.api.get_pages(
            f"/repos/{self.repo}/issues", what=what, params={"state": "open"}
        )
        owner, _, name = self.repo.partition("/")
        issues = [
            self._issue(IssueRef(int(item["number"]), owner, name), item)
            for item in items
            if isinstance(item, dict) and "pull_request" not in item
        ]
        return [i for i in issues if i.matches(query)]

    def _ref(self, issue_id: str) -> IssueRef:
        ref = parse_ref(issue_id, bare_numbers=True)
        if ref is None:
            raise IssueError(
                f"not a GitHub issue: {issue_id!r} (use owner/repo#123, #123 or an issue URL)"
            )
        if ref.owner:
            return ref
        if not self.repo or "/" not in self.repo:
            raise IssueError(f"{issue_id!r} does not name a repository: use owner/repo#123")
        owner, _, name = self.repo.partition("/")
        return ref.in_repo(ref.host, owner, name)

    def _issue(self, ref: IssueRef, data: Mapping[str, Any]) -> Issue:
        raw = str(data.get("body") or "").replace("\r\n", "\n")
        block, prose = _split_block(raw, ref.id)
        block, notes = _trusted_part(block, data, ref.id)
        labels = [str(lab.get("name", "")) for lab in data.get("labels") or [] if lab]
        comments = self._comments(ref, data) if int(data.get("comments") or 0) > 0 else []
        body = prose.strip()
        if comments:
            body = (body + "\n\n## Comments\n\n" + "\n\n".join(comments)).strip()
        hidden_files = self._hidden_files(ref)
        return Issue(
            id=ref.id,
            title=str(data.get("title") or ""),
            body=body,
            labels=tuple(dict.fromkeys([*labels, *block.labels])),
            tests=tuple(block.tests),
            hidden_tests=tuple(p for p in sorted(hidden_files) if _TEST_FILE.search(p)),
            hidden_files=hidden_files,
            scope=block.scope,
            source=str(data.get("html_url") or f"{self.api.api_url}/repos/{ref.repo}/issues"),
            notes=notes,
        )

    def _comments(self, ref: IssueRef, issue: Mapping[str, Any]) -> builtins.list[str]:
        """Comments as Markdown paragraphs; bots (our own reports among them) are left out."""
        author = str((issue.get("user") or {}).get("login", ""))
        items = self.api.get_pages(
            f"/repos/{ref.repo}/issues/{ref.number}/comments", what=f"comments of {ref.id}"
        )
        out = []
        for item in items:
            if not isinstance(item, dict):
                continue
            user = item.get("user") or {}
            login, association = str(user.get("login", "")), str(item.get("author_association"))
            if user.get("type") == "Bot":
                continue
            if self.trusted_comments_only and login != author and association not in TRUSTED:
                continue
            text = str(item.get("body") or "").replace("\r\n", "\n").strip()
            if text:
                day = str(item.get("created_at", ""))[:10]
                out.append(f"**@{login}** ({association.lower()}, {day}):\n\n{text}")
        return out

    def _hidden_files(self, ref: IssueRef) -> dict[str, str]:
        """Every file under `.cascade/hidden/gh-<number>/`, keyed by the repo path it stands at."""
        if self.checkout is None:
            return {}
        root = hidden_dir(self.checkout, ref.number)
        if not root.is_dir():
            return {}
        files: dict[str, str] = {}
        for path in sorted(root.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                try:
                    files[path.relative_to(root).as_posix()] = path.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    raise IssueError(f"hidden test file {path} cannot be read: {exc}") from exc
        return files


def _trusted_part(
    block: _Block, issue: Mapping[str, Any], issue_id: str
) -> tuple[_Block, tuple[str, ...]]:
    """The block as far as its author may set it, and a note when something was dropped. The
    note names keys, the login and the association, never the block's values: it is printed."""
    if trusted_author(issue):
        return block, ()
    loosening = (("labels", block.labels), ("scope.allow", block.scope.allow))
    dropped = [key for key, value in loosening if value]
    if not dropped:
        return block, ()
    user = issue.get("user") or {}
    login = str(user.get("login") or "unknown")
    if user.get("type") == "Bot":
        who = f"@{login} is a bot"
    else:
        association = str(issue.get("author_association") or "NONE")
        who = f"@{login} is {association}, not OWNER, MEMBER or COLLABORATOR"
    keys = " and ".join(f"`{key}`" for key in dropped)
    note = (
        f"{issue_id}: ignored the `cascade` block's {keys}: its author {who}; from such an "
        "author only `tests` and `scope.deny` count (a maintainer can add the issue's own labels)"
    )
    log.warning("%s", note)
    return _Block(tests=block.tests, scope=Scope(deny=block.scope.deny)), (note,)


def _split_block(body: str, issue: str) -> tuple[_Block, str]:
    """The parsed ```cascade block (or an empty one) and the body without it: the block is
    settings for the gate, not prose for the model."""
    import yaml

    found = list(_BLOCK.finditer(body))
    if not found:
        return _Block(), body
    if len(found) > 1:
        raise IssueError(f"{issue}: the body has {len(found)} ```cascade blocks; keep one")
    match = found[0]
    try:
        data = yaml.safe_load(match["yaml"]) or {}
    except yaml.YAMLError as exc:
        raise IssueError(f"{issue}: the ```cascade block is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise IssueError(f"{issue}: the ```cascade block must be a YAML mapping (tests:, scope:)")
    if "hidden_tests" in data:
        raise IssueError(
            f"{issue}: `hidden_tests` cannot be given in an issue: a public issue's tests are not "
            f"hidden. Put hidden test files in the repository under "
            f"{HIDDEN_ROOT.as_posix()}/gh-<number>/ instead"
        )
    try:
        block = _Block.model_validate(data)
    except ValidationError as exc:
        problems = describe(exc, top="``")
        raise IssueError(f"{issue}: the ```cascade block is invalid: {problems}") from exc
    rest = body[: match.start()] + body[match.end() :]
    return block, re.sub(r"\n{3,}", "\n\n", rest)
