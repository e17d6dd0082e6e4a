"""Baselines kept across runs (issue #19): a second `cascade fix` on the same commit, gate
configuration and sandbox image takes no baseline again, and its first attempt says which run
took the ones it used; a changed evaluator setting, image or commit misses; an entry that was
edited, written under another machine's key, or is not JSON is recomputed, never trusted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cascade.config import GateConfig
from cascade.core.baseline_store import COMPUTED_BY, BaselineStore
from cascade.testing.repos import git
from cascade.wiring.registry import build_gate

CASCADE = str(Path(sys.executable).parent / "cascade")
RUFF = build_gate(GateConfig(evaluators=("ruff",))).evaluators[0]


def _store(tmp_path: Path, key: str = "k") -> BaselineStore:
    return BaselineStore.open(tmp_path / "cache", tmp_path / f"{key}.key").for_run("run-1")


def test_an_entry_reads_back_under_its_own_key_and_seal(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.put("abc", {"findings": ["x"]})
    assert store.get("abc") == {"findings": ["x"], COMPUTED_BY: "run-1"}
    assert store.get("abd") is None


def test_an_edited_entry_is_not_trusted(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.put("abc", {"outcomes": {"tests/test_a.py::test_x": "failed"}})
    entry = tmp_path / "cache" / "abc.json"
    doc = json.loads(entry.read_text())
    doc["facts"]["outcomes"]["tests/test_a.py::test_x"] = "passed"  # a regression hidden
    entry.write_text(json.dumps(doc))
    assert store.get("abc") is None


def test_an_entry_sealed_under_another_key_or_not_json_is_not_trusted(tmp_path: Path) -> None:
    _store(tmp_path, "theirs").put("abc", {"findings": []})  # another machine's, copied in
    assert _store(tmp_path, "mine").get("abc") is None
    (tmp_path / "cache" / "abd.json").write_text("{not json")
    assert _store(tmp_path, "mine").get("abd") is None
    renamed = tmp_path / "cache" / "abe.json"  # a valid entry under another entry's name
    _store(tmp_path, "mine").put("abf", {"findings": []})
    (tmp_path / "cache" / "abf.json").rename(renamed)
    assert _store(tmp_path, "mine").get("abe") is None


def test_the_key_changes_with_the_image_and_the_in_process_key(tmp_path: Path) -> None:
    store = _store(tmp_path)
    key = store.entry_key("repo-commit-settings", "sha256:aaa", RUFF)
    assert key == store.entry_key("repo-commit-settings", "sha256:aaa", RUFF)
    assert key != store.entry_key("repo-commit-settings", "sha256:bbb", RUFF)
    assert key != store.entry_key("repo-commit-other-settings", "sha256:aaa", RUFF)


def _fix(repo: Path, *args: str) -> tuple[list[str], str]:
    """The first attempt's notes of `cascade fix DEMO-3`, and its run id."""
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc = subprocess.run(
        [CASCADE, "fix", "DEMO-3", "--repo", str(repo), "--json", *args],
        env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(json.loads(proc.stdout)["run_dir"])
    first = json.loads((run_dir / "attempts.jsonl").read_text().splitlines()[0])
    return first["decision"]["notes"], run_dir.name


def _cached(notes: list[str]) -> str:
    return next((n for n in notes if "from the cache" in n), "")


@pytest.mark.docker
@pytest.mark.usefixtures("docker_engine")
def test_a_second_run_reuses_the_baselines_and_misses_when_their_inputs_change(
    demo: Path, tmp_path: Path
) -> None:
    notes, first = _fix(demo)
    assert _cached(notes) == ""  # a cold cache: every baseline taken now
    notes, _ = _fix(demo)
    said = _cached(notes)
    assert (
        f"baseline of diff_scope, ruff, mypy, pytest from the cache (taken by run {first}" in said
    )
    # One evaluator configured otherwise (a config file beside the repository, the commit the
    # same): only its baseline is taken again.
    other = tmp_path / "other.toml"
    text = (demo / "cascade.toml").read_text().replace('"cassettes/', f'"{demo}/cassettes/')
    other.write_text(text + "\n[gate.options.ruff]\ntimeout = 90.0\n")
    notes, _ = _fix(demo, "--config", str(other))
    said = _cached(notes)
    assert "diff_scope, mypy, pytest from the cache" in said and "ruff" not in said
    # An edited entry is recomputed: the run still judges with a baseline it took itself.
    entries = sorted((demo / ".cascade" / "cache" / "baselines").glob("*.json"))
    for entry in entries:
        doc = json.loads(entry.read_text())
        doc["facts"]["_edited"] = True
        entry.write_text(json.dumps(doc))
    notes, _ = _fix(demo)
    assert _cached(notes) == ""
    # A new commit is a new baseline.
    (demo / "NOTES.txt").write_text("a new commit\n")
    git(demo, "add", "NOTES.txt")
    git(demo, "commit", "-qm", "notes")
    notes, _ = _fix(demo)
    assert _cached(notes) == ""


def test_cache_clear_removes_the_entries(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cascade.cli.main import app

    git(tmp_path, "init", "-q")
    store = BaselineStore.open(tmp_path / ".cascade" / "cache" / "baselines", tmp_path / "k")
    store.put("abc", {"findings": []})
    store.put("abd", {"findings": []})
    cleared = CliRunner().invoke(app, ["cache", "clear", "--repo", str(tmp_path)])
    assert cleared.exit_code == 0 and "removed 2 baseline(s)" in cleared.stdout
    assert store.get("abc") is None and store.get("abd") is None
