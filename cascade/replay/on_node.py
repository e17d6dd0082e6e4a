"""One task of a cluster batch, as a node runs it (`cascade.replay.cluster` makes `run_on_node`
a Ray task). The node checks first that it sees the batch folder at the driver's path (the
shared-path contract: a node writes its run folder there, the driver never copies one), that it
runs the driver's cascade, and that its Docker engine has the sandbox image; then it runs the
issue exactly as `cascade fix` would, with the desk's purse, into the batch's run folder.
Everything that goes wrong comes back as a message naming the node, never a remote traceback."""

from __future__ import annotations

import dataclasses
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cascade import __version__
from cascade.core.engine import Engine
from cascade.core.events import Event
from cascade.errors import CascadeError
from cascade.records import Issue
from cascade.replay.batch import RUNS_DIR
from cascade.replay.desk import RemotePurse
from cascade.wiring.settings import LoadedConfig

MARK_FILE = ".cluster-mark"  # in the batch folder: what a node reads to prove it shares it


@dataclass(frozen=True)
class NodeSpec:
    """What every task of one batch needs on its node; shipped once through the object store."""

    loaded: LoadedConfig
    repo: Path
    commit: str  # the batch's base commit
    batch_dir: Path
    mark: str  # the content of MARK_FILE the driver wrote
    desk: Any  # the desk actor's handle
    version: str = __version__


@dataclass(frozen=True)
class NodeResult:
    node: str
    outcome_json: str = ""  # the sealed outcome, or
    error: str = ""  # why the task could not run on this node


def node_name() -> str:
    """`<host>/<node id, 8 hex>`: two nodes of one host (a test cluster) stay apart."""
    import ray

    node_id = ray.get_runtime_context().get_node_id() or "?"
    return f"{socket.gethostname()}/{node_id[:8]}"


def run_on_node(spec: NodeSpec, issue_json: str, run_id: str) -> NodeResult:
    node = node_name()
    spec.desk.started.remote(run_id, node)
    try:
        _check(spec, node)
        runner = _runner(spec)
        issue = Issue.model_validate_json(issue_json)
        outcome = _run(spec, runner, issue, run_id)
    except CascadeError as exc:
        return NodeResult(node, error=f"node {node}: {exc}")
    return NodeResult(node, outcome_json=outcome.model_dump_json())


def _check(spec: NodeSpec, node: str) -> None:
    from cascade.errors import InfraError

    if spec.version != __version__:
        raise InfraError(
            f"runs cascade {__version__}, the driver {spec.version}: install the same version on "
            "every node"
        )
    token = spec.batch_dir / MARK_FILE
    try:
        seen = token.read_text(encoding="utf-8").strip()
    except OSError:
        seen = ""
    if seen != spec.mark:
        raise InfraError(
            f"cannot see the batch folder {spec.batch_dir} (its {MARK_FILE} is missing or "
            "another batch's): every node must see the batch folder and the repository at the "
            "driver's paths, e.g. on a shared mount"
        )
    if not (spec.repo / ".git").exists():
        raise InfraError(f"cannot see the repository {spec.repo} at the driver's path")


_PREPARED: dict[str, Any] = {}  # batch mark -> IssueRunner, in this worker process


def _runner(spec: NodeSpec) -> Any:
    """The task's `IssueRunner`, built once per worker process and batch: a node's later tasks
    reuse its parts (models, gate, the sandbox check)."""
    from cascade.errors import InfraError, SandboxError
    from cascade.wiring.run_issue import IssueRunner

    if spec.mark not in _PREPARED:
        _PREPARED.clear()  # a worker process outlives a batch: keep only the latest
        try:
            _PREPARED[spec.mark] = IssueRunner.prepare(
                spec.loaded, spec.repo, commit=spec.commit, runs_dir=spec.batch_dir / RUNS_DIR
            )
        except SandboxError as exc:
            raise InfraError(f"{exc} (on this node; its docker client reads DOCKER_HOST)") from exc
    return _PREPARED[spec.mark]


def _run(spec: NodeSpec, runner: Any, issue: Issue, run_id: str) -> Any:
    import anyio

    desk = spec.desk
    purse = RemotePurse(desk, spec.loaded.config.budget.batch_max_cost_usd)

    def on_event(event: Event) -> None:
        if event.kind == "attempt_done" and event.attempt is not None:
            desk.cost.remote(run_id, event.attempt.cost_usd)

    def adapt(engine: Engine) -> Engine:
        return dataclasses.replace(engine, purse=purse)

    run = runner.new_run(run_id=run_id, on_event=on_event, adapt=adapt)
    return anyio.run(run, issue)
