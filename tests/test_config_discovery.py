"""The configuration is found as ruff and pytest find theirs: from the folder a command starts in
up to the repository's root; a `--repo` that does not exist is an error, never the defaults.
Through the installed entry point, in fresh processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CASCADE = str(Path(sys.executable).parent / "cascade")


def _cascade(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    return subprocess.run(
        [CASCADE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_fix_from_a_subfolder_uses_the_repository_and_its_config(demo: Path) -> None:
    out = _cascade("fix", "DEMO-1", "--sandbox", "local", "--json", cwd=demo / "invoicekit")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "verified"  # the demo's replay ladder was used
    assert Path(json.loads(out.stdout)["run_dir"]).parent == demo / ".cascade" / "runs"


def test_the_nearest_config_up_to_the_root_wins(demo: Path) -> None:
    nested = demo / "invoicekit"
    (demo / "cascade.toml").rename(demo / "moved.toml")
    (demo / "pyproject.toml").write_text(
        (demo / "pyproject.toml").read_text() + "\n[tool.cascade.run]\nfeedback_chars = 1234\n"
    )
    shown = _cascade("config", "show", cwd=nested)
    assert shown.returncode == 0, shown.stderr
    line = next(x for x in shown.stdout.splitlines() if x.startswith("run.feedback_chars"))
    assert line.startswith("run.feedback_chars = 1234") and str(demo / "pyproject.toml") in line
    # Above the repository's root nothing is read: a stray config there is someone else's.
    outside = demo.parent / "cascade.toml"
    outside.write_text("[run]\nfeedback_chars = 99\n")
    (demo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    shown = _cascade("config", "show", cwd=nested)
    line = next(x for x in shown.stdout.splitlines() if x.startswith("run.feedback_chars"))
    assert "99" not in line and line.endswith("# default")


def test_a_repo_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    for args in (["config", "show"], ["fix", "X-1"]):
        out = _cascade(*args, "--repo", str(tmp_path / "nope"), cwd=tmp_path)
        assert out.returncode == 2, (args, out.stdout, out.stderr)
        assert f"--repo {tmp_path / 'nope'}: no such folder" in out.stderr


def test_one_underscore_gets_a_hint_toward_two(tmp_path: Path) -> None:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "CASCADE_SANDBOX_BACKEND": "local"}
    out = subprocess.run(
        [CASCADE, "config", "show"], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert (
        "CASCADE_SANDBOX_BACKEND is not a cascade setting: ignored; "
        "did you mean CASCADE_SANDBOX__BACKEND?"
    ) in out.stderr
    assert 'sandbox.backend = "local"' not in out.stdout  # ignored, as it says
