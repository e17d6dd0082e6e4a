"""`cascade replay --executor ray`: a batch's tasks as Ray tasks on the nodes of a cluster, the
driver (this process) still the single writer of the ledger. Each task asks for the resources
`--ray-resources` names (default one `cascade_sandbox` slot: a node started with
`--resources '{"cascade_sandbox": N}'` never runs more than N sandboxes at once); the desk, an
actor pinned to the driver's node, holds the batch's purse; nodes write their run folders into
the batch folder, which every node sees at the driver's path (a shared mount), and the driver
checks that each sealed run it is told of is there. A node that dies mid-task makes that task an
infrastructure error (`--retry-errors` runs it again)."""

from __future__ import annotations

import json
import logging
import math
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from cascade.errors import InfraError, UsageError
from cascade.proof.run_folder import RunFolder
from cascade.records import Issue, RunOutcome
from cascade.replay.batch import ABORTED_FILE, RUNS_DIR
from cascade.replay.desk import Desk
from cascade.replay.on_node import MARK_FILE, NodeSpec, run_on_node
from cascade.replay.runner import OnCost, OnNode
from cascade.wiring.settings import LoadedConfig

log = logging.getLogger(__name__)

SLOT = "cascade_sandbox"
DEFAULT_RESOURCES: Mapping[str, float] = {SLOT: 1.0}
INSTALL = "pip install 'cascade-engine[ray]'"
POLL_S = 0.25


@dataclass(frozen=True)
class ClusterPlan:
    address: str  # "local" (an in-process cluster), "auto" or HOST:PORT (the head's)
    resources: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_RESOURCES))
    local_slots: int = 2  # sandbox slots of a "local" cluster


def parse_resources(text: str | None) -> dict[str, float]:
    """`--ray-resources`: a JSON object of resource name to amount (more than 0)."""
    if text is None:
        return dict(DEFAULT_RESOURCES)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--ray-resources {text!r}: not JSON ({exc.msg})") from None
    ok = (
        isinstance(value, dict)
        and value
        and all(
            isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool) and v > 0
            for k, v in value.items()
        )
    )
    if not ok:
        raise UsageError(
            f"--ray-resources {text!r}: give a JSON object of resource names to amounts above "
            f"0, e.g. '{{\"{SLOT}\": 1}}'"
        )
    asked = {k: float(v) for k, v in value.items()}
    odd = [k for k, v in asked.items() if abs(v * 10_000 - round(v * 10_000)) > 1e-6]
    if odd:  # Ray counts resources in steps of 0.0001
        raise UsageError(f"--ray-resources: {', '.join(odd)}: amounts are multiples of 0.0001")
    reserved = sorted(set(asked) & {"memory", "object_store_memory"})
    if reserved:
        raise UsageError(f"--ray-resources: {', '.join(reserved)} cannot be asked per task here")
    return asked


def task_options(resources: Mapping[str, float]) -> dict[str, Any]:
    """Ray's options for one task asking for `resources` (CPU and GPU are Ray's own keywords);
    never retried by Ray: a task may have spent money, and `--retry-errors` is the user's."""
    rest = dict(resources)
    options: dict[str, Any] = {"num_cpus": rest.pop("CPU", 0), "max_retries": 0}
    if "GPU" in rest:
        options["num_gpus"] = rest.pop("GPU")
    return {**options, "resources": rest}


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UsageError(f"--executor ray needs Ray, an optional extra: {INSTALL}") from None
    return ray


class Cluster:
    """A connection to a Ray cluster, made once per command (a shadow batch reuses it)."""

    def __init__(self, plan: ClusterPlan) -> None:
        self.plan = plan
        self.ray = import_ray()
        self.started_here = False

    def connect(self) -> str:
        """Join the cluster (or start the local one); a line saying what it offers."""
        ray = self.ray
        options: dict[str, Any] = {
            "logging_level": logging.ERROR,
            "log_to_driver": False,
            "configure_logging": False,
        }
        if self.plan.address == "local":
            options.update(
                address="local",  # a new cluster, whatever RAY_ADDRESS or a running head says
                num_cpus=max(self.plan.local_slots, 1),
                resources={SLOT: float(self.plan.local_slots)},
                object_store_memory=80 * 1024 * 1024,
                include_dashboard=False,
            )
        else:
            options["address"] = self.plan.address
            _reachable(self.plan.address)  # Ray would wait for a dead address for minutes
        try:
            ray.remote(run_on_node).options(**task_options(self.plan.resources))
        except ValueError as exc:  # Ray's own check of what a task asks for
            raise UsageError(f"--ray-resources: {_first(exc)}") from None
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError, ray.exceptions.RayError) as exc:
            raise UsageError(
                f"--ray-address {self.plan.address}: cannot join the cluster: {_first(exc)}"
            ) from None
        self.started_here = True
        slots = self.capacity()
        if slots == 0:
            self.close()
            want = json.dumps(dict(self.plan.resources))
            raise UsageError(
                f"no node of the cluster at {self.plan.address} offers what a task asks for "
                f"({want}): start each node with e.g. `ray start --resources "
                f"'{{\"{SLOT}\": 4}}'` (its sandbox slots), or change --ray-resources"
            )
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        return f"ray cluster at {self.plan.address}: {len(nodes)} node(s), {slots} task slot(s)"

    def capacity(self) -> int:
        """Tasks that can run at once: per live node, how many times it holds a task's ask."""
        total = 0
        for node in self.ray.nodes():
            if not node.get("Alive"):
                continue
            have = node.get("Resources", {})
            fits = [
                math.floor(round(have.get(k, 0.0) / v, 4)) for k, v in self.plan.resources.items()
            ]
            total += min(fits)
        return total

    def close(self) -> None:
        if self.started_here:
            self.ray.shutdown()
            self.started_here = False

    def executor(
        self, loaded: LoadedConfig, repo: Path, commit: str, batch_dir: Path
    ) -> Callable[[float], RayExecutor]:
        """For `BatchRunner(executor=...)`: given what earlier sessions spent, the executor."""

        def make(spent_before: float) -> RayExecutor:
            return RayExecutor(self, loaded, repo, commit, batch_dir, spent_before)

        return make


class RayExecutor:
    """Runs each task as a Ray task; the desk's events come back by polling it."""

    def __init__(  # noqa: PLR0917 - built by Cluster.executor only
        self,
        cluster: Cluster,
        loaded: LoadedConfig,
        repo: Path,
        commit: str,
        batch_dir: Path,
        spent_before: float,
    ) -> None:
        ray = cluster.ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        actor = ray.remote(Desk).options(num_cpus=0, scheduling_strategy=here, max_restarts=0)
        self.desk = actor.remote(loaded.config.budget.batch_max_cost_usd, spent_before)
        mark = secrets.token_hex(16)
        (batch_dir / MARK_FILE).write_text(mark + "\n", encoding="utf-8")
        spec = NodeSpec(loaded, repo, commit, batch_dir, mark, self.desk)
        self.ray = ray
        self.spec = ray.put(spec)
        self.runs_dir = batch_dir / RUNS_DIR
        self.remote = ray.remote(run_on_node).options(**task_options(cluster.plan.resources))
        self._listeners: dict[str, tuple[OnCost, OnNode]] = {}
        self._nodes: dict[str, str] = {}
        self._draining = anyio.Lock()  # one drain at a time, however many tasks poll
        self._drained = 0.0  # when the last drain ended (monotonic)

    async def run_task(
        self,
        issue: Issue,
        run_id: str,
        on_cost: OnCost,
        on_node: OnNode,
    ) -> RunOutcome:
        self._listeners[run_id] = (on_cost, on_node)
        ref = self.remote.remote(self.spec, issue.model_dump_json(), run_id)
        done = False
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._poll)  # any task's poll serves every task's listener
                try:
                    result = await ref
                except self.ray.exceptions.RayError as exc:
                    done = True  # the task is over, one way or another
                    sealed = RunFolder(self.runs_dir / run_id).sealed_outcome()
                    if sealed is not None:  # the node sealed the run, then died: it stands
                        log.warning("%s; its run was sealed first", self._lost(run_id, exc))
                        return sealed
                    self._mark_lost(run_id, exc)
                    raise InfraError(self._lost(run_id, exc)) from None
                finally:
                    group.cancel_scope.cancel()
            done = True
            await self._drain(force=True)  # the task's last costs, before its outcome counts
        except BaseException:
            if not done:
                # Interrupted (or the driver's own failure): the node's worker process is
                # killed; the sandboxes it opened go at the next cascade run on that host
                # (their owner process is gone).
                self.ray.cancel(ref, force=True)
            raise
        finally:
            self._listeners.pop(run_id, None)
        if run_id not in self._nodes:  # it ended before the desk relayed where it ran
            self._nodes[run_id] = result.node
            on_node(result.node)
        if result.error:
            raise InfraError(result.error)
        return self._seen(run_id, result.node)

    async def _poll(self) -> None:
        while True:
            await anyio.sleep(POLL_S)
            await self._drain()

    async def _drain(self, *, force: bool = False) -> None:
        """Relay the desk's events to their tasks' listeners. Shielded: a drain the actor has
        answered is never lost to a cancelled poll. Skipped when another task's poll drained
        just now (the desk serves the nodes' purse calls too)."""
        with anyio.CancelScope(shield=True):
            async with self._draining:
                if not force and time.monotonic() - self._drained < POLL_S / 2:
                    return
                try:
                    events = await self.desk.drain.remote()
                except self.ray.exceptions.RayError as exc:  # the desk is gone: say so once
                    log.warning("the batch's desk does not answer: %s", _first(exc))
                    events = []
                self._drained = time.monotonic()
        for kind, run_id, value in events:
            if kind == "node":
                self._nodes[run_id] = str(value)
            listener = self._listeners.get(run_id)
            if listener is None:
                continue
            if kind == "node":
                listener[1](str(value))
            else:
                listener[0](float(value))

    def _seen(self, run_id: str, node: str) -> RunOutcome:
        """The outcome a node says it sealed, read where the driver sees it: the batch's run
        folder. A node that wrote elsewhere (no shared mount) is found out here."""
        sealed = RunFolder(self.runs_dir / run_id).sealed_outcome()
        if sealed is None:
            raise InfraError(
                f"node {node} sealed run {run_id}, but the driver does not see it sealed in "
                f"{self.runs_dir}: every node must write to the batch folder at the driver's path "
                "(a shared mount)"
            )
        return sealed

    def _lost(self, run_id: str, exc: BaseException) -> str:
        node = self._nodes.get(run_id, "an unknown node")
        if isinstance(exc, self.ray.exceptions.RayTaskError):  # raised by our code on the node
            cause = getattr(exc, "cause", None) or exc
            return f"node {node}: the task failed: {type(cause).__name__}: {_first(cause)}"
        return f"node {node} was lost while it ran the task ({type(exc).__name__}: {_first(exc)})"

    def _mark_lost(self, run_id: str, exc: BaseException) -> None:
        """The cut-short run kept and marked, as a resumed batch marks a killed driver's."""
        run_dir = self.runs_dir / run_id
        if run_dir.is_dir():
            try:
                (run_dir / ABORTED_FILE).write_text(self._lost(run_id, exc) + "\n", "utf-8")
            except OSError as err:
                log.warning("could not mark %s aborted: %s", run_dir, err)


def _reachable(address: str, timeout: float = 5.0) -> None:
    """A UsageError unless something listens at HOST:PORT; `auto` is Ray's to resolve."""
    import socket

    if address.startswith("ray://"):
        raise UsageError(
            f"--ray-address {address}: Ray Client addresses are not supported; give the head's "
            "HOST:PORT (the port of `ray start --head --port`) and run the driver on a machine "
            "that sees the batch folder"
        )
    host, _, port = address.rpartition(":")
    if address == "auto" or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout).close()
    except OSError as exc:
        raise UsageError(
            f"--ray-address {address}: nothing answers there ({exc.strerror or exc}); start the "
            "head with `ray start --head` or give its address"
        ) from None


def _first(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0][:300] if lines else type(exc).__name__
