"""`repair/mutate`: a rung with no provider. It mutates the statements fault localisation ranks
most suspicious (`cascade.repair.mutate`), in rank order, and runs each candidate's proving tests
in a sandbox at the base commit (fail fast, a timeout each), then the visible suite on one they
pass (`cascade.repair.runner`: many candidates to one exec); the first that breaks no other test
becomes an ordinary answer — a search/replace edit — that the run gates and proves like any
model's. Every candidate tried (operator, place, result, seconds) goes into the attempt's record
as a blob. The rung's next attempt, if it has one, goes on past the candidates it has already
returned. Cost: 0."""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
import time
from collections.abc import Iterator, Sequence
from typing import Any

import anyio

from cascade.config import RepairConfig, RungConfig
from cascade.core.edits import parse_edits, resolve
from cascade.core.search import Found, SearchJob
from cascade.errors import EditError, InfraError, ProviderEscalate
from cascade.protocols import Sandbox
from cascade.records import Completion, CompletionParams, Message
from cascade.repair.mutate import Mutant, mutants
from cascade.repair.runner import RUNNER

BATCH = 25  # candidates to one exec: a batch's results are read before the next one is sent
# A candidate's proving tests may take FACTOR times what they take without one (at least FLOOR
# seconds, at most `[repair] test_timeout`): an endless loop costs seconds, not the cap.
FACTOR, FLOOR = 10.0, 2.0
ENV = {"PYTHONDONTWRITEBYTECODE": "1"}


class MutationRepair:
    """The model of a `repair/mutate` rung (one per rung). What a run's search has tried is kept
    by run id: the rung's next attempt tries only what it has not, and never hands out the same
    candidate twice."""

    def __init__(self, rung: RungConfig, settings: RepairConfig) -> None:
        self.rung, self.settings = rung, settings
        self._tried: dict[str, set[str]] = {}  # run id -> sha256 of every source tried

    async def complete(self, messages: Sequence[Message], params: CompletionParams) -> Completion:
        raise ProviderEscalate(
            f"rung {self.rung.name!r}: {self.rung.model} searches in a sandbox and answers no "
            "prompt (it reviews nothing)",
            rung=self.rung.name,
        )

    async def search(self, job: SearchJob) -> Found:
        started = time.monotonic()
        log = _Log(started, self.settings, self._tried.setdefault(job.run_id, set()))
        sandbox = await job.open_sandbox()
        try:
            if job.task.reproduction is not None:
                files = job.task.reproduction.files
                await sandbox.write_files({p: t.encode() for p, t in files.items()})
            found = await self._search(sandbox, job, log)
        finally:
            with anyio.CancelScope(shield=True):
                await sandbox.close()
        if found is None:
            return Found(None, log.json(), log.why())
        completion = Completion(
            text=found, model=self.rung.model, latency_s=round(time.monotonic() - started, 3)
        )
        return Found(completion, log.json())

    async def _search(self, sandbox: Sandbox, job: SearchJob, log: _Log) -> str | None:
        """The answer for the first candidate that passes and can be written as an edit."""
        sources = await _sources(sandbox, job, self.settings.statements)
        pending = _candidates(job, sources, log, self.settings)
        run = _Batches(sandbox, job.tests, self.settings, sources)
        back: list[Mutant] = []  # taken for a batch that ended before their turn
        try:
            while not log.over():
                room = min(BATCH, self.settings.max_candidates - len(log.tried))
                batch = back[:room] + list(itertools.islice(pending, room - len(back[:room])))
                back = back[room:]
                if not batch:
                    log.exhausted = True
                    return None
                winner, unrun = await run.batch(batch, log)
                back = unrun + back
                if winner is not None:
                    answer = _answer(winner, sources[winner.path], log)
                    if answer is not None:
                        return answer
                    log.tried[-1]["result"] = "passed, but no edit writes it exactly"
                if run.stopped:
                    log.stopped = run.stopped
                    return None
        finally:
            with anyio.CancelScope(shield=True):
                await run.clean()
        return None


async def _sources(sandbox: Sandbox, job: SearchJob, statements: int) -> dict[str, str]:
    """The text of every file the top `statements` statements are in (a file that cannot be
    read as UTF-8 is left out: its statements are not mutated)."""
    texts: dict[str, str] = {}
    for path in dict.fromkeys(s.path for s in job.localisation.statements[:statements]):
        raw = await sandbox.read_file(path)
        try:
            texts[path] = raw.decode("utf-8") if raw is not None else ""
        except UnicodeDecodeError:
            continue
    return {path: text for path, text in texts.items() if text}


def _candidates(
    job: SearchJob, sources: dict[str, str], log: _Log, cfg: RepairConfig
) -> Iterator[Mutant]:
    """Mutants of the top statements in rank order, each once, none tried before in this run."""
    for statement in job.localisation.statements[: cfg.statements]:
        source = sources.get(statement.path)
        if source is None:
            continue
        for mutant in mutants(statement.path, source, [statement.line], limit=cfg.max_candidates):
            if log.fresh(mutant):
                yield mutant


class _Batches:
    """Candidates sent to the runner in the sandbox, a batch an exec; its files under `.git/`."""

    def __init__(
        self, sandbox: Sandbox, tests: Sequence[str], cfg: RepairConfig, sources: dict[str, str]
    ) -> None:
        self.sandbox, self.tests, self.cfg, self.sources = sandbox, tuple(tests), cfg, sources
        self.work = f".git/cascade-repair-{secrets.token_hex(6)}"
        self.said: dict[str, Any] = {}  # what earlier batches learned: limit, base_failed
        self.written = False
        self.stopped = ""  # why no later batch can help

    async def batch(self, batch: list[Mutant], log: _Log) -> tuple[Mutant | None, list[Mutant]]:
        """The candidate of `batch` that passed (or None), and those the batch never reached."""
        results, spec = f"{self.work}-results.jsonl", f"{self.work}-spec.json"
        payload: dict[str, Any] = {
            "tests": list(self.tests), "test_timeout": self.cfg.test_timeout,
            "suite_timeout": self.cfg.suite_timeout, "work": self.work, "results": results,
            "originals": self.sources, "floor": FLOOR, "factor": FACTOR, "limit": None,
            "candidates": [{"id": i, "path": m.path, "source": m.source}
                           for i, m in enumerate(batch)],
            **self.said,
        }  # fmt: skip
        files: dict[str, bytes | None] = {spec: json.dumps(payload).encode(), results: b""}
        if not self.written:
            files[f"{self.work}-run.py"] = RUNNER.encode()
            self.written = True
        await self.sandbox.write_files(files)
        budget = len(batch) * self.cfg.test_timeout + 2 * self.cfg.suite_timeout + 30
        left = max(self.cfg.max_seconds - (time.monotonic() - log.started), 1.0)
        argv = ["python", f"{self.work}-run.py", spec]
        result = await self.sandbox.exec(argv, timeout=min(budget, left + 5), env=ENV)
        lines = _results(await self.sandbox.read_file(results))
        done: dict[int, dict[str, Any]] = {}
        for line in lines:
            self._learn(line, log)
            if "id" in line:
                done[int(line["id"])] = line
        for i, mutant in enumerate(batch):
            if i not in done:
                if i == len(done) and not self.stopped:  # at work when the batch ended
                    log.add(mutant, "timeout" if result.timed_out else "runner died", 0.0)
                    return None, batch[i + 1 :]
                return None, batch[i:]
            said = str(done[i]["result"])
            broke = ", ".join(str(b) for b in (done[i].get("broke") or [])[:3])
            log.add(mutant, f"broke {broke}" if said == "broke" else said, done[i]["seconds"])
            if said == "passed":
                return mutant, batch[i + 1 :]
        if not lines and not result.timed_out and result.exit_code != 0:
            raise InfraError(f"repair/mutate: the candidates' runner failed: {_tail(result)}")
        return None, []

    def _learn(self, line: dict[str, Any], log: _Log) -> None:
        if "limit" in line:
            self.said["limit"] = log.limit = float(line["limit"])
            if line.get("base_passed"):
                self.stopped = "the proving tests pass without a change in the search's sandbox"
        if "base_failed" in line:
            self.said["base_failed"] = line["base_failed"]
            if line["base_failed"] is None:
                log.suite = "off: the visible suite did not run without a candidate"

    async def clean(self) -> None:
        """The runner's files gone, the originals back (a batch cut short may have left one)."""
        names = ("run.py", "spec.json", "results.jsonl", "outcomes.json")
        await self.sandbox.write_files(
            {**{f"{self.work}-{n}": None for n in names},
             **{p: t.encode("utf-8") for p, t in self.sources.items()}}
        )  # fmt: skip


def _results(raw: bytes | None) -> list[dict[str, Any]]:
    """The runner's JSON lines. The code under test runs beside the runner and could write
    anything there: what does not read as the runner's lines is the sandbox's fault."""
    try:
        lines = [json.loads(x) for x in (raw or b"").decode().splitlines() if x.strip()]
        for line in lines:
            if "id" in line:
                line["id"], line["seconds"] = int(line["id"]), float(line["seconds"])
                line["result"] = str(line["result"])
        if not all(isinstance(line, dict) for line in lines):
            raise TypeError("not an object")
    except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError) as exc:
        raise InfraError(f"repair/mutate: the runner's results cannot be read: {exc}") from exc
    return lines


def _tail(result: Any) -> str:
    return str(result.stderr or result.stdout).strip()[-400:]


class _Log:
    """What the search tried, and its limits; `tried_before` (the run's) is added to."""

    def __init__(self, started: float, settings: RepairConfig, tried_before: set[str]) -> None:
        self.started, self.settings, self.before = started, settings, tried_before
        self.tried: list[dict[str, Any]] = []
        self.limit: float | None = None  # the timeout a candidate's proving tests had
        self.suite = "on"  # whether candidates were checked against the visible suite
        self.stopped = ""  # which limit ended the search
        self.exhausted = False
        self._queued: set[str] = set()

    def fresh(self, mutant: Mutant) -> bool:
        """A source neither tried in this run (by this search or the rung's earlier attempts)
        nor queued already by this search."""
        digest = _digest(mutant.source)
        if digest in self.before or digest in self._queued:
            return False
        self._queued.add(digest)
        return True

    def over(self) -> bool:
        if len(self.tried) >= self.settings.max_candidates:
            self.stopped = f"max_candidates ({self.settings.max_candidates})"
        elif time.monotonic() - self.started >= self.settings.max_seconds:
            self.stopped = f"max_seconds ({self.settings.max_seconds:g}s)"
        return bool(self.stopped)

    def add(self, mutant: Mutant, result: str, seconds: float) -> None:
        self.before.add(_digest(mutant.source))
        self.tried.append(
            {
                "operator": mutant.operator, "path": mutant.path, "line": mutant.line,
                "before": mutant.before, "after": mutant.after, "result": result,
                "seconds": round(seconds, 3),
            }
        )  # fmt: skip

    def why(self) -> str:
        ended = f"stopped: {self.stopped}" if self.stopped else "no mutant left to try"
        return (
            f"repair/mutate: none of {len(self.tried)} candidates passed the proving tests "
            f"without breaking another ({ended})"
        )

    def json(self) -> str:
        return json.dumps(
            {
                "tried": self.tried,
                "stopped": self.stopped,
                "exhausted": self.exhausted,
                "test_timeout": self.limit,
                "suite_check": self.suite,
                "seconds": round(time.monotonic() - self.started, 3),
            },
            indent=1,
        )


def _digest(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def _answer(mutant: Mutant, original: str, log: _Log) -> str | None:
    """The candidate as a model would write it: a line of why, then one search/replace block
    whose SEARCH holds the changed lines and as many around them as make it unique. None when
    the edit would not give exactly the candidate's file (a line that reads as an edit marker,
    a form feed, a lone carriage return; a final newline is the one thing it may add): the gate
    must judge what was tested."""
    old, new = mutant_lines(mutant, original)
    head = (
        f"repair/mutate: {mutant.operator} at {mutant.path}:{mutant.line} "
        f"(`{mutant.before}` -> `{mutant.after}`), candidate {len(log.tried)}: "
        "the proving tests pass with it."
    )
    text = "\n".join(
        [head, "", mutant.path, "<<<<<<< SEARCH", *old, "=======", *new, ">>>>>>> REPLACE", ""]
    )
    try:
        edits = parse_edits(text)
        got = resolve(original, edits[0]) if len(edits) == 1 else None
    except EditError:
        return None
    # An edit ends the file with a newline: the one change it may add to what was tested.
    return text if got in (mutant.source, mutant.source + "\n") else None


def mutant_lines(mutant: Mutant, original: str) -> tuple[list[str], list[str]]:
    """The original lines a mutant changes and what replaces them (split on `\\n` alone, as
    edits are applied; a CRLF file as LF, as edits match it), widened by whole lines until the
    original block occurs once in the file."""
    before = original.replace("\r\n", "\n").split("\n")
    after = mutant.source.replace("\r\n", "\n").split("\n")
    start = 0
    while start < min(len(before), len(after)) and before[start] == after[start]:
        start += 1
    end_b, end_a = len(before), len(after)
    while end_b > start and end_a > start and before[end_b - 1] == after[end_a - 1]:
        end_b, end_a = end_b - 1, end_a - 1
    text, first, last = "\n".join(before), start, end_b
    while text.count("\n".join(before[start:end_b])) != 1 or start == end_b:
        below = end_b < len(before) and (start == 0 or end_b - last <= first - start)
        if below:  # a line after, then one before, in turn
            end_b, end_a = end_b + 1, end_a + 1
        elif start > 0:
            start -= 1
        else:
            break
    return before[start:end_b], after[start:end_a]
