"""A backlog with unreadable issues: every bad one is named at once (exit 2, nothing runs), and
`--skip-bad-issues` runs the readable ones, still naming each one it left out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from cascade.cli.main import app
from cascade.testing.demo import demo_backlog

runner = CliRunner()
DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo"


def test_every_bad_line_is_named_and_the_good_ones_run_only_when_asked(tmp_path: Path) -> None:
    gate = '["diff_scope", "pytest"]'
    b = demo_backlog(DEMO, tmp_path / "b", copies=1, gate=gate, issues=("DEMO-1",))
    good = b.backlog.read_text()
    b.backlog.write_text('{"id": "X-1"}\n' + good + "not json\n")
    out = tmp_path / "out"
    args = ["replay", str(b.backlog), "--repo", str(b.repo), "--config", str(b.config),
            "--out", str(out), "--sandbox", "local"]  # fmt: skip
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2, refused.stderr
    err = refused.stderr
    assert "2 issues cannot be read:" in err
    assert "line 1:" in err and "line 3:" in err and "--skip-bad-issues" in err
    assert not out.exists()  # nothing ran
    ran = runner.invoke(app, [*args, "--skip-bad-issues", "--json"])
    assert ran.exit_code == 0, ran.stderr
    assert ran.stderr.count("skipped (--skip-bad-issues)") == 2
    assert "1/1 verified" in ran.stderr
    # The same summary as JSON on stdout, for a script.
    summary = json.loads(ran.stdout)
    assert summary["tasks"]["total"] == 1 and summary["tasks"]["verified"] == 1
    assert summary["exit_code"] == 0 and summary["out"] == str(out)
    assert summary["cost"]["total_usd"] > 0 and Path(summary["report"][1]).is_file()


def test_a_folder_backlog_names_every_bad_file(tmp_path: Path) -> None:
    folder = tmp_path / "issues"
    folder.mkdir()
    (folder / "A-1.md").write_text("---\nid: A-1\ntitle: fine\n---\nbody\n")
    (folder / "B-1.md").write_text("---\ntitle: [unclosed\n---\nbody\n")
    (folder / "C-1.md").write_text("---\ntitle: x\nnope: 1\n---\nbody\n")
    cascade = str(Path(sys.executable).parent / "cascade")  # the installed entry point
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    argv = [cascade, "replay", str(folder), "--repo", str(tmp_path)]
    out = subprocess.run(
        argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 2, out.stderr
    assert "2 issues cannot be read:" in out.stderr and "Traceback" not in out.stderr
    assert "B-1.md" in out.stderr and "C-1.md" in out.stderr
