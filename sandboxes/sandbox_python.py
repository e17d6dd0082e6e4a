"""Which Python a sandbox runs: `[sandbox] python = "3.X"`, else the sandbox image's own unless
the repository's `requires-python` (or setup.cfg's `python_requires`) excludes it. Offline, a
version comes from the Debian release that ships it (debootstrap); with a registry, from
`python:3.X-slim`. A version other than the image's own is built under a tag of its own."""

from __future__ import annotations

import configparser
import logging
import subprocess
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docker.errors import DockerException, ImageNotFound
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from cascade.config import SandboxConfig
from cascade.errors import ConfigError, SandboxError

log = logging.getLogger(__name__)

# Versions a sandbox can have with no registry: the Debian release that ships each (its
# python3), and that release's patch version, used to match `requires-python` before a build.
DEBIAN_PYTHON: dict[str, tuple[str, str]] = {
    "3.9": ("bullseye", "3.9.2"),
    "3.11": ("bookworm", "3.11.2"),
    "3.13": ("trixie", "3.13.5"),
}
PYTHON_LABEL = "cascade.python"  # on a sandbox image built here: its Python's full version
PROBE = "import platform; print(platform.python_version())"

_versions: dict[str, str] = {}  # image id -> its Python, probed once per process
_versions_guard = threading.Lock()


@dataclass(frozen=True)
class Requirement:
    """A repository's own Python requirement, and where it was read."""

    spec: SpecifierSet
    where: str  # e.g. "requires-python '>=3.12' in pyproject.toml"

    def allows(self, version: str) -> bool:
        try:
            return self.spec.contains(Version(version), prereleases=True)
        except InvalidVersion:
            return False


@dataclass(frozen=True)
class Choice:
    """The image a sandbox of this configuration and commit runs, and its Python."""

    image: str
    python: str  # full version, e.g. "3.11.2"
    why: str  # one line for progress: why this Python


def offline_versions() -> str:
    return ", ".join(f"{v} (Debian {suite})" for v, (suite, _full) in DEBIAN_PYTHON.items())


def variant(image: str, version: str) -> str:
    """The tag a version's own sandbox image is built under: `cascade-sandbox:python3.13` for
    `cascade-sandbox:latest`, else `<name>:<tag>-python3.13`."""
    name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:  # no tag (a registry port is not one)
        name, tag = image, "latest"
    return f"{name}:python{version}" if tag == "latest" else f"{name}:{tag}-python{version}"


def requirement(repo: Path, commit: str) -> Requirement | None:
    """`[project] requires-python` of pyproject.toml at `commit`, else setup.cfg's
    `[options] python_requires`; None when neither says (or what it says cannot be read)."""
    text = _show(repo, commit, "pyproject.toml")
    raw, where = None, ""
    if text is not None:
        try:
            project = tomllib.loads(text).get("project", {})
        except tomllib.TOMLDecodeError:
            project = {}
        if isinstance(project, dict) and isinstance(project.get("requires-python"), str):
            raw, where = project["requires-python"], "pyproject.toml"
    if raw is None and (text := _show(repo, commit, "setup.cfg")) is not None:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(text)
            raw = parser.get("options", "python_requires", fallback=None)
        except configparser.Error:
            raw = None
        where = "setup.cfg"
    if not raw or not raw.strip():
        return None
    try:
        spec = SpecifierSet(raw.strip())
    except InvalidSpecifier:
        log.warning("ignoring %s: %r is not a version specifier", where, raw)
        return None
    field = "requires-python" if where == "pyproject.toml" else "python_requires"
    return Requirement(spec, f"{field} {str(spec)!r} in {where}")


def wanted(
    config: SandboxConfig, found: Requirement | None, default: str | None, built: dict[str, str]
) -> tuple[str | None, str]:
    """The "3.X" to build or run (None: the image's own, of full version `default`, None when
    not built yet) and why. `built` maps the versions with an image of their own to their full
    versions. Pure: a version the requirement excludes is refused with what could be had."""
    if config.python:
        return config.python, f"Python {config.python} ([sandbox] python)"
    if found is None:
        own = f"Python {default}, the image's own" if default else "the image's own Python"
        return None, f"{own} (the repository names no requirement)"
    if default is not None and found.allows(default):
        return None, f"Python {default}, the image's own ({found.where})"
    known = {v: full for v, (_suite, full) in DEBIAN_PYTHON.items()} | built
    fits = sorted((v for v, full in known.items() if found.allows(full)), key=_order)
    if not fits:
        have = f"the image's Python {default} does not meet it" if default else "it"
        raise ConfigError(
            f"{found.where}: {have}, and no Python that can be had offline does "
            f"({offline_versions()}). Set [sandbox] python to the version you need; "
            "`cascade sandbox build` then pulls python:3.X-slim when a registry answers."
        )
    excluded = f" (it excludes the image's {default})" if default else ""
    return fits[-1], f"Python {fits[-1]}, for {found.where}{excluded}"


def choose(client: Any, config: SandboxConfig, repo: Path, commit: str) -> Choice:
    """The image (and Python) a sandbox of `repo` at `commit` runs; a SandboxError saying how
    to build it when it is not there."""
    default = image_python(client, config.image)
    version, why = wanted(config, requirement(repo, commit), default, built(client, config.image))
    if version is None:
        if default is None:
            raise SandboxError(
                f"sandbox image {config.image} not found: build it with `cascade sandbox build`"
            )
        return Choice(config.image, default, why)
    tag = variant(config.image, version)
    full = image_python(client, tag)
    if full is None and version not in DEBIAN_PYTHON:
        raise ConfigError(
            f"{why}: there is no sandbox image for it ({tag}), and only "
            f"{offline_versions()} can be built offline. Choose one of those in [sandbox] "
            f"python, or run `cascade sandbox build` where a registry has python:{version}-slim."
        )
    if full is None:
        raise SandboxError(
            f"{why}: there is no sandbox image for it ({tag}) yet; build it with `cascade "
            f"sandbox build` in this repository (offline, from Debian "
            f"{DEBIAN_PYTHON[version][0]}: a few minutes, once)"
        )
    return Choice(tag, full, why)


def built(client: Any, image: str) -> dict[str, str]:
    """The versions that have an image of their own next to `image`, with their full versions."""
    name, _, prefix = variant(image, "").rpartition(":")  # e.g. "cascade-sandbox", "python"
    found: dict[str, str] = {}
    try:
        images = client.images.list(name=name)
    except (DockerException, OSError) as exc:
        raise SandboxError(f"docker: cannot list images: {exc}") from exc
    for item in images:
        full = (item.labels or {}).get(PYTHON_LABEL, "")
        for tag in item.tags:
            version = tag.removeprefix(f"{name}:{prefix}")
            if tag != version and full.startswith(f"{version}."):
                found[version] = full
    return found


def image_python(client: Any, ref: str) -> str | None:
    """The full Python version of image `ref` (its label, else asked of the image once per
    process), or None when there is no such image."""
    try:
        image = client.images.get(ref)
    except ImageNotFound:
        return None
    except (DockerException, OSError) as exc:
        raise SandboxError(f"docker: {exc}") from exc
    label = (image.labels or {}).get(PYTHON_LABEL)
    if label:
        return str(label)
    with _versions_guard:
        if image.id in _versions:
            return _versions[image.id]
    try:
        out = client.containers.run(
            image.id, ["python3", "-c", PROBE], remove=True, network_mode="none"
        )
        version = str(Version(out.decode().strip().splitlines()[-1]))
    except (DockerException, OSError, ValueError, IndexError, InvalidVersion) as exc:
        raise SandboxError(f"sandbox image {ref} has no usable python3: {exc}") from exc
    with _versions_guard:
        _versions[image.id] = version
    return version


def _order(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def _show(repo: Path, commit: str, path: str) -> str | None:
    proc = subprocess.run(
        ["git", "-C", str(repo), "show", f"{commit}:{path}"], capture_output=True, check=False
    )
    return proc.stdout.decode(errors="replace") if proc.returncode == 0 else None
