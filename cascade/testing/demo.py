"""A replay backlog built from the bundled demo: copies of each demo issue under distinct ids, a
cassette keyed by those ids (the reproduce stage's answers too; optionally with a simulated model
latency) and a config that reads it. The tests and `benchmarks/replay.py` replay it; nothing here
runs a model."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cascade.models.cassette import Cassette
from cascade.records import Role
from cascade.sources.files import FileIssueSource
from cascade.testing.repos import git

DEMO_CASSETTE = "cassettes/demo.jsonl"
_EVALUATORS = re.compile(r"^evaluators = \[.*\]$", re.MULTILINE)  # the [gate] line
# A `[[workflows]]` table: its header and the `key = value` lines under it.
_WORKFLOWS = re.compile(r"^\[\[workflows\]\]\n(?:\w[^\n]*\n)*", re.MULTILINE)
# Rung zero: the `repair` rung's table and the `[repair]` table.
_RUNG_ZERO = re.compile(
    r'^\[\[ladder\]\]\nname = "repair"\n(?:\w[^\n]*\n)*\n?|^\[repair\]\n(?:\w[^\n]*\n)*',
    re.MULTILINE,
)
RUNG_ZERO_ISSUE = "DEMO-5"  # the one-token bug the repair rung fixes, with no scripted answer


@dataclass(frozen=True)
class DemoBacklog:
    repo: Path  # a git checkout of the demo
    backlog: Path  # JSONL, one issue a line
    cassette: Path
    config: Path  # the demo's cascade.toml, reading `cassette`
    ids: tuple[str, ...]


def without_workflows(config: str) -> str:
    """The demo's cascade.toml text without its `[[workflows]]` tables: one gate judges all."""
    return _WORKFLOWS.sub("", config)


def without_rung_zero(config: str) -> str:
    """The demo's cascade.toml text without its `repair` rung and `[repair]` settings."""
    return _RUNG_ZERO.sub("", config)


def demo_repo(demo: Path, dest: Path, *, rung_zero: bool = False) -> Path:
    """A git repository at `dest` holding a copy of the demo in one commit. Without `rung_zero`
    its ladder is the cassette's alone (cheap, strong) and DEMO-5, which only the repair rung
    fixes, is left out: what the tests of everything else replay, at no search's cost (its
    failing test stays in the suite, a failure at the base commit like the others')."""
    shutil.copytree(demo, dest, ignore=shutil.ignore_patterns("__pycache__", "runs", "replay"))
    if not rung_zero:
        config = dest / "cascade.toml"
        config.write_text(without_rung_zero(config.read_text(encoding="utf-8")), encoding="utf-8")
        (dest / ".cascade" / "issues" / f"{RUNG_ZERO_ISSUE}.md").unlink()
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "demo: base")
    return dest


NO_EDITS = "I would need to look at this more closely before changing anything."
RUNGS = ("replay/demo-cheap", "replay/demo-strong")
ROLES: tuple[Role, ...] = ("reproduce", "fix")


def demo_backlog(
    demo: Path,
    dest: Path,
    *,
    copies: int = 2,
    latency_s: float = 0.0,
    gate: str = "",
    cheap_without_edits: bool = False,
    focus_only: bool = False,
    issues: Sequence[str] = (),
) -> DemoBacklog:
    """`copies` of each demo issue (ids `DEMO-1-c1`, ...), in `dest`; `issues` picks some of
    them by id (default: all). Each copy gets its issue's answers, the reproduce stage's among
    them (DEMO-4 names no test, so its run writes one first). `gate` replaces the demo's
    `[gate]` evaluators line when given (e.g. `["diff_scope"]`, which runs no code but proves
    nothing either; `["diff_scope", "pytest"]` proves) and drops the demo's `[[workflows]]`, so
    that gate judges every task; `focus_only` has pytest run only the
    issue's own tests after a patch (the full suite runs once, at the base commit), and
    `cheap_without_edits` makes every cheap answer prose with no edit, so each task (and each
    reproduce stage) still climbs to the strong rung."""
    dest.mkdir(parents=True, exist_ok=True)
    repo = demo_repo(demo, dest / "repo")
    every = FileIssueSource(repo / ".cascade" / "issues").list()
    unknown = sorted(set(issues) - {issue.id for issue in every})
    if unknown:
        raise ValueError(f"not a demo issue: {', '.join(unknown)}")
    picked = [issue for issue in every if not issues or issue.id in issues]
    cassette = Cassette.load(repo / DEMO_CASSETTE)
    lines, entries, ids = [], [], []
    for copy in range(1, copies + 1):
        for issue in picked:
            new_id = f"{issue.id}-c{copy}"
            ids.append(new_id)
            lines.append(issue.model_copy(update={"id": new_id}).model_dump_json())
            for role in ROLES:
                for rung in RUNGS:
                    entry = cassette.find(issue.id, rung, 1, role=role)
                    if entry is None:
                        continue
                    update: dict[str, object] = {"task": new_id, "latency_s": latency_s}
                    if cheap_without_edits and rung.endswith("cheap"):
                        update["content"] = NO_EDITS
                    entries.append(entry.model_copy(update=update))
    backlog = dest / "backlog.jsonl"
    backlog.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tape = dest / "cassette.jsonl"
    tape.write_text("".join(e.to_line() for e in entries), encoding="utf-8")
    config = (repo / "cascade.toml").read_text(encoding="utf-8")
    config = config.replace(f'"{DEMO_CASSETTE}"', json.dumps(str(tape)))
    if gate:
        config, found = _EVALUATORS.subn(f"evaluators = {gate}", config, count=1)
        if not found:
            raise ValueError(f"{repo / 'cascade.toml'} has no `evaluators = [...]` line")
        config = without_workflows(config)
    if focus_only:
        config += "\n[gate.options.pytest]\nrun_full_suite = false\nrerun_failures = false\n"
    config_file = dest / "replay.toml"
    config_file.write_text(config, encoding="utf-8")
    return DemoBacklog(repo, backlog, tape, config_file, tuple(ids))
