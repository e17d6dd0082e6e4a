"""Replay cassettes: JSONL files of recorded model answers, one object a line, matched by
(task id, rung model string, attempt, sample). Pure file handling; the litellm side is in
`replay.py`.

    {"task": "ISSUE-7", "model": "replay/cheap", "attempt": 1, "content": "...",
     "usage": {"prompt_tokens": 900, "completion_tokens": 250}}

An optional `"latency_s": 1.5` makes the replayed answer arrive that much later (a simulated
model latency, for benchmarks and tests of a batch under load); recorded lines leave it out.
A rung with `samples > 1` records `"sample": n` (2, 3, ...) on each of its answers but the first;
a replay with more samples than were recorded serves sample 1's answer to the others. Answers of
the reproduce stage (a test written before the fix) carry `"role": "reproduce"`, and a model
review of a patch that passed the gate (`cascade.core.review`) `"role": "review"`, keyed by the
reviewing rung's model and the review's number; a line without a role is the fix's. An agent
rung (`mode = "agent"`) records one line per turn with `"step": n` (1, 2, ...): a trajectory
replays turn by turn, each answer keyed by its step, and a missing step is a miss like any.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cascade.errors import ConfigError, ProviderEscalate
from cascade.records import CallRole, Usage
from cascade.validation import describe

CassetteKey = tuple[str, str, int, int, str, int]  # task, rung model, attempt, sample, role, step


class CassetteEntry(BaseModel):
    """One recorded answer, as one line of a cassette file."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    task: str
    model: str
    attempt: int = Field(ge=1)
    sample: int = Field(default=1, ge=1)
    content: str
    usage: Usage = Usage()
    latency_s: float = Field(default=0.0, ge=0.0, le=600.0)
    role: CallRole = "fix"
    step: int = Field(default=0, ge=0)  # an agent's turn; 0: a single-shot answer

    @property
    def key(self) -> CassetteKey:
        return (self.task, self.model, self.attempt, self.sample, self.role, self.step)

    def to_line(self) -> str:
        data = self.model_dump(mode="json")
        if not self.latency_s:
            del data["latency_s"]  # a recorded answer's line keeps the documented shape
        if self.sample == 1:
            del data["sample"]
        if self.role == "fix":
            del data["role"]
        if not self.step:
            del data["step"]
        return json.dumps(data, ensure_ascii=False) + "\n"


class Cassette:
    """The answers of one cassette file, loaded once. When a key repeats, the later line wins
    (a file appended to by several recorded runs serves the latest answer)."""

    def __init__(self, path: Path, entries: Mapping[CassetteKey, CassetteEntry]) -> None:
        self.path = path
        self._entries = dict(entries)

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def load(cls, path: Path) -> Cassette:
        """Read and validate a cassette; a bad file is a `ConfigError` naming file and line."""
        path = path.resolve()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cassette {path} cannot be read: {exc}") from exc
        entries: dict[CassetteKey, CassetteEntry] = {}
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                entry = CassetteEntry.model_validate_json(line)
            except ValidationError as exc:
                problem = describe(exc, label="{}", unknown=None, top="line")
                raise ConfigError(f"cassette {path}, line {lineno}: {problem}") from exc
            entries[entry.key] = entry
        return cls(path, entries)

    def find(
        self,
        task: str,
        model: str,
        attempt: int,
        sample: int = 1,
        role: CallRole = "fix",
        *,
        step: int = 0,
    ) -> CassetteEntry | None:
        found = self._entries.get((task, model, attempt, sample, role, step))
        return found or self._entries.get((task, model, attempt, 1, role, step))

    def answer(
        self,
        task: str,
        model: str,
        attempt: int,
        *,
        sample: int = 1,
        rung: str = "",
        role: CallRole = "fix",
        step: int = 0,
    ) -> CassetteEntry:
        """The recorded answer; a miss is a `ProviderEscalate` (the rung fails, the ladder goes
        on), never a silent pass."""
        entry = self.find(task, model, attempt, sample, role, step=step)
        if entry is None:
            what = "" if role == "fix" else f" ({role})"
            what += f", step {step}" if step else ""
            raise ProviderEscalate(
                f"cassette {self.path} has no answer for task {task!r}, model {model!r}, "
                f"attempt {attempt}{what}",
                rung=rung,
            )
        return entry
