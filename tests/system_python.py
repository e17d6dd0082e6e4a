"""A sandbox whose `python` is the system one, without the gate's tools: how an evaluator
behaves in a sandbox image built without them (tests of ruff and mypy)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from cascade.records import ExecResult
from sandboxes.local_sandbox import LocalSandbox

SYSTEM = Path("/usr/bin/python3")


class SystemPythonSandbox(LocalSandbox):
    """The local sandbox with `bin_dir` (a folder whose `python` is the system one) first on
    PATH once it is set; it is set after opening, so the workspace is set up normally."""

    bin_dir: Path | None = None

    async def exec(
        self, argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None
    ) -> ExecResult:
        if self.bin_dir is not None:
            env = {**(env or {}), "PATH": f"{self.bin_dir}:/usr/bin:/bin"}
        return await super().exec(argv, timeout=timeout, env=env)


def python_without(module: str, where: Path) -> Path:
    """A folder under `where` whose `python` is a system python3 lacking `module`; skips the
    test when this machine has none."""
    probe = subprocess.run([SYSTEM, "-m", module, "--version"], capture_output=True, check=False)
    if not SYSTEM.exists() or probe.returncode == 0:
        pytest.skip(f"needs a system python3 without {module}")
    assert Path(sys.executable) != SYSTEM
    (where / "bin").mkdir()
    (where / "bin" / "python").symlink_to(SYSTEM)
    return where / "bin"
