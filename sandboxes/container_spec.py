"""What a sandbox container is made of, as data: the `containers.create` arguments (every
hardening setting in one place, checked by a unit test), its environment, its pid 1, and the
shell snippets that bound and clean up each command."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from docker.types import LogConfig, Mount

from sandboxes.agent import command as agent_command
from sandboxes.docker_api import SANDBOX_UID, VENV, WORKDIR, DockerOptions

USER = f"{SANDBOX_UID}:{SANDBOX_UID}"
TMP = "/tmp"  # noqa: S108 - the container's own tmpfs, not the host's /tmp
ENV = {  # the whole environment: nothing from the host ever passes
    "PATH": f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": TMP,
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
}
# pid 1 of the environment-layer build container (setup_layer): reaps orphans (so killed process
# trees free their pids) and exits after the TTL, so a container whose run crashed stops on its
# own. A sandbox's pid 1 does the same and serves commands too (sandboxes/agent_main.py).
REAPER = (
    "import os, signal, sys, time\n"
    "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
    "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})\n"
    "end = time.monotonic() + float(sys.argv[1])\n"
    "while (left := end - time.monotonic()) > 0:\n"
    "    signal.sigtimedwait({signal.SIGCHLD}, min(left, 60))\n"
    "    try:\n"
    "        while os.waitpid(-1, os.WNOHANG)[0]:\n"
    "            pass\n"
    "    except ChildProcessError:\n"
    "        pass\n"
)
# Every command: `timeout` inside (exec_run has none), run in the background so that its process
# group (timeout puts itself and the command in a new one) can be killed once it is done:
# what the command left running in the background goes too, as with LocalSandbox.
WRAPPER = (
    't=$1; shift; timeout --signal=KILL "$t" "$@" & p=$!; wait "$p"; rc=$?; '
    'kill -KILL "-$p" 2>/dev/null; exit "$rc"'  # dash's kill takes no --
)
# After a timeout: kill every process of the sandbox user (pid 1 is exempt as the namespace's init).
SWEEP = ["sh", "-c", "kill -KILL -1 2>/dev/null; exit 0"]
LIMIT_COUNTERS = (
    "cat /sys/fs/cgroup/memory/memory.oom_control /sys/fs/cgroup/memory.events "
    "/sys/fs/cgroup/pids/pids.events /sys/fs/cgroup/pids.events 2>/dev/null; exit 0"
)


def container_spec(
    options: DockerOptions, image: str, volume: str, labels: Mapping[str, str]
) -> dict[str, Any]:
    """The `containers.create` keyword arguments: everything that makes the sandbox a sandbox.
    Never privileged, no added capability, the default seccomp profile."""
    return {
        "image": image,
        # pid 1 reaps, ends the container after the TTL and serves commands on its stdin.
        "command": agent_command(options.ttl, WORKDIR),
        "stdin_open": True,
        "log_config": LogConfig(type=LogConfig.types.NONE),  # its stdout is our answers
        "user": USER,
        "working_dir": WORKDIR,
        "environment": dict(ENV),
        "hostname": "sandbox",
        "network_mode": "none",
        "read_only": True,
        "mounts": [Mount(target=WORKDIR, source=volume, type="volume")],
        "tmpfs": {TMP: f"rw,nosuid,nodev,size={options.tmp_size},mode=1777"},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "pids_limit": options.pids_limit,
        "mem_limit": options.mem_limit,
        "memswap_limit": options.mem_limit,  # equal: no swap to spill into
        "nano_cpus": int(options.cpus * 1e9),
        "ipc_mode": "private",
        "labels": dict(labels),
        "detach": True,
    }
