"""What a killed run leaves behind is collected by the next one (issue 14, finding 22): a SIGKILLed
`cascade replay` cannot close its sandboxes, and its containers and volumes used to run until
their ttl (6 h) while a resume went on beside them. A real process opens a real Docker sandbox
and is killed; the next run's assembly removes what it left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cascade.testing import make_repo
from cascade.wiring.assemble import assemble
from cascade.wiring.settings import load_config
from sandboxes.docker_api import OWNER_LABEL, RUN_LABEL, connect

OPENS_AND_WAITS = """
import sys, anyio
from pathlib import Path
from cascade.config import SandboxConfig
from sandboxes.docker_sandbox import DockerSandbox

async def main() -> None:
    repo = Path(sys.argv[1])
    commit = sys.argv[2]
    await DockerSandbox.open(repo, commit, SandboxConfig(), run_id="killed-run")
    print("open", flush=True)
    await anyio.sleep(600)

anyio.run(main)
"""


@pytest.mark.docker
def test_a_killed_runs_sandboxes_are_collected_by_the_next_run(
    tmp_path: Path, docker_engine: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # the default ladder's key, checked first
    repo = make_repo(tmp_path / "repo", {"m.py": "x = 1\n"})
    commit = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-c", OPENS_AND_WAITS, str(repo), commit],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "open"
        owner = f"{os.uname().nodename}:{proc.pid}"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    client = connect()
    try:

        def left() -> tuple[list[object], list[object]]:
            labelled = {"label": f"{OWNER_LABEL}={owner}"}
            return (
                client.containers.list(all=True, filters=labelled),
                client.volumes.list(filters=labelled),
            )

        containers, volumes = left()
        assert containers and volumes  # the killed run could not close its sandbox
        assert all(c.labels.get(RUN_LABEL) for c in containers)  # type: ignore[attr-defined]
        (repo / "cascade.toml").write_text('[sandbox]\nbackend = "docker"\n')
        assemble(load_config(repo, environ={}))  # what every run does before any work
        deadline = time.monotonic() + 30
        while any(left()) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert left() == ([], [])
    finally:
        client.close()


def test_an_orphan_another_process_is_removing_is_left_to_it() -> None:
    """Two cascade processes collecting the same orphan: Docker answers the second removal
    409 "already in progress" — not an error for the second (the container is going), and not
    reported as removed by it either. Any other refusal still raises."""
    from types import SimpleNamespace

    from docker.errors import APIError

    from sandboxes.cleanup import _remove

    def refusing(status: int, said: str) -> SimpleNamespace:
        response = SimpleNamespace(status_code=status, reason="Conflict")

        def remove(force: bool) -> None:
            raise APIError("removal", response=response, explanation=said)  # type: ignore[arg-type]

        return SimpleNamespace(remove=remove)

    going = refusing(409, "removal of container 5617 is already in progress")
    assert _remove(going) is False
    with pytest.raises(APIError):
        _remove(refusing(500, "the engine broke"))
