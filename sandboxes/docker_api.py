"""What image building and the Docker sandbox share: the connection to the engine (with an error
that says what to do when none answers), the `[sandbox.options]` settings, and the labels."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cascade.config import SandboxConfig
from cascade.errors import ConfigError, SandboxError
from cascade.validation import describe

log = logging.getLogger(__name__)

SANDBOX_UID = 10001  # the non-root user every sandboxed process runs as (uid and gid)
WORKDIR = "/workspace"
VENV = "/opt/cascade-venv"
DEFAULT_BASE = "python:3.12-slim"
TOOLS = ("pytest", "coverage", "ruff", "mypy")

RUN_LABEL = "cascade.run"  # the run (or sandbox) a container or volume belongs to
CREATED_LABEL = "cascade.created"  # epoch seconds, for `cascade sandbox gc`
TTL_LABEL = "cascade.ttl"
OWNER_LABEL = "cascade.owner"  # "<host>:<pid>" of the process that opened it, for gc
BUILD_KEY_LABEL = "cascade.build-key"  # on the sandbox image: what it was built from
ENV_REPOSITORY = "cascade-env"  # per-repository environment images, tagged by their key
SETUP_LABEL = "cascade.setup"  # "1" on every environment image, for `cascade sandbox gc --images`
SETUP_KEY_LABEL = "cascade.setup-key"  # on an environment image: the key it was built for

# Put at the start of an ExecResult's stderr marker when a limit (memory, processes) stopped the
# command: evaluators report it as such, not as a failing test.
RESOURCE_EXCEEDED = "resource_exceeded"

NO_ENGINE = (
    "no Docker engine is reachable{where} ({detail}). Start one (`sudo systemctl start docker`, or "
    "`sudo dockerd > /tmp/dockerd.log 2>&1 &`), or choose the unsafe local backend with "
    '`--sandbox local` / `[sandbox] backend = "local"`.'
)


class DockerOptions(BaseModel):
    """`[sandbox.options]` for the docker backend. The defaults are the safe ones."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pids_limit: int = Field(default=512, ge=16)
    mem_limit: str = "2g"  # memory and memory+swap (no swap at all), docker's size syntax
    cpus: float = Field(default=2.0, gt=0, le=256)
    tmp_size: str = "256m"  # the /tmp tmpfs, the only writable place besides the workspace
    # The workspace volume: "tmpfs" (in memory, capped at workspace_size; writing 2,000 files
    # takes 0.1 s instead of 1.5 s on a disk-backed volume here) or "disk" for repositories too
    # big for memory.
    workspace: Literal["tmpfs", "disk"] = "tmpfs"
    workspace_size: str = "2g"
    ttl: int = Field(default=6 * 3600, ge=60)  # seconds before a container stops on its own
    base: str = DEFAULT_BASE  # the image `cascade sandbox build` starts from, when it has it
    tools: tuple[str, ...] = TOOLS  # pip requirements installed into the image's venv
    setup_timeout: float = Field(default=1800.0, gt=0)  # seconds for all `[sandbox] setup` commands

    @classmethod
    def from_config(cls, config: SandboxConfig) -> DockerOptions:
        # `python` is the local backend's (its interpreter): one table serves both backends.
        options = {k: v for k, v in config.options.items() if k != "python"}
        try:
            return cls.model_validate(options)
        except ValidationError as exc:
            problems = describe(exc, label="{}", unknown=None, top="")
            raise ConfigError(
                f"[sandbox.options] is invalid for the docker backend: {problems}"
            ) from None


def connect(timeout: int = 60) -> Any:
    """A docker client that has answered a ping, or a SandboxError saying how to get one. (The
    SDK is imported here: reading the options, as `config show` does, needs none of it.)"""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except DockerException as exc:
        raise SandboxError(_no_engine(exc)) from exc
    except OSError as exc:  # requests' ConnectionError is an OSError
        raise SandboxError(_no_engine(exc)) from exc
    return client


def engine_available() -> bool:
    try:
        connect(timeout=5).close()
    except SandboxError:
        return False
    return True


def _no_engine(exc: BaseException) -> str:
    # The SDK's own error often names no address ("No such file or directory"): name the one
    # DOCKER_HOST gave, so a remote engine that does not answer is told from a local one.
    host = os.environ.get("DOCKER_HOST", "")
    return NO_ENGINE.format(where=f" at DOCKER_HOST={host}" if host else "", detail=_short(exc))


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def cache_dir() -> Path:
    """Where wheels and rootfs work files are kept between builds."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "cascade"
