"""Baselines kept across runs: what each evaluator found at a base commit, so a second `cascade
fix` on the same commit, gate and sandbox image does not run the whole suite again. An entry is
keyed by everything its facts depend on — the evaluator's in-process key (repository, commit,
evaluator, its settings, what of the task it reads: hidden files included), the sandbox image's
digest (its tools and the repository's installed dependencies) and the evaluator's own code —
and sealed with an HMAC under a key kept outside the repository (in the user's cache folder):
an entry that is corrupt, written under another key, or edited is ignored and recomputed, never
trusted. Only a sandbox with an image digest is cached: the local one's environment has none."""

from __future__ import annotations

import hashlib
import hmac
import inspect
import json
import logging
import os
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cascade.protocols import Evaluator
from cascade.workspace.untracked import ignore_in_git

log = logging.getLogger(__name__)

COMPUTED_BY = "_computed_by"  # baseline key: the run that took it
KEY_BYTES = 32


def user_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cascade"


class BaselineStore:
    """`folder` (per repository, `.cascade/cache/baselines`) holds one JSON file an entry;
    `secret` seals them (`BaselineStore.open` reads or makes it under the user's cache)."""

    def __init__(self, folder: Path, secret: bytes, run_id: str = "") -> None:
        self.folder, self.secret, self.run_id = folder, secret, run_id

    def for_run(self, run_id: str) -> BaselineStore:
        """This store, stamping what it stores as taken by `run_id`."""
        return BaselineStore(self.folder, self.secret, run_id)

    @classmethod
    def open(cls, folder: Path, key_file: Path | None = None) -> BaselineStore:
        key_file = key_file or user_cache() / "baseline.key"
        try:
            secret = key_file.read_bytes()
        except FileNotFoundError:
            secret = b""
        if len(secret) != KEY_BYTES:
            key_file.parent.mkdir(parents=True, exist_ok=True)
            secret = secrets.token_bytes(KEY_BYTES)
            _write_atomic(key_file, secret, mode=0o600)
        return cls(folder, secret)

    def entry_key(self, in_process: str, image: str, evaluator: Evaluator) -> str:
        code = _code_digest(evaluator)
        return hashlib.sha256("\0".join((in_process, image, code)).encode()).hexdigest()

    def get(self, key: str) -> dict[str, Any] | None:
        """The facts stored under `key`, or None (absent, unreadable, or its seal is wrong)."""
        path = self.folder / f"{key}.json"
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
            facts, seal = doc["facts"], doc["seal"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.info("baseline cache: %s is unreadable (%s): recomputed", path.name, exc)
            return None
        if doc.get("key") != key or not isinstance(facts, dict):
            log.info("baseline cache: %s is not the entry it is named for: recomputed", path.name)
            return None
        if not hmac.compare_digest(str(seal), self._seal(key, facts)):
            log.warning("baseline cache: %s does not carry this machine's seal: recomputed", path)
            return None
        return facts

    def put(self, key: str, facts: Mapping[str, Any]) -> None:
        """Best effort: a store that cannot be written only costs the next run the baseline."""
        facts = {**facts, COMPUTED_BY: self.run_id}
        doc = {"key": key, "facts": facts, "seal": self._seal(key, facts)}
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            ignore_in_git(self.folder)
            _write_atomic(self.folder / f"{key}.json", json.dumps(doc).encode("utf-8"))
        except (OSError, TypeError, ValueError) as exc:
            log.info("baseline cache: could not store an entry: %s", exc)

    def clear(self) -> int:
        """Remove every entry; how many there were."""
        entries = list(self.folder.glob("*.json")) if self.folder.is_dir() else []
        for entry in entries:
            entry.unlink(missing_ok=True)
        return len(entries)

    def _seal(self, key: str, facts: Mapping[str, Any]) -> str:
        body = json.dumps([key, facts], sort_keys=True, separators=(",", ":"), default=str)
        return hmac.new(self.secret, body.encode("utf-8"), hashlib.sha256).hexdigest()


def _code_digest(evaluator: Evaluator) -> str:
    """The evaluator's module source: new evaluator code may find other facts."""
    return code_digest(inspect.getmodule(type(evaluator)) or type(evaluator))


def code_digest(*sources: object) -> str:
    """The sha256 of these modules' (or classes') source, what a kept fact depends on; one
    without source (a frozen build) counts by its name."""
    if len(sources) == 1:  # one module: the digest of its source alone, as entries always had
        try:
            text = inspect.getsource(sources[0])  # type: ignore[arg-type]
        except (OSError, TypeError):
            return str(getattr(sources[0], "__qualname__", getattr(sources[0], "__name__", "?")))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
    return hashlib.sha256("\0".join(code_digest(s) for s in sources).encode()).hexdigest()


def _write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
