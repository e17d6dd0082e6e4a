"""Rung zero (issue #20), through `cascade fix` in Docker: fault localisation once a task has a
visible proving test (kept across runs, a blob in every fix attempt's record, leading every
prompt), and the `repair/mutate` rung — mutations of the most suspicious statements run against
the proving tests, the first that passes them without breaking another test gated and proven like
any model's patch, at $0. A task with no visible proving test, or no localisation, never runs the
rung: the record says why and the ladder climbs. A candidate the gate rejects (an overfit that
only the hidden tests catch) is not handed out again: the rung's next attempt goes on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cascade.testing import make_repo

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker_engine")]

CASCADE = [sys.executable, "-m", "cascade"]
AGES = """\
def clamp(x, lo, hi):
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


def is_adult(age):
    return age > 18
"""
AGE_TESTS = """\
from ages import clamp, is_adult


def test_clamp():
    assert clamp(5, 0, 3) == 3
    assert clamp(-1, 0, 3) == 0
    assert clamp(2, 0, 3) == 2


def test_older_is_adult():
    assert is_adult(30)


def test_child_is_not():
    assert not is_adult(9)


def test_eighteen_is_adult():
    assert is_adult(18)
"""
PROVING = "tests/test_ages.py::test_eighteen_is_adult"


def config(ladder: str, extra: str = "") -> str:
    return f'{ladder}\n[gate]\nevaluators = ["diff_scope", "pytest"]\n{extra}'


REPAIR = '[[ladder]]\nname = "repair"\nmodel = "repair/mutate"\n'


def issue(tests: list[str], hidden: list[str] | None = None, issue_id: str = "AGE-1") -> str:
    front = {"id": issue_id, "title": "is_adult is wrong at 18", "tests": tests}
    if hidden:
        front["hidden_tests"] = hidden
    return f"---\n{json.dumps(front)}\n---\n\nSomeone of exactly 18 is an adult.\n"


def repo_with(tmp_path: Path, files: dict[str, str], cfg: str, text: str) -> Path:
    return make_repo(
        tmp_path / "repo",
        {**files, "cascade.toml": cfg, ".cascade/issues/AGE-1.md": text},
    )


def fix(repo: Path, issue_id: str = "AGE-1") -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run(
        [*CASCADE, "fix", issue_id, "--repo", str(repo), "--json"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.stdout, done.stderr
    outcome = json.loads(done.stdout)
    run_dir = Path(outcome["run_dir"])
    records = [json.loads(line) for line in (run_dir / "attempts.jsonl").read_text().splitlines()]
    return outcome, records, done.stderr


def blob(outcome: dict[str, Any], digest: str) -> Any:
    return json.loads((Path(outcome["run_dir"]) / "blobs" / digest).read_text())


def verifies(outcome: dict[str, Any]) -> None:
    checked = subprocess.run(
        [*CASCADE, "proof", "verify", outcome["run_dir"]],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_one_token_bug_is_repaired_at_no_cost_and_proven(tmp_path: Path) -> None:
    files = {"ages.py": AGES, "tests/test_ages.py": AGE_TESTS}
    repo = repo_with(tmp_path, files, config(REPAIR), issue([PROVING]))
    outcome, records, _ = fix(repo)

    assert outcome["status"] == "verified", outcome
    assert outcome["verified_rung"] == "repair"
    assert outcome["cost_usd"] == 0
    diff = (Path(outcome["run_dir"]) / "patch.diff").read_text()
    assert "-    return age > 18\n+    return age >= 18\n" in diff
    verifies(outcome)
    [record] = records
    assert record["model"] == "repair/mutate" and record["cost_usd"] == 0
    tried = blob(outcome, record["candidates_sha256"])["tried"]
    assert tried[-1]["result"] == "passed"
    assert (tried[-1]["operator"], tried[-1]["line"]) == ("compare_op", 10)
    assert all(t["result"] != "passed" for t in tried[:-1])
    # the localisation it searched is in the proof, the buggy function first
    ranked = blob(outcome, record["localisation_sha256"])
    assert ranked["functions"][0]["name"] == "is_adult"
    assert ranked["functions"][0]["rank"] == 1
    assert ranked["failing"] == 1 and ranked["passing"] == 3
    assert record["localised"][0] == "ages.py::is_adult"


def test_no_visible_proving_test_never_runs_the_rung(tmp_path: Path) -> None:
    """The only failing test is hidden: no localisation (it would point a model at what the
    hidden test runs), the repair rung is passed over with the reason, the ladder climbs."""
    hidden = "tests/test_hidden_ages.py"
    files = {
        "ages.py": AGES,
        "tests/test_ages.py": AGE_TESTS.split("\n\ndef test_eighteen", maxsplit=1)[0] + "\n",
        f".cascade/hidden/{hidden}": "from ages import is_adult\n\n\n"
        "def test_eighteen():\n    assert is_adult(18)\n",
    }
    repo = repo_with(tmp_path, files, config(REPAIR), issue([], [f"{hidden}::test_eighteen"]))
    outcome, records, stderr = fix(repo)

    assert outcome["status"] == "exhausted", outcome
    assert records == []  # nothing was tried, so nothing was recorded
    said = "passed over 'repair': a search rung needs a visible proving test"
    assert said in outcome["stop_reason"] and said in stderr


def test_a_bug_no_mutation_fixes_is_recorded_and_the_ladder_climbs(tmp_path: Path) -> None:
    """`return lo` where `hi` was meant: no operator fixes it. The repair attempt records what
    it tried; the next rung's prompt leads with the localisation."""
    wrong = AGES.replace("        return hi\n", "        return lo\n").replace(
        "age > 18", "age >= 18"
    )
    right = (
        "hi, not lo.\n\nages.py\n<<<<<<< SEARCH\n    if x > hi:\n        return lo\n=======\n"
        "    if x > hi:\n        return hi\n>>>>>>> REPLACE\n"
    )
    tape = {"task": "AGE-1", "model": "replay/cheap", "attempt": 1, "content": right}
    cheap = '[[ladder]]\nname = "cheap"\nmodel = "replay/cheap"\ncassette = "tape.jsonl"\n'
    files = {"ages.py": wrong, "tests/test_ages.py": AGE_TESTS, "tape.jsonl": json.dumps(tape)}
    repo = repo_with(tmp_path, files, config(REPAIR + cheap), issue(["tests/test_ages.py"]))
    outcome, records, _ = fix(repo)

    assert outcome["status"] == "verified" and outcome["verified_rung"] == "cheap", outcome
    first, second = records
    assert first["status"] == "empty_patch"
    assert "none of" in first["error"] and "candidates passed" in first["error"]
    tried = blob(outcome, first["candidates_sha256"])["tried"]
    assert tried and all(t["result"] != "passed" for t in tried)
    assert second["localisation_sha256"] == first["localisation_sha256"]
    prompt = json.dumps(blob(outcome, second["prompt_sha256"]))
    assert "Where the failing tests point" in prompt
    assert ">>" in prompt and "ages.py::clamp" in prompt
    verifies(outcome)


def test_an_overfit_the_gate_rejects_is_not_handed_out_again(tmp_path: Path) -> None:
    """The visible test only asks for 90 to be an A; hidden tests catch `<` and `<=`, which
    pass it. Each rejected candidate is skipped by the next attempt, which goes on to the fix."""
    grades = 'def grade(score):\n    if score >= 91:\n        return "A"\n    return "B"\n'
    visible = (
        'from grades import grade\n\n\ndef test_ninety_is_an_a():\n    assert grade(90) == "A"\n'
    )
    hidden = "tests/test_hidden_grades.py"
    strict = (
        "from grades import grade\n\n\ndef test_bands():\n"
        '    assert grade(50) == "B"\n    assert grade(95) == "A"\n'
    )
    files = {
        "grades.py": grades,
        "tests/test_grades.py": visible,
        f".cascade/hidden/{hidden}": strict,
    }
    ladder = REPAIR + "attempts = 4\n"
    text = issue(["tests/test_grades.py::test_ninety_is_an_a"], [f"{hidden}::test_bands"])
    repo = repo_with(tmp_path, files, config(ladder), text)
    outcome, records, _ = fix(repo)

    assert outcome["status"] == "verified", outcome
    assert [r["status"] for r in records][-1] == "verified"
    assert all(r["status"] == "rejected" for r in records[:-1]) and len(records) >= 2
    assert "score >= 90" in (Path(outcome["run_dir"]) / "patch.diff").read_text()
    handed: list[tuple[str, int]] = []
    for record in records:
        passed = [t for t in blob(outcome, record["candidates_sha256"])["tried"]
                  if t["result"] == "passed"]  # fmt: skip
        assert len(passed) == 1
        handed.append((passed[0]["after"], passed[0]["line"]))
    assert len(set(handed)) == len(handed)  # never the same candidate twice
    verifies(outcome)


def test_a_candidate_that_breaks_another_test_is_not_gated(tmp_path: Path) -> None:
    """`<` passes the proving test but fails a visible one that passed before: the search says
    so and goes on; only the right candidate reaches the gate."""
    grades = 'def grade(score):\n    if score >= 91:\n        return "A"\n    return "B"\n'
    visible = (
        "from grades import grade\n\n\ndef test_ninety_is_an_a():\n"
        '    assert grade(90) == "A"\n\n\ndef test_fifty_is_a_b():\n    assert grade(50) == "B"\n'
    )
    files = {"grades.py": grades, "tests/test_grades.py": visible}
    repo = repo_with(
        tmp_path, files, config(REPAIR), issue(["tests/test_grades.py::test_ninety_is_an_a"])
    )
    outcome, [record], _ = fix(repo)

    assert outcome["status"] == "verified", outcome
    tried = blob(outcome, record["candidates_sha256"])["tried"]
    broke = [t for t in tried if t["result"].startswith("broke")]
    assert broke and "tests/test_grades.py::test_fifty_is_a_b" in broke[0]["result"]
    assert tried[-1]["result"] == "passed" and tried[-1]["after"] == "90"


def test_localisation_that_cannot_be_measured_passes_the_rung_over(tmp_path: Path) -> None:
    files = {"ages.py": AGES, "tests/test_ages.py": AGE_TESTS}
    cfg = config(REPAIR, "[localise]\ntimeout = 0.001\n")
    repo = repo_with(tmp_path, files, cfg, issue([PROVING]))
    outcome, records, stderr = fix(repo)

    assert outcome["status"] == "exhausted" and records == [], outcome
    assert "no localisation" in stderr and "exceeded its cap" in stderr
    assert "needs the fault localisation" in outcome["stop_reason"]


def test_localisation_is_kept_across_runs(tmp_path: Path) -> None:
    files = {"ages.py": AGES, "tests/test_ages.py": AGE_TESTS}
    repo = repo_with(tmp_path, files, config(REPAIR), issue([PROVING]))
    first, [one], _ = fix(repo)
    second, [two], _ = fix(repo)

    assert one["localisation_sha256"] == two["localisation_sha256"]
    run = Path(first["run_dir"]).name
    assert f"kept by {run}" in " ".join(two["decision"]["notes"])
    assert second["status"] == "verified"


def test_a_candidate_that_never_ends_is_killed_and_the_search_goes_on(tmp_path: Path) -> None:
    """`i += 1` turned into `i -= 1` (or `i += 0`, or deleted) loops for ever: each is killed at
    `test_timeout`, and the search reaches the fix on the next line."""
    steps = (
        "def count_up(n):\n    i = 0\n    steps = 0\n    while i < n:\n        i += 1\n"
        "        steps += 2\n    return steps\n"
    )
    test = "from steps import count_up\n\n\ndef test_three():\n    assert count_up(3) == 3\n"
    files = {"steps.py": steps, "tests/test_steps.py": test}
    cfg = config(REPAIR, "[repair]\ntest_timeout = 1\n")
    repo = repo_with(tmp_path, files, cfg, issue(["tests/test_steps.py::test_three"]))
    outcome, [record], _ = fix(repo)

    assert outcome["status"] == "verified", outcome
    tried = blob(outcome, record["candidates_sha256"])["tried"]
    timed_out = [t for t in tried if t["result"] == "timeout"]
    assert len(timed_out) >= 2 and all(t["line"] == 5 for t in timed_out)
    assert all(t["seconds"] < 5 for t in timed_out)
    assert (tried[-1]["result"], tried[-1]["line"], tried[-1]["after"]) == ("passed", 6, "1")
    assert "+        steps += 1" in (Path(outcome["run_dir"]) / "patch.diff").read_text()


def test_a_batch_replay_runs_the_repair_rung(full_demo: Path, tmp_path: Path) -> None:
    """`cascade replay` limits each model's calls with a wrapper; the search rung still searches
    (DEMO-5, verified at $0) instead of turning into a provider fault."""
    issues = tmp_path / "issues"
    issues.mkdir()
    (issues / "DEMO-5.md").write_text((full_demo / ".cascade/issues/DEMO-5.md").read_text())
    out = tmp_path / "batch"
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    done = subprocess.run(
        [*CASCADE, "replay", str(issues), "--repo", str(full_demo), "--out", str(out), "--json"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["tasks"]["verified"] == 1 and report["cost"]["total_usd"] == 0
    assert report["rungs"]["repair"]["verified"] == 1
