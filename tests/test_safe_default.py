"""The default sandbox is safe: with no Docker engine answering, `cascade fix` stops before any
run (exit 3) and says what to do, instead of running model-written code on the host; the local
backend runs only when chosen (`--sandbox local`, or `auto` explicitly, which warns)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CASCADE = str(Path(sys.executable).parent / "cascade")


def _fix(repo: Path, cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    # An engine address where nothing listens: as on a machine where Docker is stopped.
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    env["DOCKER_HOST"] = f"unix://{cwd / 'no-docker.sock'}"
    argv = [CASCADE, "fix", "DEMO-1", "--repo", str(repo), *extra]
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_no_engine_is_exit_3_before_any_run(demo: Path, tmp_path: Path) -> None:
    out = _fix(demo, tmp_path)
    assert out.returncode == 3, out.stderr
    assert "no Docker engine is reachable" in out.stderr
    assert "--sandbox local" in out.stderr  # what to do, if the repository is trusted
    assert "without isolation" not in out.stderr  # nothing ran on the host
    assert not (demo / ".cascade" / "runs").exists()


def test_auto_chosen_explicitly_falls_back_with_a_warning(demo: Path, tmp_path: Path) -> None:
    out = _fix(demo, tmp_path, "--sandbox", "auto")
    assert out.returncode == 0, out.stderr
    assert "no Docker engine answers: falling back to the unsafe local sandbox" in out.stderr
    assert "model-written code runs on this machine without isolation" in out.stderr
