"""A loopback OpenAI-compatible provider for benchmarks/fix_latency.py: POST /v1/chat/completions
sleeps a fixed delay, then answers with the demo cassette's scripted answer for the task and rung
the request is for, and logs when each request arrived and was answered; and the demo's config
with its rungs sent there. Stdlib only.

The task is told by the prompt's header line, `# Issue DEMO-1: <title>` (cascade/core/prompt.py
builds it from the issue's id and title); a prompt without it is matched by an issue title. The
rung is the request's `model` (`openai/demo-cheap` reaches the server as `demo-cheap`)."""

from __future__ import annotations

import json
import re
import threading
import time
import tomllib
from collections import Counter
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

_HEADER = re.compile(r"^# Issue (\S+): ", re.MULTILINE)
_TITLE = re.compile(r"^title:\s*(.+?)\s*$", re.MULTILINE)
_BARE = re.compile(r"^[A-Za-z0-9_-]+$")
RUNGS = {"cheap": "openai/demo-cheap", "strong": "openai/demo-strong"}


def demo_titles(issues: Path) -> dict[str, str]:
    """Each demo issue's title, by id, from the front matter of .cascade/issues/*.md."""
    titles = {}
    for path in sorted(issues.glob("*.md")):
        found = _TITLE.search(path.read_text())
        if found:
            titles[path.stem] = found.group(1).strip("\"'")
    return titles


def fix_answers(cassette: Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The fix stage's answers (no role, or role "fix") by (task, model name), in attempt order."""
    answers: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for line in cassette.read_text().splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        if entry.get("role", "fix") != "fix":
            continue
        name = str(entry["model"]).split("/", 1)[-1]  # replay/demo-cheap -> demo-cheap
        answers.setdefault((str(entry["task"]), name), []).append(entry)
    for entries in answers.values():
        entries.sort(key=lambda e: int(e.get("attempt", 1)))
    return answers


class ScriptedProvider:
    """The server and its request log; `start` returns the port, `take_log` empties the log and
    the per-(task, model) attempt counts, so each `cascade fix` run starts at attempt 1."""

    def __init__(self, cassette: Path, titles: Mapping[str, str], delay: float) -> None:
        self.answers = fix_answers(cassette)
        self.titles = dict(titles)
        self.delay = delay
        self._lock = threading.Lock()
        self._log: list[dict[str, Any]] = []
        self._counts: Counter[tuple[str, str]] = Counter()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> int:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status, body = provider.handle(self.path, self.rfile.read(length))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # no access log on the benchmark's terminal

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return int(self._server.server_address[1])

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def take_log(self) -> list[dict[str, Any]]:
        with self._lock:
            log, self._log = self._log, []
            self._counts.clear()
        return log

    def task_of(self, messages: list[dict[str, Any]]) -> str:
        text = "\n".join(str(m.get("content", "")) for m in messages)
        header = _HEADER.search(text)
        if header:
            return header.group(1)
        for task, title in self.titles.items():
            if title and title in text:
                return task
        return ""

    def handle(self, path: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        arrived = time.perf_counter()
        if not path.rstrip("/").endswith("/chat/completions"):
            return 404, {"error": {"message": f"no route {path}", "type": "not_found"}}
        request = json.loads(raw or b"{}")
        model = str(request.get("model", ""))
        task = self.task_of(list(request.get("messages") or []))
        with self._lock:
            self._counts[(task, model)] += 1
            attempt = self._counts[(task, model)]
        entries = self.answers.get((task, model), [])
        time.sleep(self.delay)
        entry = entries[min(attempt, len(entries)) - 1] if entries else None
        record = {"task": task, "model": model, "attempt": attempt, "arrived": arrived}
        if entry is None:
            record["answered"] = time.perf_counter()
            record["error"] = "no scripted answer"
            with self._lock:
                self._log.append(record)
            message = f"no scripted answer for task {task!r}, model {model!r}"
            return 400, {"error": {"message": message, "type": "invalid_request_error"}}
        usage = entry.get("usage") or {}
        prompt, completion = (
            int(usage.get("prompt_tokens", 0)),
            int(usage.get("completion_tokens", 0)),
        )
        body = {
            "id": f"chatcmpl-bench-{task}-{model}-{attempt}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": entry["content"]},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
        record["answered"] = time.perf_counter()
        with self._lock:
            self._log.append(record)
        return 200, body


def toml_value(value: Any) -> str:
    """TOML for the shapes a cascade.toml holds: strings, numbers, booleans, arrays, tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON's escapes are TOML basic-string escapes
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"no TOML for {type(value).__name__}")


def toml_key(key: str) -> str:
    return key if _BARE.match(key) else json.dumps(key)


def toml_dump(data: Mapping[str, Any]) -> str:
    """Top-level scalars, then `[table]`s, then `[[array of tables]]`; deeper tables inline."""
    plain = [f"{toml_key(k)} = {toml_value(v)}" for k, v in data.items()
             if not isinstance(v, Mapping) and not _tables(v)]  # fmt: skip
    blocks = ["\n".join(plain)] if plain else []
    for key, value in data.items():
        if isinstance(value, Mapping):
            body = [f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()]
            blocks.append("\n".join([f"[{toml_key(key)}]", *body]))
        elif _tables(value):
            for table in value:
                body = [f"{toml_key(k)} = {toml_value(v)}" for k, v in table.items()]
                blocks.append("\n".join([f"[[{toml_key(key)}]]", *body]))
    return "\n\n".join(blocks) + "\n"


def _tables(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def write_config(demo: Path, port: int, dest: Path) -> Path:
    """The demo's cascade.toml with its model rungs served by the loopback provider, same
    prices; a search rung (`repair/mutate`) is left out: this measures the wait for a model."""
    data = tomllib.loads((demo / "cascade.toml").read_text())
    data["ladder"] = [r for r in data["ladder"] if not r["model"].startswith("repair/")]
    for rung in data["ladder"]:
        rung.pop("cassette", None)
        rung["model"] = RUNGS[rung["name"]]
        rung["api_base"] = f"http://127.0.0.1:{port}/v1"
    text = toml_dump(data)
    if tomllib.loads(text) != data:
        raise AssertionError("the TOML writer lost something of the demo's config")
    dest.write_text(text)
    return dest
