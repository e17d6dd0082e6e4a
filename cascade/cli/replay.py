"""`cascade replay BACKLOG`: every issue of a backlog through the engine, N at a time, into a
resumable batch folder, then a report; `--shadow` adds a baseline ladder, and `--regate RUN_DIR`
re-judges recorded patches with the current gate. Sync at the edge; the batch runs in anyio.run."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cascade.cli.failures import reported, usage_error
from cascade.cli.options import SandboxOption, check_cost_cap
from cascade.cli.replay_cluster import (
    ExecutorOption,
    RayAddressOption,
    RayResourcesOption,
    cluster_plan,
    join_cluster,
)

if TYPE_CHECKING:  # imported lazily below, so `--help` does not load the engine
    from cascade.cli.batch_progress import BatchProgress
    from cascade.config import RungConfig
    from cascade.records import Issue
    from cascade.replay.cluster import Cluster
    from cascade.wiring.settings import LoadedConfig


def replay(  # noqa: PLR0917 - typer maps each parameter to a flag
    backlog: Annotated[
        Path | None,
        typer.Argument(
            help="A folder of issue files (*.md), a JSONL file of issues, or "
            "github:OWNER/NAME[?QUERY] (open issues; QUERY: a label or words of the title)."
        ),
    ] = None,
    repo: Annotated[Path, typer.Option(help="The repository checkout (its HEAD is the base).")] = (
        Path()
    ),
    config: Annotated[
        Path | None, typer.Option(help="A config file instead of cascade.toml.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="The batch folder (default .cascade/replay/<backlog>); re-run to resume."
        ),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Tasks in flight (default 1; with --executor ray, the slots the cluster offers).",
        ),
    ] = None,
    model_concurrency: Annotated[
        int | None, typer.Option(min=1, help="Model calls in flight (default: --concurrency).")
    ] = None,
    sandbox_concurrency: Annotated[
        int | None, typer.Option(min=1, help="Sandboxes open at once (default: --concurrency).")
    ] = None,
    max_cost_usd: Annotated[
        float | None,
        typer.Option(
            help="Start no new task once this much (US dollars, more than 0) is spent.",
        ),
    ] = None,
    sandbox: SandboxOption = None,
    record: Annotated[
        Path | None,
        typer.Option(help="Append every real model answer to this cassette file (main ladder)."),
    ] = None,
    cassette: Annotated[
        Path | None,
        typer.Option(help="Serve every rung from this recorded cassette: no model is called."),
    ] = None,
    shard: Annotated[
        str, typer.Option(help="Run shard i of n (1-based), a stable slice by issue id.")
    ] = "1/1",
    shadow: Annotated[
        str | None,
        typer.Option(
            help="Also run another ladder on the same tasks, for a baseline: 'strongest' (the "
            "last rung alone), 'all' (every rung alone, each its own batch: what `cascade "
            "report --ladders` projects other ladders from) or a TOML file of ladder rungs. "
            "Nothing is applied."
        ),
    ] = None,
    regate: Annotated[
        Path | None,
        typer.Option(
            help="Re-judge the recorded patches of this batch or run folder with the current "
            "gate; no model is called."
        ),
    ] = None,
    retry_errors: Annotated[
        bool,
        typer.Option(
            "--retry-errors",
            help="Also run again the tasks whose run ended in an infrastructure error (once "
            "its cause is fixed); the errored runs stay on record and their cost still counts.",
        ),
    ] = False,
    skip_bad_issues: Annotated[
        bool,
        typer.Option(
            "--skip-bad-issues",
            help="Run the issues that can be read and name each one that cannot (by default "
            "every unreadable issue is listed and nothing runs: exit 2).",
        ),
    ] = False,
    plan: Annotated[
        bool,
        typer.Option(
            "--plan",
            help="Run nothing: say each task's path (start rung, ceiling, proof) and the split "
            "by start rung, with the most the first calls can cost. No model, no sandbox.",
        ),
    ] = False,
    executor: ExecutorOption = "local",
    ray_address: RayAddressOption = None,
    ray_resources: RayResourcesOption = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='The batch\'s summary as one JSON object on stdout: {"out", "tasks": {total, '
            'verified, …}, "cost": {…}, "report": [paths], "errored": {…}, "shadows_usd": '
            '{shadow: spent}, "exit_code"}.',
        ),
    ] = False,
) -> None:
    """Replay a backlog: cheapest rung first for every issue, each run with its own proof.

    Resumable: after a kill, run the same command again (finished tasks are skipped; a task
    that ended in an infrastructure error is finished too, until --retry-errors runs it again).

    A report (report.md, report.json) is written into the batch folder.

    Exit codes: 0 the batch ran to its end, whatever the tasks' outcomes (a task whose ladder
    ran out without a verified patch is a result, not a failure); 1 stopped by --max-cost-usd
    with tasks not started (run again to go on); 2 usage or configuration error; 3 at least
    one task of this shard, or of its --shadow batch, ended in an infrastructure error
    (sandbox, provider auth, ...). 3 outranks 1: a stopped batch with an errored task exits 3.
    130 or 143: stopped by Ctrl-C or SIGTERM, once the sandboxes of the tasks in flight are
    removed.
    """
    request = ReplayRequest(
        backlog, repo, config, out, concurrency, model_concurrency, sandbox_concurrency,
        max_cost_usd, sandbox, record, cassette, shard, shadow, retry_errors, skip_bad_issues,
        as_json, plan, executor, ray_address, ray_resources,
    )  # fmt: skip
    with reported(f"interrupted: {RESUME}"):
        check_cost_cap(max_cost_usd)
        if regate is not None:
            from cascade.cli.regate import run_regate

            if backlog is not None:
                raise usage_error("--regate RUN_DIR takes no BACKLOG: it re-judges that folder")
            if executor != "local":
                raise usage_error("--regate runs on this machine: drop --executor")
            code = run_regate(regate, repo, config, sandbox, concurrency or 1)
        else:
            from cascade.cli.interrupt import Interrupted

            try:
                code = _replay(request)
            except Interrupted as exc:  # its sandboxes are gone; the message says so
                typer.echo(str(exc), err=True)
                code = exc.exit_code
    raise typer.Exit(code)


RESUME = "run the same command again to resume"


@dataclass(frozen=True)
class ReplayRequest:
    backlog: Path | None
    repo: Path
    config_file: Path | None
    out: Path | None
    concurrency: int | None
    model_concurrency: int | None
    sandbox_concurrency: int | None
    max_cost_usd: float | None
    backend: str | None
    record: Path | None
    cassette: Path | None
    shard: str
    shadow: str | None
    retry_errors: bool = False
    skip_bad_issues: bool = False
    as_json: bool = False
    plan: bool = False
    executor: str = "local"
    ray_address: str | None = None
    ray_resources: str | None = None


def _replay(req: ReplayRequest) -> int:
    from cascade.cli.batch_progress import BatchProgress
    from cascade.replay.backlog import Shard, github_backlog, is_github_query, load_backlog
    from cascade.replay.batch import SHADOW_DIR, safe_name
    from cascade.replay.shadow import shadow_configs
    from cascade.wiring.run_issue import RunFlags, load_for_run
    from cascade.workspace.checkout import resolve_commit

    if req.backlog is None:
        raise usage_error("give a BACKLOG (a folder of issue files or a JSONL file), or --regate")
    # The cluster's flags, checked before the backlog is read (a --plan joins no cluster).
    cluster_at = cluster_plan(req)
    repo = req.repo.resolve()
    loaded = load_for_run(repo, RunFlags(req.config_file, req.backend))
    if req.cassette is not None:
        loaded = _from_cassette(loaded, req.cassette, req.record)
    shard = Shard.parse(req.shard)
    spec = str(req.backlog)
    if is_github_query(spec):
        issues = shard.select(github_backlog(spec, repo, loaded.config))
        backlog = Path(safe_name(spec.removeprefix("github:")))
    else:
        backlog = req.backlog.resolve()
        issues = shard.select(load_backlog(backlog, loaded.config, skip_bad=req.skip_bad_issues))
    if req.plan:
        from cascade.cli.route import plan_backlog

        return plan_backlog(loaded, repo, issues, req.as_json)
    commit = resolve_commit(repo)
    shadows = shadow_configs(loaded, req.shadow) if req.shadow else []
    suffix = "" if shard.count == 1 else f"-shard-{shard.index}-of-{shard.count}"
    out = (req.out or repo / ".cascade" / "replay" / f"{backlog.stem}{suffix}").resolve()
    progress = BatchProgress(sys.stderr)
    cluster = join_cluster(cluster_at, progress.note)
    in_flight = req.concurrency or (cluster.capacity() if cluster else 1)
    req = dataclasses.replace(req, concurrency=in_flight)
    progress.note(
        f"replay {len(issues)} issue(s) of {backlog.name} (shard {shard}) into {out}; "
        f"ladder {' → '.join(r.name for r in loaded.config.ladder)}, "
        f"concurrency {in_flight}"
    )
    batches = {"the batch": out}  # every folder this command writes, for the error count
    for name, _ in shadows:
        batches[f"shadow {name}"] = out / SHADOW_DIR / name

    def run(config: LoadedConfig, where: Path, shadow_of: str) -> bool:
        elsewhere = _spent_elsewhere(batches.values(), where)  # one --max-cost-usd for all
        return _run_batch(
            req, config, issues, repo, commit, where, str(shard), progress, shadow_of,
            cluster=cluster, spent_elsewhere=elsewhere,
        )  # fmt: skip

    try:
        stopped = run(loaded, out, "")
        for name, shadow_loaded in shadows:
            if stopped:
                break
            progress.note(
                f"shadow {name}: {' → '.join(r.name for r in shadow_loaded.config.ladder)}"
            )
            where = batches[f"shadow {name}"]
            stopped = run(shadow_loaded, where, str(out))
    finally:
        progress.close()
        if cluster is not None:
            cluster.close()
    ids = {issue.id for issue in issues}
    from cascade.cli.replay_summary import finish

    return finish(out, batches, ids, stopped=stopped, as_json=req.as_json)


def _spent_elsewhere(folders: Iterable[Path], here: Path) -> float:
    """What the command's other batch folders have spent, as their ledgers say."""
    from cascade.replay.runner import folder_spent

    return sum(folder_spent(folder) for folder in folders if folder != here)


def _settings(rung: RungConfig, loaded: LoadedConfig) -> dict[str, Any]:
    """A rung's settings as a batch header records them: those not at their defaults, a
    cassette's path made absolute (it was relative to the config's folder)."""
    data = rung.model_dump(mode="json", exclude_defaults=True)
    if rung.cassette:
        data["cassette"] = str(loaded.path(rung.cassette))
    return data


def _from_cassette(loaded: LoadedConfig, cassette: Path, record: Path | None) -> LoadedConfig:
    """Every rung served from a recorded cassette, under its own name (`replay/<rung>`)."""
    from cascade.models import as_replay

    if record is not None:
        raise usage_error("--cassette and --record together: a replayed answer is never recorded")
    if not cassette.is_file():
        raise usage_error(f"--cassette {cassette}: no such file")
    path = str(cassette.resolve())
    ladder = tuple(as_replay(r, path) for r in loaded.config.ladder)
    config = loaded.config.model_copy(update={"ladder": ladder})
    return dataclasses.replace(loaded, config=config)


def _run_batch(  # noqa: PLR0917 - one call site, every value is needed
    req: ReplayRequest,
    loaded: LoadedConfig,
    issues: list[Issue],
    repo: Path,
    commit: str,
    out: Path,
    shard: str,
    progress: BatchProgress,
    shadow_of: str,
    cluster: Cluster | None = None,
    spent_elsewhere: float = 0.0,
) -> bool:
    """Run (or resume) one batch folder; True when the budget stopped it."""
    from cascade.cli.interrupt import docker_leftovers, run_interruptible
    from cascade.replay.batch import BatchDir, BatchHeader
    from cascade.replay.runner import BatchPlan, BatchRunner
    from cascade.wiring.run_issue import IssueRunner

    cfg = loaded.config
    # A shadow's answers are not recorded: they share cassette keys with the main ladder's.
    record = req.record.resolve() if req.record and not shadow_of else None
    runner = IssueRunner.prepare(
        loaded, repo, record=record, commit=commit, progress=progress.note,
        sandbox_here=cluster is None,
    )  # fmt: skip
    parts = runner.parts
    header = BatchHeader(
        backlog=_backlog_name(req.backlog),
        repo=str(repo),
        base_commit=commit,
        shard=shard,
        ladder=tuple(r.name for r in cfg.ladder),
        models=tuple(r.model for r in cfg.ladder),
        rungs=tuple(_settings(r, loaded) for r in cfg.ladder),
        gate=tuple(parts.gate.names),
        config_file=str(loaded.config_file or ""),
        shadow_of=shadow_of,
    )
    batch = BatchDir.open(out, header)
    try:
        for message in (*batch.notes, *batch.settle()):
            progress.note(message)
        if batch.header.base_commit != commit:
            progress.note(
                f"resuming at the batch's base commit {batch.header.base_commit[:12]} "
                f"(HEAD is now {commit[:12]})"
            )
        plan = BatchPlan(
            issues=issues,
            repo=repo,
            concurrency=req.concurrency or 1,
            model_concurrency=req.model_concurrency,
            sandbox_concurrency=req.sandbox_concurrency,
            max_cost_usd=req.max_cost_usd,
            spent_elsewhere=spent_elsewhere,
            retry_errors=req.retry_errors,
        )
        # The batch's own base commit and runs folder (a resumed batch keeps its commit).
        at_batch = dataclasses.replace(
            runner, commit=batch.header.base_commit, runs_dir=batch.runs_dir
        )
        # Ctrl-C or SIGTERM: the tasks in flight are cancelled, their sandboxes closed, and what
        # this process still owns is removed before it exits (`Interrupted`).
        here = cluster is None and parts.backend == "docker"  # a cluster's nodes own theirs
        leftovers = docker_leftovers() if here else None
        executor = (
            cluster.executor(loaded, repo, batch.header.base_commit, out) if cluster else None
        )
        work = BatchRunner(at_batch, batch, plan, progress, executor).run
        result = run_interruptible(work, progress.note, leftovers, RESUME)
    finally:
        batch.close()
    return result.budget_stopped


def _backlog_name(backlog: Path | None) -> str:
    """What the batch header records: a resolved path, or the github: query as given."""
    if backlog is None:
        return ""
    from cascade.replay.backlog import is_github_query

    return str(backlog) if is_github_query(str(backlog)) else str(backlog.resolve())
