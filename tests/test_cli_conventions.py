"""The conventions a command-line user expects, through the installed entry point in a fresh
process, from a directory outside any repository: `--version`, `-h`, `python -m cascade`, and
`-v`/`-q` deciding which log lines reach stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from cascade import __version__

CASCADE = str(Path(sys.executable).parent / "cascade")


def _run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize(
    "argv", [[CASCADE], [sys.executable, "-m", "cascade"]], ids=["cascade", "python -m"]
)
def test_version_names_cascade_litellm_and_python(argv: list[str], tmp_path: Path) -> None:
    out = _run([*argv, "--version"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (
        f"cascade {__version__} (litellm {version('litellm')}, Python {sys.version.split()[0]})"
    )


def test_dash_h_is_help_for_the_app_and_its_commands(tmp_path: Path) -> None:
    top = _run([CASCADE, "-h"], tmp_path)
    assert top.returncode == 0 and "Usage: cascade" in top.stdout and "fix" in top.stdout
    for command in (["fix"], ["proof", "verify"], ["config", "show"], ["replay"]):
        sub = _run([CASCADE, *command, "-h"], tmp_path)
        assert sub.returncode == 0, (command, sub.stderr)
        assert f"Usage: cascade {' '.join(command)}" in sub.stdout


def test_verbosity_decides_which_log_lines_reach_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    # An environment variable that looks like a setting but names no section: a warning.
    env_warning = "CASCADE_NOPE__X is not a cascade setting"
    monkeypatch.setenv("CASCADE_NOPE__X", "1")
    plain = _run([CASCADE, "config", "show", "--repo", str(repo)], tmp_path)
    quiet = _run([CASCADE, "-q", "config", "show", "--repo", str(repo)], tmp_path)
    loud = _run([CASCADE, "-v", "config", "show", "--repo", str(repo)], tmp_path)
    for out in (plain, quiet, loud):
        assert out.returncode == 0, out.stderr
        assert "sandbox.backend" in out.stdout  # the result itself is never a log line
    assert f"cascade: warning: {env_warning}" in plain.stderr
    assert "info:" not in plain.stderr
    assert quiet.stderr == ""
    assert f"cascade: info: configuration: defaults (none in {repo})" in loud.stderr
    assert env_warning in loud.stderr


def test_help_keeps_bracketed_config_names(tmp_path: Path) -> None:
    out = _run([CASCADE, "sandbox", "build", "--help"], tmp_path)
    assert out.returncode == 0, out.stderr
    assert "[sandbox] python" in " ".join(out.stdout.split())  # not eaten as markup
    fix = _run([CASCADE, "fix", "--help"], tmp_path)
    assert "Where run folders go (default: .cascade/runs, or [run] out)" in " ".join(
        fix.stdout.split()
    )


def test_out_naming_a_file_is_said_so(demo: Path, tmp_path: Path) -> None:
    target = tmp_path / "afile"
    target.write_text("")
    argv = [
        CASCADE,
        "fix",
        "DEMO-1",
        "--repo",
        str(demo),
        "--sandbox",
        "local",
        "--out",
        str(target),
    ]
    out = _run(argv, tmp_path)
    assert out.returncode == 2
    assert f"{target} is a file: run folders go in a folder" in out.stderr
    assert "already exists" not in out.stderr


def test_a_zero_cost_cap_is_refused_alike_by_fix_and_replay(demo: Path, tmp_path: Path) -> None:
    for command in (["fix", "DEMO-1"], ["replay"]):
        out = _run([CASCADE, *command, "--repo", str(demo), "--max-cost-usd", "0"], tmp_path)
        assert out.returncode == 2, (command, out.stderr)
        assert "--max-cost-usd must be more than 0, not 0" in out.stderr
