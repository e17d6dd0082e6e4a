"""`cascade replay --executor ray`: the flags that choose a cluster, checked before any work, and
the connection made once for the command (its main batch and its shadow)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from cascade.cli.failures import usage_error

if TYPE_CHECKING:
    from cascade.cli.replay import ReplayRequest
    from cascade.replay.cluster import Cluster, ClusterPlan

ExecutorOption = Annotated[
    str,
    typer.Option(
        help="Where tasks run: 'local' (this process) or 'ray' (the nodes of a Ray cluster; "
        "pip install 'cascade-engine[ray]'). The batch folder and the repository must be at "
        "the same path on every node.",
    ),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        help="With --executor ray: the cluster (HOST:PORT of its head, or "
        "'auto'), default RAY_ADDRESS; 'local' starts one on this machine for this command.",
    ),
]
RayResourcesOption = Annotated[
    str | None,
    typer.Option(
        help="With --executor ray: what each task asks of a node, as JSON (default "
        '{"cascade_sandbox": 1}: start nodes with `ray start --resources '
        "'{\"cascade_sandbox\": N}'` to run at most N sandboxes there).",
    ),
]


def cluster_plan(req: ReplayRequest) -> ClusterPlan | None:
    """The cluster flags checked before any work (no Ray needed yet): None for the local
    executor, else what to join."""
    executor, address, resources = req.executor, req.ray_address, req.ray_resources
    refused = {
        "--record": req.record is not None, "--model-concurrency": bool(req.model_concurrency),
        "--sandbox-concurrency": bool(req.sandbox_concurrency),
    }  # fmt: skip
    if executor not in ("local", "ray"):
        raise usage_error(f"--executor {executor!r}: choose 'local' or 'ray'")
    if executor == "local":
        for flag, given in (("--ray-address", address), ("--ray-resources", resources)):
            if given is not None:
                raise usage_error(f"{flag} goes with --executor ray")
        return None
    for flag, used in refused.items():
        if used:
            raise usage_error(f"{flag} is not available with --executor ray: {_WHY[flag]}")
    from cascade.replay.cluster import ClusterPlan, parse_resources

    address = address or os.environ.get("RAY_ADDRESS") or ""
    if not address:
        raise usage_error(
            "--executor ray needs a cluster: --ray-address HOST:PORT (or RAY_ADDRESS), or "
            "--ray-address local to start one on this machine"
        )
    return ClusterPlan(address, parse_resources(resources), local_slots=req.concurrency or 2)


def join_cluster(plan: ClusterPlan | None, note: Callable[[str], None]) -> Cluster | None:
    if plan is None:
        return None
    from cascade.replay.cluster import Cluster

    cluster = Cluster(plan)
    note(cluster.connect())
    return cluster


_WHY = {
    "--record": "nodes would append to one cassette at once; record with the local executor, "
    "then replay the cassette (--cassette) on the cluster",
    "--model-concurrency": "model calls are not limited across nodes; bound a node's tasks "
    "with its resources (--ray-resources)",
    "--sandbox-concurrency": "a node's sandboxes are bounded by the resources it offers "
    "(ray start --resources '{\"cascade_sandbox\": N}')",
    "--regate": "re-judging runs on this machine (drop --executor ray)",
}
