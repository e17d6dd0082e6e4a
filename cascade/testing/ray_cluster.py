"""A real Ray cluster on this machine's loopback, for tests and benchmarks: a head and worker
nodes, each a `ray start --block` in a session of its own, so one node can be killed (SIGKILL to
its process group: raylet and agents; the worker processes running its tasks, in sessions of
their own, exit once their raylet is gone) while the others go on. Small object stores; node
death noticed within a second or two; token authentication on, with a token of its own (a
`~/.ray/auth_token` that an earlier local `ray.init()` left must not decide it: Ray 2.60 turns
token auth on for a head that finds one, and a node or driver without it is then refused).
Drivers need `driver_env()`. Never `ray stop`: that would stop every Ray node of the machine."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STORE_BYTES = 80 * 1024 * 1024
FAST_DEATH = {  # the head's GCS: a node that stops answering is dead within ~2 s
    "RAY_health_check_period_ms": "500",
    "RAY_health_check_timeout_ms": "500",
    "RAY_health_check_failure_threshold": "3",
}


@dataclass
class Node:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """SIGKILL the node's process group, as a machine's sudden death would (its workers
        follow their raylet)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


@dataclass
class LocalRayCluster:
    """Start with `start()`; `address` is then what `--ray-address` takes."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rc-")))
    env: dict[str, str] = field(default_factory=dict)  # added to every node's environment
    nodes: list[Node] = field(default_factory=list)
    port: int = 0
    token: str = field(default_factory=lambda: secrets.token_hex(32))

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def driver_env(self) -> dict[str, str]:
        """What a process that joins the cluster needs in its environment: the auth token."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": self.token}

    def start(self, slots: float = 2, **resources: float) -> LocalRayCluster:
        """The head node, offering `slots` sandbox slots (and any other resources)."""
        self.port = _free_port()
        args = ["--head", "--port", str(self.port), "--include-dashboard", "false"]
        args += ["--temp-dir", str(self.root / "t")]
        self._node("head", args, slots, resources, FAST_DEATH)
        return self

    def add_node(self, name: str, slots: float = 2, **resources: float) -> Node:
        return self._node(name, ["--address", self.address], slots, resources, {})

    def wait_for(self, count: int, timeout: float = 60) -> None:
        """Until `count` nodes are alive in the cluster's view."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.alive() >= count:
                return
            time.sleep(0.5)
        raise TimeoutError(f"{count} Ray nodes not alive after {timeout:g}s: {self._logs()}")

    def alive(self) -> int:
        script = (
            f"import ray; ray.init(address={self.address!r}, logging_level='ERROR', "
            "log_to_driver=False); print(sum(1 for n in ray.nodes() if n['Alive']))"
        )
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
            env=self._env({}), check=False,
        )  # fmt: skip
        try:
            return int(out.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return 0

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.kill()
        self.nodes.clear()

    def _node(
        self, name: str, args: list[str], slots: float, resources: dict[str, Any],
        env: dict[str, str],
    ) -> Node:  # fmt: skip
        import json

        offered = {"cascade_sandbox": slots, **resources}
        argv = [
            str(Path(sys.executable).with_name("ray")), "start", "--block", *args,
            "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
            "--resources", json.dumps(offered), "--object-store-memory", str(STORE_BYTES),
            "--disable-usage-stats",
        ]  # fmt: skip
        log = self.root / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env=self._env(env),
                start_new_session=True,
            )  # fmt: skip
        node = Node(name, process, log)
        self.nodes.append(node)
        return node

    def _env(self, extra: dict[str, str]) -> dict[str, str]:
        env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", **self.env, **extra)
        env.update(self.driver_env())
        env.pop("RAY_ADDRESS", None)
        return env

    def _logs(self) -> str:
        return "; ".join(
            f"{n.name}: {n.log.read_text(errors='replace')[-400:]}" for n in self.nodes
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
