"""Per-repository environments: the `[sandbox] setup` commands run once, with the network, in a
container of the sandbox image holding the repo's tracked files (and, unless `setup_git = false`,
its git metadata), committed as `cascade-env:<key>`. The key covers the base image, the commands,
the dependency files and that metadata: unchanged, it is reused."""

from __future__ import annotations

import os
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from docker.errors import DockerException, ImageNotFound
from docker.types import Mount

from cascade.config import SandboxConfig
from cascade.errors import SandboxError
from cascade.workspace.checkout import archive
from sandboxes.container_spec import REAPER, TMP, container_spec
from sandboxes.docker_api import (
    CREATED_LABEL,
    ENV_REPOSITORY,
    OWNER_LABEL,
    RUN_LABEL,
    SANDBOX_UID,
    SETUP_KEY_LABEL,
    SETUP_LABEL,
    TTL_LABEL,
    WORKDIR,
    DockerOptions,
    connect,
)
from sandboxes.sandbox_python import choose
from sandboxes.setup_commands import run_setup
from sandboxes.setup_git import PREPARE, git_facts, git_tar
from sandboxes.setup_key import environment_key
from sandboxes.workspace_tar import files_tar, reown

Progress = Callable[[str], None]

# pid 1 outlives the budget by this much, then exits: a setup whose host died stops by itself.
TTL_GRACE = 300
# The host's CA bundle goes into the throwaway /tmp volume, and is named by these variables in the
# setup commands' own environment only (per exec: never committed into the image).
CA_FILE = ".cascade-host-ca.pem"
CA_VARIABLES = ("PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")

# One build per key at a time in this process: a batch opening many sandboxes of one repository
# builds its environment once, the others wait and reuse it. (Other processes may build the same
# key concurrently; the last commit keeps the tag, the other image is left for `gc --images`.)
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


@dataclass(frozen=True)
class EnvImage:
    tag: str
    image_id: str
    built: bool  # False when an existing image was reused


def environment_image(
    config: SandboxConfig,
    repo: Path,
    commit: str,
    *,
    image: str | None = None,
    workspace_tar: bytes | None = None,
    progress: Progress = lambda _line: None,
) -> EnvImage:
    """`ensure_env_image` for `[sandbox]` settings, on a connection of its own whose timeout
    allows for committing a large layer. `image`: the sandbox image it starts from (default: the
    one `[sandbox] python` and the repository's requirement choose)."""
    options = DockerOptions.from_config(config)
    client = connect(timeout=int(options.setup_timeout) + 60)
    try:
        image = image or choose(client, config, repo, commit).image
        return ensure_env_image(
            client, image, config.setup, repo, commit, options=options, git=config.setup_git,
            workspace_tar=workspace_tar, progress=progress,
        )  # fmt: skip
    finally:
        client.close()


def ensure_env_image(
    client: Any,
    base_image: str,
    setup: Sequence[str],
    repo: Path,
    commit: str,
    *,
    options: DockerOptions,
    git: bool = True,
    workspace_tar: bytes | None = None,
    progress: Progress = lambda _line: None,
) -> EnvImage:
    """The environment image for `repo` at `commit`, built if no image has its key yet; with
    `git`, setup sees the commit's history and tags. `workspace_tar` is the re-owned `git
    archive` when the caller already has it. Blocking. Images of older keys are left in place:
    `cascade sandbox gc --images` removes unused ones."""
    base_id = _image_id(client, base_image)
    if base_id is None:
        raise SandboxError(
            f"sandbox image {base_image} not found: build it with `cascade sandbox build`"
        )
    facts = git_facts(repo, commit) if git else None
    key = environment_key(base_id, setup, repo, commit, facts)
    tag = f"{ENV_REPOSITORY}:{key}"
    with _key_lock(key):
        image_id = _image_id(client, tag)
        if image_id is not None:
            progress(f"environment {tag}: present, reused")
            return EnvImage(tag, image_id, built=False)
        started = time.monotonic()
        tar = workspace_tar or reown(archive(repo, commit), SANDBOX_UID)
        what = f"{len(setup)} setup commands, network on"
        if facts is not None:
            what += f", git history of {facts['commit'][:12]} and {len(facts['tags'])} tag(s)"
        progress(f"building environment {tag} ({what})")
        image_id = _build(
            client, base_id, setup, key, tar, options=options, progress=progress,
            git=(repo, facts) if facts is not None else None,
        )  # fmt: skip
        progress(f"built {tag} ({image_id[:19]}) in {time.monotonic() - started:.1f}s")
        return EnvImage(tag, image_id, built=True)


def _build(
    client: Any,
    base_id: str,
    setup: Sequence[str],
    key: str,
    tar: bytes,
    *,
    options: DockerOptions,
    progress: Progress,
    git: tuple[Path, dict[str, Any]] | None = None,
) -> str:
    name = f"cascade-setup-{uuid.uuid4().hex[:12]}"
    ttl = int(options.setup_timeout) + TTL_GRACE
    # The usual sandbox labels, so `cascade sandbox gc` removes what a crashed build leaves. A
    # commit would copy them into the image (and so into any container made from it): it blanks
    # them instead, and gc passes over a blank run label.
    labels = {
        RUN_LABEL: name,
        CREATED_LABEL: str(int(time.time())),
        TTL_LABEL: str(ttl),
        OWNER_LABEL: f"{socket.gethostname()}:{os.getpid()}",
    }
    spec = container_spec(options, base_id, name, labels)
    del spec["hostname"], spec["tmpfs"]  # host networking refuses a hostname
    spec.update(
        command=["python3", "-c", REAPER, str(ttl)],
        # Host networking is what lets pip reach an index on machines like this one. Only this
        # one-off container has it: evaluation containers stay `network_mode="none"`. No host
        # environment (no secret) passes in: the spec's environment is the fixed sandbox one.
        network_mode="host",
        read_only=False,  # what setup installs outside the workspace is the point of the image
        # Volumes are never part of a commit: the workspace is filled afresh from `git archive`
        # at every sandbox open (an egg-info or .venv made here must not leak into it), and /tmp
        # (pip's cache, build trees) is thrown away instead of bloating the image.
        mounts=[
            Mount(target=WORKDIR, source=name, type="volume"),
            Mount(target=TMP, source=f"{name}-tmp", type="volume"),
        ],
    )
    container = None
    try:
        for volume in (name, f"{name}-tmp"):
            client.volumes.create(name=volume, labels=labels)
        container = client.containers.create(name=name, **spec)
        _put(container, WORKDIR, tar)
        if git is not None:
            with git_tar(*git, SANDBOX_UID) as dot_git:
                _put(container, WORKDIR, dot_git)
        env: dict[str, str] = {}
        ca = _host_ca_bundle()
        if ca is not None:
            _put(container, TMP, files_tar({CA_FILE: ca}, SANDBOX_UID))
            env = dict.fromkeys(CA_VARIABLES, f"{TMP}/{CA_FILE}")
        container.start()
        run_setup(
            client, container, setup, env=env, budget=options.setup_timeout, progress=progress,
            prepare=PREPARE if git is not None else "",
        )  # fmt: skip
        container.stop(timeout=5)
        image = container.commit(
            repository=ENV_REPOSITORY,
            tag=key,
            conf={"Labels": {**dict.fromkeys(labels, ""), SETUP_LABEL: "1", SETUP_KEY_LABEL: key}},
        )
        return str(image.id)
    except (DockerException, OSError) as exc:  # OSError: requests' connection errors
        raise SandboxError(f"could not build the environment image: {exc}") from exc
    finally:
        _remove(client, container, [name, f"{name}-tmp"])


def _put(container: Any, target: str, data: bytes | IO[bytes]) -> None:
    if not container.put_archive(target, data):
        raise SandboxError(f"docker refused to copy files into {target} of the setup container")


def _image_id(client: Any, ref: str) -> str | None:
    try:
        return str(client.images.get(ref).id)
    except ImageNotFound:
        return None
    except (DockerException, OSError) as exc:
        raise SandboxError(f"docker: {exc}") from exc


def _host_ca_bundle() -> bytes | None:
    """The host's CA bundle (public certificates: a TLS-inspecting proxy on the way to the index
    is common and the image's own bundle would not know it), or None."""
    cafile = ssl.get_default_verify_paths().cafile
    try:
        return Path(cafile).read_bytes() if cafile else None
    except OSError:
        return None


def _remove(client: Any, container: Any, volumes: list[str]) -> None:
    if container is not None:
        with suppress(DockerException):
            container.remove(force=True)
    for volume in volumes:
        with suppress(DockerException):
            client.volumes.get(volume).remove(force=True)


@contextmanager
def _key_lock(key: str) -> Iterator[None]:
    with _locks_guard:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:
        yield
