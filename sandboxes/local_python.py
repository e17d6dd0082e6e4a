"""Which Python the local sandbox runs the user's project with, and whether it has the gate's
tools. Not cascade's own interpreter: after `pipx install cascade-engine` that one has neither
pytest nor the project's dependencies. In order: `[sandbox.options] python`, the repository's
own virtualenv (`.venv/` or `venv/` in the checkout), else `python3` on PATH (an activated
virtualenv's, when there is one)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from cascade.config import SandboxConfig
from cascade.errors import ConfigError

VENVS = (".venv", "venv")


class LocalOptions(BaseModel):
    """`[sandbox.options]` for the local backend."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    python: str = ""  # an interpreter path; "" finds one (see the module's docstring)

    @classmethod
    def from_config(cls, config: SandboxConfig | None) -> LocalOptions:
        """The local backend's options; the Docker backend's are left to it (one
        `[sandbox.options]` table serves both, so `--sandbox local` on a repository configured
        for Docker still runs)."""
        from sandboxes.docker_api import DockerOptions

        options = dict(config.options) if config else {}
        theirs = set(DockerOptions.model_fields) - set(cls.model_fields)
        try:
            return cls.model_validate({k: v for k, v in options.items() if k not in theirs})
        except ValidationError as exc:
            keys = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors())
            raise ConfigError(
                f"[sandbox.options] is invalid for the local backend: {keys} "
                "(it takes `python`, the interpreter to run the project with)"
            ) from None


@dataclass(frozen=True)
class Interpreter:
    path: Path
    how: str  # how it was chosen, for messages


def find_interpreter(repo: Path, config: SandboxConfig | None) -> Interpreter:
    """The interpreter the local sandbox runs `python` as; a ConfigError when none is usable."""
    chosen = LocalOptions.from_config(config).python
    if chosen:
        path = Path(chosen).expanduser()
        path = path if path.is_absolute() else repo / path
        if not _runs(path):
            raise ConfigError(f"[sandbox.options] python = {chosen!r}: not an interpreter here")
        return Interpreter(path, "[sandbox.options] python")
    for name in VENVS:
        own = repo / name / "bin" / "python"
        if _runs(own):
            return Interpreter(own, f"the repository's virtualenv {name}/")
    found = shutil.which("python3")
    if found is None:
        raise ConfigError(
            "the local sandbox needs a Python for the project: no python3 on PATH, no .venv/ in "
            'the repository; set [sandbox.options] python = "/path/to/python"'
        )
    return Interpreter(Path(found), "python3 on PATH")


def _runs(path: Path) -> bool:
    return path.is_file() and path.stat().st_mode & 0o111 != 0


_PROBE = (
    "import importlib.util, json, sys; "
    "print(json.dumps([m for m in sys.argv[1:] if importlib.util.find_spec(m) is None]))"
)


def check_tools(python: Interpreter, modules: Sequence[str]) -> None:
    """A ConfigError naming each module of `modules` that `python` cannot import, and how to
    install them there, before any baseline runs."""
    wanted = sorted(set(modules))
    if not wanted:
        return
    try:
        done = subprocess.run(
            [str(python.path), "-I", "-c", _PROBE, *wanted],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        missing = json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError):
        missing = None
    if missing is None:
        raise ConfigError(f"the local sandbox's Python {python.path} ({python.how}) does not run")
    if missing:
        raise ConfigError(
            f"the local sandbox runs the project with {python.path} ({python.how}), which has no "
            f"{', '.join(missing)}: the gate runs them there. Install them into it "
            f"(`{python.path} -m pip install {' '.join(missing)}`), or point "
            "[sandbox.options] python at an interpreter that has them and the project's "
            "dependencies, or use the Docker sandbox (`--sandbox docker`)"
        )
