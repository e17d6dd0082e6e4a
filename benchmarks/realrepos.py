"""The real-repositories benchmark (issue 16): small pure-Python libraries from PyPI at pinned
versions, each with an injected bug, a hidden test and scripted patches (the fix, one that does
nothing, a wrong fix, one that tampers with the test run), each judged the way a user's
`cascade fix` is: the engine, a scripted model answering with the patch, the Docker sandbox and
the gate (diff_scope, ruff, mypy, pytest) from the task repository's own cascade.toml. Scores the
verdict against the expected one: false accepts, false rejects, infrastructure errors, time.
Writes results/realrepos.{json,md}; exits 1 on a false accept, a false reject or an
infrastructure error on a correct patch.

    python benchmarks/realrepos.py [--only TASK|LIBRARY] [--sandbox docker|local] [--out DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # a script in the checkout: use this checkout's packages

import anyio  # noqa: E402

from benchmarks.realrepos_report import (  # noqa: E402
    RunResult,
    TaskResult,
    Verdict,
    judge,
    markdown,
    summarize,
    verdict_of,
)
from benchmarks.realrepos_suite import (  # noqa: E402
    PYTEST_TIMEOUT,
    RUNG,
    PatchSpec,
    RealTask,
    build,
)
from benchmarks.realrepos_tasks import TASKS_ONE  # noqa: E402
from benchmarks.realrepos_tasks_more import TASKS_TWO  # noqa: E402
from cascade.proof.run_folder import RunFolder  # noqa: E402
from cascade.records import Attempt, Issue  # noqa: E402
from cascade.testing import ScriptedModel  # noqa: E402
from cascade.wiring.run_issue import IssueRunner, RunFlags, load_for_run  # noqa: E402

TASKS: tuple[RealTask, ...] = (*TASKS_ONE, *TASKS_TWO)
RESULTS = ROOT / "benchmarks" / "results"
Progress = Callable[[str], None]


def choose(tasks: Sequence[RealTask], only: Sequence[str]) -> list[RealTask]:
    """The tasks named by id or library (case-insensitive); all when `only` is empty."""
    wanted = {name.lower() for name in only}
    chosen = [t for t in tasks if not wanted or {t.id.lower(), t.library.name.lower()} & wanted]
    known = {t.id.lower() for t in tasks} | {t.library.name.lower() for t in tasks}
    unknown = sorted(wanted - known)
    if unknown:
        raise ValueError(f"no task or library named {', '.join(unknown)}")
    return chosen


async def run_patch(
    runner: IssueRunner, issue: Issue, spec: PatchSpec
) -> tuple[str, str, tuple[Attempt, ...], str]:
    """One `cascade fix` of the issue whose model answers with this patch: (the engine's
    outcome status, its error, the attempt records, the run id). The runner's gate is shared,
    so its baseline cache serves every patch after the first, as in a batch."""
    answer = spec.answer()
    # Keyed by (task, attempt): a retry after an infrastructure fault gets the same answer.
    model = ScriptedModel(RUNG, answers={(issue.id, 1): answer}, sequence=(answer,))
    parts = dataclasses.replace(runner.parts, models={RUNG: model})
    own = IssueRunner(parts, runner.repo, runner.commit, runner.runs_dir, runner.signer)
    run = own.new_run()
    outcome = await run(issue)
    return outcome.status, outcome.error, RunFolder(Path(outcome.run_dir)).attempts(), run.run_id


async def run_task(
    task: RealTask, workdir: Path, *, backend: str, pytest_timeout: float, progress: Progress
) -> TaskResult:
    """Build the task's repository, then run each of its patches; a failure to build (download,
    unpacking, git) makes every run of the task an infrastructure error."""
    started = time.perf_counter()
    try:
        built = build(task, workdir / task.id, backend=backend, pytest_timeout=pytest_timeout)
    except Exception as exc:
        why = f"could not build the task: {type(exc).__name__}: {exc}"
        progress(f"{task.id}: {why}")
        runs = tuple(_failed(task, spec, why) for spec in task.patches)
        return _task_result(task, runs, build_s=time.perf_counter() - started, error=why)
    build_s = time.perf_counter() - started
    progress(f"{task.id}: built {task.library.pin} at {built.commit[:10]} in {build_s:.1f} s")
    try:  # one runner (one gate, one baseline cache) for every patch of the task
        loaded = load_for_run(built.repo, RunFlags())
        runner = IssueRunner.prepare(loaded, built.repo, runs_dir=workdir / "runs" / task.id)
        issue = runner.read_issue(task.id)
    except Exception as exc:
        why = f"could not prepare the run: {type(exc).__name__}: {exc}"
        progress(f"{task.id}: {why}")
        runs = tuple(_failed(task, spec, why) for spec in task.patches)
        return _task_result(task, runs, build_s=build_s, error=why)
    runs = tuple([await _judged(runner, issue, task, spec, progress) for spec in task.patches])
    return _task_result(task, runs, build_s=build_s, total_s=time.perf_counter() - started)


async def _judged(
    runner: IssueRunner, issue: Issue, task: RealTask, spec: PatchSpec, progress: Progress
) -> RunResult:
    started = time.perf_counter()
    try:
        status, error, attempts, run_id = await run_patch(runner, issue, spec)
    except Exception as exc:
        result = _failed(task, spec, f"the harness failed: {type(exc).__name__}: {exc}")
        result = result.model_copy(update={"time_s": round(time.perf_counter() - started, 2)})
    else:
        verdict, rejected_by, rules, why = verdict_of(status, error, attempts)
        status_, judged_why = judge(spec.expect, verdict, rejected_by, spec.by)
        result = RunResult(
            task=task.id,
            library=task.library.pin,
            situation=task.situation,
            patch=spec.name,
            kind=spec.kind,
            expect=spec.expect,
            by=spec.by,
            verdict=verdict,
            status=status_,
            why="; ".join(w for w in (judged_why, why) if w),
            rejected_by=rejected_by,
            rules=rules,
            outcome=status,
            run_id=run_id,
            time_s=round(time.perf_counter() - started, 2),
        )
    progress(_line(result))
    return result


def _failed(task: RealTask, spec: PatchSpec, why: str) -> RunResult:
    verdict: Verdict = "error"
    return RunResult(
        task=task.id, library=task.library.pin, situation=task.situation, patch=spec.name,
        kind=spec.kind, expect=spec.expect, by=spec.by, verdict=verdict, status="infra_error",
        why=why, outcome="", time_s=0.0,
    )  # fmt: skip


def _task_result(
    task: RealTask,
    runs: tuple[RunResult, ...],
    *,
    build_s: float,
    total_s: float | None = None,
    error: str = "",
) -> TaskResult:
    return TaskResult(
        task=task.id,
        library=task.library.pin,
        sha256=task.library.sha256,
        situation=task.situation,
        note=task.note,
        build_s=round(build_s, 2),
        time_s=round(total_s if total_s is not None else build_s, 2),
        runs=runs,
        error=error,
    )


def _line(r: RunResult) -> str:
    said = r.verdict + (f" by {r.rejected_by}" if r.rejected_by else "")
    flag = "" if r.status == "ok" else f"  <-- {r.status.upper()}"
    why = f" ({r.why[:160]})" if r.why and r.status != "ok" else ""
    return (
        f"  {r.task:7} {r.patch:20} expect {r.expect:8} got {said:24} {r.time_s:7.1f} s{flag}{why}"
    )


async def run_suite(
    tasks: Sequence[RealTask],
    *,
    backend: str = "docker",
    pytest_timeout: float = PYTEST_TIMEOUT,
    workdir: Path | None = None,
    progress: Progress = lambda _line: None,
) -> dict[str, object]:
    """Every chosen task, one after another (each run already uses the sandbox's cores)."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cascade-realrepos-") as tmp:
        where = workdir or Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        results = [
            await run_task(t, where, backend=backend, pytest_timeout=pytest_timeout,
                           progress=progress)
            for t in tasks
        ]  # fmt: skip
    machine = {"platform": platform.platform(), "python": platform.python_version()}
    return summarize(
        results, backend=backend, machine=machine, wall_s=time.perf_counter() - started
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0].replace("\n", " "),
        epilog="Tasks: " + ", ".join(f"{t.id} ({t.library.name}, {t.situation})" for t in TASKS),
    )
    parser.add_argument("--only", action="append", default=[], metavar="NAME",
                        help="run only this task id or library (repeatable)")  # fmt: skip
    parser.add_argument("--sandbox", choices=("docker", "local"), default="docker")
    parser.add_argument("--pytest-timeout", type=float, default=PYTEST_TIMEOUT,
                        help="seconds per pytest run in each task's gate")  # fmt: skip
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="keep the repositories and proofs here")  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for realrepos.json/.md")
    args = parser.parse_args(argv)
    # litellm fetches its price map over the network at import unless told not to (TRAPS.md).
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        tasks = choose(TASKS, args.only)
    except ValueError as exc:
        parser.error(str(exc))

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    result = anyio.run(
        lambda: run_suite(
            tasks,
            backend=args.sandbox,
            pytest_timeout=args.pytest_timeout,
            workdir=args.keep.resolve() if args.keep else None,
            progress=progress,
        )
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "realrepos.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (args.out / "realrepos.md").write_text(text)
    print(text)
    totals = result["totals"]
    assert isinstance(totals, dict)
    failed = totals["false_accepts"] or totals["false_rejects"] or totals["infra_errors_on_correct"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
