"""The mutation repair rung on its own suite: `cascade fix` with a one-rung ladder (`repair/mutate`:
fault localisation at the base commit, then AST mutations of the most suspicious statements, no
model) on each small bug of benchmarks/tasks/repair/, then each verified patch judged against the
task's hidden tests, which cascade never sees. Reports how many tasks it repaired (the gate passed:
plausible), how many correctly (the hidden tests pass too) and how many it overfit; how often the
localisation put the buggy function and line in its top 1/3/5; the time per task.
Writes results/repair.{json,md}.

    python benchmarks/repair.py [--backend docker|local] [--only RPR-01,RPR-05] [--jobs 1]
        [--timeout 900] [--keep DIR] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "benchmarks" / "tasks" / "repair"
RESULTS = ROOT / "benchmarks" / "results"
MODEL = "repair/mutate"
TOPS = (1, 3, 5)
GIT_IDENTITY = ("-c", "user.name=cascade-bench", "-c", "user.email=bench@localhost")
# The venv's tools: cascade's console script, and the interpreter the hidden tests run with.
BIN = ROOT / ".venv" / "bin" if (ROOT / ".venv" / "bin").is_dir() else Path(sys.executable).parent
PYTHON = BIN / "python" if (BIN / "python").exists() else Path(sys.executable)
sys.path.insert(0, str(ROOT))  # a script in the checkout: the project's JUnit reader beside it

from evaluators.junit import JunitError, parse_junit  # noqa: E402


@dataclass(frozen=True)
class Task:
    id: str
    dir: Path
    truth: dict[str, Any]

    @property
    def repo(self) -> Path:
        return self.dir / "repo"


def load_tasks(only: Sequence[str]) -> list[Task]:
    tasks = [
        Task(d.name, d, json.loads((d / "truth.json").read_text(encoding="utf-8")))
        for d in sorted(SUITE.glob("RPR-*"))
        if d.is_dir() and (not only or d.name in only)
    ]
    missing = set(only) - {t.id for t in tasks}
    if missing:
        raise SystemExit(f"no such task(s) under {SUITE}: {', '.join(sorted(missing))}")
    return tasks


def config_text(backend: str) -> str:
    """The one-rung ladder and the gate. The local sandbox runs the project with this venv's
    Python, which has pytest and ruff; Docker's image brings its own."""
    text = (
        f'[[ladder]]\nname = "repair"\nmodel = "{MODEL}"\n\n'
        '[gate]\nevaluators = ["diff_scope", "ruff", "pytest"]\n\n'
        f'[sandbox]\nbackend = "{backend}"\n'
    )
    if backend == "local":
        text += f"\n[sandbox.options]\npython = {json.dumps(str(PYTHON))}\n"
    return text


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *GIT_IDENTITY, *args], cwd=repo, check=True, capture_output=True)


def checkout(task: Task, dest: Path, backend: str) -> Path:
    """The task's base repository as a user's checkout holds it: the issue under .cascade/issues,
    cascade.toml at the root, one commit. The hidden tests stay out."""
    shutil.copytree(task.repo, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    issues = dest / ".cascade" / "issues"
    issues.mkdir(parents=True)
    shutil.copyfile(task.dir / "issue.md", issues / f"{task.id}.md")
    (dest / "cascade.toml").write_text(config_text(backend), encoding="utf-8")
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", f"{task.id}: base")
    return dest


def fix(task: Task, repo: Path, timeout: float) -> dict[str, Any]:
    """One `cascade fix --json`, timed; its outcome, or why there is none."""
    argv = [str(BIN / "cascade"), "fix", task.id, "--repo", str(repo), "--json"]
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    started = time.perf_counter()
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
        code, stdout, stderr = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        code, stdout = None, _text(exc.stdout)
        stderr = _text(exc.stderr) + f"\n(killed after {timeout:g} s)"
    wall = time.perf_counter() - started
    try:
        outcome = json.loads(stdout)
    except json.JSONDecodeError:
        outcome = None
    if not isinstance(outcome, dict):
        outcome = {}
    return {"exit": code, "seconds": round(wall, 3), "outcome": outcome,
            "stderr_tail": stderr.strip().splitlines()[-8:]}  # fmt: skip


def _text(out: str | bytes | None) -> str:
    return out.decode(errors="replace") if isinstance(out, bytes) else (out or "")


def judge(task: Task, patch: str, dest: Path) -> dict[str, Any]:
    """The patch on a fresh copy of the base with the hidden tests added: correct when every test,
    visible and hidden, passes."""
    shutil.copytree(task.repo, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "base")
    (dest.parent / "verified.patch").write_text(patch, encoding="utf-8")
    applied = subprocess.run(["git", "apply", str(dest.parent / "verified.patch")], cwd=dest,
                             capture_output=True, text=True, check=False)  # fmt: skip
    if applied.returncode:
        return {"correct": False, "applied": False, "why": applied.stderr.strip()[-500:]}
    shutil.copytree(task.dir / "hidden", dest, dirs_exist_ok=True)
    report = dest.parent / "hidden-junit.xml"
    argv = [str(PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider",
            "-o", "junit_family=xunit1", f"--junitxml={report}"]  # fmt: skip
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(argv, cwd=dest, capture_output=True, text=True, env=env, check=False)
    failed = _failed_tests(report) if report.is_file() else ["(no JUnit report)"]
    return {"correct": done.returncode == 0 and not failed, "applied": True, "failed": failed,
            "exit": done.returncode}  # fmt: skip


def _failed_tests(report: Path) -> list[str]:
    try:
        results = parse_junit(report.read_text(encoding="utf-8"))
    except JunitError as exc:
        return [f"(unreadable JUnit report: {exc})"]
    return sorted(node for node, r in results.items() if r.outcome in ("failed", "error"))


def _records(run_dir: Path) -> list[dict[str, Any]]:
    """attempts.jsonl, one JSON object a line; a line that does not parse is skipped."""
    path = run_dir / "attempts.jsonl"
    records = []
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _blob(run_dir: Path, digest: Any) -> Any:
    """A JSON blob of the run folder, or None when the digest or the blob is missing or bad."""
    if not isinstance(digest, str) or not digest:
        return None
    try:
        return json.loads((run_dir / "blobs" / digest).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _rank(entries: Any, match: Callable[[dict[str, Any]], bool]) -> int | None:
    ranks = [e["rank"] for e in entries or () if isinstance(e, dict) and match(e)
             if isinstance(e.get("rank"), int)]  # fmt: skip
    return min(ranks) if ranks else None


def localisation(
    records: Iterable[dict[str, Any]], run_dir: Path, truth: dict[str, Any]
) -> dict[str, Any]:
    """Where the first localisation of the run put the bug: the rank of the truth's function and
    line (pessimistic over ties, as cascade ranks them), None when it is not listed."""
    found = next((r["localisation_sha256"] for r in records if r.get("localisation_sha256")), "")
    blob = _blob(run_dir, found)
    if not isinstance(blob, dict):
        return {"localised": False, "function_rank": None, "line_rank": None}
    path, name, line = truth["path"], truth["function"], truth["line"]
    return {
        "localised": True,
        "function_rank": _rank(blob.get("functions"),
                               lambda e: e.get("path") == path and e.get("name") == name),
        "line_rank": _rank(blob.get("statements"),
                           lambda e: e.get("path") == path and e.get("line") == line),
        "sha256": found,
    }  # fmt: skip


def candidates(records: Iterable[dict[str, Any]], run_dir: Path) -> dict[str, Any]:
    """The mutants the rung tried (over all its attempts) and the operator of the first one that
    passed in the verified attempt (else in any attempt)."""
    tried, winner, first_passed, seen = 0, None, None, False
    for record in records:
        if record.get("model") != MODEL:
            continue
        blob = _blob(run_dir, record.get("candidates_sha256"))
        entries = blob.get("tried") if isinstance(blob, dict) else None
        if not isinstance(entries, list):
            continue
        seen = True
        tried += len(entries)
        passed = next((e for e in entries if isinstance(e, dict) and e.get("result") == "passed"),
                      None)  # fmt: skip
        if passed and first_passed is None:
            first_passed = passed
        if passed and record.get("status") == "verified" and winner is None:
            winner = passed
    chosen = winner or first_passed
    return {
        "candidates": tried if seen else None,
        "operator": chosen.get("operator") if chosen else None,
        "operator_at": f"{chosen.get('path')}:{chosen.get('line')}" if chosen else None,
        "change": f"{chosen.get('before')} -> {chosen.get('after')}" if chosen else None,
        "operator_verified": winner is not None,
    }


def run_task(task: Task, args: argparse.Namespace) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": task.id, "kind": task.truth.get("kind"),
        "mutation_fixable": task.truth.get("mutation_fixable"),
        "overfit_trap": task.truth.get("overfit_trap", False),
    }  # fmt: skip
    tmp = tempfile.mkdtemp(prefix=f"cascade-repair-{task.id}-")
    try:
        repo = checkout(task, Path(tmp) / "repo", args.backend)
        run = fix(task, repo, args.timeout)
        outcome = run["outcome"]
        status = outcome.get("status")
        run_dir = repo / outcome["run_dir"] if outcome.get("run_dir") else None  # absolute as is
        row.update({
            "status": status or "error", "exit": run["exit"], "seconds": run["seconds"],
            "cost_usd": outcome.get("cost_usd"), "verified_rung": outcome.get("verified_rung"),
            "attempts": outcome.get("attempts"), "error": outcome.get("error", ""),
        })  # fmt: skip
        if not status:
            row["error"] = " | ".join(run["stderr_tail"]) or f"no outcome (exit {run['exit']})"
        records = _records(run_dir) if run_dir else []
        row.update(localisation(records, run_dir, task.truth) if run_dir else
                   {"localised": False, "function_rank": None, "line_rank": None})  # fmt: skip
        row.update(candidates(records, run_dir) if run_dir else
                   {"candidates": None, "operator": None, "operator_at": None, "change": None,
                    "operator_verified": False})  # fmt: skip
        row["correct"] = None
        patch = run_dir / "patch.diff" if run_dir else None
        if status == "verified" and patch and patch.is_file():
            row["hidden"] = judge(task, patch.read_text(encoding="utf-8"), Path(tmp) / "judge")
            row["correct"] = row["hidden"]["correct"]
        elif status == "verified":
            row["hidden"] = {"correct": False, "applied": False, "why": "no patch.diff"}
        row["verdict"] = _verdict(row)
        if args.keep and run_dir and run_dir.is_dir():
            shutil.copytree(run_dir, args.keep / task.id / run_dir.name, dirs_exist_ok=True)
    except Exception as exc:  # one broken task is a row, never the end of the benchmark
        row.update({"status": "error", "verdict": "error", "error": f"{type(exc).__name__}: {exc}"})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return row


def _verdict(row: dict[str, Any]) -> str:
    """correct / overfit (verified, a test fails with the hidden tests in) / unjudged (verified,
    but its patch is missing or does not apply to the base) / failed (no verified patch) / error
    (no outcome, or cascade's run ended in an error)."""
    if row["status"] == "verified":
        if not row.get("hidden", {}).get("applied"):
            return "unjudged"
        return "correct" if row["correct"] else "overfit"
    return "error" if row["status"] == "error" else "failed"


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)

    def count(verdict: str, among: Iterable[dict[str, Any]] = rows) -> int:
        return sum(r.get("verdict") == verdict for r in among)

    def frac(k: int, of: int) -> float | None:
        return round(k / of, 3) if of else None

    repaired = [r for r in rows if r.get("status") == "verified"]
    unfixable = [r for r in rows if r.get("mutation_fixable") is False]
    traps = [r for r in rows if r.get("overfit_trap")]
    localised = [r for r in rows if r.get("localised")]
    seconds = [r["seconds"] for r in rows if isinstance(r.get("seconds"), int | float)]
    fixed_s = [r["seconds"] for r in repaired if isinstance(r.get("seconds"), int | float)]
    top = {
        f"{what}_top{k}": sum(
            isinstance(r.get(f"{what}_rank"), int) and r[f"{what}_rank"] <= k for r in localised
        )
        for what in ("function", "line")
        for k in TOPS
    }
    return {
        "n": n, "repaired": len(repaired), "repaired_fraction": frac(len(repaired), n),
        "correct": count("correct"), "correct_fraction": frac(count("correct"), n),
        "overfit": count("overfit"), "unjudged": count("unjudged"), "failed": count("failed"),
        "errors": count("error"),
        "not_mutation_fixable": {"n": len(unfixable), "failed_honestly": count("failed", unfixable),
                                 "fixed": sum(r.get("status") == "verified" for r in unfixable),
                                 "overfit": count("overfit", unfixable),
                                 "errors": count("error", unfixable)},
        "overfit_traps": {"n": len(traps), "correct": count("correct", traps),
                          "overfit": count("overfit", traps), "failed": count("failed", traps)},
        "seconds": {"p50": percentile(seconds, 50), "p95": percentile(seconds, 95),
                    "total": round(sum(seconds), 3)},
        "seconds_repaired": {"p50": percentile(fixed_s, 50), "p95": percentile(fixed_s, 95)},
        "localisation": {"localised": len(localised), **top,
                         **{f"{key}_fraction": frac(v, len(localised)) for key, v in top.items()}},
    }  # fmt: skip


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value).replace("|", "\\|")


def render(result: dict[str, Any]) -> str:
    s, m, code = result["summary"], result["machine"], result["code"]
    loc = s["localisation"]

    def of(k: int, n: int) -> str:
        return f"{k}/{n}" + (f" ({k / n:.0%})" if n else "")

    unfix, traps = s["not_mutation_fixable"], s["overfit_traps"]
    lines = [
        "# The mutation repair rung (`repair/mutate`) on the repair suite", "",
        f"{result['when']} · {m['platform']} · {m['cpus']} CPUs · code `{code['revision']}`"
        f"{' (with uncommitted changes)' if code['dirty'] else ''} · sandbox "
        f"`{result['parameters']['backend']}`", "",
        f"- tasks: {s['n']}",
        f"- repaired (plausible: the gate passed): {of(s['repaired'], s['n'])}",
        f"- correct (the hidden tests pass too): {of(s['correct'], s['n'])}",
        f"- overfit (verified, a hidden test fails): {s['overfit']}"
        + (f"; verified but unjudged (no patch, or it does not apply): {s['unjudged']}"
           if s["unjudged"] else ""),
        f"- no verified patch: {s['failed']}; errors (no outcome, or the run errored): "
        f"{s['errors']}",
        f"- not mutation-fixable ({unfix['n']}): failed honestly {unfix['failed_honestly']}, "
        f"verified anyway {unfix['fixed']} (of which overfit {unfix['overfit']}), errors "
        f"{unfix['errors']}",
        f"- overfit traps ({traps['n']}): correct {traps['correct']}, overfit {traps['overfit']}, "
        f"failed {traps['failed']}",
        f"- time per task: p50 {_cell(s['seconds']['p50'])} s, p95 {_cell(s['seconds']['p95'])} s;"
        f" repaired ones: p50 {_cell(s['seconds_repaired']['p50'])} s, p95 "
        f"{_cell(s['seconds_repaired']['p95'])} s",
        f"- localisation (of {loc['localised']} tasks localised): function top-1/3/5 "
        + " / ".join(str(loc[f"function_top{k}"]) for k in TOPS)
        + "; line top-1/3/5 " + " / ".join(str(loc[f"line_top{k}"]) for k in TOPS), "",
        "| task | kind | fixable | trap | status | verdict | seconds | candidates | operator | "
        "function rank | line rank |",
        "|---|---|---|---|---|---|---:|---:|---|---:|---:|",
    ]  # fmt: skip
    for r in result["rows"]:
        cells = (r["id"], r.get("kind"), r.get("mutation_fixable"), r.get("overfit_trap"),
                 r.get("status"), r.get("verdict"), r.get("seconds"), r.get("candidates"),
                 r.get("operator"), r.get("function_rank"), r.get("line_rank"))  # fmt: skip
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    errors = [r for r in result["rows"] if r.get("error")]
    if errors:
        lines += ["", "## Errors", ""]
        lines += [f"- {r['id']} (exit {_cell(r.get('exit'))}): {r['error'][:400]}" for r in errors]
    lines += [
        "", "## How measured", "",
        "Each task's base repository (benchmarks/tasks/repair/<ID>/repo) is copied into a fresh "
        "git repository with its issue in `.cascade/issues/` and a `cascade.toml` whose ladder "
        f"is the one rung `{MODEL}` and whose gate is diff_scope, ruff and pytest; one commit. "
        "`cascade fix <ID> --repo <dir> --json` runs there and is timed wall-clock. A verified "
        "patch (`patch.diff` of the run folder) is applied with `git apply` to another fresh "
        "copy, the task's hidden tests (never given to cascade) are copied in, and the whole "
        "suite runs with `python -m pytest`: all pass = correct, else overfit. Localisation ranks "
        "are read from the run's first `localisation_sha256` blob (pessimistic over ties), "
        "candidates from each repair attempt's `candidates_sha256` blob; a field the run does "
        "not write is shown as —.", "",
        "```", result["command"], "```", "",
    ]  # fmt: skip
    return "\n".join(lines)


def describe_code() -> dict[str, Any]:
    def out(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                              check=False)  # fmt: skip
        return done.stdout.strip()

    return {"dir": str(ROOT), "revision": out("rev-parse", "--short", "HEAD") or "(no git)",
            "commit": out("rev-parse", "HEAD"),
            "dirty": bool(out("status", "--porcelain", "--untracked-files=no")),
            "cascade": str(BIN / "cascade")}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--backend", choices=("docker", "local"), default="docker")
    parser.add_argument("--only", default="", help="comma-separated task ids (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="tasks run at once")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per cascade fix")
    parser.add_argument("--keep", type=Path, help="copy each run folder under this folder")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the results folder")
    args = parser.parse_args()
    tasks = load_tasks([t.strip() for t in args.only.split(",") if t.strip()])
    started = time.perf_counter()

    def one(task: Task) -> dict[str, Any]:
        row = run_task(task, args)
        print(f"{task.id}: {row.get('status')} -> {row.get('verdict')} in "
              f"{_cell(row.get('seconds'))} s, candidates {_cell(row.get('candidates'))}, "
              f"operator {_cell(row.get('operator'))}, ranks function "
              f"{_cell(row.get('function_rank'))} line {_cell(row.get('line_rank'))}"
              + (f" — {row['error'][:160]}" if row.get("error") else ""),
              file=sys.stderr, flush=True)  # fmt: skip
        return row

    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        rows = list(pool.map(one, tasks))
    summary = summarize(rows)
    command = " ".join(["LITELLM_LOCAL_MODEL_COST_MAP=True", ".venv/bin/python",
                        "benchmarks/repair.py", *map(shlex.quote, sys.argv[1:])])  # fmt: skip
    result = {
        "schema_version": 1, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count() or 0,
                    "python": platform.python_version()},
        "code": describe_code(), "command": command,
        "parameters": {"backend": args.backend, "jobs": args.jobs, "timeout": args.timeout,
                       "model": MODEL, "tasks": [t.id for t in tasks],
                       "config": config_text(args.backend)},
        "wall_s": round(time.perf_counter() - started, 3),
        "summary": summary, "rows": rows,
    }  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    text = render(result)
    (args.out / "repair.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (args.out / "repair.md").write_text(text, encoding="utf-8")
    print(text)
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
