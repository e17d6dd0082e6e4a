"""Build the sandbox image with no container registry: the configured base when the engine has it
(or can pull it), else a Debian base made here with debootstrap (or a given rootfs tar); the gate's
tools go in from wheels fetched on the host, installed with `--no-index` and the network off."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from docker.errors import DockerException, ImageNotFound

from cascade.config import SandboxConfig
from cascade.errors import SandboxError
from sandboxes.base_image import local_base
from sandboxes.docker_api import (
    BUILD_KEY_LABEL,
    SANDBOX_UID,
    VENV,
    WORKDIR,
    DockerOptions,
    cache_dir,
    connect,
)

Progress = Callable[[str], None]
PULL_TIMEOUT = 20  # seconds: a registry that does not answer quickly is not there
PIP_TIMEOUT = 900

# Asked of the base image (network off): its Python, its machine, and the commands the sandbox uses.
PROBE = (
    "import json, platform, shutil, sys; print(json.dumps({"
    "'python': '%d.%d' % sys.version_info[:2], 'machine': platform.machine(), "
    "'missing': [c for c in ('git', 'timeout', 'sh', 'useradd') if not shutil.which(c)]}))"
)

# The venv belongs to the sandbox user so that `[sandbox] setup` commands (setup_layer.py) can
# install into it; evaluation containers still cannot write it (their root is read-only).
DOCKERFILE = """\
FROM {base}
USER root
{apt}COPY wheels /opt/cascade-wheels
RUN python3 -m venv {venv} \\
 && {venv}/bin/pip install --no-cache-dir --no-index --find-links /opt/cascade-wheels {tools} \\
 && (getent group {uid} >/dev/null || groupadd --gid {uid} sandbox) \\
 && (getent passwd {uid} >/dev/null \\
     || useradd --uid {uid} --gid {uid} --no-create-home --home-dir /tmp --shell /bin/sh sandbox) \\
 && mkdir -p {workdir} && chown {uid}:{uid} {workdir} \\
 && chown -R {uid}:{uid} {venv}
ENV PATH={venv}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    LANG=C.UTF-8 HOME=/tmp PYTHONDONTWRITEBYTECODE=1
WORKDIR {workdir}
USER {uid}:{uid}
"""
# Only for a base without git (e.g. python:3.12-slim): the one step that needs the network.
APT = (
    "RUN apt-get update && apt-get install -y --no-install-recommends git procps "
    "&& rm -rf /var/lib/apt/lists/*\n"
)


def build_image(
    config: SandboxConfig,
    *,
    base: str | None = None,
    base_rootfs: Path | None = None,
    progress: Progress = lambda _line: None,
    client: Any = None,
) -> str:
    """Build (or find up to date) `config.image` and return its image id."""
    options = DockerOptions.from_config(config)
    client = client or connect(timeout=600)
    started = time.monotonic()
    base_ref = _choose_base(client, base or options.base, base_rootfs, progress)
    base_id = client.images.get(base_ref).id
    probe = _probe(client, base_ref)
    apt = APT if probe["missing"] else ""
    dockerfile = DOCKERFILE.format(
        base=base_ref,
        apt=apt,
        venv=VENV,
        tools=" ".join(options.tools),
        uid=SANDBOX_UID,
        workdir=WORKDIR,
    )
    key = _digest(base_id, dockerfile)
    existing = _existing(client, config.image)
    if existing is not None and existing.labels.get(BUILD_KEY_LABEL) == key:
        progress(f"{config.image} is up to date ({existing.id[:19]})")
        return str(existing.id)
    wheels = fetch_wheels(
        options.tools, python=probe["python"], machine=probe["machine"], progress=progress
    )
    with tempfile.TemporaryDirectory(prefix="cascade-build-") as tmp:
        context = Path(tmp)
        shutil.copytree(wheels, context / "wheels")
        (context / "Dockerfile").write_text(dockerfile)
        note = " (apt-get needs the network)" if apt else " (network off)"
        progress(f"building {config.image} from {base_ref}{note}")
        image_id = _docker_build(
            client, context, config.image, key, network=bool(apt), progress=progress
        )
    if existing is not None and existing.id != image_id:  # the old build, now untagged
        with contextlib.suppress(DockerException):  # still used by a container: keep it
            client.images.remove(existing.id)
    progress(f"built {config.image} ({image_id[:19]}) in {time.monotonic() - started:.0f}s")
    return image_id


def _choose_base(client: Any, wanted: str, rootfs: Path | None, progress: Progress) -> str:
    if rootfs is not None:
        return local_base(client, rootfs=rootfs, progress=progress)
    try:
        client.images.get(wanted)
        progress(f"base {wanted}: present")
        return wanted
    except ImageNotFound:
        pass
    progress(f"base {wanted}: not present, trying to pull (at most {PULL_TIMEOUT}s)")
    try:
        connect(timeout=PULL_TIMEOUT).images.pull(wanted)
        return wanted
    except (DockerException, OSError) as exc:
        detail = str(getattr(exc, "explanation", None) or exc).strip().splitlines()
        progress(f"cannot pull {wanted} ({detail[0][:160] if detail else exc!r}); local base")
    return local_base(client, rootfs=None, progress=progress)


def _probe(client: Any, image: str) -> dict[str, Any]:
    try:
        out = client.containers.run(
            image, ["python3", "-c", PROBE], remove=True, network_mode="none", user="0"
        )
        probe: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    except (DockerException, ValueError, IndexError) as exc:
        raise SandboxError(f"base image {image} has no usable python3: {exc}") from exc
    if {"sh", "timeout", "useradd"} & set(probe["missing"]):
        raise SandboxError(f"base image {image} lacks {', '.join(probe['missing'])}")
    return probe


def _existing(client: Any, tag: str) -> Any:
    try:
        return client.images.get(tag)
    except ImageNotFound:
        return None


def _docker_build(
    client: Any, context: Path, tag: str, key: str, *, network: bool, progress: Progress
) -> str:
    image_id = ""
    try:
        stream = client.api.build(
            path=str(context),
            tag=tag,
            rm=True,
            forcerm=True,
            decode=True,
            pull=False,
            labels={BUILD_KEY_LABEL: key},
            network_mode=None if network else "none",
        )
        for chunk in stream:
            if "error" in chunk:
                raise SandboxError(f"docker build failed: {chunk['error'].strip()}")
            line = str(chunk.get("stream", "")).strip()
            if line.startswith(("Step ", "Successfully")):
                progress(line if len(line) <= 100 else line[:97] + "...")
            if "aux" in chunk and "ID" in chunk["aux"]:
                image_id = chunk["aux"]["ID"]
    except DockerException as exc:
        raise SandboxError(f"docker build failed: {exc}") from exc
    return image_id or str(client.images.get(tag).id)


def fetch_wheels(tools: Sequence[str], *, python: str, machine: str, progress: Progress) -> Path:
    """Wheels for `tools` and their dependencies, for the image's Python, in a cache folder.
    Tried offline from the cache first, so a rebuild needs no index once they are there."""
    tag = f"cp{python.replace('.', '')}-{machine}"
    dest = cache_dir() / "wheels" / tag
    dest.mkdir(parents=True, exist_ok=True)
    platforms = [
        f"manylinux_2_{minor}_{machine}" for minor in (36, 35, 34, 31, 28, 27, 24, 17, 12, 5)
    ] + [f"manylinux2014_{machine}", f"manylinux1_{machine}", "any"]
    argv = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--dest",
        str(dest),
        "--only-binary=:all:",
        "--python-version",
        python,
        "--implementation",
        "cp",
        "--abi",
        f"cp{python.replace('.', '')}",
        "--abi",
        "abi3",
        "--abi",
        "none",
        *[arg for p in platforms for arg in ("--platform", p)],
        *tools,
    ]
    offline = subprocess.run(
        [*argv, "--no-index", "--find-links", str(dest)],
        capture_output=True,
        text=True,
        check=False,
        timeout=PIP_TIMEOUT,
    )
    if offline.returncode == 0:
        progress(f"wheels for Python {python} ({machine}): cached in {dest}")
        return dest
    progress(f"downloading wheels for Python {python} ({machine}) into {dest}")
    started = time.monotonic()
    online = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=PIP_TIMEOUT)
    if online.returncode != 0:
        raise SandboxError(f"pip download failed:\n{online.stderr.strip()[-1500:]}")
    count = len(list(dest.glob("*.whl")))
    progress(f"{count} wheels ready in {time.monotonic() - started:.0f}s")
    return dest


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]
