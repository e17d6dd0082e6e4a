"""`cascade config show` lists every setting a run would use, each part's options with their
defaults among them, says where each value came from, and refuses what a run would refuse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from cascade.cli.main import app

runner = CliRunner()
CASCADE = str(Path(sys.executable).parent / "cascade")


def _show(repo: Path, *extra: str) -> tuple[int, str, str]:
    """Through the installed entry point, from outside the repository."""
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    argv = [CASCADE, "config", "show", "--repo", str(repo), *extra]
    out = subprocess.run(
        argv, cwd=repo.parent, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    return out.returncode, out.stdout, out.stderr


def test_options_are_listed_with_their_defaults_and_origins(tmp_path: Path) -> None:
    config = tmp_path / "cascade.toml"
    config.write_text(
        '[gate]\nevaluators = ["diff_scope", "pytest"]\n'
        "[gate.options.pytest]\ntimeout = 30\n"
        '[sandbox]\nbackend = "docker"\n[sandbox.options]\nmem_limit = "4g"\n'
    )
    code, out, err = _show(tmp_path, "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["gate.options.pytest.timeout"] == {"value": 30.0, "origin": str(config)}
    assert shown["gate.options.pytest.run_full_suite"] == {"value": True, "origin": "default"}
    assert shown["gate.options.diff_scope.max_files"]["origin"] == "default"
    assert shown["sandbox.options.mem_limit"] == {"value": "4g", "origin": str(config)}
    assert shown["sandbox.options.pids_limit"] == {"value": 512, "origin": "default"}
    assert "gate.options.mypy.timeout" not in shown  # only the evaluators the gate runs
    code, text, _ = _show(tmp_path)
    assert f"gate.options.pytest.timeout = 30.0    # {config}" in text.splitlines()


def test_a_misspelt_option_is_refused_as_a_run_would(tmp_path: Path) -> None:
    (tmp_path / "cascade.toml").write_text(
        '[sandbox]\nbackend = "docker"\n[sandbox.options]\nmem_limt = "4g"\n'
    )
    code, _, err = _show(tmp_path)
    assert code == 2
    assert "[sandbox.options] is invalid for the docker backend: mem_limt" in err
    (tmp_path / "cascade.toml").write_text("[gate.options.pytest]\ntimout = 3\n")
    code, _, err = _show(tmp_path)
    assert code == 2 and "[gate.options.pytest] is invalid: `timout`: unknown key" in err


def test_a_misspelt_sandbox_option_stops_fix_before_any_run_folder(demo: Path) -> None:
    with (demo / "cascade.toml").open("a") as config:
        config.write('\n[sandbox.options]\nmem_limt = "4g"\n')
    result = runner.invoke(app, ["fix", "DEMO-1", "--repo", str(demo), "--sandbox", "docker"])
    assert result.exit_code == 2, result.stderr
    assert "mem_limt" in result.stderr
    assert not (demo / ".cascade" / "runs").exists()
