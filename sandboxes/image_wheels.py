"""Wheels of the gate's tools for a sandbox image's Python, fetched on the host into a cache.
`pip download --python-version` judges wheels by the target Python but environment markers by
the host's, so a dependency only an older Python needs (`tomli; python_version < "3.11"`) is left
out: each wheel's requirements are read again with the target's markers until none is missing."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

from packaging.markers import UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement

from cascade.errors import SandboxError
from sandboxes.docker_api import cache_dir

PIP_TIMEOUT = 900
MAX_ROUNDS = 6  # requirements of requirements: a handful of rounds at most
GLIBC_MINORS = (41, 39, 38, 36, 35, 34, 31, 28, 27, 24, 17, 12, 5)


def fetch_wheels(
    tools: Sequence[str],
    *,
    python: str,
    full: str,
    machine: str,
    glibc: str = "",
    progress: Callable[[str], None],
) -> Path:
    """Wheels for `tools` and their dependencies, for Python `python` ("3.X", full version
    `full`) on `machine` with C library `glibc` ("2.31"; empty: any), in a cache folder. Tried
    offline from the cache first, so a rebuild needs no index once they are there."""
    tag = f"cp{python.replace('.', '')}-{machine}"
    dest = cache_dir() / "wheels" / tag
    dest.mkdir(parents=True, exist_ok=True)
    newest = int(glibc.split(".")[1]) if re.fullmatch(r"2\.\d+", glibc) else max(GLIBC_MINORS)
    platforms = [f"manylinux_2_{m}_{machine}" for m in GLIBC_MINORS if m <= newest]
    platforms += [f"manylinux2014_{machine}", f"manylinux1_{machine}", "any"]
    abi = f"cp{python.replace('.', '')}"
    argv = [
        sys.executable, "-m", "pip", "download", "--dest", str(dest), "--only-binary=:all:",
        "--python-version", python, "--implementation", "cp",
        "--abi", abi, "--abi", "abi3", "--abi", "none",
        *[arg for p in platforms for arg in ("--platform", p)],
    ]  # fmt: skip
    wanted = list(tools)
    environment = {"python_version": python, "python_full_version": full, "extra": ""}
    environment |= {"platform_machine": machine, "implementation_name": "cpython"}
    for _round in range(MAX_ROUNDS):
        _download([*argv, *wanted], dest, python, machine, progress)
        wanted = unmet(dest, environment)
        if not wanted:
            return dest
        progress(f"dependencies Python {python} needs besides: {', '.join(wanted)}")
    raise SandboxError(f"wheels for Python {python} still lack {', '.join(wanted)}")


def unmet(dest: Path, environment: dict[str, str]) -> list[str]:
    """The requirements of the wheels in `dest` that apply in `environment` (markers) and that
    no wheel there provides, as requirement strings without their markers."""
    have = {_name(path.name.split("-", 1)[0]) for path in dest.glob("*.whl")}
    missing: dict[str, str] = {}
    for path in sorted(dest.glob("*.whl")):
        for line in _requires(path):
            try:
                req = Requirement(line)
                applies = req.marker is None or req.marker.evaluate(environment)
            except (InvalidRequirement, UndefinedComparison, UndefinedEnvironmentName):
                continue
            name = _name(req.name)
            if applies and name not in have:
                missing.setdefault(name, f"{req.name}{req.specifier}")
    return sorted(missing.values())


def _download(
    argv: list[str], dest: Path, python: str, machine: str, progress: Callable[[str], None]
) -> None:
    offline = subprocess.run(
        [*argv, "--no-index", "--find-links", str(dest)],
        capture_output=True, text=True, check=False, timeout=PIP_TIMEOUT,
    )  # fmt: skip
    if offline.returncode == 0:
        progress(f"wheels for Python {python} ({machine}): cached in {dest}")
        return
    progress(f"downloading wheels for Python {python} ({machine}) into {dest}")
    started = time.monotonic()
    online = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=PIP_TIMEOUT)
    if online.returncode != 0:
        raise SandboxError(f"pip download failed:\n{online.stderr.strip()[-1500:]}")
    count = len(list(dest.glob("*.whl")))
    progress(f"{count} wheels ready in {time.monotonic() - started:.0f}s")


def _requires(wheel: Path) -> list[str]:
    try:
        with zipfile.ZipFile(wheel) as archive:
            meta = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            text = archive.read(meta).decode(errors="replace")
    except (OSError, zipfile.BadZipFile, StopIteration):
        return []
    head = text.split("\n\n", 1)[0]  # the headers; the description follows a blank line
    return [line[len("Requires-Dist:") :].strip() for line in head.splitlines()
            if line.startswith("Requires-Dist:")]  # fmt: skip


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
