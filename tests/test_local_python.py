"""The local sandbox runs the user's project with the project's Python, not cascade's: its own
virtualenv, or an interpreter named in `[sandbox.options] python`, or `python3` on PATH; one
without the gate's tools is a configuration error naming what is missing and how to install it,
before any baseline. Through the installed entry point, from outside the repository."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

CASCADE = str(Path(sys.executable).parent / "cascade")


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with nothing in it: no pytest, no mypy, no ruff."""
    where = tmp_path_factory.mktemp("bare") / "venv"
    venv.create(where, with_pip=False, symlinks=True)
    return where / "bin"


def _fix(repo: Path, cwd: Path, path: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PATH": path}
    argv = [CASCADE, "fix", "DEMO-1", "--repo", str(repo), "--sandbox", "local", "--json"]
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_a_python_without_the_gates_tools_is_exit_2_naming_them(
    demo: Path, tmp_path: Path, bare_python: Path
) -> None:
    out = _fix(demo, tmp_path, f"{bare_python}:/usr/bin:/bin")
    assert out.returncode == 2, out.stderr
    python = bare_python / "python3"
    # The demo's `money` workflow runs coverage too: the tools of every workflow's gate count.
    said = f"runs the project with {python} (python3 on PATH), which has no coverage, mypy, "
    assert said + "pytest, ruff" in out.stderr
    assert f"`{python} -m pip install coverage mypy pytest ruff`" in out.stderr
    assert "baseline" not in out.stderr and not (demo / ".cascade" / "runs").exists()


def test_the_repositorys_own_virtualenv_is_used(
    demo: Path, tmp_path: Path, bare_python: Path
) -> None:
    # The project's .venv (here: the one these tests run in, which has the tools) wins over a
    # bare python3 on PATH.
    (demo / ".venv").symlink_to(Path(sys.prefix))
    out = _fix(demo, tmp_path, f"{bare_python}:/usr/bin:/bin")
    assert out.returncode == 0, out.stderr


def test_the_configured_python_wins_and_a_wrong_one_is_said(
    demo: Path, tmp_path: Path, bare_python: Path
) -> None:
    config = demo / "cascade.toml"
    base = config.read_text()
    config.write_text(base + f'\n[sandbox.options]\npython = "{bare_python / "python"}"\n')
    path = os.environ["PATH"]  # python3 on PATH has the tools: the setting still decides
    out = _fix(demo, tmp_path, path)
    assert out.returncode == 2 and "([sandbox.options] python), which has no" in out.stderr
    config.write_text(base + '\n[sandbox.options]\npython = "/nowhere/python"\n')
    out = _fix(demo, tmp_path, path)
    assert out.returncode == 2
    assert "[sandbox.options] python = '/nowhere/python': not an interpreter here" in out.stderr


def test_one_options_table_serves_both_backends() -> None:
    from cascade.config import SandboxConfig
    from cascade.errors import ConfigError
    from sandboxes.docker_api import DockerOptions
    from sandboxes.local_python import LocalOptions

    both = SandboxConfig(options={"setup_timeout": 900, "python": "/usr/bin/python3"})
    assert LocalOptions.from_config(both).python == "/usr/bin/python3"
    assert DockerOptions.from_config(both).setup_timeout == 900
    with pytest.raises(ConfigError, match="invalid for the local backend: pyhton"):
        LocalOptions.from_config(SandboxConfig(options={"pyhton": "x"}))
