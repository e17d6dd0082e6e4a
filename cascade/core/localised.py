"""Fault localisation in a run: measured once the task has visible proving tests (the issue's, or
an accepted reproduction's), in a sandbox of its own at the base commit; kept across runs beside
the baselines; and the few most suspicious functions it finds, as a prompt shows them. The
measuring is the evaluators' (`evaluators/localisation.py`, injected as a `Localiser`); the
ranking is `cascade.core.localise`.

Hidden tests never take part: their files are not in the sandbox, and what ranks the code would
tell a model where they look."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from cascade.core.baseline_store import COMPUTED_BY, BaselineStore
from cascade.core.localise import Localisation, SuspectFunction
from cascade.protocols import ImageSandbox, Sandbox
from cascade.records import Task

log = logging.getLogger(__name__)

Localiser = Callable[[Sandbox, Sequence[str]], Awaitable[Localisation]]
EXCERPT_LINES = 40  # of one function, around its most suspicious line
MARK = ">>"


@dataclass(frozen=True)
class Localising:
    """How a run localises: the measurement, what its result depends on besides the task (its
    settings and code, for the cache key) and how many functions a prompt shows."""

    measure: Localiser
    settings: str
    code: str
    show: int = 5

    def key(self, task: Task, tests: Sequence[str], image: str) -> str:
        repro = task.reproduction.diff if task.reproduction else ""
        parts = ("localise", task.repo, task.base_commit, *sorted(tests), repro, self.settings)
        return hashlib.sha256("\0".join((*parts, self.code, image)).encode()).hexdigest()

    async def run(
        self, sandbox: Sandbox, task: Task, tests: Sequence[str], store: BaselineStore | None
    ) -> tuple[Localisation, str]:
        """The localisation, and where it came from ("" measured now, else the run that did):
        from `store` when an earlier run on the same image measured the same thing."""
        image = sandbox.image_id if isinstance(sandbox, ImageSandbox) else ""
        key = self.key(task, tests, image)
        if store is not None and image:
            facts = store.get(key)
            if facts is not None:
                try:
                    found = Localisation.model_validate(facts["localisation"])
                    return found, str(facts.get(COMPUTED_BY) or "an earlier run")
                except (KeyError, ValidationError) as exc:
                    log.info("localisation cache: an entry is not a localisation (%s)", exc)
        if task.reproduction is not None:  # the accepted reproduction's files, as the gate has
            await sandbox.write_files({p: t.encode() for p, t in task.reproduction.files.items()})
        found = await self.measure(sandbox, tests)
        if store is not None and image:
            store.put(key, {"localisation": json.loads(found.to_json())})
        return found, ""


@dataclass(frozen=True)
class Suspect:
    """One function as a prompt shows it: where, its rank, and its lines numbered, the most
    suspicious ones marked."""

    path: str
    name: str
    rank: int
    excerpt: str

    @property
    def label(self) -> str:
        return f"{self.path}::{self.name}"


def suspects(loc: Localisation, texts: Mapping[str, str], show: int) -> tuple[Suspect, ...]:
    """The top `show` functions whose file the context can read (ranked, tied ones by place)."""
    chosen: list[Suspect] = []
    for function in loc.functions:
        if len(chosen) >= show:
            break
        text = texts.get(function.path)
        if text is None or function.ochiai <= 0:
            continue
        marked = _marked(loc, function)
        chosen.append(
            Suspect(
                function.path, function.name, function.rank,
                excerpt(text, function.first, function.last, marked, function.line),
            )
        )  # fmt: skip
    return tuple(chosen)


def _marked(loc: Localisation, function: SuspectFunction) -> set[int]:
    """The function's statements scored as high as its best one: the lines worth a first look."""
    inside = [
        s for s in loc.statements
        if s.path == function.path and function.first <= s.line <= function.last
    ]  # fmt: skip
    best = max((s.ochiai for s in inside), default=function.ochiai)
    return {s.line for s in inside if s.ochiai >= best - 1e-9} or {function.line}


def excerpt(text: str, first: int, last: int, marked: set[int], focus: int) -> str:
    """Lines `first`..`last` of `text`, numbered, `>>` on the marked ones; a long function is cut
    to EXCERPT_LINES around `focus`."""
    lines = text.splitlines()
    last = min(last, len(lines))
    if last - first + 1 > EXCERPT_LINES:
        first = max(first, focus - EXCERPT_LINES // 2)
        last = min(last, first + EXCERPT_LINES - 1)
    width = len(str(last))
    return "\n".join(
        f"{MARK if n in marked else '  '}{n:>{width}} | {lines[n - 1]}"
        for n in range(first, last + 1)
    )


def said(loc: Localisation, origin: str) -> str:
    """The run's note: what was measured and what leads."""
    top = loc.functions[0] if loc.functions else None
    lead = f"; most suspicious: {top.path}::{top.name} (Ochiai {top.ochiai:.2f})" if top else ""
    where = f" (kept by {origin})" if origin else f" in {loc.duration_s:.1f}s"
    return (
        f"localisation: {loc.suspects} suspicious statements from {loc.failing} failing and "
        f"{loc.passing} passing tests{where}{lead}"
    )
