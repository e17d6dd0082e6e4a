"""Starting a sandbox container: the workspace archive, the image (its Python chosen), the
optional environment image, the labelled volume and container, the workspace copied in, and the
attach to pid 1's command server. Every failure is a SandboxError that says what to do, and
leaves nothing behind."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docker.errors import DockerException, NotFound

from cascade.config import SandboxConfig
from cascade.errors import SandboxError
from cascade.workspace.checkout import archive
from sandboxes.agent import AgentClient
from sandboxes.container_spec import container_spec
from sandboxes.docker_api import (
    CREATED_LABEL,
    OWNER_LABEL,
    RUN_LABEL,
    SANDBOX_UID,
    TTL_LABEL,
    WORKDIR,
    DockerOptions,
    connect,
)
from sandboxes.sandbox_python import Choice, choose
from sandboxes.setup_layer import environment_image
from sandboxes.workspace_tar import reown

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Started:
    client: Any
    container: Any
    volume: Any
    image_id: str
    agent: AgentClient | None  # None: commands go through `docker exec`


def workspace_tar(repo: Path, commit: str) -> bytes:
    return reown(archive(repo, commit), SANDBOX_UID)


def choose_image(config: SandboxConfig, repo: Path, commit: str) -> Choice:
    """The sandbox image (and its Python) for `repo` at `commit`: sandbox_python.choose."""
    client = connect()
    try:
        return choose(client, config, repo, commit)
    finally:
        client.close()


def environment(
    config: SandboxConfig,
    image: str,
    repo: Path,
    commit: str,
    *,
    tar_bytes: bytes | None = None,
    shown: Callable[[str], None] | None = None,
) -> str:
    """The id of the environment image `[sandbox] setup` makes from `image`; each line of its
    progress is logged, and given to `shown` too."""

    def progress(line: str) -> None:
        log.info("setup: %s", line)
        if shown is not None:
            shown(f"setup: {line}")

    return environment_image(
        config, repo, commit, image=image, workspace_tar=tar_bytes, progress=progress
    ).image_id


def put_archive(container: Any, data: bytes) -> None:
    if not container.put_archive(WORKDIR, data):
        raise SandboxError("docker refused to copy files into the workspace")


def start(image: str, options: DockerOptions, run_id: str, tar_bytes: bytes) -> Started:
    client = connect()
    sandbox_id = uuid.uuid4().hex[:12]
    name = f"cascade-{sandbox_id}"
    labels = {
        RUN_LABEL: run_id or sandbox_id,
        CREATED_LABEL: str(int(time.time())),
        TTL_LABEL: str(options.ttl),
        OWNER_LABEL: f"{socket.gethostname()}:{os.getpid()}",
    }
    volume = container = None
    try:
        image_id = str(client.images.get(image).id)
        volume = client.volumes.create(name=name, labels=labels, **_volume_driver(options))
        container = client.containers.create(
            name=name, **container_spec(options, image, name, labels)
        )
        if options.workspace == "tmpfs":
            # A tmpfs volume exists only while a container has it mounted: fill it after start.
            container.start()
            put_archive(container, tar_bytes)
        else:
            put_archive(container, tar_bytes)  # a volume takes an archive unstarted
            container.start()
        return Started(client, container, volume, image_id, _attach(container))
    except NotFound as exc:
        _cleanup(container, volume)
        raise SandboxError(
            f"sandbox image {image} not found: build it with `cascade sandbox build`"
        ) from exc
    except (DockerException, SandboxError) as exc:
        _cleanup(container, volume)
        if isinstance(exc, SandboxError):
            raise
        hint = ""
        if "no space left" in str(exc).lower() and options.workspace == "tmpfs":
            hint = (
                f" (the in-memory workspace is capped at {options.workspace_size}: raise "
                '[sandbox.options] workspace_size, or set workspace = "disk")'
            )
        raise SandboxError(f"could not start a sandbox container: {explain(exc)}{hint}") from exc


def _attach(container: Any) -> AgentClient | None:
    try:
        return AgentClient.attach(container)
    except Exception as exc:  # whatever broke, commands still run, through `docker exec`
        log.warning("no command server in %s (%s): using docker exec", container.name, exc)
        return None


def _volume_driver(options: DockerOptions) -> dict[str, Any]:
    if options.workspace != "tmpfs":
        return {}
    mount = f"size={options.workspace_size},uid={SANDBOX_UID},gid={SANDBOX_UID},mode=0755"
    return {"driver": "local", "driver_opts": {"type": "tmpfs", "device": "tmpfs", "o": mount}}


def _cleanup(container: Any, volume: Any) -> None:
    for item in (container, volume):
        if item is not None:
            with contextlib.suppress(DockerException):
                item.remove(force=True)


def explain(exc: BaseException) -> str:
    detail = getattr(exc, "explanation", None) or str(exc)
    return str(detail).strip().splitlines()[0][:300] if str(detail).strip() else repr(exc)
