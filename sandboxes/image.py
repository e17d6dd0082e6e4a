"""Build the sandbox image with no container registry: the configured base when the engine has it
(or can pull it), else a Debian base made here with debootstrap (or a given rootfs tar); for a
Python other than that image's, python:3.X-slim or the Debian release that ships it. The gate's
tools go in from wheels fetched on the host, installed with `--no-index` and the network off."""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
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
    connect,
)
from sandboxes.image_wheels import fetch_wheels
from sandboxes.sandbox_python import (
    DEBIAN_PYTHON,
    PYTHON_LABEL,
    built,
    image_python,
    offline_versions,
    requirement,
    variant,
    wanted,
)

Progress = Callable[[str], None]
PULL_TIMEOUT = 20  # seconds: a registry that does not answer quickly is not there

# Asked of the base image (network off): its Python, its machine, and the commands the sandbox uses.
PROBE = (
    "import json, platform, shutil, sys; print(json.dumps({"
    "'python': '%d.%d' % sys.version_info[:2], 'full': platform.python_version(), "
    "'machine': platform.machine(), 'glibc': platform.libc_ver()[1], "
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
    repo: Path | None = None,
    commit: str = "HEAD",
) -> str:
    """Build (or find up to date) the sandbox image and return the id of the one sandboxes of
    `repo` will run: `config.image` from the configured base, or, when `[sandbox] python` names a
    version or the repository's `requires-python` excludes that image's Python, the version's
    own image (`sandbox_python.variant`), from python:3.X-slim or the Debian release shipping it."""
    options = DockerOptions.from_config(config)
    client = client or connect(timeout=600)
    started = time.monotonic()
    version = config.python or None
    if version is None:
        base_ref = _choose_base(client, base or options.base, base_rootfs, progress)
        image_id = _build(client, options, config.image, base_ref, progress)
        if repo is not None:
            default = image_python(client, config.image)
            found = requirement(repo, commit)
            version, why = wanted(config, found, default, built(client, config.image))
            progress(f"sandbox Python: {why}")
        if version is None:
            progress(f"{config.image} ready in {time.monotonic() - started:.0f}s")
            return image_id
    tag = variant(config.image, version)
    if not config.python:  # --base and --base-rootfs were for config.image, built above
        base = base_rootfs = None
    base_ref = _python_base(client, version, base, base_rootfs, progress)
    image_id = _build(client, options, tag, base_ref, progress, python=version)
    progress(f"{tag} (Python {version}) ready in {time.monotonic() - started:.0f}s")
    return image_id


def _build(
    client: Any,
    options: DockerOptions,
    tag: str,
    base_ref: str,
    progress: Progress,
    *,
    python: str | None = None,
) -> str:
    base_id = client.images.get(base_ref).id
    probe = _probe(client, base_ref)
    if python is not None and probe["python"] != python:
        raise SandboxError(
            f"base image {base_ref} has Python {probe['full']}, not the {python} asked for"
        )
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
    existing = _existing(client, tag)
    if existing is not None and existing.labels.get(BUILD_KEY_LABEL) == key:
        progress(f"{tag} is up to date ({existing.id[:19]})")
        return str(existing.id)
    wheels = fetch_wheels(
        options.tools, python=probe["python"], full=probe["full"], machine=probe["machine"],
        glibc=probe.get("glibc", ""), progress=progress,
    )  # fmt: skip
    labels = {BUILD_KEY_LABEL: key, PYTHON_LABEL: probe["full"]}
    with tempfile.TemporaryDirectory(prefix="cascade-build-") as tmp:
        context = Path(tmp)
        shutil.copytree(wheels, context / "wheels")
        (context / "Dockerfile").write_text(dockerfile)
        note = " (apt-get needs the network)" if apt else " (network off)"
        progress(f"building {tag} from {base_ref}, Python {probe['full']}{note}")
        image_id = _docker_build(client, context, tag, labels, network=bool(apt), progress=progress)
    if existing is not None and existing.id != image_id:  # the old build, now untagged
        with contextlib.suppress(DockerException):  # still used by a container: keep it
            client.images.remove(existing.id)
    progress(f"built {tag} ({image_id[:19]})")
    return image_id


def _choose_base(client: Any, wanted: str, rootfs: Path | None, progress: Progress) -> str:
    if rootfs is not None:
        return local_base(client, rootfs=rootfs, progress=progress)
    if _present_or_pulled(client, wanted, progress):
        return wanted
    return local_base(client, rootfs=None, progress=progress)


def _python_base(
    client: Any, version: str, base: str | None, rootfs: Path | None, progress: Progress
) -> str:
    """A base with Python `version`: the one given, else python:<version>-slim when present or
    pullable, else the Debian release that ships it; refused when none of these can be had."""
    if rootfs is not None or base is not None:
        return _choose_base(client, base or "", rootfs, progress)
    official = f"python:{version}-slim"
    if _present_or_pulled(client, official, progress):
        return official
    if version not in DEBIAN_PYTHON:
        raise SandboxError(
            f"Python {version} cannot be had here: {official} is not in docker and cannot be "
            f"pulled, and offline cascade builds only {offline_versions()}. Choose one of "
            f"those in [sandbox] python, or `docker load` an image of {official}."
        )
    suite = DEBIAN_PYTHON[version][0]
    return local_base(client, rootfs=None, progress=progress, suite=suite)


def _present_or_pulled(client: Any, wanted: str, progress: Progress) -> bool:
    try:
        client.images.get(wanted)
        progress(f"base {wanted}: present")
        return True
    except ImageNotFound:
        pass
    progress(f"base {wanted}: not present, trying to pull (at most {PULL_TIMEOUT}s)")
    try:
        connect(timeout=PULL_TIMEOUT).images.pull(wanted)
        return True
    except (DockerException, OSError) as exc:
        detail = str(getattr(exc, "explanation", None) or exc).strip().splitlines()
        progress(f"cannot pull {wanted} ({detail[0][:160] if detail else exc!r}); local base")
    return False


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
    client: Any,
    context: Path,
    tag: str,
    labels: dict[str, str],
    *,
    network: bool,
    progress: Progress,
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
            labels=labels,
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


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]
