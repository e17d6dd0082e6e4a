"""A small client for GitHub's REST API (httpx, sync), shared by the issue source and the Action's
publishing step. Every HTTP failure is mapped here, once, to a `SourceError` that says what to do.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from typing import Any

import httpx

from cascade.errors import SourceError

DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
TIMEOUT = 30.0  # seconds per request; GitHub answers in well under that when it answers at all
MAX_PAGES = 20  # per listing: 2,000 comments or issues is more than any prompt can hold

_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


def token_from_env(environ: Mapping[str, str] | None = None) -> str:
    """GITHUB_TOKEN (what Actions provides), else GH_TOKEN (what the gh CLI uses), else ""."""
    env = os.environ if environ is None else environ
    return env.get("GITHUB_TOKEN", "").strip() or env.get("GH_TOKEN", "").strip()


def api_url_from_env(configured: str = "", environ: Mapping[str, str] | None = None) -> str:
    """An explicit setting wins, then GITHUB_API_URL (set by Actions, also on GHES), then
    api.github.com."""
    env = os.environ if environ is None else environ
    return (configured or env.get("GITHUB_API_URL", "") or DEFAULT_API_URL).rstrip("/")


class GitHubAPI:
    """JSON in, JSON out. `what` on each call names the thing asked for, for the error message."""

    def __init__(
        self,
        api_url: str = DEFAULT_API_URL,
        token: str = "",
        *,
        timeout: float = TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.has_token = bool(token)
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "cascade-engine",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(
            base_url=self.api_url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._client.close()

    def get(self, path: str, *, what: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._send("GET", path, what=what, params=params).json()

    def get_pages(
        self, path: str, *, what: str, params: Mapping[str, Any] | None = None
    ) -> list[Any]:
        """Every item of a listing, following `Link: rel="next"` up to MAX_PAGES pages."""
        items: list[Any] = []
        url: str | None = path
        query: Mapping[str, Any] | None = {"per_page": 100, **(params or {})}
        for _ in range(MAX_PAGES):
            if url is None:
                break
            response = self._send("GET", url, what=what, params=query)
            page = response.json()
            if not isinstance(page, list):
                raise SourceError(f"GitHub answered {what} with something other than a list")
            items += page
            found = _NEXT.search(response.headers.get("link", ""))
            # The token goes wherever the client sends: only follow links back to the same API.
            same = found is not None and found.group(1).startswith(self.api_url + "/")
            url, query = (found.group(1), None) if found and same else (None, None)
        return items

    def post(self, path: str, payload: Mapping[str, Any], *, what: str) -> Any:
        return self._send("POST", path, what=what, json=dict(payload)).json()

    def _send(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> httpx.Response:
        try:
            response = self._client.request(method, path, params=params, json=json)
        except httpx.HTTPError as exc:
            raise SourceError(f"cannot reach the GitHub API at {self.api_url}: {exc}") from exc
        if response.status_code >= 400:
            raise SourceError(self._explain(response, what))
        return response

    def _explain(self, response: httpx.Response, what: str) -> str:
        status, headers = response.status_code, response.headers
        message = _message(response)
        if status in (403, 429) and headers.get("x-ratelimit-remaining") == "0":
            reset = headers.get("x-ratelimit-reset", "")
            when = ""
            if reset.isdigit():
                wait = max(0, int(reset) - int(time.time()))
                clock = time.strftime("%H:%M:%S UTC", time.gmtime(int(reset)))
                when = f"; it resets at {clock} (in {wait // 60} min {wait % 60} s)"
            hint = "" if self.has_token else "; set GITHUB_TOKEN or GH_TOKEN for a higher limit"
            return f"GitHub API rate limit exhausted ({what}){when}{hint}"
        if status in (403, 429) and headers.get("retry-after"):
            return (
                f"GitHub's secondary rate limit stopped {what}: retry after "
                f"{headers['retry-after']} s ({message})"
            )
        if status == 401:
            return (
                f"GitHub rejected the token ({what}: 401 {message}): set "
                "GITHUB_TOKEN or GH_TOKEN to a valid token"
            )
        if status == 403:
            return (
                f"GitHub refused the request ({what}: 403 {message}): the token lacks a "
                "permission it needs (issues, contents, pull-requests)"
            )
        if status == 404:
            hint = (
                "" if self.has_token else " (a private repository needs GITHUB_TOKEN or GH_TOKEN)"
            )
            return f"GitHub has no {what} (404){hint}"
        if status == 410:
            return f"GitHub says {what} is gone (410 {message}): are issues disabled?"
        return f"GitHub API error {status} on {what}: {message}"


def _message(response: httpx.Response) -> str:
    """GitHub's own words: `message`, plus any `errors[].message` (422 validation failures)."""
    try:
        data = response.json()
    except ValueError:
        return response.reason_phrase or "no message"
    if not isinstance(data, dict):
        return response.reason_phrase or "no message"
    parts = [str(data.get("message") or response.reason_phrase or "no message")]
    for error in data.get("errors") or []:
        if isinstance(error, dict) and error.get("message"):
            parts.append(str(error["message"]))
    return "; ".join(parts)
