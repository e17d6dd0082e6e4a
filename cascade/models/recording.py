"""Recording real model answers as a cassette, so a later run can replay them at no model cost.

The rule: a recorded line names the rung's *replay* model, `replay/<rung name>`, not the real
model string. To replay a recorded file, give each rung `model = "replay/<its name>"` and
`cassette = "<the file>"` (`as_replay(rung, file)` does exactly that), keeping the rung names:

    [[ladder]]                              [[ladder]]
    name = "cheap"                   ->     name = "cheap"
    model = "gpt-4o-mini"                   model = "replay/cheap"
                                            cassette = "run.jsonl"

Rung names are unique within a ladder, so each rung finds its own answers even when two rungs
use the same real model; the real model is still named in each attempt's proof record.
"""

from __future__ import annotations

from pathlib import Path

from cascade.config import RungConfig
from cascade.errors import ConfigError
from cascade.models.cassette import CassetteEntry
from cascade.records import Completion, CompletionParams

REPLAY_PREFIX = "replay/"


def replay_model(rung: RungConfig) -> str:
    """The model string under which `rung`'s answers are recorded and replayed."""
    return rung.model if rung.is_replay else f"{REPLAY_PREFIX}{rung.name}"


def as_replay(rung: RungConfig, cassette: str) -> RungConfig:
    """`rung` served from a recorded cassette (path relative to the config's folder). Override
    prices are kept, so a replayed run reports what the recorded one cost under them. A search
    rung (`repair/mutate`) calls no model: it is kept, and searches again (free, and the same
    candidates in the same order)."""
    if rung.is_repair:
        return rung
    return rung.model_copy(update={"model": replay_model(rung), "cassette": cassette})


class Recorder:
    """Appends one cassette line per real (non-replay) answer, flushed as it is written."""

    def __init__(self, path: Path) -> None:
        """Checks the place before anything is spent: its folder is made if missing, and a
        path that cannot take a cassette is a ConfigError now rather than after a paid call."""
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create the folder of the record file {path}: {exc}") from exc
        if path.is_dir():
            raise ConfigError(f"the record file {path} is a directory")

    def record(self, rung: RungConfig, params: CompletionParams, completion: Completion) -> None:
        if rung.is_replay:
            return  # replaying a cassette into another would only copy it
        entry = CassetteEntry(
            task=params.task_id,
            model=replay_model(rung),
            attempt=params.attempt,
            sample=params.sample,
            role=params.role,
            step=params.step,
            content=completion.text,
            usage=completion.usage,
        )
        # Open per line: each answer is on disk before the next call, whatever happens next.
        try:
            with self.path.open("a", encoding="utf-8") as f:
                f.write(entry.to_line())
        except OSError as exc:
            raise ConfigError(f"cannot append to the record file {self.path}: {exc}") from exc
