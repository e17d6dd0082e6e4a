"""The gate benchmark's task suite (benchmarks/tasks): every task holds what the manifest says,
every patch applies, each base repository fails exactly its tasks' target tests, and the gate
judges every patch as expected — zero false accepts, zero false rejects, each wrong patch
rejected by the evaluator meant to catch it. Expectations whose evaluator is not installed
are reported as skipped, never passed over silently."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from benchmarks.gate import run_suite
from benchmarks.task_suite import (
    TASKS,
    WRONG_KINDS,
    load_manifest,
    make_checkout,
    structure_problems,
    task_dir,
)

MANIFEST = load_manifest()
KINDS = ("correct", *WRONG_KINDS)
# Always on: every patch kind, every repository (and so each of the three mypy modes).
SUBSET = ("TXT-2", "TXT-3", "SPN-3", "TLG-2", "TLG-5")
_RUNS: dict[tuple[str, ...], dict[str, Any]] = {}


def test_suite_shape() -> None:
    assert len(MANIFEST.repos) >= 3
    assert MANIFEST.task_count() >= 20
    assert structure_problems(MANIFEST) == []
    kinds = {p.kind for repo in MANIFEST.repos.values() for t in repo.tasks for p in t.patches}
    assert kinds == set(KINDS)


def test_subset_covers_every_kind_and_repo() -> None:
    chosen = [t for r in MANIFEST.repos.values() for t in r.tasks if t.id in SUBSET]
    assert len(chosen) == len(SUBSET)
    assert {p.kind for t in chosen for p in t.patches} == set(KINDS)
    assert {t.id.split("-")[0] for t in chosen} == {"TXT", "SPN", "TLG"}


@pytest.mark.parametrize("repo", sorted(MANIFEST.repos))
def test_every_patch_applies(repo: str, tmp_path: Path) -> None:
    tasks = MANIFEST.repos[repo].tasks
    checkout = tmp_path / repo
    make_checkout(TASKS, repo, tasks, checkout)
    failures = []
    for task in tasks:
        for patch in task.patches:
            diff = task_dir(TASKS, repo, task.id) / patch.file
            check = _run(["git", "-C", str(checkout), "apply", "--check", str(diff)])
            if check.returncode:
                failures.append(f"{task.id}/{patch.file}: {check.stderr.strip()}")
    assert failures == []


@pytest.mark.parametrize("repo", sorted(MANIFEST.repos))
def test_base_repo_fails_exactly_its_target_tests(repo: str, tmp_path: Path) -> None:
    checkout = tmp_path / repo
    make_checkout(TASKS, repo, (), checkout)
    result = _run([sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider"], checkout)
    failed = set(re.findall(r"^FAILED (\S+)", result.stdout, re.MULTILINE))
    targets = {node for task in MANIFEST.repos[repo].tasks for node in task.targets}
    assert result.returncode == 1, result.stdout[-2000:]
    assert failed == targets


def _run(argv: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)


def _suite(task_ids: tuple[str, ...]) -> dict[str, Any]:
    """One local-sandbox run of these tasks (all when empty), shared by the tests below; a
    subset is cut from a full run when one was made first."""
    if task_ids not in _RUNS and () in _RUNS:
        full = _RUNS[()]
        _RUNS[task_ids] = {**full, "patches": [p for p in full["patches"] if p["task"] in task_ids]}
    if task_ids not in _RUNS:
        _RUNS[task_ids] = anyio.run(
            lambda: run_suite(
                MANIFEST, backend="local", task_ids=task_ids, timing=False, jobs=len(MANIFEST.repos)
            )
        )
    return _RUNS[task_ids]


def _check(result: dict[str, Any], kind: str) -> None:
    rows = [p for p in result["patches"] if p["kind"] == kind]
    assert rows, f"no {kind} patch was run"
    unjudged = [p for p in rows if p["status"] == "not_judged"]
    if unjudged:
        message = (
            f"{len(unjudged)} of {len(rows)} {kind} expectation(s) NOT JUDGED: "
            + (unjudged[0]["why"].split(";")[0])
        )
        warnings.warn(message, stacklevel=1)
    # An expectation that cannot be judged still says the rest of the gate must let it through.
    wrong = [
        f"{p['task']}/{p['file']}: {p['status']}: {p['why']}"
        for p in rows
        if p["status"] != "ok" and (p["status"] != "not_judged" or not p["accepted"])
    ]
    assert not wrong, "the gate misjudged:\n" + "\n".join(wrong)
    if len(unjudged) == len(rows):
        pytest.skip(message)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_gate_judges_every_patch_of_the_suite(kind: str) -> None:
    _check(_suite(()), kind)


@pytest.mark.parametrize("kind", KINDS)
def test_gate_judges_a_representative_subset(kind: str) -> None:
    _check(_suite(SUBSET), kind)
