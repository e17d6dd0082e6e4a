"""What names a GitHub issue on the command line (`owner/repo#123`, `#123`, an issue URL) and which
repository a checkout's `origin` remote points at (https, ssh and scp-like forms). Parsing only."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cascade.errors import IssueError, UsageError

GITHUB_HOSTS = ("github.com", "www.github.com")

_OWNER = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})"
_NAME = r"[A-Za-z0-9._-]{1,100}"
_FULL = re.compile(rf"(?P<owner>{_OWNER})/(?P<name>{_NAME})#(?P<number>\d{{1,10}})")
_SHORT = re.compile(r"#(?P<number>\d{1,10})")
_BARE = re.compile(r"\d{1,10}")
_URL = re.compile(
    rf"https?://(?P<host>[^/\s]+)/(?P<owner>{_OWNER})/(?P<name>{_NAME})"
    r"/(?P<kind>issues|pull|pulls)/(?P<number>\d{1,10})(?:[/?#].*)?"
)
# Remotes: scheme://[user[:pass]@]host[:port]/owner/name[.git][/]  or  [user@]host:owner/name
_REMOTE_URL = re.compile(
    rf"(?:https?|ssh|git)://(?:[^@/]+@)?(?P<host>[^/:]+)(?::\d+)?/(?P<owner>{_OWNER})"
    rf"/(?P<name>{_NAME})/?"
)
_REMOTE_SCP = re.compile(rf"(?:[^@/]+@)?(?P<host>[^/:]+):/?(?P<owner>{_OWNER})/(?P<name>{_NAME})/?")


@dataclass(frozen=True)
class IssueRef:
    """One GitHub issue. `owner`/`name` empty: the repository is not named (`#123`) and comes from
    the checkout's remote. `host` is known only from a URL or a remote."""

    number: int
    owner: str = ""
    name: str = ""
    host: str = ""

    @property
    def repo(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def id(self) -> str:
        return f"{self.owner}/{self.name}#{self.number}"

    def in_repo(self, host: str, owner: str, name: str) -> IssueRef:
        return IssueRef(self.number, owner, name, host)


def parse_ref(text: str, *, bare_numbers: bool = False) -> IssueRef | None:
    """The issue `text` names, or None when it is not a GitHub reference (a file source's id).
    A bare `123` counts only with `bare_numbers` (when `[issues] source = "github"`); a pull
    request URL is refused: cascade fixes issues."""
    text = text.strip()
    if found := _FULL.fullmatch(text):
        return IssueRef(int(found["number"]), found["owner"], _strip_git(found["name"]))
    if found := _SHORT.fullmatch(text):
        return IssueRef(int(found["number"]))
    if bare_numbers and _BARE.fullmatch(text):
        return IssueRef(int(text))
    if found := _URL.fullmatch(text):
        if found["kind"] != "issues":
            raise IssueError(f"{text} is a pull request, not an issue: cascade fixes issues")
        host = found["host"].lower()
        return IssueRef(int(found["number"]), found["owner"], _strip_git(found["name"]), host)
    return None


def parse_remote(url: str) -> tuple[str, str, str] | None:
    """(host, owner, name) of a GitHub-style remote URL, or None (a local path, another layout)."""
    url = url.strip()
    found = _REMOTE_URL.fullmatch(url)
    if found is None and "://" not in url:
        found = _REMOTE_SCP.fullmatch(url)
    if found is None:
        return None
    name = _strip_git(found["name"])
    if not name or name in (".", ".."):
        return None
    return found["host"].lower(), found["owner"], name


def origin_repo(checkout: Path, remote: str = "origin") -> tuple[str, str, str]:
    """(host, owner, name) from `git remote get-url origin`, or a usage error saying how to name
    the repository instead."""
    proc = subprocess.run(
        ["git", "-C", str(checkout), "remote", "get-url", remote],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise UsageError(
            f"{checkout} has no {remote!r} remote to take the GitHub repository from; "
            "name it instead: owner/repo#123"
        )
    parsed = parse_remote(proc.stdout)
    if parsed is None:
        raise UsageError(
            f"the {remote!r} remote of {checkout} ({_redact(proc.stdout.strip())}) does not name "
            "a GitHub repository; name it instead: owner/repo#123"
        )
    return parsed


def api_url_for_host(host: str) -> str:
    """The REST root of a host: api.github.com for github.com, `/api/v3` on GitHub Enterprise
    Server."""
    return "" if not host or host in GITHUB_HOSTS else f"https://{host}/api/v3"


def _strip_git(name: str) -> str:
    return name.removesuffix(".git")


def _redact(url: str) -> str:
    """A remote URL may carry a token (https://x-access-token:TOKEN@github.com/...)."""
    return re.sub(r"//[^@/]+@", "//***@", url)
