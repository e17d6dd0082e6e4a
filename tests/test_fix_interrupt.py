"""Ctrl-C or SIGTERM during `cascade fix`: the run stops at once, its sandbox is gone (a local
one's temporary folder too), its unsealed folder is marked ABORTED instead of being left with an
unexplained half-written log, and the exit code is the shell's 128 + signal. Through the real
entry point, with a model that would take ten minutes to answer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cascade.proof.verify import format_report, verify_run

CASCADE = str(Path(sys.executable).parent / "cascade")


def _slow_model(repo: Path) -> None:
    cassette = repo / "cassettes" / "demo.jsonl"
    lines = [json.loads(line) for line in cassette.read_text().splitlines()]
    cassette.write_text("".join(json.dumps({**e, "latency_s": 600}) + "\n" for e in lines))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"])
def test_an_interrupted_fix_cleans_up_and_marks_its_run(
    demo: Path, tmp_path: Path, signum: signal.Signals
) -> None:
    _slow_model(demo)
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "TMPDIR": str(temp)}
    log = tmp_path / "stderr.txt"
    argv = [CASCADE, "fix", "DEMO-1", "--repo", str(demo), "--sandbox", "local"]
    with log.open("wb") as stderr:
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 120
        while "attempt" not in log.read_text():  # the cheap rung has been asked
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert any(p.name.startswith("cascade-local-") for p in temp.iterdir())
        proc.send_signal(signum)
        code = proc.wait(timeout=60)  # the model would answer in ten minutes
    finally:
        if proc.poll() is None:
            proc.kill()
    err = log.read_text()
    assert code == 128 + signum, err
    assert "Traceback" not in err
    assert [p.name for p in temp.iterdir() if p.name.startswith("cascade-local-")] == [], err
    (run_dir,) = [p for p in (demo / ".cascade" / "runs").iterdir() if p.is_dir()]
    assert f"the run folder {run_dir} is marked ABORTED (never sealed)" in err
    assert f"interrupted by {signum.name}" in (run_dir / "ABORTED").read_text()
    report = verify_run(run_dir)
    assert not report.ok and format_report(report).startswith("aborted: ")
