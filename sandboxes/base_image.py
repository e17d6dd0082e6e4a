"""A base image made here, for machines that cannot pull one: a Debian release (minbase, python3,
git; bookworm unless a Python version asks for another) from the Debian mirror apt already uses,
via debootstrap, or a rootfs tar the user brings; imported with `docker import`, cached by tag."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from docker.errors import DockerException, ImageNotFound

from cascade.errors import SandboxError
from sandboxes.docker_api import cache_dir

SUITE = "bookworm"  # the default release (python3 3.11)
PACKAGES = ("python3", "python3-venv", "git", "ca-certificates", "coreutils", "procps")
DEBOOTSTRAP_TIMEOUT = 1800
IMPORT_CHANGES = [
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["/bin/sh"]',
]


def local_base(
    client: Any, *, rootfs: Path | None, progress: Callable[[str], None], suite: str = SUITE
) -> str:
    """The tag of a local base image: imported from `rootfs` (a tar), else made by debootstrap
    of Debian `suite` (`cascade-base:<suite>`). Either is reused when already imported."""
    if rootfs is not None:
        if not rootfs.is_file():
            raise SandboxError(f"--base-rootfs {rootfs}: no such file")
        tag = f"cascade-base:rootfs-{_file_digest(rootfs)[:12]}"
        if not _has_image(client, tag):
            progress(f"importing {rootfs} as {tag}")
            _import(client, rootfs, tag)
        return tag
    tag = f"cascade-base:{suite}"
    if _has_image(client, tag):
        progress(f"base {tag}: present")
        return tag
    mirror = debian_mirror()
    cache_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rootfs-", dir=cache_dir()) as tmp:
        target = Path(tmp) / "rootfs"
        progress(f"debootstrap {suite} (minbase + {', '.join(PACKAGES)}) from {mirror}")
        _debootstrap(target, suite, mirror, progress)
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (target / junk).glob("*"):
                if item.is_file():
                    item.unlink()
        tar = Path(tmp) / "rootfs.tar"
        _run(["tar", "-C", str(target), "--numeric-owner", "-cf", str(tar), "."], "tar")
        progress(f"importing the rootfs as {tag}")
        _import(client, tar, tag)
    return tag


def debian_mirror(etc_apt: Path = Path("/etc/apt")) -> str:
    """The Debian archive URI this machine's apt uses (never a guessed host): the first `deb`
    source, one-line or deb822, that is not a security or updates archive."""
    files = [etc_apt / "sources.list"] if (etc_apt / "sources.list").is_file() else []
    parts = etc_apt / "sources.list.d"
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources"))
    for path in files:
        text = path.read_text(errors="replace")
        entries = _deb822(text) if path.suffix == ".sources" else _one_line(text)
        for uri, suites in entries:
            if "security" in uri:
                continue
            if any("-" not in suite for suite in suites):  # a release, not -updates/-backports
                return uri.rstrip("/")
    raise SandboxError(
        f"no Debian mirror found in {etc_apt}/sources.list(.d): cannot debootstrap a base "
        "image here; pass --base-rootfs TAR or make the base image available to docker"
    )


def _one_line(text: str) -> list[tuple[str, list[str]]]:
    entries = []
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if len(words) < 3 or words[0] != "deb":
            continue
        if words[1].startswith("["):  # options: `deb [signed-by=...] URI suite ...`
            while words and not words[0].endswith("]"):
                words.pop(0)
            words = ["deb", *words[1:]] if words else []
        if len(words) >= 3:
            entries.append((words[1], [words[2]]))
    return entries


def _deb822(text: str) -> list[tuple[str, list[str]]]:
    entries = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            name, value = line.split(":", 1)
            fields[name.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled") == "no":
            continue
        for uri in fields.get("uris", "").split():
            entries.append((uri, fields.get("suites", "").split()))
    return entries


def _debootstrap(target: Path, suite: str, mirror: str, progress: Callable[[str], None]) -> None:
    tool = shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None
    )
    if tool is None:
        raise SandboxError(
            "debootstrap is not installed (apt-get install debootstrap), and no "
            "base image is available: install it or pass --base-rootfs TAR"
        )
    if os.geteuid() != 0:
        raise SandboxError(
            "debootstrap needs root: run `cascade sandbox build` as root once, "
            "or pass --base-rootfs TAR"
        )
    argv = [
        tool,
        "--variant=minbase",
        f"--include={','.join(PACKAGES)}",
        suite,
        str(target),
        mirror,
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    tail: list[str] = []
    for line in proc.stdout:
        tail = [*tail[-20:], line.rstrip()]
        if line.startswith(
            (
                "I: Retrieving Release",
                "I: Installing core",
                "I: Base system installed",
            )
        ):
            progress("  " + line.strip())
    if proc.wait(timeout=DEBOOTSTRAP_TIMEOUT) != 0:
        raise SandboxError("debootstrap failed:\n" + "\n".join(tail))


def _import(client: Any, tar: Path, tag: str) -> None:
    repository, name = tag.rsplit(":", 1)
    try:
        client.api.import_image_from_file(
            str(tar), repository=repository, tag=name, changes=IMPORT_CHANGES
        )
    except DockerException as exc:
        raise SandboxError(f"docker import of {tar} failed: {exc}") from exc
    if not _has_image(client, tag):
        raise SandboxError(f"docker import of {tar} did not produce {tag}")


def _has_image(client: Any, tag: str) -> bool:
    try:
        client.images.get(tag)
    except ImageNotFound:
        return False
    return True


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SandboxError(f"{what} failed: {proc.stderr.strip()[-1000:]}")
