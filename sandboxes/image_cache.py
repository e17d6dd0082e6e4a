"""The sandbox images as a CI cache (`cascade sandbox cache-key | save`): a key computed before
anything is built, from everything the images of a repository are built from, and the images
themselves as one `docker save` tarball, so that an engine that loads it builds nothing."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import platform
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docker.errors import DockerException, ImageNotFound

import cascade
from cascade.config import SandboxConfig
from cascade.errors import SandboxError, UsageError
from cascade.workspace.checkout import resolve_commit
from sandboxes.base_image import SUITE
from sandboxes.docker_api import ENV_REPOSITORY, DockerOptions
from sandboxes.sandbox_python import DEBIAN_PYTHON, choose, requirement, variant
from sandboxes.setup_git import git_facts
from sandboxes.setup_key import environment_key

KEY_VERSION = "1"  # bump when what the key covers changes
KEY_PREFIX = "cascade-sandbox-"
SOURCE = Path(__file__).resolve().parent  # every module here: conservatively, all of them
CHUNK = 1 << 20
BUILD_FIRST = "run `cascade sandbox build` first"


@dataclass(frozen=True)
class SavedImage:
    ref: str
    image_id: str
    layers: tuple[str, ...]  # its root filesystem's layer digests, base first


def head(repo: Path, config: SandboxConfig) -> str | None:
    """The commit `cascade sandbox build` reads `repo` at, or None when it is not a git checkout
    (then no requirement is read); an error when `[sandbox] setup` needs one, as build says."""
    try:
        return resolve_commit(repo)
    except UsageError:
        if config.setup:
            raise
        return None


def cache_key(config: SandboxConfig, repo: Path) -> str:
    """`cascade-sandbox-<32 hex>`: changes with what the images `cascade sandbox build` makes
    for `repo` at HEAD are built from (`key_inputs`), and with nothing else: a commit that
    changes only source code keeps it."""
    payload = json.dumps(key_inputs(config, repo, head(repo, config)), sort_keys=True)
    return KEY_PREFIX + hashlib.sha256(payload.encode()).hexdigest()[:32]


def key_inputs(config: SandboxConfig, repo: Path, commit: str | None) -> dict[str, Any]:
    """What the images are built from, as far as it is known before a build: the code that
    builds them, the settings, the machine, the Python the repository asks for and, with
    `[sandbox] setup`, what the environment's key covers besides the sandbox image's id."""
    options = DockerOptions.from_config(config)  # refuses bad [sandbox.options] (exit 2)
    inputs: dict[str, Any] = {
        "version": KEY_VERSION,
        "cascade": _installed_version(),
        "source": source_digest(),
        "machine": platform.machine(),
        # Names as given: an unpinned tool is taken at its newest when the image is first built
        # and kept while the image's own build key holds, here as on any machine.
        "tools": list(options.tools),
        "sandbox": config.model_dump(mode="json"),
        "requires": None,
        "environment": None,
    }
    if commit is None:
        return inputs
    if not config.python:  # `[sandbox] python` (in "sandbox") decides alone when it is set
        found = requirement(repo, commit)
        inputs["requires"] = str(found.spec) if found is not None else None
    if config.setup:
        facts = git_facts(repo, commit) if config.setup_git else None
        # The base image's id is left out: the rest of this key decides it.
        inputs["environment"] = environment_key("", config.setup, repo, commit, facts)
    return inputs


def source_digest() -> str:
    """sha256 of the name and content of every module of this package, which builds images."""
    digest = hashlib.sha256()
    for path in sorted(SOURCE.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def needed_images(client: Any, config: SandboxConfig, repo: Path) -> list[SavedImage]:
    """Every image `cascade sandbox build` would find up to date for `repo` at HEAD: the base it
    chose and the sandbox image, the Python variant's base and image when the repository asks
    for another Python, and the environment image with `[sandbox] setup`. A SandboxError
    naming what is missing when one is not built (yet)."""
    options = DockerOptions.from_config(config)
    commit = head(repo, config)
    found: dict[str, SavedImage] = {}
    if not config.python:  # build makes config.image first, whatever the repository asks
        _add_built(client, found, _base(client, options.base, SUITE), config.image)
    if commit is None:
        image, version = config.image, config.python
        if config.python:
            image = variant(config.image, config.python)
    else:
        choice = choose(client, config, repo, commit)
        image, version = choice.image, ".".join(choice.python.split(".")[:2])
    if image != config.image:
        suite = DEBIAN_PYTHON[version][0] if version in DEBIAN_PYTHON else ""
        _add_built(client, found, _base(client, f"python:{version}-slim", suite), image)
    if config.setup and commit is not None:
        facts = git_facts(repo, commit) if config.setup_git else None
        key = environment_key(found[image].image_id, config.setup, repo, commit, facts)
        found[f"{ENV_REPOSITORY}:{key}"] = _get(client, f"{ENV_REPOSITORY}:{key}")
    return list(found.values())


def save_images(client: Any, images: list[SavedImage], output: Path) -> int:
    """`docker save` of `images` (shared layers once) into `output`, written whole or not at
    all (a temporary file renamed); its size in bytes."""
    output.parent.mkdir(parents=True, exist_ok=True)
    names = [image.ref for image in images]
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", dir=output.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            # docker-py's get_image takes one name; the engine's /images/get takes several (as
            # `docker save a b` does), so their shared layers are written once.
            api = client.api
            response = api._get(api._url("/images/get"), params={"names": names}, stream=True)
            api._raise_for_status(response)
            for chunk in response.iter_content(chunk_size=CHUNK):
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would keep `docker load` by others out
        os.replace(tmp, output)
    except (DockerException, OSError) as exc:  # OSError: requests' errors too
        raise SandboxError(f"docker save of {', '.join(names)} into {output}: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):  # gone once renamed; a failure leaves no part file
            os.unlink(tmp)
    return output.stat().st_size


def _add_built(client: Any, found: dict[str, SavedImage], base_ref: str, image_ref: str) -> None:
    """Add `image_ref` and the base it was built from; refused when it was not built (yet), or
    not from that base as it is now (FROM: the base's layers come first in its own)."""
    built, base = _get(client, image_ref), _get(client, base_ref)
    if built.layers[: len(base.layers)] != base.layers:
        raise SandboxError(f"{image_ref} was not built from {base_ref} as it is now: {BUILD_FIRST}")
    found |= {base_ref: base, image_ref: built}


def _base(client: Any, wanted: str, suite: str) -> str:
    """The base build chose, as it chooses (image.py `_choose_base`), without pulling: `wanted`
    when the engine has it, else the Debian release made here by debootstrap."""
    if _has(client, wanted) or not suite:
        return wanted
    return f"cascade-base:{suite}"


def _has(client: Any, ref: str) -> bool:
    try:
        client.images.get(ref)
    except ImageNotFound:
        return False
    except (DockerException, OSError) as exc:
        raise SandboxError(f"docker: {exc}") from exc
    return True


def _get(client: Any, ref: str) -> SavedImage:
    try:
        image = client.images.get(ref)
    except ImageNotFound:
        raise SandboxError(f"image {ref} is not there (not built yet): {BUILD_FIRST}") from None
    except (DockerException, OSError) as exc:
        raise SandboxError(f"docker: {exc}") from exc
    layers = (image.attrs.get("RootFS") or {}).get("Layers") or []
    return SavedImage(ref, str(image.id), tuple(layers))


def _installed_version() -> str:
    try:
        return importlib.metadata.version("cascade-engine")
    except importlib.metadata.PackageNotFoundError:  # a source checkout, not installed
        return cascade.__version__
