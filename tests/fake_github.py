"""A loopback stand-in for the parts of GitHub's REST API cascade uses: issues, their comments
(paginated with Link headers), pull requests (opened as drafts or ready, then read back; review
requests kept on them, as GitHub answers them) and issue comments and reactions. It records every
request, can answer any one route with a scripted failure, and can run a test's hook when a route
is called (to make something happen mid-run). Tests start one per test with `serve()`."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeGitHub:
    url: str = ""
    token: str = ""  # when set, requests without `Authorization: Bearer <token>` get a 401
    issues: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    comments: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)
    page_size: int = 0  # 0: honour per_page; else force this page size (to test pagination)
    failures: dict[str, tuple[int, dict[str, Any], dict[str, str]]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    pulls: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    hooks: dict[str, Callable[[], None]] = field(default_factory=dict)  # "POST /repos/..." -> run
    next_pull: int = 100
    # Teams a review request cannot name: GitHub answers 422 for the whole request, as it does
    # for any team when the token may not read the organisation (the default Actions token).
    unresolvable_teams: set[str] = field(default_factory=set)

    def add_pull(
        self,
        repo: str,
        number: int,
        *,
        head_ref: str,
        head_repo: str | None = None,
        user: dict[str, Any] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A pull request (and its issue side, where its comments go). `head_repo`: where its
        branch lives (default `repo`; a fork's name for a fork's pull request)."""
        url = f"https://github.example/{repo}/pull/{number}"
        pull: dict[str, Any] = {
            "number": number,
            "state": "open",
            "merged": False,
            "draft": True,
            "html_url": url,
            "user": user or {"login": "github-actions[bot]", "type": "Bot"},
            "head": {"ref": head_ref, "sha": "0" * 40, "repo": {"full_name": head_repo or repo}},
            "base": {"ref": "main", "repo": {"full_name": repo}},
            **fields,
        }
        self.pulls[(repo, number)] = pull
        self.add_issue(repo, number, pull_request={"url": url}, user=pull["user"])
        return pull

    def add_issue(self, repo: str, number: int, **fields: Any) -> dict[str, Any]:
        issue: dict[str, Any] = {
            "number": number,
            "title": f"Issue {number}",
            "body": "",
            "labels": [],
            "state": "open",
            "comments": 0,
            "user": {"login": "reporter", "type": "User"},
            "author_association": "NONE",
            "html_url": f"https://github.example/{repo}/issues/{number}",
            **fields,
        }
        self.issues[(repo, number)] = issue
        return issue

    def add_comment(self, repo: str, number: int, body: str, **fields: Any) -> None:
        items = self.comments.setdefault((repo, number), [])
        items.append(
            {
                "id": len(items) + 1,
                "body": body,
                "user": {"login": "someone", "type": "User"},
                "author_association": "CONTRIBUTOR",
                "created_at": "2024-05-01T10:00:00Z",
                **fields,
            }
        )
        self.issues[(repo, number)]["comments"] = len(items)

    def posted(self, suffix: str) -> list[Request]:
        return [r for r in self.requests if r.method == "POST" and r.path.endswith(suffix)]

    def requested(self, repo: str, number: int) -> tuple[list[str], list[str]]:
        """The logins and team slugs a review of pull request `number` is requested from."""
        pull = self.pulls[(repo, number)]
        users = [u["login"] for u in pull.get("requested_reviewers", [])]
        return users, [t["slug"] for t in pull.get("requested_teams", [])]

    def _request_reviews(self, pull: dict[str, Any], body: dict[str, Any]) -> tuple[int, Any]:
        """As GitHub: the author cannot be asked, an unresolvable team fails the whole request,
        and a request that names nobody is refused."""
        users, teams = list(body.get("reviewers") or []), list(body.get("team_reviewers") or [])
        if not users and not teams:
            return 422, {"message": "Invalid request: no reviewers or team_reviewers"}
        if pull["user"]["login"] in users:
            return 422, {"message": "Review cannot be requested from pull request author."}
        if set(teams) & self.unresolvable_teams:
            return 422, {
                "message": "Validation Failed",
                "errors": ["Could not resolve to a node with the global id of 'T_kwDOAB'."],
            }
        known = pull.setdefault("requested_reviewers", [])
        known += [{"login": u} for u in users if {"login": u} not in known]
        slugs = pull.setdefault("requested_teams", [])
        slugs += [{"slug": t} for t in teams if {"slug": t} not in slugs]
        return 201, pull

    def handle(self, method: str, target: str, headers: dict[str, str], body: Any) -> tuple[
        int, Any, dict[str, str]
    ]:  # fmt: skip
        split = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        self.requests.append(Request(method, split.path, query, headers, body))
        hook = self.hooks.get(f"{method} {split.path}")
        if hook is not None:
            hook()
        if f"{method} {split.path}" in self.failures:
            return self.failures[f"{method} {split.path}"]
        if self.token and headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"message": "Bad credentials"}, {}
        parts = split.path.strip("/").split("/")
        if len(parts) < 4 or parts[0] != "repos":
            return 404, {"message": "Not Found"}, {}
        repo, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        if method == "GET" and rest == ["issues"]:
            items = [i for (r, _), i in sorted(self.issues.items()) if r == repo]
            return self._page(split.path, query, items)
        if method == "POST" and rest[:2] == ["issues", "comments"] and rest[3:] == ["reactions"]:
            return 201, {"id": 8, "content": body.get("content")}, {}
        if method == "GET" and rest[0] == "pulls" and len(rest) == 2 and rest[1].isdigit():
            pull = self.pulls.get((repo, int(rest[1])))
            return (200, pull, {}) if pull else (404, {"message": "Not Found"}, {})
        if method == "POST" and rest[0] == "pulls" and rest[2:] == ["requested_reviewers"]:
            pull = self.pulls.get((repo, int(rest[1]))) if rest[1].isdigit() else None
            if pull is None:
                return 404, {"message": "Not Found"}, {}
            return (*self._request_reviews(pull, body), {})
        if rest[0] == "issues" and len(rest) >= 2 and rest[1].isdigit():
            key = (repo, int(rest[1]))
            if key not in self.issues:
                return 404, {"message": "Not Found"}, {}
            if method == "GET" and len(rest) == 2:
                return 200, self.issues[key], {}
            if method == "GET" and rest[2:] == ["comments"]:
                return self._page(split.path, query, self.comments.get(key, []))
            if method == "POST" and rest[2:] == ["reactions"]:
                return 201, {"id": 7, "content": body.get("content")}, {}
            if method == "POST" and rest[2:] == ["comments"]:
                url = f"https://github.example/{repo}/issues/{key[1]}#issuecomment-99"
                return 201, {"id": 99, "html_url": url, "body": body.get("body")}, {}
        if method == "POST" and rest == ["pulls"]:
            number, self.next_pull = self.next_pull, self.next_pull + 1
            # GitHub's default is a ready pull request: `draft` only when asked for.
            draft = bool(body.get("draft", False))
            pull = self.add_pull(
                repo, number, head_ref=body["head"], draft=draft, body=body.get("body", "")
            )
            return 201, pull, {}
        return 404, {"message": "Not Found"}, {}

    def _page(
        self, path: str, query: dict[str, str], items: list[dict[str, Any]]
    ) -> tuple[int, Any, dict[str, str]]:
        size = self.page_size or int(query.get("per_page", "30"))
        page = int(query.get("page", "1"))
        chunk = items[(page - 1) * size : page * size]
        headers = {}
        if page * size < len(items):
            headers["Link"] = f'<{self.url}{path}?per_page={size}&page={page + 1}>; rel="next"'
        return 200, chunk, headers


@contextmanager
def serve() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, method: str) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, data, extra = fake.handle(method, self.path, headers, body)
            payload = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def do_GET(self) -> None:
            self._answer("GET")

        def do_POST(self) -> None:
            self._answer("POST")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
